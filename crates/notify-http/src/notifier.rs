//! A target's notifier: three tasks of its own, so a slow or dead target never delays the
//! others.
//!
//! - the *enqueuer* reads the event log through a [`Consumer`] named `notify:<id>` and
//!   writes one pending delivery per wanted event, body, GUID and timestamp fixed then;
//! - the *sender* claims due deliveries in batches (a task's oldest pending one only, so a
//!   task's notifications arrive in order) and POSTs them with at most
//!   `http_connection_pool_size` requests in flight (one task drives them all, as a plain
//!   client loop would);
//! - the *recorder* writes attempt results back in batches and wakes the sender.

use crate::config::{NotificationTargetConfig, StartAt};
use crate::format::Renderer;
use crate::http::{build_client, Poster, Sent};
use crate::metrics as m;
use crate::retry::RetryPolicy;
use crate::signing::Signer;
use anyhow::Context as _;
use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use worklane_domain::{Event, Timestamp};
use worklane_engine::{Consumer, Engine, EventHandler};
use worklane_store::{AttemptOutcome, AttemptResult, Delivery, NewDelivery, Store, StoreError};

/// Events read from the log per step.
const READ_BATCH: u32 = 2000;
/// Deliveries claimed per round trip, at most.
const CLAIM_BATCH: usize = 1000;
/// Results written per transaction, at most.
const RECORD_BATCH: usize = 2000;
/// How often the sender looks for due deliveries when nothing woke it.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// How often replay requests and the backlog gauge are refreshed.
const HOUSEKEEPING: Duration = Duration::from_secs(2);

/// Turns events into pending deliveries, and hands the ones that can go out at once
/// straight to the sender (leased in the same transaction), sparing them a claim.
#[derive(Debug)]
pub struct Enqueuer {
    target: String,
    renderer: Renderer,
    shared: Arc<Shared>,
    /// To the sender: deliveries leased at creation, to post at once.
    direct: mpsc::UnboundedSender<Delivery>,
}

#[async_trait]
impl EventHandler for Enqueuer {
    async fn handle(&mut self, events: &[Event]) -> anyhow::Result<()> {
        let now = Timestamp::now();
        let rows: Vec<NewDelivery> = events
            .iter()
            .filter_map(|e| {
                let guid = uuid::Uuid::new_v4().to_string();
                let body = self.renderer.render(e, &guid, now)?;
                Some(NewDelivery {
                    target: self.target.clone(),
                    seq: e.seq,
                    broker_id: e.broker_id.0,
                    event_type: e.event_type.as_str().to_owned(),
                    guid,
                    created_at: now,
                    body,
                })
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        let sh = &self.shared;
        // Room left for requests in memory; reserved before the transaction.
        let room = sh
            .max_in_memory
            .saturating_sub(sh.in_memory.load(Ordering::Acquire));
        sh.in_memory.fetch_add(room, Ordering::AcqRel);
        let lease_until = sh.lease_until(now);
        let result = sh
            .store
            .enqueue_and_lease(&rows, now, lease_until, room)
            .await;
        let leased = result.as_ref().map_or(0, |e| e.leased.len());
        sh.in_memory.fetch_sub(room - leased, Ordering::AcqRel);
        let enqueued = result.context("writing pending notifications")?;
        metrics::counter!(m::ENQUEUED, "target" => self.target.clone()).increment(enqueued.added);
        for d in enqueued.leased {
            if self.direct.send(d).is_err() {
                // The sender has stopped: the lease runs out or the next run releases it.
                sh.in_memory.fetch_sub(1, Ordering::AcqRel);
            }
        }
        sh.wake.notify_one();
        Ok(())
    }
}

/// Everything a target's tasks share.
#[derive(Debug)]
struct Shared {
    target: String,
    store: Arc<dyn Store>,
    poster: Poster,
    policy: RetryPolicy,
    pool_size: usize,
    wake: Arc<Notify>,
    /// Deliveries leased to this run and not yet recorded.
    in_memory: AtomicUsize,
    max_in_memory: usize,
    lease: Duration,
}

impl Shared {
    /// Until when a delivery claimed now is ours.
    fn lease_until(&self, now: Timestamp) -> Timestamp {
        now.checked_add(jiff::SignedDuration::try_from(self.lease).unwrap_or_default())
            .unwrap_or(now)
    }
}

/// A running target.
#[derive(Debug)]
pub struct Notifier {
    cfg: NotificationTargetConfig,
    engine: Engine,
    shared: Arc<Shared>,
}

impl Notifier {
    /// Prepares a validated target: its client, its log position (created at `start_at`
    /// the first time), and the release of the leases a previous run left.
    pub async fn new(engine: Engine, cfg: NotificationTargetConfig) -> anyhow::Result<Self> {
        cfg.validate().map_err(anyhow::Error::msg)?;
        let client = build_client(&cfg)?;
        let signer = Signer::new(&cfg.signing_secrets)?;
        let store = engine.store().clone();
        let now = Timestamp::now();
        store
            .start_delivery_cursor(&cfg.consumer_name(), cfg.start_at == StartAt::Now, now)
            .await?;
        let released = store.release_deliveries(&cfg.id, now).await?;
        if released > 0 {
            tracing::info!(notification_target = %cfg.id, released, "resending notifications a previous run left in flight");
        }
        let pool = cfg.http_connection_pool_size;
        // Enough claimed ahead to keep every connection busy while results are written
        // and the next batch is claimed (each a transaction of its own).
        let max_in_memory = (pool * 32).clamp(256, 4 * CLAIM_BATCH);
        let rounds = (max_in_memory / pool + 2) as u32;
        let shared = Arc::new(Shared {
            target: cfg.id.clone(),
            store,
            poster: Poster {
                client,
                uri: cfg.uri.clone(),
                signer,
                debug: cfg.debug,
                target: cfg.id.clone(),
            },
            policy: RetryPolicy::new(&cfg),
            pool_size: pool,
            wake: Arc::new(Notify::new()),
            in_memory: AtomicUsize::new(0),
            max_in_memory,
            // A claimed delivery may wait for every request ahead of it to time out.
            lease: cfg.http_response_timeout * rounds + Duration::from_secs(30),
        });
        Ok(Self {
            cfg,
            engine,
            shared,
        })
    }

    /// Runs until `cancel`, then stops reading, lets requests in flight finish, records
    /// their results and returns. Deliveries claimed but not sent are sent by the next run.
    pub async fn run(self, cancel: CancellationToken) -> anyhow::Result<()> {
        m::describe();
        let (done_tx, done_rx) = mpsc::channel::<AttemptResult>(RECORD_BATCH * 2);
        let (direct_tx, direct_rx) = mpsc::unbounded_channel();
        let recorder = tokio::spawn(record_loop(self.shared.clone(), done_rx));
        let enqueuer = tokio::spawn(enqueue_loop(
            self.engine.clone(),
            self.cfg.clone(),
            self.shared.clone(),
            direct_tx,
            cancel.clone(),
        ));
        send_loop(self.shared.clone(), direct_rx, done_tx, cancel).await;
        enqueuer.await.context("notification enqueuer")?;
        // The sender's results channel is gone now: the recorder drains and stops.
        recorder.await.context("notification recorder")?;
        tracing::debug!(notification_target = %self.cfg.id, "notifier stopped");
        Ok(())
    }
}

async fn enqueue_loop(
    engine: Engine,
    cfg: NotificationTargetConfig,
    shared: Arc<Shared>,
    direct: mpsc::UnboundedSender<Delivery>,
    cancel: CancellationToken,
) {
    let store = engine.store().clone();
    let mut wake = engine.subscribe();
    let mut consumer = Consumer::new(engine, cfg.consumer_name()).batch(READ_BATCH);
    let mut handler = Enqueuer {
        target: cfg.id.clone(),
        renderer: Renderer::new(&cfg),
        shared: shared.clone(),
        direct,
    };
    let mut backoff = Duration::from_millis(100);
    let mut housekeeping = Instant::now() - HOUSEKEEPING;
    while !cancel.is_cancelled() {
        if housekeeping.elapsed() >= HOUSEKEEPING {
            housekeeping = Instant::now();
            match store.take_replay(&cfg.id).await {
                Ok(Some(from)) => {
                    tracing::info!(notification_target = %cfg.id, from_seq = from, "replaying the event log");
                    if let Err(e) = consumer.seek(from.saturating_sub(1).max(0)).await {
                        tracing::warn!(notification_target = %cfg.id, error = format!("{e:#}"), "replay failed");
                    }
                    shared.wake.notify_one();
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(notification_target = %cfg.id, error = %e, "reading replay requests failed")
                }
            }
            match store.delivery_backlog(&cfg.id).await {
                Ok(n) => metrics::gauge!(m::BACKLOG, "target" => cfg.id.clone()).set(n as f64),
                Err(e) => tracing::debug!(error = %e, "backlog count failed"),
            }
        }
        match consumer.step(&mut handler).await {
            Ok(n) if n > 0 => backoff = Duration::from_millis(100),
            Ok(_) => {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = wake.changed() => {}
                    _ = tokio::time::sleep(HOUSEKEEPING) => {}
                }
            }
            Err(e) => {
                tracing::warn!(notification_target = %cfg.id, error = format!("{e:#}"), retry_in = ?backoff, "reading the event log failed");
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// What a claim gives: how many were asked for, the deliveries, and (when fewer came)
/// the earliest next attempt.
type Claimed = (
    usize,
    Result<(Vec<Delivery>, Option<Timestamp>), StoreError>,
);

fn claim(shared: Arc<Shared>, want: usize) -> BoxFuture<'static, Claimed> {
    Box::pin(async move {
        let now = Timestamp::now();
        let r = async {
            let batch = shared
                .store
                .claim_deliveries(&shared.target, now, shared.lease_until(now), want as u32)
                .await?;
            let next = if batch.len() < want {
                shared.store.next_delivery_due(&shared.target).await?
            } else {
                None
            };
            Ok((batch, next))
        }
        .await;
        (want, r)
    })
}

/// When to claim again after a claim that found fewer than asked.
fn next_claim_after(next_due: Option<Timestamp>) -> Instant {
    let wait = match next_due {
        Some(t) => {
            let until = t.duration_since(Timestamp::now());
            // Due now but not claimed: waiting behind an earlier delivery of its task,
            // whose result will wake us.
            if until.is_positive() {
                until.unsigned_abs().min(IDLE_POLL)
            } else {
                IDLE_POLL
            }
        }
        None => IDLE_POLL,
    };
    Instant::now() + wait.max(Duration::from_millis(5))
}

/// Posts queued deliveries with at most `pool_size` requests in flight, claims more
/// while there is room, and hands results to the recorder. On cancel, requests in
/// flight finish and are recorded; queued ones stay leased for the next run.
async fn send_loop(
    shared: Arc<Shared>,
    mut direct: mpsc::UnboundedReceiver<Delivery>,
    done: mpsc::Sender<AttemptResult>,
    cancel: CancellationToken,
) {
    let mut queue: VecDeque<Delivery> = VecDeque::new();
    let mut inflight = FuturesUnordered::new();
    let mut claiming: Option<BoxFuture<'static, Claimed>> = None;
    let mut next_claim = Instant::now();
    let mut backoff = Duration::from_millis(100);
    loop {
        while inflight.len() < shared.pool_size {
            let Some(d) = queue.pop_front() else { break };
            inflight.push(attempt(shared.clone(), d));
        }
        let now = Instant::now();
        if claiming.is_none() && now >= next_claim {
            let room = shared
                .max_in_memory
                .saturating_sub(shared.in_memory.load(Ordering::Acquire));
            // Claim only when a good share of the room is free: fewer, larger round trips.
            if room >= (shared.max_in_memory / 4).max(1) {
                let want = room.min(CLAIM_BATCH);
                shared.in_memory.fetch_add(want, Ordering::AcqRel);
                claiming = Some(claim(shared.clone(), want));
            }
        }
        let idle_until = if next_claim > now {
            next_claim
        } else {
            now + IDLE_POLL
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            Some(result) = inflight.next(), if !inflight.is_empty() => {
                if done.send(result).await.is_err() {
                    shared.in_memory.fetch_sub(1, Ordering::AcqRel);
                }
            }
            Some(d) = direct.recv() => queue.push_back(d),
            (want, r) = async { claiming.as_mut().expect("guarded").await }, if claiming.is_some() => {
                claiming = None;
                match r {
                    Ok((batch, next_due)) => {
                        backoff = Duration::from_millis(100);
                        shared.in_memory.fetch_sub(want - batch.len(), Ordering::AcqRel);
                        if batch.len() < want {
                            next_claim = next_claim_after(next_due);
                        }
                        queue.extend(batch);
                    }
                    Err(e) => {
                        shared.in_memory.fetch_sub(want, Ordering::AcqRel);
                        tracing::warn!(notification_target = %shared.target, error = %e, retry_in = ?backoff, "claiming notifications failed");
                        next_claim = Instant::now() + backoff;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
            _ = shared.wake.notified() => next_claim = Instant::now(),
            _ = tokio::time::sleep_until(idle_until.into()), if claiming.is_none() => {}
        }
    }
    shared.in_memory.fetch_sub(queue.len(), Ordering::AcqRel);
    drop(claiming);
    while let Some(result) = inflight.next().await {
        if done.send(result).await.is_err() {
            shared.in_memory.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// One attempt: the POST and its judged result.
async fn attempt(shared: Arc<Shared>, d: Delivery) -> AttemptResult {
    let sent = shared.poster.post(&d).await;
    judge(&shared, &d, sent)
}

/// Turns what an attempt gave into its stored result, and counts it.
fn judge(shared: &Shared, d: &Delivery, sent: Sent) -> AttemptResult {
    let target = shared.target.clone();
    metrics::histogram!(m::LATENCY, "target" => target.clone()).record(sent.latency.as_secs_f64());
    let attempt = u32::try_from(d.attempts + 1).unwrap_or(u32::MAX);
    let outcome = match &sent.failure {
        None => AttemptOutcome::Delivered,
        Some(f) => shared
            .policy
            .after_failure(attempt, f, sent.retry_after, Timestamp::now()),
    };
    match outcome {
        AttemptOutcome::Delivered => {
            metrics::counter!(m::DELIVERED, "target" => target).increment(1)
        }
        AttemptOutcome::Retry(_) => metrics::counter!(m::RETRIED, "target" => target).increment(1),
        AttemptOutcome::Failed => {
            tracing::warn!(notification_target = %shared.target, delivery = d.id, guid = %d.guid, error = sent.error.as_deref().unwrap_or(""), "notification failed for good");
            metrics::counter!(m::FAILED, "target" => target).increment(1)
        }
    }
    AttemptResult {
        delivery_id: d.id,
        attempted_at: sent.attempted_at,
        status_code: sent.status.map(i64::from),
        latency_us: i64::try_from(sent.latency.as_micros()).unwrap_or(i64::MAX),
        error: sent.error,
        outcome,
    }
}

async fn record_loop(shared: Arc<Shared>, mut rx: mpsc::Receiver<AttemptResult>) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while rx.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        let mut backoff = Duration::from_millis(50);
        // A result not written is not lost: its lease runs out and it is sent again; but
        // retrying here keeps duplicates rare.
        for _ in 0..8 {
            match shared.store.finish_attempts(&batch, Timestamp::now()).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(notification_target = %shared.target, error = %e, "recording notification attempts failed");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
        }
        shared.in_memory.fetch_sub(batch.len(), Ordering::AcqRel);
        batch.clear();
        shared.wake.notify_one();
    }
}

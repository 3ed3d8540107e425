//! A target's notifier: three tasks of its own, so a slow or dead target never delays the
//! others.
//!
//! - the *reader* ([`crate::reader`]) reads the event log from the target's durable
//!   position and renders each wanted event's notification (GUID and timestamp derived from
//!   the event, so a notification read again after a crash is the same one);
//! - the *dispatcher* ([`crate::dispatch`]) sends a task's notifications one at a time, in
//!   order, and records what happened in batched transactions together with the position:
//!   a delivered notification as one row, one to retry (and those of its task behind it)
//!   as pending rows with their bodies;
//! - the *sender* ([`crate::sender`]) POSTs with at most `http_connection_pool_size`
//!   requests in flight (one task drives them all, as a plain client loop would), and
//!   claims due pending rows (retries) in batches.
//!
//! Nothing is acknowledged before it is durable: the position only passes an event once
//! its notification is recorded, so a crash sends the unrecorded ones again, with the
//! same GUIDs and bodies.

use crate::config::{NotificationTargetConfig, StartAt};
use crate::dispatch::Dispatcher;
use crate::format::Renderer;
use crate::http::{build_client, Poster, Sent};
use crate::metrics::TargetMetrics;
use crate::retry::RetryPolicy;
use crate::signing::Signer;
use bytes::Bytes;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use worklane_domain::{EventType, Timestamp};
use worklane_engine::Engine;
use worklane_store::{
    AttemptOutcome, AttemptResult, Delivery, DeliveryStore, EventLog, NewDelivery,
};

/// Events read from the log per step.
pub(crate) const READ_BATCH: usize = 1000;
/// Notifications read from the log and not yet recorded, at most.
pub(crate) const WINDOW: usize = 8 * READ_BATCH;
/// Stored deliveries claimed per round trip, at most.
pub(crate) const CLAIM_BATCH: usize = 1000;
/// Results taken from the sender at a time, at most.
pub(crate) const RECORD_BATCH: usize = 4000;

/// A notification rendered from the log and not stored yet.
#[derive(Debug, Clone)]
pub struct Fresh {
    pub seq: i64,
    pub broker_id: i64,
    pub event_type: EventType,
    pub guid: String,
    pub created_at: Timestamp,
    pub body: Bytes,
}

impl Fresh {
    /// The row it is stored as; a delivered one is stored without its body.
    pub(crate) fn into_new(self, target: &str, keep_body: bool) -> NewDelivery {
        NewDelivery {
            target: target.to_owned(),
            seq: self.seq,
            broker_id: self.broker_id,
            event_type: self.event_type.as_str().to_owned(),
            guid: self.guid,
            created_at: self.created_at,
            body: if keep_body {
                self.body.to_vec()
            } else {
                Vec::new()
            },
        }
    }
}

/// The body of a notification stored without one (delivered at its first attempt),
/// rendered again from its event: the same as sent, GUID and timestamp included, given the
/// same configuration. None when the event is no longer in the log.
pub(crate) async fn render_again(
    events: &dyn EventLog,
    renderer: &Renderer,
    seq: i64,
    guid: &str,
) -> Result<Option<Vec<u8>>, worklane_store::StoreError> {
    let events = events.events_after(seq - 1, 1).await?;
    Ok(events
        .first()
        .filter(|e| e.seq == seq)
        .map(|e| renderer.render_wanted(e, guid, e.event_date_time)))
}

/// A notification to POST.
#[derive(Debug)]
pub enum Outgoing {
    /// Read from the log, not in the store yet.
    Fresh(Fresh),
    /// A stored delivery (a retry, a resend), leased to this run; its body as stored.
    Stored(Delivery, Bytes),
}

impl Outgoing {
    fn guid(&self) -> &str {
        match self {
            Self::Fresh(f) => &f.guid,
            Self::Stored(d, _) => &d.guid,
        }
    }

    fn body(&self) -> &Bytes {
        match self {
            Self::Fresh(f) => &f.body,
            Self::Stored(_, b) => b,
        }
    }

    /// What logs call it: the delivery id, or the event seq while not stored.
    fn label(&self) -> (&'static str, i64) {
        match self {
            Self::Fresh(f) => ("seq", f.seq),
            Self::Stored(d, _) => ("delivery", d.id),
        }
    }

    /// Attempts made before this one.
    fn attempts(&self) -> i64 {
        match self {
            Self::Fresh(_) => 0,
            Self::Stored(d, _) => d.attempts,
        }
    }

    fn delivery_id(&self) -> i64 {
        match self {
            Self::Fresh(_) => 0,
            Self::Stored(d, _) => d.id,
        }
    }
}

/// A finished attempt, on its way to the dispatcher.
#[derive(Debug)]
pub struct Done {
    pub item: Outgoing,
    pub result: AttemptResult,
}

/// Everything a target's tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub target: String,
    /// The target's position in the event log.
    pub consumer: String,
    pub store: Arc<dyn DeliveryStore>,
    /// The event log the target reads.
    pub events: Arc<dyn EventLog>,
    /// The engine's clock: attempt times, retry schedules and leases read it.
    pub clock: worklane_engine::SharedClock,
    pub poster: Poster,
    pub renderer: Renderer,
    pub policy: RetryPolicy,
    pub pool_size: usize,
    pub metrics: TargetMetrics,
    /// Wakes the sender to claim due deliveries.
    pub wake: Notify,
    /// Stored deliveries leased to this run and not yet recorded.
    pub claimed: AtomicUsize,
    pub max_claimed: usize,
    pub lease: Duration,
    /// Notifications read and not yet recorded (for the backlog gauge).
    pub unrecorded: AtomicUsize,
}

impl Shared {
    /// Until when a delivery claimed now is ours.
    pub fn lease_until(&self, now: Timestamp) -> Timestamp {
        now.checked_add(jiff::SignedDuration::try_from(self.lease).unwrap_or_default())
            .unwrap_or(now)
    }

    /// One attempt: the POST and its judged result.
    pub async fn attempt(&self, item: Outgoing) -> Done {
        let (kind, id) = item.label();
        let sent = self
            .poster
            .post(item.guid(), item.body().clone(), kind, id)
            .await;
        let result = self.judge(&item, sent);
        Done { item, result }
    }

    /// Turns what an attempt gave into its stored result, and counts it.
    fn judge(&self, item: &Outgoing, sent: Sent) -> AttemptResult {
        let m = &self.metrics;
        m.latency.record(sent.latency.as_secs_f64());
        let attempt = u32::try_from(item.attempts() + 1).unwrap_or(u32::MAX);
        let outcome = match &sent.failure {
            None => AttemptOutcome::Delivered,
            Some(f) => self
                .policy
                .after_failure(attempt, f, sent.retry_after, self.clock.now()),
        };
        match outcome {
            AttemptOutcome::Delivered => m.delivered.increment(1),
            AttemptOutcome::Retry(_) => m.retried.increment(1),
            AttemptOutcome::Failed => {
                let (kind, id) = item.label();
                tracing::warn!(notification_target = %self.target, kind, id, guid = %item.guid(), error = sent.error.as_deref().unwrap_or(""), "notification failed for good");
                m.failed.increment(1)
            }
        }
        AttemptResult {
            delivery_id: item.delivery_id(),
            attempted_at: sent.attempted_at,
            status_code: sent.status.map(i64::from),
            latency_us: i64::try_from(sent.latency.as_micros()).unwrap_or(i64::MAX),
            error: sent.error,
            outcome,
        }
    }
}

/// A running target.
#[derive(Debug)]
pub struct Notifier {
    engine: Engine,
    shared: Arc<Shared>,
    /// Where the reader starts.
    position: i64,
}

impl Notifier {
    /// Prepares a validated target: its client, its log position (created at `start_at`
    /// the first time), and the release of the leases a previous run left.
    pub async fn new(engine: Engine, cfg: NotificationTargetConfig) -> anyhow::Result<Self> {
        cfg.validate().map_err(anyhow::Error::msg)?;
        let client = build_client(&cfg)?;
        let signer = Signer::new(&cfg.signing_secrets)?;
        let store = engine.deliveries().clone();
        let now = engine.now();
        let consumer = cfg.consumer_name();
        let position = store
            .start_delivery_cursor(&consumer, cfg.start_at == StartAt::Now, now)
            .await?;
        let released = store.release_deliveries(&cfg.id, now).await?;
        if released > 0 {
            tracing::info!(notification_target = %cfg.id, released, "resending notifications a previous run left in flight");
        }
        let pool = cfg.http_connection_pool_size;
        // Enough claimed ahead to keep every connection busy while results are written
        // and the next batch is claimed (each a transaction of its own).
        let max_claimed = (pool * 32).clamp(256, 4 * CLAIM_BATCH);
        // It may also queue behind a full window of fresh notifications.
        let rounds = ((max_claimed + WINDOW) / pool + 2) as u32;
        crate::metrics::describe();
        let shared = Arc::new(Shared {
            target: cfg.id.clone(),
            consumer,
            store,
            events: engine.events().clone(),
            clock: engine.clock().clone(),
            poster: Poster {
                client,
                uri: reqwest::Url::parse(&cfg.uri)?,
                signer,
                debug: cfg.debug,
                target: cfg.id.clone(),
                clock: engine.clock().clone(),
            },
            renderer: Renderer::new(&cfg),
            policy: RetryPolicy::new(&cfg),
            pool_size: pool,
            metrics: TargetMetrics::new(&cfg.id),
            wake: Notify::new(),
            claimed: AtomicUsize::new(0),
            max_claimed,
            // A claimed delivery may wait for every request ahead of it to time out.
            lease: cfg.http_response_timeout * rounds + Duration::from_secs(30),
            unrecorded: AtomicUsize::new(0),
        });
        Ok(Self {
            engine,
            shared,
            position,
        })
    }

    /// Runs until `cancel`, then stops reading, lets requests in flight finish, records
    /// their results and returns. Notifications read but not recorded are read again by
    /// the next run; deliveries claimed but not sent are released by it.
    pub async fn run(self, cancel: CancellationToken) -> anyhow::Result<()> {
        // Any of the target's tasks ending on its own (a failure) stops the others; the
        // set aborts them all if this future is dropped.
        let stop = cancel.child_token();
        let window = Arc::new(Semaphore::new(WINDOW));
        let (read_tx, read_rx) = mpsc::channel(2);
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let claimed_tx = out_tx.clone();
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let sh = &self.shared;
        let dispatcher = Dispatcher::new(
            sh.clone(),
            self.position,
            window.clone(),
            out_tx,
            stop.clone(),
        );
        let mut tasks: JoinSet<&'static str> = JoinSet::new();
        let reader = crate::reader::read_loop(
            self.engine.clone(),
            sh.clone(),
            self.position,
            window,
            read_tx,
            stop.clone(),
        );
        tasks.spawn(async move {
            reader.await;
            "reader"
        });
        tasks.spawn(async move {
            dispatcher.run(read_rx, done_rx).await;
            "dispatcher"
        });
        let claims =
            crate::sender::claim_loop(sh.clone(), claimed_tx, done_tx.clone(), stop.clone());
        tasks.spawn(async move {
            claims.await;
            "claims"
        });
        let sender = crate::sender::send_loop(sh.clone(), out_rx, done_tx, stop.clone());
        tasks.spawn(async move {
            sender.await;
            "sender"
        });
        let mut result = Ok(());
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(_) if cancel.is_cancelled() => {}
                Ok(task) => {
                    result = result.and(Err(anyhow::anyhow!(
                        "the {task} of notification target {} stopped on its own",
                        sh.target
                    )))
                }
                Err(e) => {
                    result = result.and(Err(anyhow::anyhow!(
                        "a task of notification target {} failed: {e}",
                        sh.target
                    )))
                }
            }
            stop.cancel();
        }
        tracing::debug!(notification_target = %sh.target, "notifier stopped");
        result
    }
}

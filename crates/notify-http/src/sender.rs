//! The sender: POSTs with at most `http_connection_pool_size` requests in flight, the
//! fresh notifications the dispatcher hands it and the stored ones (retries, resends) it
//! claims in batches, and hands every result back to the dispatcher.

use crate::notifier::{render_again, Done, Outgoing, Shared, CLAIM_BATCH};
use bytes::Bytes;
use futures::stream::StreamExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use worklane_domain::Timestamp;
use worklane_engine::Backoff;
use worklane_store::{AttemptOutcome, AttemptResult, Delivery, StoreError};

/// How often the sender looks for due deliveries when nothing woke it.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// What a claim gives: the deliveries to send, the results of those that cannot be sent,
/// and (when fewer came than asked) the earliest next attempt.
type Claimed = (Vec<Outgoing>, Vec<Done>, Option<Timestamp>);

async fn claim(shared: &Shared, want: usize) -> Result<Claimed, StoreError> {
    let now = shared.clock.now();
    // On failure nothing was leased.
    let batch = shared
        .store
        .claim_deliveries(&shared.target, now, shared.lease_until(now), want as u32)
        .await?;
    // Leased now: whatever fails from here on, every row goes out or gets a result.
    let next = if batch.len() < want {
        shared
                .store
                .next_delivery_due(&shared.target)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(notification_target = %shared.target, error = %e, "reading the next due notification failed");
                    None
                })
    } else {
        None
    };
    let mut ready = Vec::with_capacity(batch.len());
    let mut gone = Vec::new();
    for d in batch {
        match body_of(shared, d).await {
            Ok(item) => ready.push(item),
            Err(done) => gone.push(done),
        }
    }
    Ok((ready, gone, next))
}

/// A claimed delivery with its body: as stored, or rendered again from its event when it
/// was stored without one (delivered at its first attempt, then resent or replayed).
/// Otherwise its result: failed when the event is no longer in the log, tried again soon
/// when the log could not be read.
async fn body_of(shared: &Shared, mut d: Delivery) -> Result<Outgoing, Done> {
    if !d.body.is_empty() {
        let body = Bytes::from(std::mem::take(&mut d.body));
        return Ok(Outgoing::Stored(d, body));
    }
    let now = shared.clock.now();
    let (outcome, error) =
        match render_again(shared.events.as_ref(), &shared.renderer, d.seq, &d.guid).await {
            Ok(Some(body)) => return Ok(Outgoing::Stored(d, Bytes::from(body))),
            Ok(None) => (
                AttemptOutcome::Failed,
                format!("event {} is no longer in the event log", d.seq),
            ),
            Err(e) => (
                AttemptOutcome::Retry(
                    now.checked_add(jiff::SignedDuration::from_secs(5))
                        .unwrap_or(now),
                ),
                format!("reading event {} to render the body failed: {e}", d.seq),
            ),
        };
    let result = AttemptResult {
        delivery_id: d.id,
        attempted_at: now,
        status_code: None,
        latency_us: 0,
        error: Some(error),
        outcome,
    };
    Err(Done {
        item: Outgoing::Stored(d, Bytes::new()),
        result,
    })
}

/// When to claim again after a claim that found fewer than asked.
fn next_claim_after(next_due: Option<Timestamp>, now: Timestamp) -> Instant {
    let wait = match next_due {
        Some(t) => {
            let until = t.duration_since(now);
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

/// Posts what comes in (fresh notifications from the dispatcher, claimed ones from
/// [`claim_loop`]) with at most `pool_size` requests in flight, as a plain client loop
/// would, and hands every result to the dispatcher. On cancel it takes nothing more;
/// requests in flight finish and are handed over, queued ones are left to the next run.
pub(crate) async fn send_loop(
    shared: Arc<Shared>,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    done: mpsc::UnboundedSender<Done>,
    cancel: CancellationToken,
) {
    let pool = shared.pool_size;
    let results = futures::stream::poll_fn(move |cx| queue.poll_recv(cx))
        .take_until(cancel.cancelled_owned())
        .map(|item| {
            let sh = shared.clone();
            async move { sh.attempt(item).await }
        })
        .buffer_unordered(pool);
    let mut results = std::pin::pin!(results);
    while let Some(d) = results.next().await {
        // A closed dispatcher has stopped: the next run sends it again.
        let _ = done.send(d);
    }
}

/// Claims due stored deliveries (retries, resends) while fewer than `max_claimed` are
/// out, and queues them for the sender. Woken when the dispatcher stores pending ones or
/// records claimed ones; otherwise looks again when the next one is due (at least every
/// [`IDLE_POLL`]).
pub(crate) async fn claim_loop(
    shared: Arc<Shared>,
    queue: mpsc::UnboundedSender<Outgoing>,
    done: mpsc::UnboundedSender<Done>,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::default();
    let mut next_claim = Instant::now();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep_until(next_claim.into()) => {}
        }
        let room = shared
            .max_claimed
            .saturating_sub(shared.claimed.load(Ordering::Acquire));
        // Claim only when a good share of the room is free: fewer, larger round trips.
        if room < (shared.max_claimed / 4).max(1) {
            next_claim = Instant::now() + IDLE_POLL;
            continue;
        }
        let want = room.min(CLAIM_BATCH);
        shared.claimed.fetch_add(want, Ordering::AcqRel);
        let r = tokio::select! {
            _ = cancel.cancelled() => break,
            r = claim(&shared, want) => r,
        };
        match r {
            Ok((ready, gone, next_due)) => {
                backoff.reset();
                let got = ready.len() + gone.len();
                shared.claimed.fetch_sub(want - got, Ordering::AcqRel);
                next_claim = if got < want {
                    next_claim_after(next_due, shared.clock.now())
                } else {
                    Instant::now()
                };
                for item in ready {
                    let _ = queue.send(item);
                }
                for d in gone {
                    let _ = done.send(d);
                }
            }
            Err(e) => {
                shared.claimed.fetch_sub(want, Ordering::AcqRel);
                let delay = backoff.next_delay();
                tracing::warn!(notification_target = %shared.target, error = %e, retry_in = ?delay, "claiming notifications failed");
                next_claim = Instant::now() + delay;
            }
        }
    }
}

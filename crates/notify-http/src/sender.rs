//! The sender: POSTs with at most `http_connection_pool_size` requests in flight, the
//! fresh notifications the dispatcher hands it and the stored ones (retries, resends) it
//! claims in batches, and hands every result back to the dispatcher.

use crate::notifier::{render_again, Done, Outgoing, Shared, CLAIM_BATCH};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::StreamExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use worklane_domain::Timestamp;
use worklane_engine::{Backoff, SharedClock};
use worklane_store::{AttemptOutcome, AttemptResult, Delivery, StoreError};

/// How often the claims look for due deliveries when nothing woke them (real time: rows
/// no wake-up announces, such as a resend through the API, are found this way).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// What a claim gives.
struct Claimed {
    /// The deliveries to send.
    ready: Vec<Outgoing>,
    /// The results of those that cannot be sent.
    gone: Vec<Done>,
    /// When fewer came than asked: the earliest next attempt.
    next_due: Option<Timestamp>,
    /// The time on the engine's clock the claim took what was due at.
    at: Timestamp,
}

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
    Ok(Claimed {
        ready,
        gone,
        next_due: next,
        at: now,
    })
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

/// When the claim loop claims next: at a real time (at once, after a failed claim's
/// backoff, or at the idle poll), when the engine's clock reaches the earliest stored next
/// attempt, or when the dispatcher wakes it, whichever comes first.
///
/// Retry schedules are times on the engine's clock, so the wait for them is a wait on
/// that clock: a test that moves a `TestClock` past a retry's time wakes the claims at
/// once. The real-time idle poll stays for rows no wake-up announces (a resend through
/// the API, another server's writes) and for waits behind an earlier delivery.
struct NextClaim {
    clock: SharedClock,
    /// The next claim at the latest, in real time (tokio's, which tests can pause).
    at: Instant,
    /// The earliest stored next attempt still to come, and the clock's wait for it: one
    /// boxed future per idle wait, kept while the time stays the same.
    due: Option<(Timestamp, BoxFuture<'static, ()>)>,
}

impl NextClaim {
    /// Claims at once.
    fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            at: Instant::now(),
            due: None,
        }
    }

    /// Claims again at once (the last claim filled its batch).
    fn at_once(&mut self) {
        self.at = Instant::now();
        self.due = None;
    }

    /// Claims again after `delay` of real time and not before (a failed claim's backoff),
    /// unless woken.
    fn after(&mut self, delay: Duration) {
        self.at = Instant::now() + delay;
        self.due = None;
    }

    /// Looks again at the idle poll, or earlier when woken or when a stored next attempt
    /// already waited for comes due.
    fn poll_later(&mut self) {
        self.at = Instant::now() + IDLE_POLL;
    }

    /// After a claim at `claimed_at` (on the engine's clock) that found fewer than asked:
    /// claims again when the clock reaches `next_due`, or at the idle poll.
    fn idle(&mut self, next_due: Option<Timestamp>, claimed_at: Timestamp) {
        self.poll_later();
        match next_due {
            // Compared with the time the claim used, not the clock now: a clock moved
            // since then makes the wait resolve at once instead of being missed.
            Some(t) if t > claimed_at => {
                if self.due.as_ref().map(|(at, _)| *at) != Some(t) {
                    self.due = Some((t, self.clock.sleep_until(t)));
                }
            }
            // Due but not claimed: waiting behind an earlier delivery of its task, whose
            // result will wake us. Nothing stored: a write that stores one wakes us.
            _ => self.due = None,
        }
    }

    /// Waits for the next claim; false once `cancel` fires.
    async fn wait(&mut self, wake: &Notify, cancel: &CancellationToken) -> bool {
        tokio::select! {
            // A stop wins over a claim that is due too.
            biased;
            _ = cancel.cancelled() => return false,
            _ = wake.notified() => {}
            _ = tokio::time::sleep_until(self.at) => {}
            _ = async { self.due.as_mut().expect("guarded").1.as_mut().await }, if self.due.is_some() => {
                // A finished future is not polled again.
                self.due = None;
            }
        }
        true
    }
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
/// records claimed ones, and when the engine's clock reaches the next one's time;
/// otherwise looks again every [`IDLE_POLL`].
pub(crate) async fn claim_loop(
    shared: Arc<Shared>,
    queue: mpsc::UnboundedSender<Outgoing>,
    done: mpsc::UnboundedSender<Done>,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::default();
    let mut next = NextClaim::new(shared.clock.clone());
    loop {
        if !next.wait(&shared.wake, &cancel).await {
            break;
        }
        let room = shared
            .max_claimed
            .saturating_sub(shared.claimed.load(Ordering::Acquire));
        // Claim only when a good share of the room is free: fewer, larger round trips.
        if room < (shared.max_claimed / 4).max(1) {
            next.poll_later();
            continue;
        }
        let want = room.min(CLAIM_BATCH);
        shared.claimed.fetch_add(want, Ordering::AcqRel);
        let r = tokio::select! {
            _ = cancel.cancelled() => break,
            r = claim(&shared, want) => r,
        };
        match r {
            Ok(Claimed {
                ready,
                gone,
                next_due,
                at,
            }) => {
                backoff.reset();
                let got = ready.len() + gone.len();
                shared.claimed.fetch_sub(want - got, Ordering::AcqRel);
                if got < want {
                    next.idle(next_due, at);
                } else {
                    next.at_once();
                }
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
                next.after(delay);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;
    use worklane_engine::{Clock, TestClock};

    /// Waits for the next claim on a task of its own, so the test can move the clock.
    fn waiting(
        mut next: NextClaim,
        wake: &Arc<Notify>,
    ) -> tokio::task::JoinHandle<(NextClaim, bool)> {
        let wake = wake.clone();
        tokio::spawn(async move {
            let woke = next.wait(&wake, &CancellationToken::new()).await;
            (next, woke)
        })
    }

    // Tokio's time is paused: it moves only when every task is idle, so a wait that ends
    // with no real time passed was ended by the clock or a wake-up, not the idle poll.
    #[tokio::test(start_paused = true)]
    async fn moving_the_clock_to_the_next_attempt_wakes_the_claims_at_once() {
        let clock = TestClock::at_default();
        let wake = Arc::new(Notify::new());
        let started = tokio::time::Instant::now();
        let claimed_at = clock.now();
        let mut next = NextClaim::new(clock.shared());
        next.idle(Some(claimed_at + SignedDuration::from_secs(60)), claimed_at);
        let w = waiting(next, &wake);
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(59));
        tokio::task::yield_now().await;
        assert!(!w.is_finished(), "woke before the next attempt's time");
        clock.advance(Duration::from_secs(1));
        let (mut next, woke) = w.await.unwrap();
        assert!(woke);
        assert_eq!(started.elapsed(), Duration::ZERO, "woken by the clock");

        // A clock moved past the next attempt between the claim and the wait: the wait
        // ends at once instead of at the idle poll.
        let claimed_at = clock.now();
        clock.advance(Duration::from_secs(30));
        next.idle(Some(claimed_at + SignedDuration::from_secs(10)), claimed_at);
        let (_, woke) = waiting(next, &wake).await.unwrap();
        assert!(woke);
        assert_eq!(started.elapsed(), Duration::ZERO, "woken by the clock");
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_later_attempt_the_claims_wait_for_a_wake_up_or_the_idle_poll() {
        let clock = TestClock::at_default();
        let wake = Arc::new(Notify::new());
        let now = clock.now();
        let mut next = NextClaim::new(clock.shared());
        // Due at the claim but not claimed (behind an earlier delivery of its task):
        // looking again at once would spin.
        next.idle(Some(now), now);
        let started = tokio::time::Instant::now();
        let (mut next, woke) = waiting(next, &wake).await.unwrap();
        assert!(woke);
        // Timers round up to the next millisecond.
        assert!(started.elapsed() >= IDLE_POLL, "the idle poll");

        next.idle(None, clock.now());
        let w = waiting(next, &wake);
        tokio::task::yield_now().await;
        wake.notify_one();
        let started = tokio::time::Instant::now();
        let (mut next, woke) = w.await.unwrap();
        assert!(woke);
        assert_eq!(started.elapsed(), Duration::ZERO, "woken by the dispatcher");

        // A failed claim's backoff is not cut short by the clock.
        next.idle(Some(now + SignedDuration::from_secs(5)), now);
        next.after(Duration::from_secs(3));
        clock.advance(Duration::from_secs(10));
        let started = tokio::time::Instant::now();
        let (_, woke) = waiting(next, &wake).await.unwrap();
        assert!(woke);
        assert!(started.elapsed() >= Duration::from_secs(3), "the backoff");

        let cancel = CancellationToken::new();
        cancel.cancel();
        let mut next = NextClaim::new(clock.shared());
        assert!(!next.wait(&wake, &cancel).await, "cancelled");
    }
}

//! The distribution loop: runs [`Engine::dispatch`] passes (route Queued tasks, return
//! offers that timed out, offer tasks to Ready agents) when commits may have changed
//! what is waiting, when the next offer expires on the engine's clock, and on a poll
//! interval as the fallback for writers this process does not hear from. Every node may
//! run one: passes claim what they change, so two never take the same task or agent.

use crate::engine::Engine;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use worklane_domain::Timestamp;

/// The least time from the start of a pass to the start of the next one woken by
/// commits. Under load, commits come by the hundred a second on every node; a pass
/// then finds the room a whole batch of accepts and completions freed, instead of
/// running back to back and offering a few tasks each time (which cost the store
/// about as much as the commands the offers served). An idle dispatcher passes at once.
const COMMIT_PASS_GAP: Duration = Duration::from_millis(100);

/// The background dispatcher.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    engine: Engine,
    batch: u32,
    poll: Duration,
}

impl Dispatcher {
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            batch: 256,
            poll: Duration::from_secs(1),
        }
    }

    /// The most tasks routed, offers expired and agents offered to in one pass.
    pub fn batch(mut self, n: u32) -> Self {
        self.batch = n.max(1);
        self
    }

    /// How often to look again when nothing woke the dispatcher.
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll = d;
        self
    }

    /// Runs until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        let mut wake = self.engine.subscribe();
        // When a commit woke the loop: the earliest the next pass may start.
        let mut not_before: Option<Instant> = None;
        // When offers expire that this loop must wake for: those its passes made, and at
        // start (and after a failure) the earliest in the store, which adopts offers an
        // earlier process left. Offers another node makes expire on that node's timer,
        // or on this loop's poll if that node stops (every pass returns expired offers).
        // An offer accepted before it expires leaves a time here that wakes a pass with
        // nothing to return. The store's earliest expiry is not read after every pass:
        // that read steps over the index entries of every offer accepted since, as many
        // as a node accepts in an offer timeout while VACUUM has not run (15 ms a read
        // in a push bench, 8% of the database's time).
        let mut expiries: BTreeSet<Timestamp> = BTreeSet::new();
        let mut stale = true;
        loop {
            if cancel.is_cancelled() {
                break;
            }
            if let Some(at) = not_before.take() {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep_until(at) => {}
                }
            }
            wake.borrow_and_update();
            let started = Instant::now();
            // Offers expired by now are this pass's to return (or, cut short, the next's;
            // or, failed or skipped as locked, the poll's).
            let now = self.engine.now();
            expiries.retain(|at| *at > now);
            match self.engine.dispatch(self.batch).await {
                Ok(pass) => {
                    expiries.extend(pass.expiries);
                    // Cut short by its limit: more is waiting now.
                    if pass.changes >= self.batch as usize {
                        continue;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "distribution pass failed");
                    stale = true;
                }
            }
            if stale {
                match self.engine.agents().next_offer_expiry().await {
                    Ok(at) => {
                        // One that has passed is returned by the next pass, not at once:
                        // a pass that keeps failing must not run back to back.
                        expiries.extend(at.filter(|at| *at > now));
                        stale = false;
                    }
                    Err(e) => tracing::warn!(error = %e, "reading the next offer expiry failed"),
                }
            }
            let timer = match expiries.first().copied() {
                Some(at) => self.engine.clock().sleep_until(at),
                None => Box::pin(std::future::pending()),
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = wake.changed() => not_before = Some(started + COMMIT_PASS_GAP),
                _ = timer => {}
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
        tracing::debug!("dispatcher stopped");
    }
}

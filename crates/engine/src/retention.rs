//! Retention: prunes old events, idempotency records and finished notification deliveries
//! in small batches, so a store that takes a million tasks a day stays bounded. The store
//! decides nothing here but which rows are old at the time it is given
//! ([`worklane_store::Retention`]); this part picks the time (the engine's clock) and the
//! pace.

use crate::engine::Engine;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use worklane_domain::Timestamp;
use worklane_store::{PruneReport, RetentionPolicy, StoreError};

/// The counter of rows pruned, by `kind` (`events`, `idempotency`, `deliveries`).
pub const PRUNED_TOTAL: &str = "worklane_retention_pruned_total";

/// The background pruner: a pass every `interval` on the engine's clock.
#[derive(Debug, Clone)]
pub struct Retention {
    engine: Engine,
    policy: RetentionPolicy,
    batch: u32,
    interval: Duration,
}

impl Retention {
    /// Prunes what `policy` says is old, at most `batch` rows of a kind per transaction,
    /// a pass every `interval`.
    pub fn new(engine: Engine, policy: RetentionPolicy, batch: u32, interval: Duration) -> Self {
        Self {
            engine,
            policy,
            batch: batch.max(1),
            interval,
        }
    }

    /// One pass at time `now`: prunes batch after batch while some kind fills a whole
    /// batch, yielding between them so the engine's writer (which shares the SQLite
    /// connection) gets its turn. Returns what the pass removed in all; its `more` is
    /// always false.
    pub async fn step(&self, now: Timestamp) -> Result<PruneReport, StoreError> {
        // The console's figures: their deltas go into the totals once a pass.
        self.engine.stats().fold().await?;
        let mut total = PruneReport::default();
        loop {
            let r = self
                .engine
                .retention()
                .prune(&self.policy, now, self.batch)
                .await?;
            for (kind, n) in [
                ("events", r.events),
                ("idempotency", r.idempotency),
                ("deliveries", r.deliveries),
            ] {
                if n > 0 {
                    metrics::counter!(PRUNED_TOTAL, "kind" => kind).increment(n);
                }
            }
            total.events += r.events;
            total.idempotency += r.idempotency;
            total.deliveries += r.deliveries;
            if !r.more {
                break;
            }
            tokio::task::yield_now().await;
        }
        if total != PruneReport::default() {
            tracing::debug!(
                events = total.events,
                idempotency = total.idempotency,
                deliveries = total.deliveries,
                "retention pass pruned"
            );
        }
        Ok(total)
    }

    /// Runs until `cancel`: waits `interval` on the engine's clock, then runs a pass. The
    /// first pass too waits an interval, so consumers starting with the server save their
    /// positions (which hold events back) first. A failed pass is logged and the next one
    /// runs an interval later; a pass cut short by `cancel` rolls back only its current
    /// batch.
    pub async fn run(self, cancel: CancellationToken) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.engine.clock().sleep(self.interval) => {}
            }
            let now = self.engine.now();
            tokio::select! {
                _ = cancel.cancelled() => break,
                r = self.step(now) => {
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "retention pass failed; trying again next interval");
                    }
                }
            }
        }
        tracing::debug!("retention stopped");
    }
}

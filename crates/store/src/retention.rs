//! Retention: pruning old data so a store that takes a million tasks a day stays bounded.
//!
//! Three kinds of rows grow with traffic and are pruned by age, each in small batches
//! and its own short transaction, so writers are never held up for long:
//!
//! - **events** written more than [`RetentionPolicy::events`] ago, but never one a reader
//!   still needs ([`Retention::retained_from`]). Events of tasks that still exist go too
//!   once old: the `tasks` table holds a task's live state, and the log is a history and a
//!   feed for consumers, not the source of truth; a task's history then starts later.
//! - **idempotency records** (`requests`) recorded more than
//!   [`RetentionPolicy::idempotency`] ago: a command repeated after that is applied again.
//! - **finished notification deliveries** (`delivered` and `failed`: no more attempts
//!   are made on their own) last changed more than [`RetentionPolicy::deliveries`] ago,
//!   with their bodies and attempts. Pending and held ones are never pruned.

use crate::StoreError;
use async_trait::async_trait;
use std::time::Duration;
use worklane_domain::Timestamp;

/// How long each kind of row is kept; `None` keeps it forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionPolicy {
    /// Events written longer ago than this are pruned (unless still needed).
    pub events: Option<Duration>,
    /// Idempotency records older than this are pruned.
    pub idempotency: Option<Duration>,
    /// Finished deliveries last changed longer ago than this are pruned.
    pub deliveries: Option<Duration>,
}

/// What one [`Retention::prune`] call removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneReport {
    /// Events deleted.
    pub events: u64,
    /// Idempotency records deleted.
    pub idempotency: u64,
    /// Finished deliveries deleted (their bodies and attempts went with them).
    pub deliveries: u64,
    /// Some kind deleted a whole batch: more may be ready to go, call again soon.
    pub more: bool,
}

/// Pruning of old rows. Every store implements it (it is a supertrait of
/// [`crate::Store`]).
#[async_trait]
pub trait Retention: Send + Sync + std::fmt::Debug {
    /// The lowest event seq some reader still needs: pruning deletes only events below
    /// it. It is the least of
    ///
    /// - every consumer's position + 1 (`cursors`: a consumer has handled every event up
    ///   to and including its position and reads `seq > position` next; a notification
    ///   target's position `notify:<target>` is such a cursor too, so an event not yet
    ///   turned into a delivery row is kept),
    /// - every replay requested and not yet carried out (`delivery_replays.from_seq`: the
    ///   replay reads the log again from there),
    /// - every pending or held delivery's event (one delivered at its first attempt and
    ///   then resent is stored without its body, which is rendered again from its event),
    /// - the newest settled seq + 1 (PostgreSQL: never an event that may still commit).
    ///
    /// With no reader, that last term alone: past every committed event (`i64::MAX` on
    /// SQLite, where every committed event is settled). A consumer with no saved position yet (one that
    /// has never handled an event) holds nothing back: a new consumer starting at the
    /// beginning of the log finds it starting at the oldest event kept.
    async fn retained_from(&self) -> Result<i64, StoreError>;

    /// Deletes at most `batch` (at least 1) rows of each kind older than `policy` allows
    /// at `now`, each kind in its own transaction. See the module documentation.
    async fn prune(
        &self,
        policy: &RetentionPolicy,
        now: Timestamp,
        batch: u32,
    ) -> Result<PruneReport, StoreError>;
}

/// `now - period` in epoch microseconds: rows from before it are old. None when the
/// kind is kept forever or the period reaches past the earliest time (nothing is old).
fn cutoff(now: Timestamp, period: Option<Duration>) -> Option<i64> {
    let period = jiff::SignedDuration::try_from(period?).ok()?;
    now.checked_sub(period).ok().map(crate::micros)
}

/// The lowest needed seq ([`Retention::retained_from`]); `$1` is the backend's newest
/// settled seq + 1. One statement, so the parts are read together.
const RETAINED_FROM: &str = "SELECT MIN(s) FROM (\
     SELECT MIN(seq) + 1 AS s FROM cursors \
     UNION ALL SELECT MIN(from_seq) FROM delivery_replays \
     UNION ALL SELECT MIN(seq) FROM deliveries WHERE status = 'pending' OR status = 'held' \
     UNION ALL SELECT $1) AS needed";

/// Events pruned: the oldest `batch` below the needed seq are read (the primary key from
/// its lowest value: seq grows with time), and the run of them written before the cutoff
/// is deleted as one seq range. Reading a window rather than filtering the whole log by
/// age keeps a pass that finds nothing old as cheap as one that finds a batch; an event
/// younger than the cutoff ends the run, as every later one is younger too (save for a
/// clock set back, whose events simply wait their turn). The DELETE checks the age again,
/// so a row it did not read is never removed for being in the range.
const EVENTS_WINDOW: &str =
    "SELECT seq, created_at FROM events WHERE seq < $1 ORDER BY seq LIMIT $2";
const EVENTS_DELETE: &str =
    "DELETE FROM events WHERE seq >= $1 AND seq <= $2 AND seq < $3 AND created_at < $4";

/// The oldest idempotency records (index `requests_created`).
const REQUESTS_DELETE: &str = "DELETE FROM requests WHERE key IN \
     (SELECT key FROM requests WHERE created_at < $1 ORDER BY created_at LIMIT $2)";

/// Finished deliveries: the `batch` finished rows with the lowest ids (oldest first) are
/// looked at and those last changed before the cutoff deleted; a window again, so a pass
/// reads at most a batch of finished rows (and the few pending ones between them) however
/// large the table. A finished row changed recently (resent, then finished again) stays
/// in the window until it is old itself. The status and age are checked on the row
/// deleted, so one resent meanwhile stays. Returns the ids deleted, whose bodies and
/// attempts then go in the same transaction.
const DELIVERIES_DELETE: &str = "DELETE FROM deliveries WHERE id IN \
     (SELECT id FROM (SELECT id, updated_at FROM deliveries \
     WHERE status = 'delivered' OR status = 'failed' ORDER BY id LIMIT $2) AS w \
     WHERE updated_at < $1) \
     AND (status = 'delivered' OR status = 'failed') AND updated_at < $1 RETURNING id";

/// Implements [`Retention`] for a backend with a `write()` pool and its shared operations
/// module `$ops` (for `settled_seq`).
macro_rules! impl_retention {
    ($ty:ty, $db:ty, $ops:ident) => {
        impl $ty {
            async fn retained_from_on(
                conn: &mut <$db as sqlx::Database>::Connection,
            ) -> Result<i64, StoreError> {
                let settled = $ops::settled_seq(&mut *conn).await?;
                let (min,): (Option<i64>,) = sqlx::query_as(RETAINED_FROM)
                    .bind(settled.saturating_add(1))
                    .fetch_one(&mut *conn)
                    .await?;
                Ok(min.unwrap_or(i64::MAX))
            }

            async fn prune_events(&self, cut: i64, batch: i64) -> Result<u64, StoreError> {
                let mut tx = self.write().begin().await?;
                let needed = Self::retained_from_on(&mut tx).await?;
                let window: Vec<(i64, i64)> = sqlx::query_as(EVENTS_WINDOW)
                    .bind(needed)
                    .bind(batch)
                    .fetch_all(&mut *tx)
                    .await?;
                let old = window.iter().take_while(|(_, at)| *at < cut);
                let (Some(first), Some(last)) = (window.first(), old.last()) else {
                    return Ok(0);
                };
                let done = sqlx::query(EVENTS_DELETE)
                    .bind(first.0)
                    .bind(last.0)
                    .bind(needed)
                    .bind(cut)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected())
            }

            async fn prune_requests(&self, cut: i64, batch: i64) -> Result<u64, StoreError> {
                let mut tx = self.write().begin().await?;
                let done = sqlx::query(REQUESTS_DELETE)
                    .bind(cut)
                    .bind(batch)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected())
            }

            async fn prune_deliveries(&self, cut: i64, batch: i64) -> Result<u64, StoreError> {
                let mut tx = self.write().begin().await?;
                let ids: Vec<i64> = sqlx::query_scalar(DELIVERIES_DELETE)
                    .bind(cut)
                    .bind(batch)
                    .fetch_all(&mut *tx)
                    .await?;
                if ids.is_empty() {
                    return Ok(0);
                }
                for table in [
                    "DELETE FROM delivery_bodies WHERE id IN (",
                    "DELETE FROM delivery_attempts WHERE delivery_id IN (",
                ] {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(table);
                    let mut sep = qb.separated(", ");
                    for id in &ids {
                        sep.push_bind(*id);
                    }
                    qb.push(")");
                    qb.build().persistent(false).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(ids.len() as u64)
            }
        }

        #[async_trait]
        impl Retention for $ty {
            async fn retained_from(&self) -> Result<i64, StoreError> {
                Self::retained_from_on(&mut *self.read().acquire().await?).await
            }

            async fn prune(
                &self,
                policy: &RetentionPolicy,
                now: Timestamp,
                batch: u32,
            ) -> Result<PruneReport, StoreError> {
                let batch = batch.max(1);
                let limit = i64::from(batch);
                let mut report = PruneReport::default();
                if let Some(cut) = cutoff(now, policy.events) {
                    report.events = self.prune_events(cut, limit).await?;
                }
                if let Some(cut) = cutoff(now, policy.idempotency) {
                    report.idempotency = self.prune_requests(cut, limit).await?;
                }
                if let Some(cut) = cutoff(now, policy.deliveries) {
                    report.deliveries = self.prune_deliveries(cut, limit).await?;
                }
                report.more = [report.events, report.idempotency, report.deliveries]
                    .iter()
                    .any(|n| *n >= u64::from(batch));
                Ok(report)
            }
        }
    };
}

use crate::postgres::ops as postgres_ops;
use crate::sqlite::ops as sqlite_ops;
impl_retention!(crate::SqliteStore, sqlx::Sqlite, sqlite_ops);
impl_retention!(crate::PostgresStore, sqlx::Postgres, postgres_ops);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_now_less_the_period_and_forever_has_none() {
        let now: Timestamp = "2026-01-10T00:00:00Z".parse().unwrap();
        let day = Duration::from_secs(86_400);
        let expected: Timestamp = "2026-01-03T00:00:00Z".parse().unwrap();
        assert_eq!(cutoff(now, Some(day * 7)), Some(crate::micros(expected)));
        assert_eq!(cutoff(now, None), None);
        // A period reaching before the earliest time: nothing is old.
        assert_eq!(cutoff(now, Some(Duration::from_secs(u64::MAX))), None);
    }
}

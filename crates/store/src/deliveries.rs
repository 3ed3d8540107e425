//! Pending and finished HTTP notifications ("deliveries") and their attempts.
//!
//! A notifier reads the event log from a durable position, sends each wanted event's
//! notification at once, and records it afterwards, together with the position, in one
//! transaction ([`DeliveryStore::record_deliveries`]): a delivered one as one row without
//! its body (its body is a pure function of the event, GUID and timestamp), one that must
//! be retried or wait behind an earlier one of its task as a pending row with its body.
//! Pending rows are claimed in batches with a short lease and their attempts recorded.
//! Events past the position are sent again after a crash, with the same GUIDs.
//!
//! A *held* row waits for an earlier notification of its task that is still in flight
//! (not written yet): it is never claimed, whatever its `next_attempt_at`, until the
//! write that records that one makes it pending ([`DeliveryRecords::release`]). Pending
//! and held rows together are a task's queue: a pending row is not claimed while an
//! earlier row of its task is either. The SQL names that set as
//! `(status = 'pending' OR status = 'held')`, spelled exactly like the predicate of the
//! index `deliveries_task`: SQLite uses a partial index only when its predicate, or one
//! of its OR-ed terms, appears as is among the query's terms.

use crate::{micros, StoreError};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use worklane_domain::Timestamp;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for its first attempt or its next retry.
    Pending,
    /// Waiting, never claimed, until the earlier notification of its task that was in
    /// flight when it was stored is recorded; then pending, due at once.
    Held,
    /// The target answered 2xx.
    Delivered,
    /// Every allowed attempt failed, or the failure is not retried; resendable.
    Failed,
}

impl DeliveryStatus {
    /// The status as stored and shown: `pending`, `held`, `delivered`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Held => "held",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pending" => Ok(Self::Pending),
            "held" => Ok(Self::Held),
            "delivered" => Ok(Self::Delivered),
            "failed" => Ok(Self::Failed),
            other => Err(format!("unknown delivery status {other:?}")),
        }
    }
}

/// A notification to write: generated once, sent as is on every attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub target: String,
    /// The event it notifies; (target, seq) is unique.
    pub seq: i64,
    pub broker_id: i64,
    pub event_type: String,
    pub guid: String,
    pub created_at: Timestamp,
    pub body: Vec<u8>,
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: i64,
    pub target: String,
    pub seq: i64,
    pub broker_id: i64,
    pub event_type: String,
    pub guid: String,
    pub created_at: Timestamp,
    /// The body exactly as sent (empty in listings).
    #[serde(skip)]
    pub body: Vec<u8>,
    pub status: DeliveryStatus,
    /// Attempts since it was created or last resent.
    pub attempts: i64,
    /// When it is due (pending), or was leased until (pending, claimed). A held one is
    /// not due whatever this says: it carries the time it was stored as held.
    pub next_attempt_at: Timestamp,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    /// When the last attempt was made, and how long it took.
    pub last_attempt_at: Option<Timestamp>,
    pub last_latency_us: Option<i64>,
    pub updated_at: Timestamp,
}

/// One recorded attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAttempt {
    /// The attempt row's id; none for the attempt that delivered, which is kept on the
    /// delivery itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    pub delivery_id: i64,
    pub attempted_at: Timestamp,
    /// The HTTP status, when an answer came.
    pub status_code: Option<i64>,
    pub latency_us: i64,
    /// Why it failed (connection refused, timeout, the status line...).
    pub error: Option<String>,
}

/// What an attempt leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    /// Try again at this time.
    Retry(Timestamp),
    Failed,
}

/// An attempt's result, as the sender reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    pub delivery_id: i64,
    pub attempted_at: Timestamp,
    pub status_code: Option<i64>,
    pub latency_us: i64,
    pub error: Option<String>,
    pub outcome: AttemptOutcome,
}

/// A notification sent (or held back) before it was stored, written with the result of
/// its first attempt: delivered (a row without body), to be retried or failed (a row
/// with its body and the attempt), or, without an attempt, pending behind an earlier
/// notification of its task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedDelivery {
    pub delivery: NewDelivery,
    /// Its first attempt (`delivery_id` is not read).
    pub attempt: Option<AttemptResult>,
    /// Without an attempt: *held*, waiting for an earlier notification of its task that
    /// is not written yet (in flight). Stored [`DeliveryStatus::Held`], which no claim
    /// takes, until a write releases its task ([`DeliveryRecords::release`]).
    pub held: bool,
}

/// What a notifier writes in one transaction.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeliveryRecords<'a> {
    /// New rows; a (target, seq) already there is left alone.
    pub new: &'a [RecordedDelivery],
    /// Attempts of stored (claimed) deliveries.
    pub results: &'a [AttemptResult],
    /// A consumer position to save: (consumer name, seq).
    pub cursor: Option<(&'a str, i64)>,
    /// A replay carried out: (target, from_seq). The target's deliveries of events from
    /// `from_seq` on (those written by this transaction too) become pending again, and
    /// the request for exactly that `from_seq` is removed.
    pub replay: Option<(&'a str, i64)>,
    /// (target, tasks): the held deliveries of these tasks become pending, due now. A
    /// notifier releases a task in the write that adds the earlier notification they
    /// waited for, so they can never go out before it.
    pub release: Option<(&'a str, &'a [i64])>,
}

/// What the store holds of a run of events for one target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownDeliveries {
    /// The events (seqs) that already have a delivery.
    pub existing: std::collections::HashSet<i64>,
    /// The tasks (brokerIds) asked about that have a pending or held delivery.
    pub pending_tasks: std::collections::HashSet<i64>,
}

/// Filters and keyset paging for [`DeliveryStore::list_deliveries`].
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub target: String,
    pub status: Option<DeliveryStatus>,
    pub broker_id: Option<i64>,
    /// Only deliveries with a greater id (the last id of the previous page).
    pub after_id: Option<i64>,
    /// At most this many (1..=1000; 0 means 100).
    pub limit: u32,
}

/// Storage of HTTP notifications. Every store implements it (it is a supertrait of
/// [`crate::Store`]).
#[async_trait]
pub trait DeliveryStore: Send + Sync + std::fmt::Debug {
    /// Creates the consumer position `consumer` when it does not exist yet: at the end of
    /// the log when `from_end`, else at its beginning. Returns the position.
    async fn start_delivery_cursor(
        &self,
        consumer: &str,
        from_end: bool,
        now: Timestamp,
    ) -> Result<i64, StoreError>;

    /// Writes new rows, records attempts of stored deliveries and saves a position, in
    /// one transaction. Returns how many new rows were added.
    async fn record_deliveries(
        &self,
        records: DeliveryRecords<'_>,
        now: Timestamp,
    ) -> Result<u64, StoreError>;

    /// Writes new pending deliveries (never attempted); a (target, seq) already there is
    /// left alone (with its GUID).
    /// Returns how many were added.
    async fn enqueue_deliveries(
        &self,
        rows: &[NewDelivery],
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let new: Vec<RecordedDelivery> = rows
            .iter()
            .map(|r| RecordedDelivery {
                delivery: r.clone(),
                attempt: None,
                held: false,
            })
            .collect();
        self.record_deliveries(
            DeliveryRecords {
                new: &new,
                ..Default::default()
            },
            now,
        )
        .await
    }

    /// Records attempts of stored deliveries and moves them on, in one transaction.
    async fn finish_attempts(
        &self,
        results: &[AttemptResult],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.record_deliveries(
            DeliveryRecords {
                results,
                ..Default::default()
            },
            now,
        )
        .await
        .map(drop)
    }

    /// Which events in `from_seq..=to_seq` already have a delivery for `target`, and
    /// which of `broker_ids` have a pending or held one (a new notification of theirs
    /// must wait behind it).
    async fn known_deliveries(
        &self,
        target: &str,
        from_seq: i64,
        to_seq: i64,
        broker_ids: &[i64],
    ) -> Result<KnownDeliveries, StoreError>;

    /// Leases up to `limit` due deliveries of `target` until `lease_until` and returns
    /// them, oldest seq first. Held deliveries are never claimed, and a pending one is due
    /// only when no earlier delivery of its task is pending or held, so a task's
    /// notifications go out in order. A delivery stored without its body (it was
    /// delivered at its first attempt, then resent) comes with an empty body.
    async fn claim_deliveries(
        &self,
        target: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Makes leased deliveries of `target` due now (at start-up: the previous run's
    /// in-flight requests are sent again). Held ones stay held: they wait for a write.
    async fn release_deliveries(&self, target: &str, now: Timestamp) -> Result<u64, StoreError>;

    /// The earliest next attempt among `target`'s pending deliveries (held ones are not
    /// due at any time).
    async fn next_delivery_due(&self, target: &str) -> Result<Option<Timestamp>, StoreError>;

    /// Lists deliveries without their bodies (empty; [`DeliveryStore::get_delivery`] has it).
    async fn list_deliveries(&self, q: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError>;

    async fn get_delivery(&self, id: i64) -> Result<Option<Delivery>, StoreError>;

    /// A delivery's attempts, oldest first.
    async fn delivery_attempts(&self, id: i64) -> Result<Vec<DeliveryAttempt>, StoreError>;

    /// Makes a delivery of `target` pending again, due now, with a fresh attempt budget
    /// (same GUID and body). None when there is no such delivery.
    async fn resend_delivery(
        &self,
        target: &str,
        id: i64,
        now: Timestamp,
    ) -> Result<Option<Delivery>, StoreError>;

    /// Asks for a replay of `target` from event `from_seq`: a request is left for the
    /// running notifier, which (once nothing it has read is unrecorded) makes the
    /// deliveries of those events pending again and re-reads the log from there, in one
    /// transaction ([`DeliveryRecords::replay`]). An earlier request with a smaller
    /// `from_seq` wins. Returns how many deliveries there are now to send again.
    async fn request_replay(
        &self,
        target: &str,
        from_seq: i64,
        now: Timestamp,
    ) -> Result<u64, StoreError>;

    /// The replay asked for `target` (its `from_seq`), if any; it stays until carried out
    /// by [`DeliveryStore::record_deliveries`].
    async fn replay_request(&self, target: &str) -> Result<Option<i64>, StoreError>;

    /// How many deliveries of `target` wait to go out: pending or held.
    async fn delivery_backlog(&self, target: &str) -> Result<i64, StoreError>;
}

/// Deliveries written per INSERT statement (15 parameters each, well under SQLite's
/// limit of 32766). Statements built for a batch are not kept in the connection's
/// statement cache (`persistent(false)`): each batch size is a new statement text, and
/// caching up to a hundred large prepared statements per connection costs tens of MB.
const INSERT_CHUNK: usize = 1000;

const COLUMNS: &str = "id, target, seq, broker_id, event_type, guid, created_at, status, \
                       attempts, next_attempt_at, last_status_code, last_error, \
                       last_attempt_at, last_latency_us, updated_at";

/// The columns a new row is written with (`RecordedDelivery`), in `push_new_rows!` order.
const NEW_COLUMNS: &str = "INSERT INTO deliveries (target, seq, broker_id, event_type, guid, \
                           created_at, status, attempts, next_attempt_at, leased, \
                           last_status_code, last_error, last_attempt_at, last_latency_us, \
                           updated_at) ";

/// Keeps the attempt that delivered a notification (held on its row) as an attempt row,
/// before a resend or replay makes the row pending again and its next attempt takes
/// the row's place. Completed by a WHERE on the deliveries to reset; `$1` and on are
/// that WHERE's.
const KEEP_DELIVERING_ATTEMPT: &str =
    "INSERT INTO delivery_attempts (delivery_id, attempted_at, status_code, latency_us, error) \
     SELECT id, last_attempt_at, last_status_code, last_latency_us, NULL FROM deliveries \
     WHERE status = 'delivered' AND last_attempt_at IS NOT NULL \
     AND last_latency_us IS NOT NULL AND ";

fn ts(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap_or(Timestamp::UNIX_EPOCH)
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    target: String,
    seq: i64,
    broker_id: i64,
    event_type: String,
    guid: String,
    created_at: i64,
    status: String,
    attempts: i64,
    next_attempt_at: i64,
    last_status_code: Option<i64>,
    last_error: Option<String>,
    last_attempt_at: Option<i64>,
    last_latency_us: Option<i64>,
    updated_at: i64,
}

impl DeliveryRow {
    /// The delivery, without its body (read separately by `load_bodies!`).
    fn into_delivery(self) -> Delivery {
        Delivery {
            id: self.id,
            target: self.target,
            seq: self.seq,
            broker_id: self.broker_id,
            event_type: self.event_type,
            guid: self.guid,
            created_at: ts(self.created_at),
            body: Vec::new(),
            // Only this module writes the column.
            status: self.status.parse().unwrap_or(DeliveryStatus::Pending),
            attempts: self.attempts,
            next_attempt_at: ts(self.next_attempt_at),
            last_status_code: self.last_status_code,
            last_error: self.last_error,
            last_attempt_at: self.last_attempt_at.map(ts),
            last_latency_us: self.last_latency_us,
            updated_at: ts(self.updated_at),
        }
    }
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    id: i64,
    delivery_id: i64,
    attempted_at: i64,
    status_code: Option<i64>,
    latency_us: i64,
    error: Option<String>,
}

/// Fills in the bodies of `deliveries` (read from `delivery_bodies` on `$exec`).
macro_rules! load_bodies {
    ($exec:expr, $db:ty, $deliveries:expr) => {{
        let deliveries: &mut Vec<Delivery> = $deliveries;
        if !deliveries.is_empty() {
            let mut qb = sqlx::QueryBuilder::<$db>::new(
                "SELECT id, body FROM delivery_bodies WHERE id IN (",
            );
            let mut sep = qb.separated(", ");
            for d in deliveries.iter() {
                sep.push_bind(d.id);
            }
            qb.push(")");
            let bodies: Vec<(i64, Vec<u8>)> = qb
                .build_query_as()
                .persistent(false)
                .fetch_all($exec)
                .await?;
            let mut bodies: std::collections::HashMap<i64, Vec<u8>> = bodies.into_iter().collect();
            for d in deliveries.iter_mut() {
                d.body = bodies.remove(&d.id).unwrap_or_default();
            }
        }
    }};
}

/// The attempt columns, in `push_attempt!` order.
const ATTEMPT_COLUMNS: &str =
    "INSERT INTO delivery_attempts (delivery_id, attempted_at, status_code, latency_us, error) ";

/// Binds one attempt row (`ATTEMPT_COLUMNS`).
macro_rules! push_attempt {
    ($b:expr, $id:expr, $a:expr) => {{
        let a: &AttemptResult = $a;
        $b.push_bind($id)
            .push_bind(micros(a.attempted_at))
            .push_bind(a.status_code)
            .push_bind(a.latency_us)
            .push_bind(a.error.as_deref());
    }};
}

/// Pushes the VALUES of new rows (`NEW_COLUMNS`) for `RecordedDelivery`s.
macro_rules! push_new_rows {
    ($qb:expr, $rows:expr, $now:expr) => {{
        let now: i64 = $now;
        $qb.push_values($rows, |mut b, r: &&RecordedDelivery| {
            let d = &r.delivery;
            let a = r.attempt.as_ref();
            let (status, attempts, next) = match a.map(|a| a.outcome) {
                // Not due whatever the time says: the status keeps it from claims.
                None if r.held => ("held", 0_i64, now),
                None => ("pending", 0_i64, now),
                Some(AttemptOutcome::Delivered) => ("delivered", 1, now),
                Some(AttemptOutcome::Retry(at)) => ("pending", 1, micros(at)),
                Some(AttemptOutcome::Failed) => ("failed", 1, now),
            };
            b.push_bind(d.target.as_str())
                .push_bind(d.seq)
                .push_bind(d.broker_id)
                .push_bind(d.event_type.as_str())
                .push_bind(d.guid.as_str())
                .push_bind(micros(d.created_at))
                .push_bind(status)
                .push_bind(attempts)
                .push_bind(next)
                .push_bind(false)
                .push_bind(a.and_then(|a| a.status_code))
                .push_bind(a.and_then(|a| a.error.as_deref()))
                .push_bind(a.map(|a| micros(a.attempted_at)))
                .push_bind(a.map(|a| a.latency_us))
                .push_bind(now);
        });
    }};
}

/// Implements [`DeliveryStore`] for a backend with `read()` and `write()` pools and its
/// shared operations module `$ops`.
/// `$lock` ends the claim's inner SELECT (PostgreSQL skips rows another server holds).
macro_rules! impl_delivery_store {
    ($ty:ty, $db:ty, $ops:ident, $lock:literal) => {
        #[async_trait]
        impl DeliveryStore for $ty {
            async fn start_delivery_cursor(
                &self,
                consumer: &str,
                from_end: bool,
                now: Timestamp,
            ) -> Result<i64, StoreError> {
                let mut conn = self.write().acquire().await?;
                // The end a reader may start from: never past an event still to commit.
                let end = if from_end {
                    $ops::last_seq(&mut conn).await?
                } else {
                    0
                };
                sqlx::query(
                    "INSERT INTO cursors (consumer, seq, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (consumer) DO NOTHING",
                )
                .bind(consumer)
                .bind(end)
                .bind(micros(now))
                .execute(&mut *conn)
                .await?;
                let (seq,): (i64,) = sqlx::query_as("SELECT seq FROM cursors WHERE consumer = $1")
                    .bind(consumer)
                    .fetch_one(&mut *conn)
                    .await?;
                Ok(seq)
            }

            async fn record_deliveries(
                &self,
                records: DeliveryRecords<'_>,
                now: Timestamp,
            ) -> Result<u64, StoreError> {
                let at = now;
                let now = micros(now);
                let mut added = 0;
                let mut tx = self.write().begin().await?;
                // Delivered at the first attempt, by far the most common: one row, no body,
                // nothing returned.
                let (delivered, kept): (Vec<&RecordedDelivery>, Vec<&RecordedDelivery>) =
                    records.new.iter().partition(|r| {
                        r.attempt.as_ref().is_some_and(|a| a.outcome == AttemptOutcome::Delivered)
                    });
                for same_target in delivered.chunk_by(|a, b| a.delivery.target == b.delivery.target) {
                    let target = same_target[0].delivery.target.as_str();
                    added += $ops::insert_delivered(&mut *tx, target, same_target, now).await?;
                }
                for chunk in kept.chunks(INSERT_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(NEW_COLUMNS);
                    push_new_rows!(qb, chunk, now);
                    qb.push(" ON CONFLICT (target, seq) DO NOTHING RETURNING id, seq");
                    let ids: Vec<(i64, i64)> = qb.build_query_as().persistent(false).fetch_all(&mut *tx).await?;
                    if ids.is_empty() {
                        continue;
                    }
                    added += ids.len() as u64;
                    let by_seq: std::collections::HashMap<i64, &RecordedDelivery> =
                        chunk.iter().map(|r| (r.delivery.seq, *r)).collect();
                    let mut qb = sqlx::QueryBuilder::<$db>::new("INSERT INTO delivery_bodies (id, body) ");
                    qb.push_values(&ids, |mut b, (id, seq)| {
                        b.push_bind(*id).push_bind(
                            by_seq.get(seq).map(|r| r.delivery.body.as_slice()).unwrap_or_default(),
                        );
                    });
                    qb.build().persistent(false).execute(&mut *tx).await?;
                    let attempts: Vec<(i64, &AttemptResult)> = ids
                        .iter()
                        .filter_map(|(id, seq)| Some((*id, by_seq.get(seq)?.attempt.as_ref()?)))
                        .collect();
                    if !attempts.is_empty() {
                        let mut qb = sqlx::QueryBuilder::<$db>::new(ATTEMPT_COLUMNS);
                        qb.push_values(attempts, |mut b, (id, a)| {
                            push_attempt!(b, id, a);
                        });
                        qb.build().persistent(false).execute(&mut *tx).await?;
                    }
                }
                if let Some((target, tasks)) = records.release {
                    for chunk in tasks.chunks(INSERT_CHUNK) {
                        let mut qb = sqlx::QueryBuilder::<$db>::new(
                            "UPDATE deliveries SET status = 'pending', next_attempt_at = ",
                        );
                        qb.push_bind(now)
                            .push(", updated_at = ")
                            .push_bind(now)
                            .push(" WHERE target = ")
                            .push_bind(target)
                            .push(" AND status = 'held' AND broker_id IN (");
                        let mut sep = qb.separated(", ");
                        for t in chunk {
                            sep.push_bind(*t);
                        }
                        qb.push(")");
                        qb.build().persistent(false).execute(&mut *tx).await?;
                    }
                }
                // Attempts of stored deliveries; the one that delivers stays on the row.
                let failed: Vec<&AttemptResult> = records
                    .results
                    .iter()
                    .filter(|r| r.outcome != AttemptOutcome::Delivered)
                    .collect();
                for chunk in failed.chunks(INSERT_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(ATTEMPT_COLUMNS);
                    qb.push_values(chunk, |mut b, r| {
                        push_attempt!(b, r.delivery_id, r);
                    });
                    qb.build().persistent(false).execute(&mut *tx).await?;
                }
                for r in records.results {
                    let (status, next) = match r.outcome {
                        AttemptOutcome::Delivered => ("delivered", None),
                        AttemptOutcome::Retry(at) => ("pending", Some(micros(at))),
                        AttemptOutcome::Failed => ("failed", None),
                    };
                    sqlx::query(
                        "UPDATE deliveries SET status = $1, attempts = attempts + 1, leased = FALSE, \
                         next_attempt_at = COALESCE($2, next_attempt_at), last_status_code = $3, \
                         last_error = $4, last_attempt_at = $5, last_latency_us = $6, updated_at = $7 \
                         WHERE id = $8 AND status = 'pending'",
                    )
                    .bind(status)
                    .bind(next)
                    .bind(r.status_code)
                    .bind(r.error.as_deref())
                    .bind(micros(r.attempted_at))
                    .bind(r.latency_us)
                    .bind(now)
                    .bind(r.delivery_id)
                    .execute(&mut *tx)
                    .await?;
                }
                if let Some((target, from_seq)) = records.replay {
                    sqlx::query(&format!("{KEEP_DELIVERING_ATTEMPT} target = $1 AND seq >= $2 ORDER BY seq"))
                        .bind(target)
                        .bind(from_seq)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(
                        "UPDATE deliveries SET status = 'pending', attempts = 0, leased = FALSE, \
                         next_attempt_at = $1, updated_at = $1 WHERE target = $2 AND seq >= $3",
                    )
                    .bind(now)
                    .bind(target)
                    .bind(from_seq)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM delivery_replays WHERE target = $1 AND from_seq = $2")
                        .bind(target)
                        .bind(from_seq)
                        .execute(&mut *tx)
                        .await?;
                }
                if let Some((consumer, seq)) = records.cursor {
                    $ops::save_cursor(&mut *tx, consumer, seq, at).await?;
                }
                tx.commit().await?;
                Ok(added)
            }

            async fn known_deliveries(
                &self,
                target: &str,
                from_seq: i64,
                to_seq: i64,
                broker_ids: &[i64],
            ) -> Result<KnownDeliveries, StoreError> {
                let mut out = KnownDeliveries::default();
                let mut conn = self.read().acquire().await?;
                // One round trip: the seqs there, and -1 when anything of the target is
                // pending or held (a healthy target has none: one probe of the task index).
                let seqs: Vec<(i64,)> = sqlx::query_as(
                    "SELECT seq FROM deliveries WHERE target = $1 AND seq >= $2 AND seq <= $3 \
                     UNION ALL SELECT -1 WHERE EXISTS (SELECT 1 FROM deliveries \
                     WHERE target = $1 AND (status = 'pending' OR status = 'held'))",
                )
                .bind(target)
                .bind(from_seq)
                .bind(to_seq)
                .fetch_all(&mut *conn)
                .await?;
                let mut any_pending = false;
                for (seq,) in seqs {
                    if seq < 0 {
                        any_pending = true;
                    } else {
                        out.existing.insert(seq);
                    }
                }
                if !any_pending {
                    return Ok(out);
                }
                for chunk in broker_ids.chunks(INSERT_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT DISTINCT broker_id FROM deliveries \
                         WHERE (status = 'pending' OR status = 'held') AND target = ",
                    );
                    qb.push_bind(target).push(" AND broker_id IN (");
                    let mut sep = qb.separated(", ");
                    for b in chunk {
                        sep.push_bind(*b);
                    }
                    qb.push(")");
                    let found: Vec<(i64,)> = qb.build_query_as().persistent(false).fetch_all(&mut *conn).await?;
                    out.pending_tasks.extend(found.into_iter().map(|r| r.0));
                }
                Ok(out)
            }

            async fn claim_deliveries(
                &self,
                target: &str,
                now: Timestamp,
                lease_until: Timestamp,
                limit: u32,
            ) -> Result<Vec<Delivery>, StoreError> {
                let sql = format!(
                    "UPDATE deliveries SET leased = TRUE, next_attempt_at = $1, updated_at = $2 \
                     WHERE id IN (SELECT d.id FROM deliveries d WHERE d.target = $3 \
                     AND d.status = 'pending' AND d.next_attempt_at <= $2 \
                     AND NOT EXISTS (SELECT 1 FROM deliveries p WHERE p.target = d.target \
                     AND p.broker_id = d.broker_id AND (p.status = 'pending' OR p.status = 'held') \
                     AND p.seq < d.seq) \
                     ORDER BY d.next_attempt_at, d.id LIMIT $4 {}) RETURNING {COLUMNS}",
                    $lock
                );
                let mut tx = self.write().begin().await?;
                let mut rows: Vec<DeliveryRow> = sqlx::query_as(&sql)
                    .bind(micros(lease_until))
                    .bind(micros(now))
                    .bind(target)
                    .bind(i64::from(limit.max(1)))
                    .fetch_all(&mut *tx)
                    .await?;
                rows.sort_by_key(|r| r.seq);
                let mut out: Vec<Delivery> =
                    rows.into_iter().map(DeliveryRow::into_delivery).collect();
                load_bodies!(&mut *tx, $db, &mut out);
                tx.commit().await?;
                Ok(out)
            }

            async fn release_deliveries(
                &self,
                target: &str,
                now: Timestamp,
            ) -> Result<u64, StoreError> {
                let r = sqlx::query(
                    "UPDATE deliveries SET leased = FALSE, next_attempt_at = $1, updated_at = $1 \
                     WHERE target = $2 AND status = 'pending' AND leased = TRUE",
                )
                .bind(micros(now))
                .bind(target)
                .execute(&mut *self.write().acquire().await?)
                .await?;
                Ok(r.rows_affected())
            }

            async fn next_delivery_due(
                &self,
                target: &str,
            ) -> Result<Option<Timestamp>, StoreError> {
                let (m,): (Option<i64>,) = sqlx::query_as(
                    "SELECT MIN(next_attempt_at) FROM deliveries \
                     WHERE target = $1 AND status = 'pending'",
                )
                .bind(target)
                .fetch_one(self.read())
                .await?;
                Ok(m.map(ts))
            }

            async fn list_deliveries(
                &self,
                q: &DeliveryQuery,
            ) -> Result<Vec<Delivery>, StoreError> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {COLUMNS} FROM deliveries WHERE target = "
                ));
                qb.push_bind(q.target.clone());
                if let Some(s) = q.status {
                    qb.push(" AND status = ").push_bind(s.as_str());
                }
                if let Some(b) = q.broker_id {
                    qb.push(" AND broker_id = ").push_bind(b);
                }
                if let Some(a) = q.after_id {
                    qb.push(" AND id > ").push_bind(a);
                }
                let limit = match q.limit {
                    0 => 100,
                    n => n.min(1000),
                };
                qb.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
                let rows: Vec<DeliveryRow> = qb.build_query_as().persistent(false).fetch_all(self.read()).await?;
                Ok(rows.into_iter().map(DeliveryRow::into_delivery).collect())
            }

            async fn get_delivery(&self, id: i64) -> Result<Option<Delivery>, StoreError> {
                let row: Option<DeliveryRow> =
                    sqlx::query_as(&format!("SELECT {COLUMNS} FROM deliveries WHERE id = $1"))
                        .bind(id)
                        .fetch_optional(self.read())
                        .await?;
                let mut out: Vec<Delivery> = row.into_iter().map(DeliveryRow::into_delivery).collect();
                load_bodies!(self.read(), $db, &mut out);
                Ok(out.pop())
            }

            async fn delivery_attempts(
                &self,
                id: i64,
            ) -> Result<Vec<DeliveryAttempt>, StoreError> {
                let rows: Vec<AttemptRow> = sqlx::query_as(
                    "SELECT id, delivery_id, attempted_at, status_code, latency_us, error \
                     FROM delivery_attempts WHERE delivery_id = $1 ORDER BY id",
                )
                .bind(id)
                .fetch_all(self.read())
                .await?;
                let mut out: Vec<DeliveryAttempt> = rows
                    .into_iter()
                    .map(|r| DeliveryAttempt {
                        id: Some(r.id),
                        delivery_id: r.delivery_id,
                        attempted_at: ts(r.attempted_at),
                        status_code: r.status_code,
                        latency_us: r.latency_us,
                        error: r.error,
                    })
                    .collect();
                let delivering: Option<(Option<i64>, Option<i64>, Option<i64>)> = sqlx::query_as(
                    "SELECT last_attempt_at, last_status_code, last_latency_us FROM deliveries \
                     WHERE id = $1 AND status = 'delivered'",
                )
                .bind(id)
                .fetch_optional(self.read())
                .await?;
                if let Some((Some(at), code, Some(latency_us))) = delivering {
                    out.push(DeliveryAttempt {
                        id: None,
                        delivery_id: id,
                        attempted_at: ts(at),
                        status_code: code,
                        latency_us,
                        error: None,
                    });
                }
                Ok(out)
            }

            async fn resend_delivery(
                &self,
                target: &str,
                id: i64,
                now: Timestamp,
            ) -> Result<Option<Delivery>, StoreError> {
                let mut tx = self.write().begin().await?;
                sqlx::query(&format!("{KEEP_DELIVERING_ATTEMPT} id = $1 AND target = $2"))
                    .bind(id)
                    .bind(target)
                    .execute(&mut *tx)
                    .await?;
                let row: Option<DeliveryRow> = sqlx::query_as(&format!(
                    "UPDATE deliveries SET status = 'pending', attempts = 0, leased = FALSE, \
                     next_attempt_at = $1, updated_at = $1 WHERE id = $2 AND target = $3 \
                     RETURNING {COLUMNS}"
                ))
                .bind(micros(now))
                .bind(id)
                .bind(target)
                .fetch_optional(&mut *tx)
                .await?;
                tx.commit().await?;
                let mut out: Vec<Delivery> = row.into_iter().map(DeliveryRow::into_delivery).collect();
                load_bodies!(self.read(), $db, &mut out);
                Ok(out.pop())
            }

            async fn request_replay(
                &self,
                target: &str,
                from_seq: i64,
                now: Timestamp,
            ) -> Result<u64, StoreError> {
                let mut tx = self.write().begin().await?;
                sqlx::query(
                    "INSERT INTO delivery_replays (target, from_seq, requested_at) \
                     VALUES ($1, $2, $3) ON CONFLICT (target) DO UPDATE SET \
                     from_seq = CASE WHEN excluded.from_seq < delivery_replays.from_seq \
                     THEN excluded.from_seq ELSE delivery_replays.from_seq END, \
                     requested_at = excluded.requested_at",
                )
                .bind(target)
                .bind(from_seq)
                .bind(micros(now))
                .execute(&mut *tx)
                .await?;
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM deliveries WHERE target = $1 AND seq >= \
                     (SELECT from_seq FROM delivery_replays WHERE target = $1)",
                )
                .bind(target)
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(u64::try_from(n).unwrap_or_default())
            }

            async fn replay_request(&self, target: &str) -> Result<Option<i64>, StoreError> {
                let row: Option<(i64,)> =
                    sqlx::query_as("SELECT from_seq FROM delivery_replays WHERE target = $1")
                        .bind(target)
                        .fetch_optional(self.read())
                        .await?;
                Ok(row.map(|r| r.0))
            }

            async fn delivery_backlog(&self, target: &str) -> Result<i64, StoreError> {
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM deliveries WHERE target = $1 \
                     AND (status = 'pending' OR status = 'held')",
                )
                .bind(target)
                .fetch_one(self.read())
                .await?;
                Ok(n)
            }
        }
    };
}

use crate::postgres::ops as postgres_ops;
use crate::sqlite::ops as sqlite_ops;
impl_delivery_store!(crate::SqliteStore, sqlx::Sqlite, sqlite_ops, "");
impl_delivery_store!(
    crate::PostgresStore,
    sqlx::Postgres,
    postgres_ops,
    "FOR UPDATE SKIP LOCKED"
);

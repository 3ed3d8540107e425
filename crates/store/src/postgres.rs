//! The PostgreSQL store. Every write transaction takes one advisory lock first, so event
//! sequence numbers are committed in order and a consumer reading `seq > n` never skips
//! an event that commits late.

use crate::sql::impl_store;
use crate::StoreError;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, Transaction};
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The LISTEN/NOTIFY channel on which every commit with events is announced, with the
/// newest seq it wrote.
pub(crate) const COMMITS_CHANNEL: &str = "worklane_commits";

/// Lock id taken by every write transaction (an arbitrary constant: "WL").
const WRITE_LOCK: i64 = 0x574C_0001;

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` (e.g. `postgres://postgres@127.0.0.1/worklane`) and applies
    /// pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    pub(crate) fn read(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) fn write(&self) -> &PgPool {
        &self.pool
    }

    async fn commit_stream(&self) -> Result<Option<crate::CommitStream>, StoreError> {
        use futures::StreamExt;
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(COMMITS_CHANNEL).await?;
        // A payload that is not a seq (another program on the channel) wakes readers all
        // the same: they read from their own position.
        let stream = listener.into_stream().map(|n| {
            n.map(|n| n.payload().parse::<i64>().unwrap_or(0))
                .map_err(StoreError::from)
        });
        Ok(Some(stream.boxed()))
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(WRITE_LOCK)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

pub(crate) mod ops {
    use crate::sql::shared_ops;
    type Db = sqlx::Postgres;
    shared_ops!();

    /// Claimed rows are locked; rows another writer holds are skipped.
    const CLAIM_LOCK: &str = " FOR UPDATE SKIP LOCKED";

    /// Tells every node listening that events up to `seq` are committed: one notification
    /// per batch, delivered by PostgreSQL at commit (never if the transaction rolls back).
    pub(crate) async fn announce(conn: &mut Conn, seq: i64) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(super::COMMITS_CHANNEL)
            .bind(seq.to_string())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Up to `limit` events after `after`, oldest first.
    pub(crate) async fn read_events_after(
        conn: &mut Conn,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Event>, StoreError> {
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT seq, body FROM events WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after)
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?;
        rows.iter().map(|(s, b)| decode_event(*s, b)).collect()
    }

    /// Writes deliveries of `target` delivered at their first attempt (no body, no
    /// attempt row), skipping (target, seq) already there; returns how many were added.
    /// One column array per value: one cached statement whatever the batch size.
    pub(crate) async fn insert_delivered(
        conn: &mut Conn,
        target: &str,
        rows: &[&crate::RecordedDelivery],
        now: i64,
    ) -> Result<u64, StoreError> {
        let col = |f: fn(&crate::RecordedDelivery) -> Option<i64>| -> Vec<Option<i64>> {
            rows.iter().copied().map(f).collect()
        };
        let done = sqlx::query(
            "INSERT INTO deliveries (target, seq, broker_id, event_type, guid, created_at, \
             status, attempts, next_attempt_at, leased, last_status_code, last_attempt_at, \
             last_latency_us, updated_at) \
             SELECT $1, s, b, e, g, c, 'delivered', 1, $2, FALSE, sc, la, ll, $2 \
             FROM UNNEST($3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::bigint[], \
             $8::bigint[], $9::bigint[], $10::bigint[]) AS t(s, b, e, g, c, sc, la, ll) \
             ON CONFLICT (target, seq) DO NOTHING",
        )
        .bind(target)
        .bind(now)
        .bind(col(|r| Some(r.delivery.seq)))
        .bind(col(|r| Some(r.delivery.broker_id)))
        .bind(
            rows.iter()
                .map(|r| r.delivery.event_type.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|r| r.delivery.guid.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(col(|r| Some(crate::micros(r.delivery.created_at))))
        .bind(col(|r| r.attempt.as_ref().and_then(|a| a.status_code)))
        .bind(col(|r| {
            r.attempt.as_ref().map(|a| crate::micros(a.attempted_at))
        }))
        .bind(col(|r| r.attempt.as_ref().map(|a| a.latency_us)))
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected())
    }

    async fn next_n(conn: &mut Conn, sequence: &str, n: usize) -> Result<Vec<i64>, StoreError> {
        let mut v: Vec<i64> =
            sqlx::query_scalar("SELECT nextval($1::regclass) FROM generate_series(1, $2)")
                .bind(sequence)
                .bind(n as i64)
                .fetch_all(&mut *conn)
                .await?;
        v.sort_unstable();
        Ok(v)
    }

    /// brokerIds for a batch's creates, in one round trip.
    pub(crate) async fn alloc_ids(conn: &mut Conn, n: usize) -> Result<Vec<i64>, StoreError> {
        next_n(conn, "tasks_broker_id_seq", n).await
    }

    /// Sequence numbers for a batch's events, in one round trip. Writers hold the
    /// advisory lock, so numbers drawn later commit later.
    pub(crate) async fn alloc_seqs(conn: &mut Conn, n: usize) -> Result<Vec<i64>, StoreError> {
        next_n(conn, "events_seq_seq", n).await
    }
}

impl_store!(PostgresStore, ops, "postgres");

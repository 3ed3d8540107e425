//! The PostgreSQL store. Every write transaction takes one advisory lock first, so event
//! sequence numbers are committed in order and a consumer reading `seq > n` never skips
//! an event that commits late.

use crate::sql::impl_store;
use crate::StoreError;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, Transaction};
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

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

    /// `(seq, body)` of up to `limit` events after `after`, oldest first.
    pub(crate) async fn read_events_after(
        conn: &mut Conn,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT seq, body FROM events WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after)
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?,
        )
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

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

    /// Draws brokerIds from the sequence, all of a batch's in one round trip.
    pub(crate) struct IdSource {
        wanted: usize,
        ids: std::collections::VecDeque<i64>,
    }

    impl IdSource {
        pub(crate) fn new(creates: usize) -> Self {
            Self {
                wanted: creates,
                ids: Default::default(),
            }
        }

        pub(crate) async fn next(&mut self, conn: &mut Conn) -> Result<i64, StoreError> {
            if self.ids.is_empty() {
                let n = self.wanted.max(1) as i64;
                let rows: Vec<(i64,)> = sqlx::query_as(
                    "SELECT nextval('tasks_broker_id_seq') FROM generate_series(1, $1)",
                )
                .bind(n)
                .fetch_all(&mut *conn)
                .await?;
                self.ids.extend(rows.into_iter().map(|r| r.0));
            }
            self.wanted = self.wanted.saturating_sub(1);
            Ok(self.ids.pop_front().expect("sequence returned ids"))
        }
    }
}

impl_store!(PostgresStore, ops, "postgres");

//! The embedded default store: one SQLite file in WAL mode. All writes go through one
//! connection (SQLite has one writer anyway), reads through a small pool.

use crate::sql::impl_store;
use crate::StoreError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating when missing) the database at `url`, e.g. `sqlite://worklane.db`,
    /// and applies pending migrations. Commits are durable (`synchronous = FULL`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .pragma("cache_size", "-8000");
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(opts.clone())
            .await?;
        MIGRATOR.run(&write).await?;
        let read = if url.contains(":memory:") {
            // Separate pools would see separate in-memory databases.
            write.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(opts.read_only(true))
                .await?
        };
        Ok(Self { read, write })
    }

    pub(crate) fn read(&self) -> &SqlitePool {
        &self.read
    }

    pub(crate) fn write(&self) -> &SqlitePool {
        &self.write
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.write.begin().await?)
    }
}

pub(crate) mod ops {
    use crate::sql::shared_ops;
    type Db = sqlx::Sqlite;
    shared_ops!();

    /// Draws brokerIds for a batch: SQLite's writer is alone, so the next ids are known.
    pub(crate) struct IdSource {
        next: Option<i64>,
    }

    impl IdSource {
        pub(crate) fn new(_creates: usize) -> Self {
            Self { next: None }
        }

        pub(crate) async fn next(&mut self, conn: &mut Conn) -> Result<i64, StoreError> {
            let id = match self.next {
                Some(id) => id,
                None => {
                    let (max,): (i64,) = sqlx::query_as(
                        "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence \
                         WHERE name = 'tasks'), 0), COALESCE((SELECT MAX(broker_id) FROM tasks), 0))",
                    )
                    .fetch_one(&mut *conn)
                    .await?;
                    max + 1
                }
            };
            self.next = Some(id + 1);
            Ok(id)
        }
    }
}

impl_store!(SqliteStore, ops, "sqlite");

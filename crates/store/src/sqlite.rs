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

    /// `(seq, body)` of up to `limit` events after `after`, oldest first, read as one
    /// value: sqlx hands SQLite rows over one at a time from its worker thread, which
    /// costs more than the reading itself for a batch of small rows. Compact JSON has no
    /// raw tab or newline, so they separate the parts.
    pub(crate) async fn read_events_after(
        conn: &mut Conn,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let (all,): (Option<String>,) = sqlx::query_as(
            "SELECT group_concat(seq || char(9) || body, char(10) ORDER BY seq) FROM \
             (SELECT seq, body FROM events WHERE seq > $1 ORDER BY seq LIMIT $2)",
        )
        .bind(after)
        .bind(limit)
        .fetch_one(&mut *conn)
        .await?;
        all.as_deref()
            .unwrap_or_default()
            .split_terminator('\n')
            .map(|line| {
                let (seq, body) = line.split_once('\t').unwrap_or((line, ""));
                Ok((serde_json::from_str(seq)?, body.to_owned()))
            })
            .collect()
    }

    /// The next `n` values after the larger of the table's AUTOINCREMENT counter and its
    /// largest key: SQLite's writer is alone, so they are free until commit.
    async fn next_n(
        conn: &mut Conn,
        table: &str,
        key: &str,
        n: usize,
    ) -> Result<Vec<i64>, StoreError> {
        // `table` and `key` are constants of this module, never outside input.
        let (max,): (i64,) = sqlx::query_as(&format!(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '{table}'), 0), \
             COALESCE((SELECT MAX({key}) FROM {table}), 0))"
        ))
        .fetch_one(&mut *conn)
        .await?;
        Ok((1..=n as i64).map(|i| max + i).collect())
    }

    /// brokerIds for a batch's creates.
    pub(crate) async fn alloc_ids(conn: &mut Conn, n: usize) -> Result<Vec<i64>, StoreError> {
        next_n(conn, "tasks", "broker_id", n).await
    }

    /// Sequence numbers for a batch's events.
    pub(crate) async fn alloc_seqs(conn: &mut Conn, n: usize) -> Result<Vec<i64>, StoreError> {
        next_n(conn, "events", "seq", n).await
    }
}

impl_store!(SqliteStore, ops, "sqlite");

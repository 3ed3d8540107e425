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

    async fn commit_stream(&self) -> Result<Option<crate::CommitStream>, StoreError> {
        Ok(None)
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.write.begin().await?)
    }
}

pub(crate) mod ops {
    use crate::sql::shared_ops;
    type Db = sqlx::Sqlite;
    shared_ops!();

    /// SQLite has one writer: nothing to lock.
    const CLAIM_LOCK: &str = "";

    /// One process writes an SQLite file: its engine announces its own commits.
    pub(crate) async fn announce(_conn: &mut Conn, _seq: i64) -> Result<(), StoreError> {
        Ok(())
    }

    /// Up to `limit` events after `after`, oldest first, read as one value: sqlx hands
    /// SQLite rows over one at a time from its worker thread, which costs more than the
    /// reading itself for a batch of small rows. Compact JSON has no raw tab or newline,
    /// so they separate the parts; each body is decoded where it lies in the value.
    ///
    /// The concatenation has no ORDER BY of its own: that makes SQLite sort the whole
    /// batch, bodies and all, which cost eight times the read. Its order is the inner
    /// query's in practice, and sorting by seq here makes it so in any case (a sorted
    /// batch is checked in one pass).
    pub(crate) async fn read_events_after(
        conn: &mut Conn,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Event>, StoreError> {
        let (all,): (Option<String>,) = sqlx::query_as(
            "SELECT group_concat(seq || char(9) || body, char(10)) FROM \
             (SELECT seq, body FROM events WHERE seq > $1 ORDER BY seq LIMIT $2)",
        )
        .bind(after)
        .bind(limit)
        .fetch_one(&mut *conn)
        .await?;
        let mut events = all
            .as_deref()
            .unwrap_or_default()
            .split_terminator('\n')
            .map(|line| {
                let (seq, body) = line.split_once('\t').unwrap_or((line, ""));
                decode_event(serde_json::from_str(seq)?, body)
            })
            .collect::<Result<Vec<_>, _>>()?;
        events.sort_by_key(|e| e.seq);
        Ok(events)
    }

    /// Rows per INSERT of delivered notifications. A batch goes out in the largest of
    /// these that fit, so there are only a few statement texts, each parsed once and
    /// kept in the connection's cache: parsing a statement built for each batch cost
    /// more than the inserts themselves.
    const DELIVERED_CHUNKS: [usize; 4] = [256, 32, 4, 1];

    /// The INSERT of `rows` delivered notifications: the target and the time, then eight
    /// values per row. Parameters are anonymous (`?`): SQLite looks a named one up by
    /// walking a list, which for thousands of them costs more than the insert.
    fn delivered_sql(rows: usize) -> String {
        let mut sql = String::from(
            "INSERT INTO deliveries (target, seq, broker_id, event_type, guid, created_at, \
             status, attempts, next_attempt_at, leased, last_status_code, last_attempt_at, \
             last_latency_us, updated_at) \
             SELECT ?, column1, column2, column3, column4, column5, 'delivered', 1, ?, FALSE, \
             column6, column7, column8, ? FROM (VALUES ",
        );
        let row = "(?, ?, ?, ?, ?, ?, ?, ?)";
        sql.push_str(&vec![row; rows].join(", "));
        // `WHERE true` tells the parser the ON CONFLICT belongs to the INSERT.
        sql.push_str(") WHERE true ON CONFLICT (target, seq) DO NOTHING");
        sql
    }

    static DELIVERED_SQL: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| DELIVERED_CHUNKS.iter().map(|&n| delivered_sql(n)).collect());

    /// Writes notifications of `target` delivered at their first attempt (no body, no
    /// attempt row), skipping (target, seq) already there; returns how many were added.
    pub(crate) async fn insert_delivered(
        conn: &mut Conn,
        target: &str,
        rows: &[&crate::RecordedDelivery],
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut added = 0;
        let mut rest = rows;
        for (size, sql) in DELIVERED_CHUNKS.iter().zip(DELIVERED_SQL.iter()) {
            while rest.len() >= *size {
                let (chunk, tail) = rest.split_at(*size);
                rest = tail;
                let mut q = sqlx::query(sql).bind(target).bind(now).bind(now);
                for r in chunk {
                    let (d, a) = (&r.delivery, r.attempt.as_ref());
                    q = q
                        .bind(d.seq)
                        .bind(d.broker_id)
                        .bind(d.event_type.as_str())
                        .bind(d.guid.as_str())
                        .bind(crate::micros(d.created_at))
                        .bind(a.and_then(|a| a.status_code))
                        .bind(a.map(|a| crate::micros(a.attempted_at)))
                        .bind(a.map(|a| a.latency_us));
                }
                added += q.execute(&mut *conn).await?.rows_affected();
            }
        }
        Ok(added)
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

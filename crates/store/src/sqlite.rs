//! The embedded default store: one SQLite file in WAL mode. All writes go through one
//! connection (SQLite has one writer anyway), reads through a small pool.

use crate::sql::impl_store;
use crate::sqlite_write::{WriteConn, WriteTransaction};
use crate::StoreError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, SqlitePool};
use std::str::FromStr;
use std::time::Duration;
use tokio_util::task::AbortOnDropHandle;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// WAL pages after which the writer checkpoints itself: a fallback, far above what the
/// background checkpointer lets the WAL reach.
const WRITER_AUTOCHECKPOINT_PAGES: &str = "20000";

/// How often the background checkpointer copies the WAL into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    read: SqlitePool,
    write: WriteConn,
    /// Stops the background checkpointer when the last clone is dropped.
    _checkpointer: std::sync::Arc<AbortOnDropHandle<()>>,
    /// An in-memory store's directory, removed when the last clone is dropped.
    _temp: Option<std::sync::Arc<tempfile::TempDir>>,
}

impl SqliteStore {
    /// Opens (creating when missing) the database at `url`, e.g. `sqlite://worklane.db`,
    /// and applies pending migrations. Commits are durable (`synchronous = FULL`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        // `sqlite::memory:` is a file in a directory of its own, removed with the store:
        // its readers and its one writer are separate connections, which would each see
        // a database of their own in memory.
        let (base, temp) = if url.contains(":memory:") {
            let dir = tempfile::tempdir()
                .map_err(|e| StoreError::Invalid(format!("no temporary directory: {e}")))?;
            let opts = SqliteConnectOptions::new().filename(dir.path().join("worklane.db"));
            (opts, Some(std::sync::Arc::new(dir)))
        } else {
            (SqliteConnectOptions::from_str(url)?, None)
        };
        let opts = base
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .pragma("cache_size", "-8000")
            // Statement journals (multi-row inserts that may conflict) stay in memory.
            .pragma("temp_store", "memory");
        let mut write = opts
            .clone()
            .pragma("wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES)
            // The writer's multi-row statements differ by their row count (and a batch's
            // writes go as one query): keep the shapes seen, not re-parse each batch.
            // Each kept one costs memory: 1,024 of them came to 50 MiB more than 256.
            .statement_cache_capacity(256)
            .connect()
            .await?;
        MIGRATOR.run_direct(&mut write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts.clone().read_only(true))
            .await?;
        let checkpoint = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await?;
        let task = AbortOnDropHandle::new(tokio::spawn(checkpoint_loop(checkpoint)));
        Ok(Self {
            read,
            write: WriteConn::new(write),
            _checkpointer: std::sync::Arc::new(task),
            _temp: temp,
        })
    }

    pub(crate) fn read(&self) -> &SqlitePool {
        &self.read
    }

    pub(crate) fn write(&self) -> &WriteConn {
        &self.write
    }

    async fn commit_stream(&self) -> Result<Option<crate::CommitStream>, StoreError> {
        Ok(None)
    }

    /// One process writes an SQLite file: its engine announces its own commits.
    fn announcer(&self) -> Option<crate::announce::Announcer> {
        None
    }

    async fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        self.write.begin().await
    }
}

/// Copies committed WAL pages into the database file from a connection of its own, so
/// the writer's commits do not do it (a commit that crosses the autocheckpoint threshold
/// checkpoints before it returns). PASSIVE never blocks the writer or readers; a page
/// written many times between two runs is copied once.
async fn checkpoint_loop(pool: SqlitePool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::debug!(error = %e, "WAL checkpoint failed; the writer checkpoints itself");
        }
    }
}

pub(crate) mod ops {
    use crate::sql::shared_ops;
    type Db = sqlx::Sqlite;
    /// The engine's write transaction on the one write connection.
    pub(crate) type WriteTx = crate::sqlite_write::WriteTransaction;
    shared_ops!();

    /// Tasks of one status in priority order: without statistics SQLite would read them
    /// all through another status index and sort them.
    const BY_PRIORITY: &str = " INDEXED BY tasks_claim";
    /// Within a key condition, a task due before `at` (epoch microseconds), from
    /// tasks_due: SQLite writes an index only when an UPDATE changes its columns, so one
    /// index of every task's due date costs a change nothing (PostgreSQL keeps due dates
    /// in task_keys, migration 0021).
    fn push_due_before(qb: &mut sqlx::QueryBuilder<'_, Db>, at: i64) {
        qb.push("due_at < ").push_bind(at);
    }
    /// Opens a condition on a task's keys (captureId, process, due date): SQLite indexes
    /// them on tasks (PostgreSQL in a table of their own, `KEY_ROWS`).
    const KEY_OPEN: &str = " AND (";
    const KEY_CLOSE: &str = ")";
    /// Within a key condition, a live task with a due date (tasks_open_due).
    const OPEN_KEY_DUE: &str = crate::stats::OPEN_DUE;
    /// A task by captureId, the first created (tasks_capture).
    const BY_CAPTURE: &str = "SELECT body FROM tasks WHERE capture_point_id = $1 \
         AND capture_id = $2 ORDER BY broker_id LIMIT 1";
    /// Widens a load by brokerId to the tasks of `caps` (capture point, captureId).
    fn push_captures(qb: &mut sqlx::QueryBuilder<'static, Db>, caps: &[(String, String)]) {
        for (cp, cid) in caps {
            qb.push(" OR (capture_point_id = ").push_bind(cp.clone());
            qb.push(" AND capture_id = ")
                .push_bind(cid.clone())
                .push(")");
        }
    }
    /// Whether a load by captureId is kept prepared: SQLite's plans do not depend on
    /// statistics it has not been given.
    const CAPTURES_KEPT: bool = true;
    /// SQLite keeps a task's keys on its row: it rewrites an index only when an UPDATE
    /// sets its columns.
    const KEY_ROWS: Option<PushKeyRows> = None;
    /// Rows of one statement that writes tasks: each binds a parameter per column.
    const TASK_ROWS: usize = 400;
    /// Rows of one statement that appends events.
    const EVENT_ROWS: usize = 1000;

    /// Binds indexed column `i` of `t` (`columns::NAMES[i]`), a parameter a value.
    fn bind_column(
        b: &mut sqlx::query_builder::Separated<'_, '_, Db, &'static str>,
        i: usize,
        t: &Task,
    ) {
        use crate::columns::Value;
        match crate::columns::value(i, t) {
            Value::Text(v) => b.push_bind(v.map(str::to_owned)),
            Value::Status(v) => b.push_bind(v),
            Value::Int(v) => b.push_bind(v),
            Value::Time(v) => b.push_bind(v),
        };
    }

    /// Pushes the statement that sets the columns `cols` (indexes of `columns::NAMES`),
    /// body and version of each task of `rows` (task, body). Returns the parameters
    /// bound.
    fn push_update(
        qb: &mut sqlx::QueryBuilder<'static, Db>,
        cols: &[usize],
        rows: Vec<(&worklane_domain::Task, String)>,
    ) -> usize {
        let binds = rows.len() * (3 + cols.len());
        qb.push("WITH v (broker_id, version, body");
        for &i in cols {
            qb.push(", ").push(crate::columns::NAMES[i]);
        }
        qb.push(") AS (");
        qb.push_values(rows, |mut b, (t, body)| {
            b.push_bind(t.broker_id.0)
                .push_bind(t.version)
                .push_bind(body);
            for &i in cols {
                bind_column(&mut b, i, t);
            }
        });
        qb.push(") UPDATE tasks SET version = v.version, body = v.body");
        for &i in cols {
            let c = crate::columns::NAMES[i];
            qb.push(format!(", {c} = v.{c}"));
        }
        qb.push(" FROM v WHERE tasks.broker_id = v.broker_id");
        binds
    }

    /// Pushes the rows of an `INSERT INTO tasks (broker_id, the columns of
    /// `columns::NAMES`, version, body)`, from each task and its body. Returns the
    /// parameters bound.
    fn push_task_rows(
        qb: &mut sqlx::QueryBuilder<'static, Db>,
        rows: Vec<(&worklane_domain::Task, String)>,
    ) -> usize {
        let binds = rows.len() * (3 + crate::columns::NAMES.len());
        qb.push_values(rows, |mut b, (t, body)| {
            b.push_bind(t.broker_id.0);
            for i in 0..crate::columns::NAMES.len() {
                bind_column(&mut b, i, t);
            }
            b.push_bind(t.version).push_bind(body);
        });
        binds
    }

    /// Pushes the rows of an `INSERT INTO events (seq, broker_id, capture_point_id,
    /// event_type, created_at, body)`, from each event and its body. Returns the
    /// parameters bound.
    fn push_event_rows(
        qb: &mut sqlx::QueryBuilder<'static, Db>,
        rows: Vec<(&worklane_domain::Event, String)>,
    ) -> usize {
        let binds = rows.len() * 6;
        qb.push_values(rows, |mut b, (e, body)| {
            b.push_bind(e.seq)
                .push_bind(e.broker_id.0)
                .push_bind(e.capture_point_id.clone())
                .push_bind(e.event_type.as_str())
                // Retention prunes by it (see `retention.rs`).
                .push_bind(crate::micros(e.event_date_time))
                .push_bind(body);
        });
        binds
    }

    /// The order of claims by status (tasks_claim; SQLite sorts NULLs first).
    const CLAIM_ORDER: &str = crate::sql::QUEUE_CLAIM_ORDER;
    /// SQLite has one writer: nothing to lock.
    const CLAIM_LOCK: &str = "";
    const ROW_LOCK: &str = "";
    /// Without statistics SQLite plans an `IN` list of users on the status index, which
    /// reads every Assigned task; the partial index reads only these users' tasks.
    const ASSIGNED: &str =
        "SELECT body FROM tasks INDEXED BY tasks_assigned WHERE status = 'Assigned' AND assigned_to_user IN (";
    /// How many offers and Assigned tasks agents hold, by channel (see `holdings`): each
    /// count's statement up to its partial index's predicate, the holder column an id
    /// list narrows, and its grouping.
    const HELD: [(&str, &str, &str); 2] = [
        (
            "SELECT offered_to, channel, COUNT(*) FROM tasks INDEXED BY tasks_offered_to \
             WHERE offered_to IS NOT NULL",
            "offered_to",
            " GROUP BY offered_to, channel",
        ),
        (
            "SELECT assigned_to_user, channel, COUNT(*) FROM tasks INDEXED BY tasks_assigned \
             WHERE status = 'Assigned'",
            "assigned_to_user",
            " GROUP BY assigned_to_user, channel",
        ),
    ];
    /// Every Ready agent's id and version, the one waiting longest first (not locked:
    /// `claim_agents` locks those the caller picks). Read as one JSON value: the pass
    /// asks on every commit, and a row at a time through sqlx's worker thread cost more
    /// than the read (4 ms for 1,000 agents).
    pub(crate) async fn ready_agent_ids(conn: &mut Conn) -> Result<Vec<(String, i64)>, StoreError> {
        let (all,): (Option<String>,) = sqlx::query_as(
            "SELECT json_group_array(json_array(id, version) ORDER BY waiting_since, id) \
             FROM agents WHERE state = 'Ready'",
        )
        .fetch_one(&mut *conn)
        .await?;
        Ok(match all {
            Some(json) => serde_json::from_str(&json)?,
            None => Vec::new(),
        })
    }

    /// Tasks whose time in `column` has come (see `claim_at`), nothing to lock (one
    /// writer): one value, the bodies joined by newlines. A batch of thousands of rows
    /// handed over one at a time from sqlx's worker thread cost more than reading them.
    /// `share` narrows them to one share (`$3`).
    fn claim_at_sql(column: &str, share: &str) -> String {
        format!(
            "SELECT group_concat(body, char(10)) FROM \
             (SELECT body FROM tasks WHERE {column} <= $1{share} ORDER BY {column} LIMIT $2)"
        )
    }

    /// Finished tasks past their expiration. SQLite planned it on the status index,
    /// reading every finished task (40 ms at 40,000 of them) on each processing pass.
    const EXPIRED: &str = "SELECT body FROM tasks INDEXED BY tasks_expiration \
         WHERE expiration_at <= $1 AND status IN ('Completed', 'Canceled', 'Rejected') LIMIT $2";

    /// SQLite has one writer: every committed event is settled.
    pub(crate) async fn settled_seq(_conn: &mut Conn) -> Result<i64, StoreError> {
        Ok(i64::MAX)
    }

    /// SQLite has one writer: nothing to lock.
    async fn lock_captures(_conn: &mut Conn, _caps: &[(String, String)]) -> Result<(), StoreError> {
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

    /// Writes wait for the transaction's next read or its commit (see `Writes`): a
    /// statement is a round trip to the connection's thread. No limit: each statement of a
    /// multi-statement query binds its own parameters.
    const MAX_DEFERRED_BINDS: usize = usize::MAX;

    /// Statements waiting go as one multi-statement query.
    fn open_statement(sql: &mut sqlx::QueryBuilder<'static, Db>, waiting: usize) {
        if waiting > 0 {
            sql.push("; ");
        }
    }

    fn close_statements(_sql: &mut sqlx::QueryBuilder<'static, Db>) {}

    /// A deferred query is always kept prepared: its text recurs by its parts' row counts.
    const KEEP_EVERY_WRITE: bool = true;

    /// The last brokerId and seq a transaction has drawn: read from the tables at its
    /// first draw, then counted on here (SQLite's one writer has them to itself until it
    /// commits).
    #[derive(Debug, Default)]
    pub(crate) struct Keys(Option<[i64; 2]>);

    const TASK_IDS: usize = 0;
    const SEQS: usize = 1;

    /// `n` values of key `which` after the last drawn. The first draw reads both keys'
    /// last values in one query (the larger of each table's AUTOINCREMENT counter and its
    /// largest key), after sending the writes held back, which it must see.
    async fn draw(
        conn: &mut Link,
        w: &mut Writes,
        keys: &mut Keys,
        which: usize,
        n: usize,
    ) -> Result<Vec<i64>, StoreError> {
        let mut last = match keys.0 {
            Some(k) => k,
            None => {
                let conn = w.land(conn).await?;
                let (ids, seqs): (i64, i64) = sqlx::query_as(
                    "SELECT \
                     MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'tasks'), 0), \
                         COALESCE((SELECT MAX(broker_id) FROM tasks), 0)), \
                     MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0), \
                         COALESCE((SELECT MAX(seq) FROM events), 0))",
                )
                .fetch_one(&mut *conn)
                .await?;
                [ids, seqs]
            }
        };
        let from = last[which];
        last[which] += n as i64;
        keys.0 = Some(last);
        Ok((1..=n as i64).map(|i| from + i).collect())
    }

    /// brokerIds for a batch's creates.
    pub(crate) async fn alloc_ids(
        conn: &mut Link,
        w: &mut Writes,
        keys: &mut Keys,
        n: usize,
    ) -> Result<Vec<i64>, StoreError> {
        draw(conn, w, keys, TASK_IDS, n).await
    }

    /// Sequence numbers for a batch's events.
    pub(crate) async fn alloc_seqs(
        conn: &mut Link,
        w: &mut Writes,
        keys: &mut Keys,
        n: usize,
    ) -> Result<Vec<i64>, StoreError> {
        draw(conn, w, keys, SEQS, n).await
    }
}

impl_store!(SqliteStore, ops, "sqlite");

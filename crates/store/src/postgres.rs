//! The PostgreSQL store. Writers on any number of nodes run side by side: no lock is
//! shared by every write.
//!
//! - A task's rows are locked while a transaction decides on them (`FOR UPDATE`, in
//!   brokerId order), and a captureId being created is locked by an advisory lock on its
//!   hash, so two nodes neither change one task at once nor create one captureId twice.
//! - Event seqs come from a sequence, so a transaction may commit after another that drew
//!   later seqs. Before drawing, each writer takes a shared advisory lock named by the
//!   sequence's value then (a *marker*: every seq it draws is above it). A reader reads
//!   only up to the lowest marker still held, so it never steps past an event that has
//!   yet to commit (see `read_events_after`).
use crate::sql::impl_store;
use crate::StoreError;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, Transaction};
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The LISTEN/NOTIFY channel on which every commit with events is announced, with the
/// newest seq it wrote.
pub(crate) const COMMITS_CHANNEL: &str = "worklane_commits";

/// The first key of the two-key advisory locks on captureIds ("WL" and 2). Markers use
/// the one-key form, which PostgreSQL keeps apart (`objsubid` 1 and 2 in `pg_locks`).
const CAPTURE_LOCKS: i32 = 0x574C_0002;

/// How long a pooled connection may sit idle before it is pinged on its next use.
const PING_AFTER_IDLE: Duration = Duration::from_secs(5);

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    announcer: crate::announce::Announcer,
}

impl PostgresStore {
    /// Connects to `url` (e.g. `postgres://postgres@127.0.0.1/worklane`) and applies
    /// pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            // A ping is a round trip before every transaction; a connection in use within
            // the last seconds is taken as it is, one idle longer is pinged first (the
            // server may have closed it) and replaced if it does not answer.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    use sqlx::Connection;
                    Ok(meta.idle_for < PING_AFTER_IDLE || conn.ping().await.is_ok())
                })
            })
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        let announcer = crate::announce::Announcer::start(pool.clone(), COMMITS_CHANNEL);
        Ok(Self { pool, announcer })
    }

    fn announcer(&self) -> Option<crate::announce::Announcer> {
        Some(self.announcer.clone())
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
        Ok(self.pool.begin().await?)
    }
}

pub(crate) mod ops {
    use crate::sql::shared_ops;
    /// The engine's write transaction, on a connection of the pool.
    pub(crate) type WriteTx = sqlx::Transaction<'static, sqlx::Postgres>;
    type Db = sqlx::Postgres;
    shared_ops!();

    /// The planner finds tasks_claim for a status in priority order itself.
    const BY_PRIORITY: &str = "";
    /// Opens a condition on a task's keys (captureId, process, due date), which
    /// PostgreSQL indexes in `task_keys` (migration 0021): the columns named up to
    /// [`KEY_CLOSE`] are the task's row there.
    const KEY_OPEN: &str =
        " AND EXISTS (SELECT 1 FROM task_keys k WHERE k.broker_id = tasks.broker_id AND ";
    const KEY_CLOSE: &str = ")";
    /// Within a key condition, a live task with a due date (task_keys_due's first range).
    const OPEN_KEY_DUE: &str = "NOT done AND due_at IS NOT NULL";
    /// A task by captureId, the first created (task_keys_capture).
    const BY_CAPTURE: &str = "SELECT body FROM tasks WHERE broker_id = (SELECT broker_id \
         FROM task_keys WHERE capture_point_id = $1 AND capture_id = $2 \
         ORDER BY broker_id LIMIT 1)";
    /// Open tasks per queue due in [$1, $2) (task_keys_due's live range).
    pub(crate) const DUE_NOW: &str = "SELECT COALESCE(t.queue, ''), COUNT(*) \
         FROM task_keys k JOIN tasks t ON t.broker_id = k.broker_id \
         WHERE NOT k.done AND k.due_at >= $1 AND k.due_at < $2 GROUP BY COALESCE(t.queue, '')";

    /// Within a key condition, a task due before `at` (epoch microseconds): live and
    /// finished ones, the two ranges of task_keys_due.
    fn push_due_before(qb: &mut sqlx::QueryBuilder<'_, Db>, at: i64) {
        qb.push("(NOT done AND due_at < ")
            .push_bind(at)
            .push(" OR done AND due_at < ")
            .push_bind(at)
            .push(")");
    }

    /// Widens a load by brokerId to the tasks of `caps` (capture point, captureId), read
    /// from task_keys_capture once, as an array the primary key is searched for: an `IN`
    /// subquery in an `OR` would be a filter on every row of tasks.
    ///
    /// Each pair is looked up on its own (a lateral subquery kept apart by `OFFSET 0`),
    /// both columns the index condition, and the statement is planned afresh each time
    /// ([`CAPTURES_KEPT`]). As an `OR` of pairs, PostgreSQL factored their shared capture
    /// point out as the only index condition, and while the table had no statistics read
    /// every task of that capture point; a plan kept from when the table was small read
    /// all of it (creates went from 4,700 to 1,500-3,300 a second).
    fn push_captures(qb: &mut sqlx::QueryBuilder<'static, Db>, caps: &[(String, String)]) {
        if caps.is_empty() {
            return;
        }
        qb.push(" OR broker_id = ANY(ARRAY(SELECT k.broker_id FROM unnest(");
        bind_array(qb, caps, |(cp, _)| cp.clone());
        qb.push(", ");
        bind_array(qb, caps, |(_, cid)| cid.clone());
        qb.push(
            ") AS c (capture_point_id, capture_id), LATERAL (SELECT broker_id FROM task_keys \
             WHERE capture_point_id = c.capture_point_id AND capture_id = c.capture_id \
             OFFSET 0) k))",
        );
    }
    /// Whether a load by captureId is kept prepared (see [`push_captures`]).
    const CAPTURES_KEPT: bool = false;

    /// Writes the keys of tasks to task_keys (see [`KEY_OPEN`]): a row each, inserted or
    /// replaced, one array a column. Returns the parameters bound.
    fn push_key_rows(
        qb: &mut sqlx::QueryBuilder<'static, Db>,
        tasks: &[&worklane_domain::Task],
    ) -> usize {
        qb.push(
            "INSERT INTO task_keys (broker_id, capture_point_id, capture_id, process_id, due_at, \
             done) SELECT * FROM unnest(",
        );
        bind_array(qb, tasks, |t| t.broker_id.0);
        for i in crate::columns::KEY_COLUMNS {
            qb.push(", ");
            push_column_array(qb, i, tasks.iter().copied());
        }
        qb.push(", ");
        bind_array(qb, tasks, |t| t.status.is_final());
        qb.push(
            ") ON CONFLICT (broker_id) DO UPDATE SET \
             capture_point_id = excluded.capture_point_id, capture_id = excluded.capture_id, \
             process_id = excluded.process_id, due_at = excluded.due_at, done = excluded.done",
        );
        6
    }
    /// PostgreSQL keeps a task's keys in a table of their own.
    const KEY_ROWS: Option<PushKeyRows> = Some(push_key_rows);

    /// The order of claims by status (tasks_claim). Spelt apart from a queue's claim
    /// order (`COALESCE(due_at, ...)`, tasks_queue_claim), which means the same (NULLs
    /// sort last): with one spelling the planner took tasks_claim for a queue's claim too,
    /// whenever statistics made that queue common, and stepped over every task of other
    /// queues and every task on offer with a higher priority (see migration 0017).
    const CLAIM_ORDER: &str = "priority DESC, due_at, broker_id";
    /// Rows of one statement that writes tasks back or appends events. Each column is
    /// one array parameter, whatever the number of rows: the statement's text stays
    /// short, and PostgreSQL parses and plans it in microseconds, where a `VALUES` list
    /// of a parameter per column and row took it milliseconds.
    const TASK_ROWS: usize = 5000;
    const EVENT_ROWS: usize = 5000;

    /// Binds `f` of each of `rows` as one array parameter.
    fn bind_array<R, T>(qb: &mut sqlx::QueryBuilder<'static, Db>, rows: &[R], f: impl Fn(&R) -> T)
    where
        Vec<T>: sqlx::Encode<'static, Db> + sqlx::Type<Db> + 'static,
    {
        qb.push_bind(rows.iter().map(f).collect::<Vec<T>>());
    }

    /// Binds, each after a comma, indexed columns `cols` of the tasks of `rows` as one
    /// array a column.
    fn push_columns<B>(
        qb: &mut sqlx::QueryBuilder<'static, Db>,
        cols: impl Iterator<Item = usize>,
        rows: &[(&worklane_domain::Task, B)],
    ) {
        for i in cols {
            qb.push(", ");
            push_column_array(qb, i, rows.iter().map(|(t, _)| *t));
        }
    }

    /// Binds, after a comma, the bodies of `rows` as one array: moved, not copied (the
    /// largest column).
    fn bind_bodies<R>(qb: &mut sqlx::QueryBuilder<'static, Db>, rows: Vec<(R, String)>) {
        qb.push(", ");
        qb.push_bind(
            rows.into_iter()
                .map(|(_, body)| body)
                .collect::<Vec<String>>(),
        );
    }

    /// Pushes the statement that sets the columns `cols` (indexes of `columns::NAMES`),
    /// body and version of each task of `rows` (task, body). Returns the parameters
    /// bound.
    fn push_update(
        qb: &mut sqlx::QueryBuilder<'static, Db>,
        cols: &[usize],
        rows: Vec<(&worklane_domain::Task, String)>,
    ) -> usize {
        use crate::columns::NAMES;
        qb.push("UPDATE tasks SET version = v.version, body = v.body");
        for &i in cols {
            let c = NAMES[i];
            qb.push(format_args!(", {c} = v.{c}"));
        }
        qb.push(" FROM unnest(");
        bind_array(qb, &rows, |(t, _)| t.broker_id.0);
        qb.push(", ");
        bind_array(qb, &rows, |(t, _)| t.version);
        push_columns(qb, cols.iter().copied(), &rows);
        bind_bodies(qb, rows);
        qb.push(") AS v (broker_id, version");
        for &i in cols {
            qb.push(", ").push(NAMES[i]);
        }
        qb.push(", body) WHERE tasks.broker_id = v.broker_id");
        3 + cols.len()
    }

    /// Pushes the rows of an `INSERT INTO tasks (broker_id, the columns of
    /// `columns::NAMES`, version, body)`, from each task and its body, as one array a
    /// column. Returns the parameters bound.
    fn push_task_rows(
        qb: &mut sqlx::QueryBuilder<'static, Db>,
        rows: Vec<(&worklane_domain::Task, String)>,
    ) -> usize {
        qb.push("SELECT * FROM unnest(");
        bind_array(qb, &rows, |(t, _)| t.broker_id.0);
        push_columns(qb, 0..crate::columns::NAMES.len(), &rows);
        qb.push(", ");
        bind_array(qb, &rows, |(t, _)| t.version);
        bind_bodies(qb, rows);
        qb.push(")");
        3 + crate::columns::NAMES.len()
    }

    /// Binds indexed column `i` (`columns::NAMES[i]`) of `tasks` as one array, of the
    /// column's type.
    fn push_column_array<'t>(
        qb: &mut sqlx::QueryBuilder<'static, Db>,
        i: usize,
        tasks: impl Iterator<Item = &'t worklane_domain::Task>,
    ) {
        use crate::columns::{value, Value};
        let values: Vec<Value<'t>> = tasks.map(|t| value(i, t)).collect();
        // Every value of one column has the column's variant, and a statement writes at
        // least one row (its rows are a chunk of a slice), so the first names the type.
        debug_assert!(!values.is_empty(), "a statement writes at least one row");
        match values.first() {
            Some(Value::Status(_)) => bind_array(qb, &values, |v| match v {
                Value::Status(s) => *s,
                _ => "",
            }),
            Some(Value::Int(_)) => bind_array(qb, &values, |v| match v {
                Value::Int(n) => *n,
                _ => 0,
            }),
            Some(Value::Time(_)) => bind_array(qb, &values, |v| match v {
                Value::Time(at) => *at,
                _ => None,
            }),
            _ => bind_array(qb, &values, |v| match v {
                Value::Text(s) => s.map(str::to_owned),
                _ => None,
            }),
        }
    }

    /// Pushes the rows of an `INSERT INTO events (seq, broker_id, capture_point_id,
    /// event_type, created_at, body)`, from each event and its body, as one array a
    /// column. Returns the parameters bound.
    fn push_event_rows(
        qb: &mut sqlx::QueryBuilder<'static, Db>,
        rows: Vec<(&worklane_domain::Event, String)>,
    ) -> usize {
        qb.push("SELECT * FROM unnest(");
        bind_array(qb, &rows, |(e, _)| e.seq);
        qb.push(", ");
        bind_array(qb, &rows, |(e, _)| e.broker_id.0);
        qb.push(", ");
        bind_array(qb, &rows, |(e, _)| e.capture_point_id.clone());
        qb.push(", ");
        bind_array(qb, &rows, |(e, _)| e.event_type.as_str());
        qb.push(", ");
        // Retention prunes by it (see `retention.rs`).
        bind_array(qb, &rows, |(e, _)| crate::micros(e.event_date_time));
        bind_bodies(qb, rows);
        qb.push(")");
        6
    }

    /// Claimed rows are locked; rows another writer holds are skipped.
    const CLAIM_LOCK: &str = " FOR UPDATE SKIP LOCKED";
    /// Loaded rows are locked until commit; a writer on another node waits for them.
    const ROW_LOCK: &str = " FOR UPDATE";
    /// The Assigned tasks of a list of users (index tasks_assigned).
    const ASSIGNED: &str =
        "SELECT body FROM tasks WHERE status = 'Assigned' AND assigned_to_user IN (";
    /// How many offers and Assigned tasks agents hold, by channel (see `holdings`): each
    /// count's statement up to its partial index's predicate, the holder column an id
    /// list narrows, and its grouping.
    const HELD: [(&str, &str, &str); 2] = [
        (
            "SELECT offered_to, channel, COUNT(*) FROM tasks WHERE offered_to IS NOT NULL",
            "offered_to",
            " GROUP BY offered_to, channel",
        ),
        (
            "SELECT assigned_to_user, channel, COUNT(*) FROM tasks WHERE status = 'Assigned'",
            "assigned_to_user",
            " GROUP BY assigned_to_user, channel",
        ),
    ];
    /// Every Ready agent's id and version, the one waiting longest first (not locked:
    /// `claim_agents` locks those the caller picks).
    pub(crate) async fn ready_agent_ids(conn: &mut Conn) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, version FROM agents WHERE state = 'Ready' ORDER BY waiting_since, id",
        )
        .fetch_all(&mut *conn)
        .await?)
    }

    /// Tasks whose time in `column` has come (see `claim_at`): a row each, locked; rows
    /// another writer holds are skipped; `share` narrows them to one share (`$3`): the
    /// index of due times holds each row's share, so rows of other shares are passed over
    /// in the index, never fetched.
    fn claim_at_sql(column: &str, share: &str) -> String {
        format!(
            "SELECT body FROM tasks WHERE {column} <= $1{share} \
             ORDER BY {column} LIMIT $2{CLAIM_LOCK}"
        )
    }

    /// Finished tasks past their expiration (index tasks_expiration).
    const EXPIRED: &str = "SELECT body FROM tasks \
         WHERE expiration_at <= $1 AND status IN ('Completed', 'Canceled', 'Rejected') LIMIT $2";

    /// Locks each captureId of `caps` for the transaction, in one order every writer
    /// shares (sorted keys), before any row is locked.
    pub(crate) async fn lock_captures(
        conn: &mut Conn,
        caps: &[(String, String)],
    ) -> Result<(), StoreError> {
        if caps.is_empty() {
            return Ok(());
        }
        let mut keys: Vec<i32> = caps.iter().map(|(cp, cid)| capture_key(cp, cid)).collect();
        keys.sort_unstable();
        keys.dedup();
        sqlx::query("SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::int4[]) AS k")
            .bind(super::CAPTURE_LOCKS)
            .bind(&keys)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// A stable 32-bit key for a captureId (FNV-1a); two captureIds that share one only
    /// wait for each other.
    fn capture_key(capture_point_id: &str, capture_id: &str) -> i32 {
        let mut h: u32 = 0x811c_9dc5;
        let bytes = capture_point_id
            .bytes()
            .chain([0u8])
            .chain(capture_id.bytes());
        for b in bytes {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        i32::from_ne_bytes(h.to_ne_bytes())
    }

    /// The highest seq up to which the log is settled: no transaction still open can add
    /// an event at or below it. Two statements, in this order, each with a snapshot of its
    /// own:
    /// 1. `drawn`: every seq up to it has been handed out (the sequence's value);
    /// 2. `held`: the lowest marker a writer still holds. A writer takes its marker
    ///    before it draws, so one that drew a seq up to `drawn` shows here if it has not
    ///    finished; and all it draws is above its marker.
    ///
    /// A statement run after these sees every event up to the lower of the two.
    pub(crate) async fn settled_seq(conn: &mut Conn) -> Result<i64, StoreError> {
        let (drawn,): (i64,) = sqlx::query_as(
            "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END \
             FROM events_seq_seq",
        )
        .fetch_one(&mut *conn)
        .await?;
        let (held,): (Option<i64>,) = sqlx::query_as(
            "SELECT MIN((classid::bigint << 32) | objid::bigint) FROM pg_locks \
             WHERE locktype = 'advisory' AND objsubid = 1 AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(&mut *conn)
        .await?;
        Ok(held.map_or(drawn, |h| h.min(drawn)))
    }

    /// Up to `limit` events after `after`, oldest first, never past an event that may
    /// still commit (see [`settled_seq`]).
    pub(crate) async fn read_events_after(
        conn: &mut Conn,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Event>, StoreError> {
        let bound = settled_seq(conn).await?;
        if bound <= after {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT seq, body FROM events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
        )
        .bind(after)
        .bind(bound)
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

    /// Writes wait for the transaction's next read or its commit (see `Writes`), then go
    /// as one statement: each statement is a round trip to the server, and a batch's
    /// writes (events, task rows by the columns they change, agents, results, the
    /// console's deltas) are several. The protocol allows 65,535 parameters a statement.
    /// Tasks and events bind an array a column; no other part binds more than 2,000
    /// (400 agents of five values), so one more part after this many still fits.
    const MAX_DEFERRED_BINDS: usize = 50_000;

    /// Statements waiting go as the parts of one: `WITH w0 AS (...), w1 AS (...) SELECT 1`.
    /// PostgreSQL runs every data-modifying part once, to completion, whether or not the
    /// query reads it. The parts share a snapshot and none sees another's rows, which
    /// they need not: they write different tables, or different rows of one.
    fn open_statement(sql: &mut sqlx::QueryBuilder<'static, Db>, waiting: usize) {
        if waiting == 0 {
            sql.push("WITH w0 AS (");
        } else {
            sql.push(format_args!("), w{waiting} AS ("));
        }
    }

    fn close_statements(sql: &mut sqlx::QueryBuilder<'static, Db>) {
        sql.push(") SELECT 1");
    }

    /// A write is kept prepared when every statement joined into it has a recurring
    /// shape (`persistent`), joined or not: each binds an array a column, so a join's text
    /// recurs whatever its row counts (a pass over due tasks sends the same
    /// events-and-update join per chunk). Unprepared, PostgreSQL planned each afresh with
    /// its arrays as constants, copying them: a twentieth of its time in a
    /// reprioritization pass.
    const KEEP_EVERY_WRITE: bool = false;

    /// Nothing kept between draws: the sequences hand out keys.
    #[derive(Debug, Default)]
    pub(crate) struct Keys;

    /// brokerIds for a batch's creates, in one round trip.
    pub(crate) async fn alloc_ids(
        conn: &mut Link,
        _w: &mut Writes,
        _keys: &mut Keys,
        n: usize,
    ) -> Result<Vec<i64>, StoreError> {
        next_n(conn.get().await?, "tasks_broker_id_seq", n).await
    }

    /// Sequence numbers for a batch's events, after taking the transaction's marker: a
    /// shared advisory lock named by the sequence's value now, below every seq drawn
    /// next (see `read_events_after`). Shared, so writers that read the same value do not
    /// wait for each other. One round trip: each seq is drawn in the projection of a row
    /// joined to the marker's, so after the marker is taken.
    pub(crate) async fn alloc_seqs(
        conn: &mut Link,
        _w: &mut Writes,
        _keys: &mut Keys,
        n: usize,
    ) -> Result<Vec<i64>, StoreError> {
        let mut v: Vec<i64> = sqlx::query_scalar(
            "WITH marker AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared(\
             CASE WHEN is_called THEN last_value ELSE last_value - 1 END) FROM events_seq_seq) \
             SELECT nextval('events_seq_seq') FROM marker, generate_series(1, $1)",
        )
        .bind(n as i64)
        .fetch_all(&mut **conn.get().await?)
        .await?;
        v.sort_unstable();
        Ok(v)
    }
}

impl_store!(PostgresStore, ops, "postgres");

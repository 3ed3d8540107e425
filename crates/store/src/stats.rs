//! The console's figures (SPEC 11), kept up to date by the write transactions instead of
//! counted per view: tasks by status, queue and process (the backlog), and per 15 minutes
//! the tasks created and completed with what SLA attainment and average finish and handle
//! times need.
//!
//! A write transaction tallies what its writes move ([`Tally`]) and appends one delta row
//! per figure at commit: rows no two writers share, so nodes on one PostgreSQL never wait
//! on each other for a counter, and a batch of a thousand creates adds one row, not a
//! thousand. [`Stats::fold`] moves the deltas into the totals; a figure is always its
//! total plus its deltas, so a read is right whether or not a fold ran.

use crate::columns::Seen;
use crate::StoreError;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use worklane_domain::{EventType, NewEvent, Task, Timestamp};

/// The length of a throughput period.
pub const PERIOD_MICROS: i64 = 15 * 60 * 1_000_000;

/// How many tasks are in one status, queue and process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BacklogCount {
    pub status: String,
    pub queue: Option<String>,
    pub process_id: Option<String>,
    pub tasks: i64,
}

/// One 15-minute period's throughput.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Period {
    /// Where the period starts (a multiple of 15 minutes since the epoch, UTC).
    pub start_us: i64,
    pub created: i64,
    pub completed: i64,
    /// Completions of tasks that had a due date.
    pub completed_due: i64,
    /// Of those, the ones completed at or before their due date.
    pub completed_on_time: i64,
    /// Sum over completions of created → completed.
    pub finish_us: i64,
    /// Sum over completions of assigned → completed, for those that were assigned.
    pub handle_us: i64,
    /// Completions that had been assigned.
    pub handled: i64,
}

impl Period {
    /// Adds `o`'s figures to these (its start is not taken).
    pub fn add(&mut self, o: &Period) {
        self.created += o.created;
        self.completed += o.completed;
        self.completed_due += o.completed_due;
        self.completed_on_time += o.completed_on_time;
        self.finish_us += o.finish_us;
        self.handle_us += o.handle_us;
        self.handled += o.handled;
    }
}

/// The figures' reads. Every store implements it (a supertrait of [`crate::Store`]).
#[async_trait]
pub trait Stats: Send + Sync + std::fmt::Debug {
    /// Tasks by status, queue and process (every group that ever held a task, 0 included).
    async fn backlog(&self) -> Result<Vec<BacklogCount>, StoreError>;

    /// The periods that start in `[from, to)`, oldest first (only periods with activity).
    async fn periods(&self, from: Timestamp, to: Timestamp) -> Result<Vec<Period>, StoreError>;

    /// Open tasks (not Completed, Canceled or Rejected) whose due date is before `now`, by
    /// queue (None: in no queue); only queues with some.
    async fn overdue(&self, now: Timestamp) -> Result<Vec<(Option<String>, i64)>, StoreError>;

    /// Moves the deltas written so far into the totals; returns how many rows it changed
    /// (0: there was nothing to fold).
    /// Safe to run on many nodes at once.
    async fn fold(&self) -> Result<u64, StoreError>;
}

/// A backlog group: status, queue and process ('' for none, as stored).
type Key = (&'static str, String, String);

fn key_of(t: &Task) -> Key {
    (
        t.status.as_str(),
        t.queue.clone().unwrap_or_default(),
        t.process_id.clone().unwrap_or_default(),
    )
}

/// An open task's due count: its queue ('' for none) and the period its due date is in.
pub(crate) type DueKey = (String, i64);

/// Where an open task (not Completed, Canceled or Rejected) with a due date is counted:
/// its queue and the period of its due date; None for other tasks.
pub(crate) fn open_due_period(
    status: &str,
    queue: Option<&str>,
    due_us: Option<i64>,
) -> Option<DueKey> {
    let finished = matches!(status, "Completed" | "Canceled" | "Rejected");
    due_us.filter(|_| !finished).map(|d| {
        (
            queue.unwrap_or_default().to_owned(),
            d.div_euclid(PERIOD_MICROS) * PERIOD_MICROS,
        )
    })
}

/// What one write transaction moves: the deltas it appends at commit.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// The group each task this transaction wrote or deleted is counted in now (None:
    /// in none, the task is gone).
    counted: HashMap<i64, Option<Key>>,
    pub(crate) counts: BTreeMap<Key, i64>,
    /// The due period each open task this transaction wrote or deleted is counted in now.
    due_counted: HashMap<i64, Option<DueKey>>,
    /// Open tasks by queue and due period: what "overdue now" sums.
    pub(crate) due: BTreeMap<DueKey, i64>,
    pub(crate) periods: BTreeMap<i64, Period>,
}

impl Tally {
    /// The group `id` is counted in: as this transaction last wrote it, else as it read it
    /// (None: a task this transaction creates).
    fn current(&self, seen: &Seen, id: i64) -> Option<Key> {
        match self.counted.get(&id) {
            Some(k) => k.clone(),
            None => seen.group(id),
        }
    }

    fn due_now(&self, seen: &Seen, id: i64) -> Option<DueKey> {
        match self.due_counted.get(&id) {
            Some(p) => p.clone(),
            None => seen.due_period(id).flatten(),
        }
    }

    fn move_due(&mut self, id: i64, old: Option<DueKey>, new: Option<DueKey>) {
        if old != new {
            if let Some(o) = old {
                *self.due.entry(o).or_default() -= 1;
            }
            if let Some(n) = new.clone() {
                *self.due.entry(n).or_default() += 1;
            }
        }
        self.due_counted.insert(id, new);
    }

    /// A task is written (created or changed).
    pub(crate) fn put(&mut self, seen: &Seen, t: &Task) {
        let id = t.broker_id.0;
        let due = open_due_period(
            t.status.as_str(),
            t.queue.as_deref(),
            t.due_date_time.map(|d| d.as_microsecond()),
        );
        let old_due = self.due_now(seen, id);
        self.move_due(id, old_due, due);
        let new = key_of(t);
        let old = self.current(seen, id);
        if old.as_ref() != Some(&new) {
            if let Some(old) = old {
                *self.counts.entry(old).or_default() -= 1;
            }
            *self.counts.entry(new.clone()).or_default() += 1;
        }
        self.counted.insert(id, Some(new));
    }

    /// A task is deleted (archived).
    pub(crate) fn delete(&mut self, seen: &Seen, id: i64) {
        let old_due = self.due_now(seen, id);
        self.move_due(id, old_due, None);
        if let Some(old) = self.current(seen, id) {
            *self.counts.entry(old).or_default() -= 1;
        }
        self.counted.insert(id, None);
    }

    /// An event is appended: creations and completions count in their period.
    pub(crate) fn event(&mut self, e: &NewEvent, t: &Task) {
        let at = e.event_date_time.as_microsecond();
        let start = at.div_euclid(PERIOD_MICROS) * PERIOD_MICROS;
        let p = self.periods.entry(start).or_insert_with(|| Period {
            start_us: start,
            ..Period::default()
        });
        match e.event_type {
            EventType::TaskCreated => p.created += 1,
            EventType::TaskCompleted => {
                p.completed += 1;
                if let Some(due) = t.due_date_time {
                    p.completed_due += 1;
                    if e.event_date_time <= due {
                        p.completed_on_time += 1;
                    }
                }
                p.finish_us += (at - t.created_date_time.as_microsecond()).max(0);
                if let Some(a) = t.assigned_date_time {
                    p.handle_us += (at - a.as_microsecond()).max(0);
                    p.handled += 1;
                }
            }
            _ => {}
        }
    }

    /// The backlog deltas that are not zero.
    pub(crate) fn count_deltas(&self) -> impl Iterator<Item = (&Key, i64)> {
        self.counts
            .iter()
            .filter(|(_, n)| **n != 0)
            .map(|(k, n)| (k, *n))
    }

    /// The due-period deltas that are not zero.
    pub(crate) fn due_deltas(&self) -> impl Iterator<Item = (&DueKey, i64)> + '_ {
        self.due
            .iter()
            .filter(|(_, n)| **n != 0)
            .map(|(k, n)| (k, *n))
    }

    /// The periods with something to add.
    pub(crate) fn period_deltas(&self) -> impl Iterator<Item = &Period> {
        self.periods
            .values()
            .filter(|p| p.created != 0 || p.completed != 0)
    }
}

/// Sums rows of totals and deltas by start.
pub(crate) fn merge_periods(rows: impl IntoIterator<Item = Period>) -> Vec<Period> {
    let mut by_start: BTreeMap<i64, Period> = BTreeMap::new();
    for r in rows {
        by_start
            .entry(r.start_us)
            .or_insert_with(|| Period {
                start_us: r.start_us,
                ..Period::default()
            })
            .add(&r);
    }
    by_start.into_values().collect()
}

pub(crate) type PeriodRow = (i64, i64, i64, i64, i64, i64, i64, i64);

pub(crate) fn period(r: PeriodRow) -> Period {
    Period {
        start_us: r.0,
        created: r.1,
        completed: r.2,
        completed_due: r.3,
        completed_on_time: r.4,
        finish_us: r.5,
        handle_us: r.6,
        handled: r.7,
    }
}

pub(crate) const PERIOD_COLS: &str =
    "start_at, created, completed, completed_due, completed_on_time, finish_us, handle_us, handled";

/// Open tasks with a due date, as SQLite's partial index `tasks_open_due` names them.
pub(crate) const OPEN_DUE: &str =
    "due_at IS NOT NULL AND status NOT IN ('Completed', 'Canceled', 'Rejected')";

/// `$due_now`: the backend's count of open tasks per queue due in [$1, $2).
macro_rules! impl_stats {
    ($ty:ty, $due_now:expr) => {
        #[async_trait]
        impl Stats for $ty {
            async fn backlog(&self) -> Result<Vec<BacklogCount>, StoreError> {
                let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
                    "SELECT status, queue, process_id, CAST(SUM(n) AS BIGINT) FROM ( \
                     SELECT status, queue, process_id, n FROM task_counts \
                     UNION ALL SELECT status, queue, process_id, n FROM task_count_deltas) c \
                     GROUP BY status, queue, process_id \
                     ORDER BY status, queue, process_id",
                )
                .fetch_all(self.read())
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(status, q, p, n)| BacklogCount {
                        status,
                        queue: Some(q).filter(|s| !s.is_empty()),
                        process_id: Some(p).filter(|s| !s.is_empty()),
                        tasks: n,
                    })
                    .collect())
            }

            async fn periods(
                &self,
                from: Timestamp,
                to: Timestamp,
            ) -> Result<Vec<Period>, StoreError> {
                let sql = format!(
                    "SELECT {PERIOD_COLS} FROM periods WHERE start_at >= $1 AND start_at < $2 \
                     UNION ALL SELECT {PERIOD_COLS} FROM period_deltas \
                     WHERE start_at >= $1 AND start_at < $2"
                );
                let rows: Vec<PeriodRow> = sqlx::query_as(&sql)
                    .bind(from.as_microsecond())
                    .bind(to.as_microsecond())
                    .fetch_all(self.read())
                    .await?;
                Ok(merge_periods(rows.into_iter().map(period)))
            }

            async fn overdue(
                &self,
                now: Timestamp,
            ) -> Result<Vec<(Option<String>, i64)>, StoreError> {
                // Whole due periods before now's from the counters; now's own period
                // (at most 15 minutes of due dates) from the index.
                let now = now.as_microsecond();
                let period = now.div_euclid(PERIOD_MICROS) * PERIOD_MICROS;
                let counted: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT queue, CAST(SUM(n) AS BIGINT) FROM ( \
                     SELECT queue, n FROM due_counts WHERE due_period < $1 \
                     UNION ALL SELECT queue, n FROM due_count_deltas WHERE due_period < $1) c \
                     GROUP BY queue",
                )
                .bind(period)
                .fetch_all(self.read())
                .await?;
                let current: Vec<(String, i64)> = sqlx::query_as($due_now)
                .bind(period)
                .bind(now)
                .fetch_all(self.read())
                .await?;
                let mut by_queue: BTreeMap<String, i64> = BTreeMap::new();
                for (q, n) in counted.into_iter().chain(current) {
                    *by_queue.entry(q).or_default() += n;
                }
                Ok(by_queue
                    .into_iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(q, n)| (Some(q).filter(|q| !q.is_empty()), n))
                    .collect())
            }

            async fn fold(&self) -> Result<u64, StoreError> {
                let mut tx = self.write().begin().await?;
                let mut moved = 0;
                for sql in Self::FOLD {
                    let r = sqlx::query(sql).execute(&mut *tx).await?;
                    if !sql.starts_with("SELECT") {
                        moved += r.rows_affected();
                    }
                }
                tx.commit().await?;
                Ok(moved)
            }
        }
    };
}

impl crate::SqliteStore {
    /// One writer: the totals take the deltas up to the newest, which are then deleted.
    const FOLD: [&'static str; 6] = [
        "INSERT INTO task_counts (status, queue, process_id, n) \
         SELECT status, queue, process_id, SUM(n) FROM task_count_deltas WHERE true \
         GROUP BY status, queue, process_id \
         ON CONFLICT (status, queue, process_id) DO UPDATE SET n = task_counts.n + excluded.n",
        "DELETE FROM task_count_deltas",
        "INSERT INTO due_counts (queue, due_period, n) \
         SELECT queue, due_period, SUM(n) FROM due_count_deltas WHERE true \
         GROUP BY queue, due_period \
         ON CONFLICT (queue, due_period) DO UPDATE SET n = due_counts.n + excluded.n",
        "DELETE FROM due_count_deltas",
        "INSERT INTO periods (start_at, created, completed, completed_due, completed_on_time, \
         finish_us, handle_us, handled) \
         SELECT start_at, SUM(created), SUM(completed), SUM(completed_due), \
         SUM(completed_on_time), SUM(finish_us), SUM(handle_us), SUM(handled) \
         FROM period_deltas WHERE true GROUP BY start_at \
         ON CONFLICT (start_at) DO UPDATE SET created = periods.created + excluded.created, \
         completed = periods.completed + excluded.completed, \
         completed_due = periods.completed_due + excluded.completed_due, \
         completed_on_time = periods.completed_on_time + excluded.completed_on_time, \
         finish_us = periods.finish_us + excluded.finish_us, \
         handle_us = periods.handle_us + excluded.handle_us, \
         handled = periods.handled + excluded.handled",
        "DELETE FROM period_deltas",
    ];
}

impl crate::PostgresStore {
    /// Writers on other nodes append deltas meanwhile: each fold deletes and adds in one
    /// statement (one snapshot), so a delta that commits during the fold is left for the
    /// next; the advisory lock keeps two folds from updating totals in different orders.
    const FOLD: [&'static str; 4] = [
        "SELECT pg_advisory_xact_lock(7220101)",
        "WITH d AS (DELETE FROM task_count_deltas RETURNING status, queue, process_id, n) \
         INSERT INTO task_counts (status, queue, process_id, n) \
         SELECT status, queue, process_id, SUM(n) FROM d GROUP BY status, queue, process_id \
         ORDER BY status, queue, process_id \
         ON CONFLICT (status, queue, process_id) DO UPDATE SET n = task_counts.n + excluded.n",
        "WITH d AS (DELETE FROM due_count_deltas RETURNING queue, due_period, n) \
         INSERT INTO due_counts (queue, due_period, n) \
         SELECT queue, due_period, SUM(n) FROM d GROUP BY queue, due_period \
         ORDER BY queue, due_period \
         ON CONFLICT (queue, due_period) DO UPDATE SET n = due_counts.n + excluded.n",
        "WITH d AS (DELETE FROM period_deltas RETURNING start_at, created, completed, \
         completed_due, completed_on_time, finish_us, handle_us, handled) \
         INSERT INTO periods (start_at, created, completed, completed_due, completed_on_time, \
         finish_us, handle_us, handled) \
         SELECT start_at, SUM(created), SUM(completed), SUM(completed_due), \
         SUM(completed_on_time), SUM(finish_us), SUM(handle_us), SUM(handled) \
         FROM d GROUP BY start_at ORDER BY start_at \
         ON CONFLICT (start_at) DO UPDATE SET created = periods.created + excluded.created, \
         completed = periods.completed + excluded.completed, \
         completed_due = periods.completed_due + excluded.completed_due, \
         completed_on_time = periods.completed_on_time + excluded.completed_on_time, \
         finish_us = periods.finish_us + excluded.finish_us, \
         handle_us = periods.handle_us + excluded.handle_us, \
         handled = periods.handled + excluded.handled",
    ];
}

impl_stats!(
    crate::SqliteStore,
    &format!(
        "SELECT COALESCE(queue, ''), COUNT(*) FROM tasks \
         WHERE {OPEN_DUE} AND due_at >= $1 AND due_at < $2 GROUP BY COALESCE(queue, '')"
    )
);
impl_stats!(crate::PostgresStore, crate::postgres::ops::DUE_NOW);

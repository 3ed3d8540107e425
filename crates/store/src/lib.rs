//! Worklane's store: the ports the rest of Worklane uses, each a trait by reader, and
//! their SQLite and PostgreSQL implementations.
//!
//! - [`TaskReads`]: tasks as they are now (the API, adapters, processing);
//! - [`EventLog`]: the ordered event log and consumers' positions;
//! - [`Writer`] / [`WriteTx`]: the engine's write transaction. The store only loads and
//!   saves: which change a command makes is decided by the engine inside the transaction;
//! - [`DeliveryStore`]: pending and delivered HTTP notifications;
//! - [`Leases`]: which node runs a part that must run once in a cluster;
//! - [`Retention`]: pruning old events, idempotency records and finished deliveries.
//!
//! [`Store`] is all of them together, as [`connect`] opens it. Reads never lock writers.

mod access;
mod agents;
mod announce;
mod columns;
mod deliveries;
mod due_share;
mod in_flight;
mod leases;
mod postgres;
mod redact;
mod retention;
mod sql;
mod sqlite;
mod sqlite_write;
mod stats;

pub use access::{Access, SessionRecord, TokenRecord, UserChange, UserRecord};
pub use agents::{AgentQuery, AgentReads};
pub use deliveries::{
    AttemptOutcome, AttemptResult, Delivery, DeliveryAttempt, DeliveryQuery, DeliveryRecords,
    DeliveryStatus, DeliveryStore, KnownDeliveries, NewDelivery, RecordedDelivery,
};
pub use due_share::DueShare;
pub use leases::Leases;
pub use postgres::PostgresStore;
pub use redact::{is_secret_name, redact_url};
pub use retention::{PruneReport, Retention, RetentionPolicy};
pub use sqlite::SqliteStore;
pub use stats::{BacklogCount, Period, Stats, PERIOD_MICROS};

use async_trait::async_trait;
use std::sync::Arc;
use worklane_domain::{
    Agent, BrokerId, Event, NewEvent, Selection, Status, Task, TaskRef, Timestamp,
};

/// Failures of the store itself (not refusals: those are [`CommandResult`] errors).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data could not be read: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("unsupported store url {0:?}: use sqlite://FILE or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    #[error("stored data is not valid: {0}")]
    Invalid(String),
}

/// Order of a task listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskOrder {
    /// Oldest first (brokerId ascending).
    #[default]
    BrokerId,
    /// Highest priority first, then oldest: the order tasks are distributed in.
    Priority,
}

/// How many tasks an agent holds on one channel (offered to it, or Assigned to it), as
/// [`WriteTx::holdings`] counts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub agent: String,
    pub channel: Option<String>,
    pub tasks: u32,
}

/// Where a page of a listing starts: just after this task in the listing's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageAfter {
    pub broker_id: BrokerId,
    /// The priority of that task (used with [`TaskOrder::Priority`]).
    pub priority: i32,
}

/// Filters and keyset pagination for [`Store::list_tasks`].
#[derive(Debug, Clone, Default)]
pub struct TaskQuery {
    pub status: Option<Status>,
    pub capture_point_id: Option<String>,
    pub capture_id: Option<String>,
    pub process_id: Option<String>,
    pub queue: Option<String>,
    pub assigned_to_user: Option<String>,
    pub due_before: Option<Timestamp>,
    /// Only open tasks (not Completed, Canceled or Rejected) due before this instant: the
    /// tasks overdue at it.
    pub overdue_at: Option<Timestamp>,
    /// Only tasks whose captureId starts with this text (case-sensitive).
    pub capture_id_prefix: Option<String>,
    /// Only tasks in a workbin with this target (an agent, group or place).
    pub queue_target: Option<String>,
    pub order: TaskOrder,
    pub after: Option<PageAfter>,
    /// At most this many tasks (1..=1000; 0 means 100).
    pub limit: u32,
}

/// Tasks as they are now.
#[async_trait]
pub trait TaskReads: Send + Sync + std::fmt::Debug + 'static {
    async fn get_task(&self, id: BrokerId) -> Result<Option<Task>, StoreError>;

    /// Looks a task up by brokerId, or by captureId within a capture point (the oldest such
    /// task when duplicates are allowed).
    async fn find_task(&self, task: &TaskRef) -> Result<Option<Task>, StoreError>;

    async fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<Task>, StoreError>;

    /// Tasks processing should move now: New with activation passed, and Captured;
    /// oldest first.
    async fn tasks_to_process(&self, now: Timestamp, limit: u32) -> Result<Vec<Task>, StoreError>;

    /// Finished tasks (Completed, Canceled, Rejected) whose expiration has passed.
    async fn tasks_expired(&self, now: Timestamp, limit: u32) -> Result<Vec<Task>, StoreError>;

    /// The earliest activationDateTime of a New task still waiting for it.
    async fn next_activation(&self, now: Timestamp) -> Result<Option<Timestamp>, StoreError>;
    /// Queued or Distributed tasks due for reprioritization at `now`, the longest due
    /// first (from an index of due times, not a scan).
    async fn tasks_to_reprioritize(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<BrokerId>, StoreError>;
    /// The earliest reprioritization due after `now`.
    async fn next_reprioritization(&self, now: Timestamp) -> Result<Option<Timestamp>, StoreError>;
}

/// The one ordered event log, and each consumer's durable position in it.
#[async_trait]
pub trait EventLog: Send + Sync + std::fmt::Debug + 'static {
    /// Events with `seq > after`, in order, at most `limit`.
    async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<Event>, StoreError>;

    /// A task's whole history, oldest first.
    async fn task_events(&self, id: BrokerId) -> Result<Vec<Event>, StoreError>;

    /// The newest event's seq (0 when the log is empty).
    async fn last_seq(&self) -> Result<i64, StoreError>;

    /// A consumer's durable position (0 when it has none yet).
    async fn cursor(&self, consumer: &str) -> Result<i64, StoreError>;

    async fn save_cursor(&self, consumer: &str, seq: i64, now: Timestamp)
        -> Result<(), StoreError>;
}

/// Opens write transactions. Only the engine holds one.
#[async_trait]
pub trait Writer: Send + Sync + std::fmt::Debug + 'static {
    async fn begin(&self) -> Result<Box<dyn WriteTx>, StoreError>;
}

/// One write transaction: what the engine loads and saves while it decides a batch of
/// commands. Nothing is visible to readers until [`WriteTx::commit`]; dropping it rolls
/// back.
#[async_trait]
pub trait WriteTx: Send {
    /// Results stored under any of `keys` by earlier commands: (key, result JSON).
    async fn stored_results(
        &mut self,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, StoreError>;

    /// The tasks with these brokerIds (those that exist) and every task with one of these
    /// (capture point, captureId) pairs, held for this transaction: on PostgreSQL the
    /// rows are locked (in brokerId order, so writers on other nodes cannot deadlock on
    /// them) and so is each captureId, so two nodes cannot both create it.
    async fn load(
        &mut self,
        ids: &[BrokerId],
        caps: &[(String, String)],
    ) -> Result<Vec<Task>, StoreError>;

    /// The best `limit` tasks `sel` matches, in [`Selection::order`], leaving out
    /// `exclude`. Rows another transaction holds are skipped, not waited for.
    async fn claim(
        &mut self,
        sel: &Selection,
        exclude: &[BrokerId],
        limit: u32,
    ) -> Result<Vec<Task>, StoreError>;

    /// Up to `limit` tasks whose reprioritization (or activation while Queued) is due at
    /// `now`, the longest due first. On PostgreSQL they are locked and rows another
    /// transaction holds are skipped, so nodes sharing the store take different tasks.
    /// With `share`, only the due tasks of that [`DueShare`].
    async fn claim_due(
        &mut self,
        now: Timestamp,
        limit: u32,
        share: Option<DueShare>,
    ) -> Result<Vec<Task>, StoreError>;

    /// Distributed tasks whose offer expired at `now`, the longest expired first, at most
    /// `limit`; claimed like [`WriteTx::claim_due`].
    async fn claim_expired_offers(
        &mut self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Task>, StoreError>;

    /// The agents with these ids (those that exist), locked for this transaction on
    /// PostgreSQL. Transactions lock agents before tasks, so none waits on another in a
    /// cycle.
    async fn lock_agents(&mut self, ids: &[String]) -> Result<Vec<Agent>, StoreError>;

    /// Every Ready agent's id and version, the one waiting longest first (not locked: the
    /// caller picks which to claim with [`WriteTx::claim_agents`]).
    async fn ready_agent_ids(&mut self) -> Result<Vec<(String, i64)>, StoreError>;

    /// The agents with these ids that are still Ready, in id order. On PostgreSQL they are
    /// locked, and agents another transaction holds are skipped.
    async fn claim_agents(&mut self, ids: &[String]) -> Result<Vec<Agent>, StoreError>;

    /// Adds an agent; false (and nothing written) when its id exists.
    async fn insert_agent(&mut self, agent: &Agent) -> Result<bool, StoreError>;

    /// Writes back agents this transaction loaded.
    async fn update_agents(&mut self, agents: &[&Agent]) -> Result<(), StoreError>;

    /// The tasks these agents hold: offered to them, or Assigned to them, locked on
    /// PostgreSQL (to change them; [`WriteTx::holdings`] counts them without loading).
    async fn work_of(&mut self, ids: &[String]) -> Result<Vec<Task>, StoreError>;

    /// What these agents hold, as last committed, without loading the tasks: how many
    /// tasks each holds on each channel (to count an agent's load).
    async fn holdings(&mut self, ids: &[String]) -> Result<Vec<Holding>, StoreError>;

    /// `n` new brokerIds, ascending.
    async fn alloc_ids(&mut self, n: usize) -> Result<Vec<BrokerId>, StoreError>;

    /// Inserts or replaces these tasks.
    async fn put_tasks(&mut self, tasks: &[&Task]) -> Result<(), StoreError>;

    /// Starts sending the writes held back so far, and returns without waiting for them:
    /// the transaction's next read, draw or commit waits, and fails if they did. A store
    /// holds a transaction's writes until its next read or its commit, to send them in
    /// one go; a caller with more to compute before either calls this so the store works
    /// meanwhile.
    async fn flush(&mut self) -> Result<(), StoreError>;

    async fn delete_tasks(&mut self, ids: &[BrokerId]) -> Result<(), StoreError>;

    /// Appends events to the log, in order, giving each its seq.
    async fn append_events(
        &mut self,
        events: Vec<(NewEvent, Task)>,
    ) -> Result<Vec<Event>, StoreError>;

    /// Keeps commands' results under their idempotency keys: (key, result JSON).
    async fn record_results(
        &mut self,
        rows: &[(String, String)],
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Saves a consumer's position in the same transaction.
    async fn save_cursor(
        &mut self,
        consumer: &str,
        seq: i64,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// Every port of one backend together, as [`connect`] opens it.
#[async_trait]
pub trait Store:
    TaskReads + EventLog + Writer + DeliveryStore + Leases + Retention + AgentReads + Access + Stats
{
    /// Touches the database (health checks).
    async fn ping(&self) -> Result<(), StoreError>;

    /// The backend's name, for logs and metrics: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Commits of every process sharing the store, as the newest seq each wrote (one item
    /// per committed batch with events): PostgreSQL's LISTEN/NOTIFY. None where one
    /// process writes (SQLite): its engine announces its own commits. The stream ends
    /// when the connection is lost; listen again then.
    async fn listen_commits(&self) -> Result<Option<CommitStream>, StoreError>;
}

/// Seqs of committed batches, as [`Store::listen_commits`] hands them over.
pub type CommitStream = futures::stream::BoxStream<'static, Result<i64, StoreError>>;

/// Opens the store a URL names (`sqlite://FILE`, `sqlite::memory:`, `postgres://...`),
/// creating the SQLite file when missing, and applies pending migrations.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// Microseconds since the epoch: how timestamps are kept in indexed columns.
/// When the scheduler reprioritizes `t`: its reprioritizeDateTime, not before its
/// activation, while it waits in a queue; never otherwise.
pub(crate) fn reprioritize_at(t: &Task) -> Option<Timestamp> {
    if !matches!(t.status, Status::Queued | Status::Distributed) {
        return None;
    }
    let r = t.reprioritize_date_time?;
    Some(t.activation_date_time.map_or(r, |a| a.max(r)))
}

pub(crate) fn micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

pub mod testing;

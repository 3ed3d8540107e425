//! Worklane's store: the one [`Store`] trait and its SQLite and PostgreSQL implementations.
//!
//! Every write goes through [`Store::execute`], which runs a batch of commands in one
//! transaction: for each, the task change and its event are written together (SPEC
//! section 3). Reads never lock writers.

mod command;
mod deliveries;
mod postgres;
mod redact;
mod sql;
mod sqlite;

pub use command::{Command, CommandResult, Op, Outcome};
pub use deliveries::{
    AttemptOutcome, AttemptResult, Delivery, DeliveryAttempt, DeliveryQuery, DeliveryRecords,
    DeliveryStatus, DeliveryStore, KnownDeliveries, NewDelivery, RecordedDelivery, HELD_UNTIL,
};
pub use postgres::PostgresStore;
pub use redact::{is_secret_name, redact_url};
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use std::sync::Arc;
use worklane_domain::{BrokerId, Event, Status, Task, TaskRef, Timestamp};

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
    pub order: TaskOrder,
    pub after: Option<PageAfter>,
    /// At most this many tasks (1..=1000; 0 means 100).
    pub limit: u32,
}

/// The store: tasks, the event log, consumers' positions, and (through the
/// [`DeliveryStore`] supertrait) pending HTTP notifications.
#[async_trait]
pub trait Store: DeliveryStore + Send + Sync + std::fmt::Debug + 'static {
    /// Runs `batch` in one transaction, in order; each command gets its own result.
    /// A refusal does not abort the others. An `Err` means nothing of the batch was written.
    async fn execute(
        &self,
        batch: Vec<Command>,
        now: Timestamp,
    ) -> Result<Vec<CommandResult>, StoreError>;

    async fn get_task(&self, id: BrokerId) -> Result<Option<Task>, StoreError>;

    /// Looks a task up by brokerId, or by captureId within a capture point (the oldest such
    /// task when duplicates are allowed).
    async fn find_task(&self, task: &TaskRef) -> Result<Option<Task>, StoreError>;

    async fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<Task>, StoreError>;

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

    /// Tasks processing should move now: New with activation passed, and Captured;
    /// oldest first.
    async fn tasks_to_process(&self, now: Timestamp, limit: u32) -> Result<Vec<Task>, StoreError>;

    /// Finished tasks (Completed, Canceled, Rejected) whose expiration has passed.
    async fn tasks_expired(&self, now: Timestamp, limit: u32) -> Result<Vec<Task>, StoreError>;

    /// The earliest activationDateTime of a New task still waiting for it.
    async fn next_activation(&self, now: Timestamp) -> Result<Option<Timestamp>, StoreError>;

    /// Touches the database (health checks).
    async fn ping(&self) -> Result<(), StoreError>;

    /// The backend's name, for logs and metrics: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
}

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
pub(crate) fn micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

pub mod testing;

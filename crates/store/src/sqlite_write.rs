//! SQLite's one write connection, taken in turn (first come, first served) by every
//! writer: the engine's batches, deliveries, cursors, leases, retention and access.
//!
//! It is a connection behind a fair lock rather than a pool of one: a pool pings a
//! connection each time it is released (a round trip to the connection's thread, in a
//! task of its own), and the engine's writer releases and takes it again on every group
//! commit, which cost about a sixth of a commit's time under load.

use crate::StoreError;
use sqlx::{Database, Sqlite, SqliteConnection, TransactionManager};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// The write connection; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct WriteConn(Arc<Mutex<SqliteConnection>>);

impl WriteConn {
    pub(crate) fn new(conn: SqliteConnection) -> Self {
        Self(Arc::new(Mutex::new(conn)))
    }

    /// The connection, once every writer before this one is done with it.
    pub(crate) async fn acquire(&self) -> Result<OwnedMutexGuard<SqliteConnection>, StoreError> {
        Ok(self.0.clone().lock_owned().await)
    }

    /// Takes the connection and begins a transaction on it.
    pub(crate) async fn begin(&self) -> Result<WriteTransaction, StoreError> {
        let mut conn = self.acquire().await?;
        <Sqlite as Database>::TransactionManager::begin(&mut conn, None).await?;
        Ok(WriteTransaction { conn, open: true })
    }
}

/// A transaction on the write connection: rolled back when dropped uncommitted (the
/// rollback runs on the connection's thread before whatever the next writer sends).
#[derive(Debug)]
pub(crate) struct WriteTransaction {
    conn: OwnedMutexGuard<SqliteConnection>,
    open: bool,
}

impl WriteTransaction {
    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        <Sqlite as Database>::TransactionManager::commit(&mut self.conn).await?;
        self.open = false;
        Ok(())
    }
}

impl Deref for WriteTransaction {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl DerefMut for WriteTransaction {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}

impl Drop for WriteTransaction {
    fn drop(&mut self) {
        if self.open {
            <Sqlite as Database>::TransactionManager::start_rollback(&mut self.conn);
        }
    }
}

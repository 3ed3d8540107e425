//! Commit announcements to other processes sharing a PostgreSQL store: after a write
//! transaction commits, its newest seq is sent on a LISTEN/NOTIFY channel.
//!
//! Not from inside the write transaction: a transaction that notifies takes a
//! database-wide lock at commit and keeps it until its commit is flushed, so every writer
//! on every node would commit one after the other. Here one task per process sends the
//! newest seq committed so far, from a connection of its own whose commits are not waited
//! for (`synchronous_commit = off`): announcements coalesce under load, one in flight at a
//! time, and a lost one costs a reader only its poll interval.

use sqlx::{Connection, PgPool};
use std::sync::Arc;
use tokio::sync::watch;

/// Hands committed seqs to the process's announcing task; cheap to clone. The task stops
/// when the last clone is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Announcer {
    newest: Arc<watch::Sender<i64>>,
}

impl Announcer {
    /// Starts the announcing task on `pool`'s database, sending on `channel`.
    pub(crate) fn start(pool: PgPool, channel: &'static str) -> Self {
        let (tx, rx) = watch::channel(0);
        tokio::spawn(run(pool, channel, rx));
        Self {
            newest: Arc::new(tx),
        }
    }

    /// Events up to `seq` are committed.
    pub(crate) fn announce(&self, seq: i64) {
        self.newest.send_if_modified(|cur| {
            let newer = seq > *cur;
            if newer {
                *cur = seq;
            }
            newer
        });
    }
}

async fn run(pool: PgPool, channel: &'static str, mut rx: watch::Receiver<i64>) {
    // Detached from the pool: with `synchronous_commit = off` it must never carry anyone
    // else's writes.
    let mut conn: Option<sqlx::PgConnection> = None;
    // Ends when every Announcer is dropped.
    while rx.changed().await.is_ok() {
        let seq = *rx.borrow_and_update();
        if conn.is_none() {
            conn = match pool.acquire().await {
                Ok(c) => {
                    let mut c = c.detach();
                    match sqlx::query("SET synchronous_commit = off")
                        .execute(&mut c)
                        .await
                    {
                        Ok(_) => Some(c),
                        Err(e) => {
                            tracing::debug!(error = %e, "announcing commits: no connection");
                            None
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "announcing commits: no connection");
                    None
                }
            };
        }
        let Some(c) = conn.as_mut() else { continue };
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(seq.to_string())
            .execute(&mut *c)
            .await;
        if let Err(e) = sent {
            // Readers fall back to polling; the next commit tries a new connection.
            tracing::debug!(error = %e, "announcing a commit failed");
            if let Some(c) = conn.take() {
                let _ = c.close().await;
            }
        }
    }
    if let Some(c) = conn {
        let _ = c.close().await;
    }
}

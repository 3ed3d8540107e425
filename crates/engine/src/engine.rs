//! The write path: commands from every channel are queued to one writer that commits them
//! in batches (group commit): one transaction, one fsync, many commands.

use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use worklane_domain::{DomainError, ErrorCode, Timestamp};
use worklane_store::{Command, CommandResult, Outcome, Store, StoreError};

/// Why a command did not take effect.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// The domain refused it (a protocol error code).
    #[error(transparent)]
    Refused(#[from] DomainError),
    /// The store failed; nothing was written.
    #[error("store failure: {0}")]
    Store(Arc<StoreError>),
    /// The engine is shutting down and takes no more commands.
    #[error("the engine is shutting down")]
    Closed,
}

impl EngineError {
    /// The error as the protocol reports it (INTERNAL_ERROR for the server's own faults).
    pub fn to_domain(&self) -> DomainError {
        match self {
            Self::Refused(e) => e.clone(),
            other => DomainError::new(ErrorCode::InternalError, other.to_string()),
        }
    }
}

/// Tuning of the write path.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The most commands committed in one transaction.
    pub max_batch: usize,
    /// Commands waiting for the writer before callers are made to wait.
    pub queue_depth: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            max_batch: 256,
            queue_depth: 4096,
        }
    }
}

type Reply = oneshot::Sender<Result<CommandResult, Arc<StoreError>>>;

/// A handle to the engine; cheap to clone. The writer stops once every handle is dropped
/// and the commands already queued are committed.
#[derive(Debug, Clone)]
pub struct Engine {
    store: Arc<dyn Store>,
    tx: mpsc::Sender<(Command, Reply)>,
    seq: watch::Receiver<i64>,
}

impl Engine {
    /// Starts the writer. Await the handle after dropping every `Engine` to drain it.
    pub async fn start(
        store: Arc<dyn Store>,
        options: EngineOptions,
    ) -> Result<(Engine, JoinHandle<()>), StoreError> {
        let last = store.last_seq().await?;
        let (seq_tx, seq_rx) = watch::channel(last);
        let (tx, rx) = mpsc::channel(options.queue_depth.max(1));
        let writer = tokio::spawn(write_loop(
            store.clone(),
            rx,
            seq_tx,
            options.max_batch.max(1),
        ));
        Ok((
            Engine {
                store,
                tx,
                seq: seq_rx,
            },
            writer,
        ))
    }

    /// Runs one command: its effect and event are durable when this returns `Ok`.
    pub async fn execute(&self, cmd: Command) -> Result<Outcome, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((cmd, reply))
            .await
            .map_err(|_| EngineError::Closed)?;
        match rx.await {
            Ok(Ok(Ok(outcome))) => Ok(outcome),
            Ok(Ok(Err(refusal))) => Err(EngineError::Refused(refusal)),
            Ok(Err(e)) => Err(EngineError::Store(e)),
            Err(_) => Err(EngineError::Closed),
        }
    }

    /// Like [`Engine::execute`], but a refusal is a value, not an error (adapters that
    /// answer refusals in their own protocol use this).
    pub async fn execute_result(&self, cmd: Command) -> Result<CommandResult, EngineError> {
        match self.execute(cmd).await {
            Ok(o) => Ok(Ok(o)),
            Err(EngineError::Refused(e)) => Ok(Err(e)),
            Err(e) => Err(e),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The newest committed event's seq; changes every time events are committed.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.seq.clone()
    }
}

async fn write_loop(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<(Command, Reply)>,
    seq: watch::Sender<i64>,
    max_batch: usize,
) {
    let mut jobs: Vec<(Command, Reply)> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.recv().await {
        jobs.push(first);
        while jobs.len() < max_batch {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let n = jobs.len();
        let cmds: Vec<Command> = jobs.iter().map(|j| j.0.clone()).collect();
        let now = Timestamp::now();
        match store.execute(cmds, now).await {
            Ok(results) => {
                publish(&seq, &results);
                for ((_, reply), r) in jobs.drain(..).zip(results) {
                    let _ = reply.send(Ok(r));
                }
            }
            Err(e) if n > 1 => {
                // One command broke the batch: run each alone so the others still land.
                tracing::warn!(error = %e, batch = n, "batch failed; retrying its commands one by one");
                for (cmd, reply) in jobs.drain(..) {
                    let r = store.execute(vec![cmd], now).await;
                    if let Ok(rs) = &r {
                        publish(&seq, rs);
                    }
                    let _ = reply.send(r.map(|mut v| v.remove(0)).map_err(Arc::new));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "command failed in the store");
                let e = Arc::new(e);
                for (_, reply) in jobs.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
        metrics::histogram!("worklane_commit_batch_size").record(n as f64);
        metrics::histogram!("worklane_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("worklane_commands_total").increment(n as u64);
    }
    tracing::debug!("engine writer drained and stopped");
}

fn publish(seq: &watch::Sender<i64>, results: &[CommandResult]) {
    let max = results
        .iter()
        .filter_map(|r| r.as_ref().ok()?.event.as_ref().map(|e| e.seq))
        .max();
    if let Some(m) = max {
        seq.send_if_modified(|cur| {
            if m > *cur {
                *cur = m;
                true
            } else {
                false
            }
        });
    }
}

//! The scheduler of processing: New tasks whose activation has passed are classified and
//! prioritized, Queued tasks whose reprioritizeDateTime has come are reprioritized, and
//! finished tasks past their expiration are archived (TaskStopped). What each step does is
//! decided by the business rules inside a write transaction ([`worklane_domain::Op::Process`],
//! and [`Engine::process_due`] for reprioritizations, which claims them there); this loop
//! only finds the due tasks, from indexes of due times.
//!
//! Many nodes may find the same due task: the write transaction locks it and decides
//! against what it loads, so the second node finds nothing left to do.

use crate::engine::{Engine, EngineError};
use futures::future::join_all;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use worklane_domain::{Action, ActionMeta, Command, TaskRef, Timestamp};
use worklane_store::DueShare;

/// The least time between two passes woken by commits.
const COMMIT_PASS_GAP: Duration = Duration::from_millis(20);

/// The most batches one reprioritization worker takes in a pass, so the pass still
/// comes round to new and expired tasks.
const DUE_ROUNDS: usize = 8;

/// The channel name processing writes as origin and actor.
pub const ORIGIN: &str = "processor";

/// Who processing acts as: its events' origin and actor.
pub(crate) fn meta() -> ActionMeta {
    ActionMeta::default().defaulted(ORIGIN)
}

/// The background processor.
#[derive(Debug, Clone)]
pub struct Processor {
    engine: Engine,
    batch: u32,
    poll: Duration,
}

impl Processor {
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            batch: 256,
            poll: Duration::from_secs(1),
        }
    }

    /// The most tasks of each kind one pass takes on.
    pub fn batch(mut self, n: u32) -> Self {
        self.batch = n.max(1);
        self
    }

    /// How often to look again when nothing woke the processor.
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll = d;
        self
    }

    async fn run_all(&self, cmds: Vec<Command>) -> Result<usize, EngineError> {
        let results = join_all(cmds.into_iter().map(|c| self.engine.execute_result(c))).await;
        let mut done = 0;
        for r in results {
            match r? {
                Ok(_) => done += 1,
                // Changed under us (held, canceled, done by another node): nothing to do.
                Err(refusal) => tracing::debug!(%refusal, "processing step skipped"),
            }
        }
        Ok(done)
    }

    /// One pass at time `now`: processes every ready task and every task due for
    /// reprioritization, and archives expired ones. Returns how many changes it made.
    pub async fn step(&self, now: Timestamp) -> Result<usize, EngineError> {
        Ok(self.pass(now).await?.0)
    }

    /// [`Processor::step`], also returning the next reprioritization after `now` when
    /// the pass learnt it (the earliest one was not due yet), so `run` need not ask again.
    async fn pass(
        &self,
        now: Timestamp,
    ) -> Result<(usize, Option<Option<Timestamp>>), EngineError> {
        let store = self.engine.tasks();
        let store_err = |e| EngineError::Store(std::sync::Arc::new(e));
        let ready = store
            .tasks_to_process(now, self.batch)
            .await
            .map_err(store_err)?;
        // One command per task, all in one wave: they share group commits.
        let cmds = ready
            .iter()
            .map(|t| Command::process(TaskRef::Broker(t.broker_id), meta()))
            .collect();
        let mut done = self.run_all(cmds).await?;
        // A claim is a write transaction: asked for only when the index says one is due
        // (on SQLite it would take the one write connection on every pass).
        let first = store
            .next_reprioritization(Timestamp::MIN)
            .await
            .map_err(store_err)?;
        let next_reprioritization = if first.is_some_and(|at| at <= now) {
            done += self.reprioritize_due().await?;
            None
        } else {
            Some(first)
        };
        let expired = store
            .tasks_expired(now, self.batch)
            .await
            .map_err(store_err)?;
        let stops = expired
            .iter()
            .map(|t| Command::act(TaskRef::Broker(t.broker_id), Action::Stop, meta()))
            .collect();
        done += self.run_all(stops).await?;
        Ok((done, next_reprioritization))
    }

    /// Reprioritizes due tasks: claimed and decided inside transactions of their own, a
    /// batch at a time (at a million due tasks, a command per task would cost more than
    /// the decisions). PostgreSQL runs a worker for each [`DueShare`] at once (with two
    /// workers, a 1M pass left a fifth of two cores idle), each claiming its share's rows,
    /// so the database works on some while this process decides others; each worker is a
    /// task of its own, so their serialization runs on every thread. SQLite has one write
    /// connection: one worker, taking every share's tasks, on this task (on a task of its
    /// own it ran 1.1x slower).
    async fn reprioritize_due(&self) -> Result<usize, EngineError> {
        if self.engine.backend() != "postgres" {
            return due_worker(self.engine.clone(), self.batch, None).await;
        }
        let mut set = tokio::task::JoinSet::new();
        for share in DueShare::all() {
            set.spawn(due_worker(self.engine.clone(), self.batch, Some(share)));
        }
        let mut done = 0;
        while let Some(r) = set.join_next().await {
            match r {
                Ok(n) => done += n?,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Only a dropped set aborts its tasks, and then nobody is waiting here.
                Err(_) => return Err(EngineError::Closed),
            }
        }
        Ok(done)
    }

    /// Runs until `cancel`, waking on new events, on the next activation time, or on the
    /// poll interval.
    pub async fn run(self, cancel: CancellationToken) {
        let mut wake = self.engine.subscribe();
        let mut woken_by_commit = false;
        loop {
            if cancel.is_cancelled() {
                break;
            }
            if woken_by_commit {
                // Under load commits come by the hundred a second, on every node, and
                // creates are processed in their own transaction: a pass per commit
                // would mostly find nothing. Commits that came meanwhile are caught
                // by this one pass.
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(COMMIT_PASS_GAP) => {}
                }
                wake.borrow_and_update();
                woken_by_commit = false;
            }
            let now = self.engine.now();
            let known = match self.pass(now).await {
                Ok((n, _)) if n > 0 => continue,
                Ok((_, known)) => known,
                Err(e) => {
                    tracing::warn!(error = %e, "processing step failed");
                    None
                }
            };
            // The next activation is a time on the engine's clock; the poll interval is
            // a fallback for writers this process does not hear from.
            let clock = self.engine.clock();
            let tasks = self.engine.tasks();
            let reprioritization = match known {
                Some(at) => Ok(at),
                None => tasks.next_reprioritization(now).await,
            };
            let next = match (tasks.next_activation(now).await, reprioritization) {
                (Ok(a), Ok(r)) => a.into_iter().chain(r).min(),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(error = %e, "reading the next due time failed");
                    None
                }
            };
            let activation = match next {
                Some(next) => clock.sleep_until(next),
                None => Box::pin(std::future::pending()),
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = wake.changed() => woken_by_commit = true,
                _ = activation => {}
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
        tracing::debug!("processor stopped");
    }
}

/// One reprioritization worker (of `share`, or of every due task): batch after batch
/// until a claim comes back short (or [`DUE_ROUNDS`]), so workers do not wait for the
/// slowest at the end of every batch.
async fn due_worker(
    engine: Engine,
    batch: u32,
    share: Option<DueShare>,
) -> Result<usize, EngineError> {
    let mut done = 0;
    for _ in 0..DUE_ROUNDS {
        let n = engine.process_due(batch, share).await?;
        done += n;
        if n < batch as usize {
            break;
        }
    }
    Ok(done)
}

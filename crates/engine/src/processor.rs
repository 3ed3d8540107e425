//! Processing until rules exist: New → Captured (classified) → Queued (prioritized), once
//! a task's activationDateTime has passed; finished tasks past their expiration are
//! archived (TaskStopped). The rules issue replaces what is decided here, not where.

use crate::engine::{Engine, EngineError};
use futures::future::join_all;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use worklane_domain::{
    Action, ActionMeta, Classification, Command, Status, Task, TaskRef, Timestamp,
};

/// The least time between two passes woken by commits.
const COMMIT_PASS_GAP: Duration = Duration::from_millis(20);

/// The channel name processing writes as origin and actor.
pub const ORIGIN: &str = "processor";

/// Who processing acts as: its events' origin and actor.
pub(crate) fn meta() -> ActionMeta {
    ActionMeta::default().defaulted(ORIGIN)
}

/// Whether processing moves `task` on at `now`: New with its activation passed (not
/// held), or Captured.
pub(crate) fn ready(task: &Task, now: Timestamp) -> bool {
    match task.status {
        Status::New => task.activation_date_time.is_none_or(|a| a <= now),
        Status::Captured => true,
        _ => false,
    }
}

/// What processing does to a ready task in `status`, in order: classify a New task,
/// then prioritize it into its queue.
pub(crate) fn steps(status: Status) -> impl Iterator<Item = Action> {
    let classify = (status == Status::New).then(|| Action::Classify(Classification::default()));
    classify
        .into_iter()
        .chain(std::iter::once(Action::Prioritize {
            priority: None,
            reprioritize_date_time: None,
        }))
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
                // Changed under us (held, canceled...): nothing to do for it.
                Err(refusal) => tracing::debug!(%refusal, "processing step skipped"),
            }
        }
        Ok(done)
    }

    /// One pass at time `now`: moves every ready task one or two steps on and archives
    /// expired ones. Returns how many changes it made.
    pub async fn step(&self, now: Timestamp) -> Result<usize, EngineError> {
        let store = self.engine.tasks();
        let ready = store
            .tasks_to_process(now, self.batch)
            .await
            .map_err(|e| EngineError::Store(e.into()))?;
        // Both steps of every ready task in one wave: the writer keeps the order in which
        // commands are sent, so they share group commits and each prioritize sees its
        // task classified.
        let mut cmds = Vec::with_capacity(ready.len() * 2);
        for t in &ready {
            for action in steps(t.status) {
                cmds.push(Command::act(TaskRef::Broker(t.broker_id), action, meta()));
            }
        }
        let mut done = self.run_all(cmds).await?;
        let expired = store
            .tasks_expired(now, self.batch)
            .await
            .map_err(|e| EngineError::Store(e.into()))?;
        let stops = expired
            .iter()
            .map(|t| Command::act(TaskRef::Broker(t.broker_id), Action::Stop, meta()))
            .collect();
        done += self.run_all(stops).await?;
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
            match self.step(now).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "processing step failed"),
            }
            // The next activation is a time on the engine's clock; the poll interval is
            // a fallback for writers this process does not hear from.
            let clock = self.engine.clock();
            let activation = match self.engine.tasks().next_activation(now).await {
                Ok(Some(next)) => clock.sleep_until(next),
                _ => Box::pin(std::future::pending()),
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

//! Interaction queues, compiled once: where a task goes, and who may take it.

use crate::config::{DistributionConfig, Mode, QueueConfig};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use worklane_domain::{Agent, Task, Timestamp};
use worklane_rules::{Condition, Scope};

/// A configuration that cannot be used, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct QueueError {
    pub key: String,
    pub message: String,
}

fn err(key: impl Into<String>, message: impl Into<String>) -> QueueError {
    QueueError {
        key: key.into(),
        message: message.into(),
    }
}

/// One compiled interaction queue.
#[derive(Debug)]
pub struct Queue {
    pub id: String,
    pub mode: Mode,
    pub offer_timeout: Duration,
    when: Option<Condition>,
    requires: Option<Condition>,
}

impl Queue {
    /// Whether `agent` may take tasks of this queue, asked without a task: None when the
    /// answer depends on the task.
    pub fn admits(&self, agent: &Agent, now: Timestamp) -> Result<Option<bool>, String> {
        match &self.requires {
            None => Ok(Some(true)),
            Some(c) if c.reads_task() => Ok(None),
            Some(c) => c.holds(agent, None, now).map(Some),
        }
    }

    /// Whether `agent` may take `task` of this queue.
    pub fn may_take(&self, agent: &Agent, task: &Task, now: Timestamp) -> Result<bool, String> {
        match &self.requires {
            None => Ok(true),
            Some(c) => c.holds(agent, Some(task), now),
        }
    }

    /// The `requires` source, for messages.
    pub fn requires(&self) -> Option<&str> {
        self.requires.as_ref().map(Condition::source)
    }
}

/// Every interaction queue, in the configuration's order, and the distribution settings.
#[derive(Debug, Default)]
pub struct Queues {
    queues: Vec<Queue>,
    by_process: HashMap<String, usize>,
    pub settings: DistributionConfig,
    /// Whether some push queue admits an agent, by agent id: (the agent's version, the
    /// answer). Kept only when no push queue's `requires` reads `now`; a reload builds new
    /// `Queues`, and with them a new memo.
    push_memo: Mutex<HashMap<String, (i64, bool)>>,
    push_reads_now: bool,
}

/// The most agents [`Queues::may_push_to`] remembers before it starts over.
const PUSH_MEMO_MAX: usize = 100_000;

impl Queues {
    /// Compiles the queues, refusing duplicates, a process in two queues, a bad
    /// condition or an offer timeout outside 1 s..=1 day.
    pub fn new(configs: &[QueueConfig], settings: DistributionConfig) -> Result<Self, QueueError> {
        if settings.point_id.trim().is_empty() || settings.point_id.chars().count() > 16 {
            return Err(err(
                "distribution.point_id",
                "must be 1 to 16 characters (seed 001 DistributionPointId)",
            ));
        }
        if !(1..=10_000).contains(&settings.scan) {
            return Err(err("distribution.scan", "must be 1..=10000"));
        }
        let mut queues: Vec<Queue> = Vec::with_capacity(configs.len());
        let mut by_process = HashMap::new();
        for (i, c) in configs.iter().enumerate() {
            let key = format!("queue[{i}]");
            let id = c.id.trim();
            if id.is_empty() || id.chars().count() > 255 {
                return Err(err(format!("{key}.id"), "must be 1 to 255 characters"));
            }
            if queues.iter().any(|q| q.id == id) {
                return Err(err(
                    format!("{key}.id"),
                    format!("queue {id:?} is defined twice"),
                ));
            }
            if c.offer_timeout < Duration::from_secs(1)
                || c.offer_timeout > Duration::from_secs(86_400)
            {
                return Err(err(
                    format!("queue {id:?}.offer_timeout"),
                    "must be 1s..=1d",
                ));
            }
            for p in &c.processes {
                if let Some(&other) = by_process.get(p) {
                    let other: &Queue = &queues[other];
                    return Err(err(
                        format!("queue {id:?}.processes"),
                        format!("process {p:?} is already in queue {:?}", other.id),
                    ));
                }
                by_process.insert(p.clone(), i);
            }
            let when = c
                .when
                .as_deref()
                .map(|s| Condition::compile(s, Scope::Task))
                .transpose()
                .map_err(|e| err(format!("queue {id:?}.when"), e))?;
            let requires = c
                .requires
                .as_deref()
                .map(|s| Condition::compile(s, Scope::AgentAndTask))
                .transpose()
                .map_err(|e| err(format!("queue {id:?}.requires"), e))?;
            queues.push(Queue {
                id: id.to_owned(),
                mode: c.mode,
                offer_timeout: c.offer_timeout,
                when,
                requires,
            });
        }
        let push_reads_now = queues
            .iter()
            .any(|q| q.mode.pushes() && q.requires.as_ref().is_some_and(Condition::reads_now));
        Ok(Self {
            queues,
            by_process,
            settings,
            push_memo: Mutex::default(),
            push_reads_now,
        })
    }

    /// Whether some push queue may admit `agent` (a queue whose answer depends on the task
    /// counts as may, and so does a `requires` that fails, which is logged when a task is
    /// weighed). The answer is remembered by the agent's id and version, so a distribution
    /// pass need not load the agents no push queue takes (see [`Queues::known_unpushable`]).
    pub fn may_push_to(&self, agent: &Agent, now: Timestamp) -> bool {
        let may = || {
            self.queues
                .iter()
                .any(|q| q.mode.pushes() && !matches!(q.admits(agent, now), Ok(Some(false))))
        };
        if self.push_reads_now {
            return may();
        }
        let mut memo = self.push_memo.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&(version, answer)) = memo.get(&agent.id) {
            if version == agent.version {
                return answer;
            }
        }
        let answer = may();
        if memo.len() >= PUSH_MEMO_MAX {
            memo.clear();
        }
        memo.insert(agent.id.clone(), (agent.version, answer));
        answer
    }

    /// Whether the agent `id` at `version` is known to be one no push queue admits.
    pub fn known_unpushable(&self, id: &str, version: i64) -> bool {
        let memo = self.push_memo.lock().unwrap_or_else(|e| e.into_inner());
        memo.get(id) == Some(&(version, false))
    }

    /// Whether any queue is configured (without one, tasks rest Queued).
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&Queue> {
        self.queues.iter().find(|q| q.id == id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Queue> {
        self.queues.iter()
    }

    /// The queue `task` enters: the one its process names (`named`: the process's
    /// `queue` in the business structure), else the queue listing its process, else the
    /// first whose `when` holds. A `when` that fails to evaluate is an error naming the
    /// queue.
    pub fn route(
        &self,
        task: &Task,
        named: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<&Queue>, String> {
        if let Some(q) = named {
            return self
                .get(q)
                .map(Some)
                .ok_or_else(|| format!("process queue {q:?} is not configured"));
        }
        if let Some(&i) = task
            .process_id
            .as_ref()
            .and_then(|p| self.by_process.get(p))
        {
            return Ok(Some(&self.queues[i]));
        }
        for q in &self.queues {
            if let Some(w) = &q.when {
                match w.holds_for_task(task, now) {
                    Ok(true) => return Ok(Some(q)),
                    Ok(false) => {}
                    Err(e) => return Err(format!("queue {:?} when: {e}", q.id)),
                }
            }
        }
        Ok(None)
    }
}

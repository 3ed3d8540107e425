//! Commands: the one shape every write takes, from every channel, and what they resolve
//! to inside the engine's write transaction.

use crate::access::Scope;
use crate::action::{Action, ActionMeta};
use crate::error::DomainError;
use crate::event::Event;
use crate::fields::NewTask;
use crate::task::{Status, Task, TaskRef};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Create(NewTask),
    /// An action on one named task.
    Act {
        task: TaskRef,
        action: Action,
    },
    /// An action on the best task a [`Selection`] finds at the moment the command is
    /// decided, inside the write transaction ("give this agent the best task it may
    /// take"). Two such commands never pick the same task unless the first left it still
    /// matching.
    ActOnBest {
        select: Selection,
        action: Action,
    },
    /// Processing: the steps the task's status calls for (classify a New task,
    /// prioritize a Captured one, reprioritize a Queued one whose time has come), decided
    /// by the business rules against the task as the transaction loads it. Refused with
    /// INVALID_TRANSITION when there is nothing to do (another node did it first).
    Process {
        task: TaskRef,
    },
    /// Pull: the best task `agent` may take now, from the pull queues it qualifies for,
    /// assigned to it (TaskAssigned). Refused with AGENT_NOT_AVAILABLE when the agent is
    /// not Ready or has no room, TASK_NOT_FOUND when no task is there for it.
    Next {
        agent: String,
    },
}

/// Which tasks an [`Op::ActOnBest`] may pick, best first: highest priority, then the
/// earliest due date (none last), then the oldest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    pub status: Status,
    /// Only tasks in this queue (any when absent).
    pub queue: Option<String>,
    /// Only tasks of this process (any when absent).
    pub process_id: Option<String>,
    /// Only tasks in one of these queues (any when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<String>,
    /// Only tasks with no live offer.
    #[serde(default)]
    pub unoffered: bool,
}

impl Selection {
    /// The tasks of one status, in any queue or process.
    pub fn status(status: Status) -> Self {
        Self {
            status,
            queue: None,
            process_id: None,
            queues: Vec::new(),
            unoffered: false,
        }
    }

    /// Distributed tasks without a live offer in one of `queues`: what an agent may be
    /// given next.
    pub fn in_queues(queues: Vec<String>) -> Self {
        Self {
            queues,
            unoffered: true,
            ..Self::status(Status::Distributed)
        }
    }

    /// Whether `task` is one this selection may pick.
    pub fn matches(&self, task: &Task) -> bool {
        task.status == self.status
            && self
                .queue
                .as_ref()
                .is_none_or(|q| task.queue.as_ref() == Some(q))
            && self
                .process_id
                .as_ref()
                .is_none_or(|p| task.process_id.as_ref() == Some(p))
            && (self.queues.is_empty()
                || task.queue.as_ref().is_some_and(|q| self.queues.contains(q)))
            && !(self.unoffered && task.offer.is_some())
    }

    /// The selection's order: `Less` when `a` is the better pick.
    pub fn order(a: &Task, b: &Task) -> Ordering {
        b.priority
            .cmp(&a.priority)
            .then_with(|| match (a.due_date_time, b.due_date_time) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            })
            .then_with(|| a.broker_id.cmp(&b.broker_id))
    }
}

/// A write request: an operation with its audit attributes and, optionally, an
/// idempotency key under which its result is kept, so a repeat is answered the same way
/// without being applied twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub op: Op,
    pub meta: ActionMeta,
    pub idempotency_key: Option<String>,
    /// The tasks the caller may touch (an agent's or an integration's); the engine refuses
    /// with FORBIDDEN when the task it loads is outside it. None: any task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
}

impl Command {
    pub fn create(new: NewTask, meta: ActionMeta) -> Self {
        Self {
            op: Op::Create(new),
            meta,
            idempotency_key: None,
            scope: None,
        }
    }

    pub fn act(task: TaskRef, action: Action, meta: ActionMeta) -> Self {
        Self {
            op: Op::Act { task, action },
            meta,
            idempotency_key: None,
            scope: None,
        }
    }

    /// Processing of one task (see [`Op::Process`]).
    pub fn process(task: TaskRef, meta: ActionMeta) -> Self {
        Self {
            op: Op::Process { task },
            meta,
            idempotency_key: None,
            scope: None,
        }
    }

    /// An action on the best task `select` finds when the command is decided.
    pub fn act_on_best(select: Selection, action: Action, meta: ActionMeta) -> Self {
        Self {
            op: Op::ActOnBest { select, action },
            meta,
            idempotency_key: None,
            scope: None,
        }
    }

    /// Limits the command to the tasks `scope` permits.
    pub fn scoped(mut self, scope: Option<Scope>) -> Self {
        self.scope = scope;
        self
    }

    pub fn idempotent(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// A command's effect: the task after it and the recorded event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub task: Task,
    /// None when nothing changed: an idempotent capture that found its task already there.
    pub event: Option<Event>,
    /// The result was recorded earlier under the command's idempotency key.
    #[serde(default)]
    pub replayed: bool,
}

/// A command's result: its effect, or the domain's refusal.
pub type CommandResult = Result<Outcome, DomainError>;

//! Commands: the one shape every write takes, from every channel.

use serde::{Deserialize, Serialize};
use worklane_domain::{Action, ActionMeta, DomainError, Event, NewTask, Task, TaskRef};

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Create(NewTask),
    Act { task: TaskRef, action: Action },
}

/// A write request: an operation with its audit attributes and, optionally, an
/// idempotency key under which its result is kept, so a repeat is answered the same way
/// without being applied twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub op: Op,
    pub meta: ActionMeta,
    pub idempotency_key: Option<String>,
}

impl Command {
    pub fn create(new: NewTask, meta: ActionMeta) -> Self {
        Self {
            op: Op::Create(new),
            meta,
            idempotency_key: None,
        }
    }

    pub fn act(task: TaskRef, action: Action, meta: ActionMeta) -> Self {
        Self {
            op: Op::Act { task, action },
            meta,
            idempotency_key: None,
        }
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

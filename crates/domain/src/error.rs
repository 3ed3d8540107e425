//! Refusals: the protocol's error codes (seed 001) and the domain error that carries them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The machine-readable codes of seed 001, plus the few Worklane adds (documented in
/// ARCHITECTURE.md). They travel unchanged to every channel: REST, XML, SQL.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    InvalidFormat,
    TaskNotFound,
    TaskAlreadyCaptured,
    CannotCompleteTask,
    CannotHoldAssignedTask,
    CannotResumeTask,
    CannotRestartTask,
    CannotCancelCompletedTask,
    /// Worklane's own: a supervisor assignment of a task that is not Queued or Distributed.
    CannotAssignTask,
    /// Worklane's own: an internal processing step that does not apply to the task's status.
    InvalidTransition,
    /// Worklane's own: the server could not do what was asked (store down, ...).
    InternalError,
    /// Worklane's own: an offer answered that is no longer live (answered, timed out,
    /// revoked).
    OfferNotFound,
    /// Worklane's own: no agent with that id.
    AgentNotFound,
    /// Worklane's own: the agent may not take work now (not Ready, or at capacity).
    AgentNotAvailable,
    /// Worklane's own: an agent id that exists already.
    AgentExists,
    /// Worklane's own: the caller's role or scope does not reach this task or agent.
    Forbidden,
}

impl ErrorCode {
    /// The code as written on the wire, e.g. `TASK_NOT_FOUND`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidFormat => "INVALID_FORMAT",
            Self::TaskNotFound => "TASK_NOT_FOUND",
            Self::TaskAlreadyCaptured => "TASK_ALREADY_CAPTURED",
            Self::CannotCompleteTask => "CANNOT_COMPLETE_TASK",
            Self::CannotHoldAssignedTask => "CANNOT_HOLD_ASSIGNED_TASK",
            Self::CannotResumeTask => "CANNOT_RESUME_TASK",
            Self::CannotRestartTask => "CANNOT_RESTART_TASK",
            Self::CannotCancelCompletedTask => "CANNOT_CANCEL_COMPLETED_TASK",
            Self::CannotAssignTask => "CANNOT_ASSIGN_TASK",
            Self::InvalidTransition => "INVALID_TRANSITION",
            Self::InternalError => "INTERNAL_ERROR",
            Self::OfferNotFound => "OFFER_NOT_FOUND",
            Self::AgentNotFound => "AGENT_NOT_FOUND",
            Self::AgentNotAvailable => "AGENT_NOT_AVAILABLE",
            Self::AgentExists => "AGENT_EXISTS",
            Self::Forbidden => "FORBIDDEN",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal with its code, a human message and the parameters the protocol returns
/// (the task's id and, where there is one, the offending attribute).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DomainError {
    pub code: ErrorCode,
    pub message: String,
    pub parameters: Vec<String>,
}

impl DomainError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            parameters: Vec::new(),
        }
    }

    /// INVALID_FORMAT naming the attribute that is wrong.
    pub fn invalid(attribute: &str, problem: impl fmt::Display) -> Self {
        Self {
            code: ErrorCode::InvalidFormat,
            message: format!("{attribute}: {problem}"),
            parameters: vec![attribute.to_owned()],
        }
    }

    pub fn with_param(mut self, p: impl Into<String>) -> Self {
        self.parameters.push(p.into());
        self
    }

    /// Puts the task's id first among the parameters, as seed 001 asks.
    pub fn for_task(mut self, id: impl Into<String>) -> Self {
        self.parameters.insert(0, id.into());
        self
    }
}

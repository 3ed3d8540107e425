//! Events (SPEC section 3): every change, in one ordered log.

use crate::task::{BrokerId, Task};
use crate::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Every kind of change the server records.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    TaskCreated,
    TaskUpdated,
    TaskCaptured,
    TaskQueued,
    TaskDistributed,
    TaskDistributedQueue,
    TaskRouteRequested,
    TaskAssigned,
    TaskCompleted,
    TaskHeld,
    TaskErrorHeld,
    TaskResumed,
    TaskRestarted,
    TaskCanceled,
    TaskRejected,
    TaskReturned,
    TaskStopped,
    /// Worklane's own: a push offer to one agent.
    TaskOffered,
}

impl EventType {
    pub const ALL: [EventType; 18] = [
        Self::TaskCreated,
        Self::TaskUpdated,
        Self::TaskCaptured,
        Self::TaskQueued,
        Self::TaskDistributed,
        Self::TaskDistributedQueue,
        Self::TaskRouteRequested,
        Self::TaskAssigned,
        Self::TaskCompleted,
        Self::TaskHeld,
        Self::TaskErrorHeld,
        Self::TaskResumed,
        Self::TaskRestarted,
        Self::TaskCanceled,
        Self::TaskRejected,
        Self::TaskReturned,
        Self::TaskStopped,
        Self::TaskOffered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TaskCreated => "TaskCreated",
            Self::TaskUpdated => "TaskUpdated",
            Self::TaskCaptured => "TaskCaptured",
            Self::TaskQueued => "TaskQueued",
            Self::TaskDistributed => "TaskDistributed",
            Self::TaskDistributedQueue => "TaskDistributedQueue",
            Self::TaskRouteRequested => "TaskRouteRequested",
            Self::TaskAssigned => "TaskAssigned",
            Self::TaskCompleted => "TaskCompleted",
            Self::TaskHeld => "TaskHeld",
            Self::TaskErrorHeld => "TaskErrorHeld",
            Self::TaskResumed => "TaskResumed",
            Self::TaskRestarted => "TaskRestarted",
            Self::TaskCanceled => "TaskCanceled",
            Self::TaskRejected => "TaskRejected",
            Self::TaskReturned => "TaskReturned",
            Self::TaskStopped => "TaskStopped",
            Self::TaskOffered => "TaskOffered",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown event type {s:?}"))
    }
}

/// An event as decided by the domain, before the store gives it its sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewEvent {
    pub event_type: EventType,
    pub actor: Option<String>,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub origin: Option<String>,
    pub event_date_time: Timestamp,
    /// Names of the attributes the change touched (camelCase; `ext.x`, `data.x`).
    pub changes: Vec<String>,
    /// The agent the change concerns: the one a task is offered or assigned to, or the
    /// one that lost it (a return, a revocation, a transfer away).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// A recorded event: its place in the log, and the task as it was right after the change.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Strictly increasing position in the one event log.
    pub seq: i64,
    pub event_type: EventType,
    pub broker_id: BrokerId,
    pub capture_id: String,
    pub capture_point_id: String,
    #[serde(default, skip_serializing_if = "crate::stored::absent")]
    pub distribution_id: Option<String>,
    #[serde(default, skip_serializing_if = "crate::stored::absent")]
    pub distribution_point_id: Option<String>,
    #[serde(default, skip_serializing_if = "crate::stored::absent")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "crate::stored::absent")]
    pub reason: Option<String>,
    pub event_date_time: Timestamp,
    /// The reference id of the request that caused it (seed 003), when one did.
    #[serde(default, skip_serializing_if = "crate::stored::absent")]
    pub request_id: Option<String>,
    /// The channel that asked for the change (`REST`, a capture point id, `processor`).
    #[serde(default, skip_serializing_if = "crate::stored::absent")]
    pub origin: Option<String>,
    pub changes: Vec<String>,
    /// The agent the change concerns (see [`NewEvent::agent`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The task right after the change (for TaskStopped: right before deletion).
    pub task: Task,
}

impl Event {
    /// Joins a decided event with its task snapshot and log position.
    pub fn from_parts(seq: i64, e: NewEvent, task: Task) -> Self {
        Self {
            seq,
            event_type: e.event_type,
            broker_id: task.broker_id,
            capture_id: task.capture_id.clone(),
            capture_point_id: task.capture_point_id.clone(),
            distribution_id: task.distribution_id.clone(),
            distribution_point_id: task.distribution_point_id.clone(),
            actor: e.actor,
            reason: e.reason,
            event_date_time: e.event_date_time,
            request_id: e.request_id,
            origin: e.origin,
            changes: e.changes,
            agent: e.agent,
            task,
        }
    }
}

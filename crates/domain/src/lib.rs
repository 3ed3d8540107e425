//! The Worklane domain: tasks, their statuses, the actions that move them and the events
//! every change produces. Pure code: no I/O, no clock (callers pass `now`).

pub mod access;
pub mod action;
pub mod agent;
pub mod calendar;
pub mod command;
pub mod error;
pub mod event;
pub mod fields;
pub mod stored;
pub mod task;

pub use access::{AgentScope, Principal, Role, Scope};
pub use action::{decide, Action, ActionMeta, Classification, Prioritization, Transition};
pub use agent::{Agent, AgentCommand, AgentPatch, AgentProfile, AgentState, AgentView, Load};
pub use calendar::{
    BusinessCalendar, BusinessDuration, BusinessDurationError, CalendarConfig, CalendarConfigError,
    CalendarError, WeekHours,
};
pub use command::{Command, CommandResult, Op, Outcome, Selection};
pub use error::{DomainError, ErrorCode};
pub use event::{Event, EventType, NewEvent};
pub use fields::{ExtFields, NewTask, OnDuplicate, TaskFields};
pub use task::{BrokerId, Ext, Offer, QueueType, Status, Task, TaskRef};

/// Timestamps everywhere in Worklane: an absolute instant, rendered as RFC 3339 UTC.
pub type Timestamp = jiff::Timestamp;

#[cfg(test)]
mod state_machine_tests;

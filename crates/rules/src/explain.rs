//! What the rules did to a task and why: every rule that was tried in each phase, what it
//! set, and the outcome. Recording is off in the engine's write path (a disabled [`Trace`]
//! allocates nothing) and on for `worklane rules test` and the explain API.

use serde::Serialize;
use worklane_domain::{Status, Timestamp};

/// One step of a phase: a rule tried, or the process's own settings.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// `rule:ID` or `process:ID`.
    pub source: String,
    /// The rule's scope (`global`, `department:claims`...), for rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Whether its condition held (always true for a process's settings).
    pub matched: bool,
    /// What it set, by attribute name.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub set: serde_json::Map<String, serde_json::Value>,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The steps of one phase.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PhaseTrace {
    /// `classification`, `prioritization` or `reprioritization`.
    pub phase: &'static str,
    pub steps: Vec<Step>,
}

/// A record of the rules' work, when enabled.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    enabled: bool,
    pub phases: Vec<PhaseTrace>,
}

impl Trace {
    /// A trace that records nothing (the write path's).
    pub fn off() -> Self {
        Self::default()
    }

    /// A trace that records every step.
    pub fn on() -> Self {
        Self {
            enabled: true,
            phases: Vec::new(),
        }
    }

    /// Whether steps are recorded.
    pub(crate) fn is_on(&self) -> bool {
        self.enabled
    }

    pub(crate) fn phase(&mut self, phase: &'static str) {
        if self.enabled {
            self.phases.push(PhaseTrace {
                phase,
                steps: Vec::new(),
            });
        }
    }

    /// Records the step `f` builds, only when enabled.
    pub(crate) fn step(&mut self, f: impl FnOnce() -> Step) {
        if self.enabled {
            if let Some(p) = self.phases.last_mut() {
                p.steps.push(f());
            }
        }
    }
}

/// Where a task ends after the rules, and its key attributes then.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub status: Status,
    pub tenant_id: Option<String>,
    pub solution_id: Option<String>,
    pub department_id: Option<String>,
    pub process_id: Option<String>,
    pub contract_id: Option<String>,
    pub business_calendar_id: Option<String>,
    /// The process's queue, where distribution puts the task.
    pub queue: Option<String>,
    pub priority: i32,
    pub business_value: Option<i32>,
    pub due_date_time: Option<Timestamp>,
    pub reprioritize_date_time: Option<Timestamp>,
    /// Why the task was ErrorHeld or Rejected.
    pub error: Option<String>,
}

/// One point of the priority curve: the priority from `at` on.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CurvePoint {
    pub at: Timestamp,
    pub priority: i32,
}

/// The answer of `rules test` and `POST /api/v1/rules/explain`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    /// The instant the rules were evaluated at.
    pub at: Timestamp,
    pub phases: Vec<PhaseTrace>,
    pub outcome: Outcome,
    /// The coming reprioritizations, as the clock would reach them.
    pub curve: Vec<CurvePoint>,
}

//! The business structure and rules as written in the configuration file (SPEC section 8):
//! `[[calendar]]`, `[[department]]`, `[[process]]`, `[[contract]]` and `[[rule]]` tables.
//! [`crate::RuleSet::new`] checks them and compiles every expression once.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use worklane_domain::{CalendarConfig, Timestamp};

/// Everything the rules read from the configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// Business calendars.
    #[serde(default)]
    pub calendar: Vec<CalendarConfig>,
    /// Departments: each sets tenantId, solutionId and a calendar on its tasks.
    #[serde(default)]
    pub department: Vec<DepartmentConfig>,
    /// Processes: where classification puts a task and how it is prioritized.
    #[serde(default)]
    pub process: Vec<ProcessConfig>,
    /// Contracts with an active window of their own (optional).
    #[serde(default)]
    pub contract: Vec<ContractConfig>,
    /// Classification and prioritization rules, in file order.
    #[serde(default)]
    pub rule: Vec<RuleConfig>,
}

impl RulesConfig {
    /// True when no process and no rule is configured: processing then keeps a task's
    /// own attributes (the behaviour before rules).
    pub fn is_empty(&self) -> bool {
        self.process.is_empty() && self.rule.is_empty()
    }
}

/// One `[[department]]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentConfig {
    pub id: String,
    /// tenantId set on the department's tasks.
    #[serde(default)]
    pub tenant: Option<String>,
    /// solutionId set on the department's tasks.
    #[serde(default)]
    pub solution: Option<String>,
    /// The business calendar of the department's tasks (a process may name its own).
    #[serde(default)]
    pub calendar: Option<String>,
}

/// One `[[process]]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessConfig {
    pub id: String,
    /// The department the process belongs to.
    pub department: String,
    /// contractId set on the process's tasks.
    #[serde(default)]
    pub contract: Option<String>,
    /// A task classified into the process before this instant is Rejected.
    #[serde(default)]
    pub active_from: Option<Timestamp>,
    /// A task classified into the process at or after this instant is Rejected.
    #[serde(default)]
    pub active_to: Option<Timestamp>,
    /// The queue distribution puts the process's tasks in.
    #[serde(default)]
    pub queue: Option<String>,
    /// Overrides the department's calendar.
    #[serde(default)]
    pub calendar: Option<String>,
    /// Initial priority: a CEL expression giving an integer.
    #[serde(default)]
    pub priority: Option<String>,
    /// Business value: a CEL expression giving an integer.
    #[serde(default)]
    pub business_value: Option<String>,
    /// dueDateTime for a task that has none: "N business minutes|hours|days", or a CEL
    /// expression giving a timestamp.
    #[serde(default)]
    pub due: Option<String>,
    /// How long until the next reprioritization: a duration ("15m", "2h") or a business
    /// duration ("1 business hour"). None: never reprioritized.
    #[serde(default)]
    pub reprioritize_every: Option<String>,
    /// The priority at a reprioritization: a CEL expression giving an integer
    /// (`priority` is the current one). None: the priority stays and only the
    /// prioritization rules run again.
    #[serde(default)]
    pub reprioritize: Option<String>,
    /// No reprioritization raises the priority above this.
    #[serde(default)]
    pub max_priority: Option<i32>,
}

/// One `[[contract]]`: a window that applies to every process naming the contract.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractConfig {
    pub id: String,
    #[serde(default)]
    pub active_from: Option<Timestamp>,
    #[serde(default)]
    pub active_to: Option<Timestamp>,
}

/// When a rule runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// New → Captured.
    Classification,
    /// Captured → Queued, and at every reprioritization.
    Prioritization,
}

impl Phase {
    /// The name as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Classification => "classification",
            Self::Prioritization => "prioritization",
        }
    }
}

/// One `[[rule]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub id: String,
    pub phase: Phase,
    /// `global`, `capture_point:ID`, `department:ID` or `process:ID`.
    #[serde(default = "global")]
    pub scope: String,
    /// A CEL condition; the rule always applies when absent.
    #[serde(default)]
    pub when: Option<String>,
    /// Attributes set to literal values (camelCase names; `ext` and `data` as tables).
    #[serde(default)]
    pub set: BTreeMap<String, serde_json::Value>,
    /// Attributes set to what a CEL expression gives (`ext.NAME`, `data.NAME` allowed).
    #[serde(default)]
    pub compute: BTreeMap<String, String>,
}

fn global() -> String {
    "global".to_owned()
}

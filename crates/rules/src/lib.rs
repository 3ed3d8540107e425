//! Business rules (SPEC section 8): the business structure (departments, processes,
//! contracts, calendars), classification and prioritization rules written in CEL, and
//! reprioritization as time passes.
//!
//! Pure: a [`RuleSet`] is built once from the configuration (every expression compiled
//! then) and answers, for a task and an instant, what processing decides. The engine asks
//! it inside its write transaction; `worklane rules test` and the explain API ask it with a
//! [`Trace`] to show why.

mod condition;
pub mod config;
mod eval;
mod explain;
mod expr;
mod structure;
mod vars;

pub use condition::{Condition, Scope};
pub use config::{ContractConfig, DepartmentConfig, Phase, ProcessConfig, RuleConfig, RulesConfig};
pub use eval::Decision;
pub use explain::{Explanation, Outcome, PhaseTrace, Step, Trace};
pub use expr::{MAX_EXPRESSION_BYTES, MAX_NESTING};
pub use structure::{RuleSet, RulesError};

#[cfg(test)]
mod condition_tests;
#[cfg(test)]
mod tests;

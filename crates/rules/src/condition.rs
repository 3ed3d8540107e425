//! Conditions of the distribution layer (SPEC 9): a queue's `when` reads the task as
//! rules do; its `requires` reads `agent.*` and `task.*`. Compiled once at load.

use crate::expr::Expr;
use crate::vars::{cel_time, TaskVars, View, NAMES};
use cel::common::types::{CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelTimestamp};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Env, Value};
use std::collections::HashMap;
use std::sync::Arc;
use worklane_domain::{Agent, Task, Timestamp};

/// What a condition reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The task's attributes by name, as rules read them (`processId == "motor"`).
    Task,
    /// `agent.*` (id, name, groups, skills, capacity, place, placeGroups), `task.*` and
    /// `now` (`agent.skills.motor >= 3 && task.priority < 100`).
    AgentAndTask,
}

/// A compiled boolean condition.
pub struct Condition {
    expr: Expr,
    env: Arc<Env>,
    reads_task: bool,
    reads_now: bool,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Condition").field(&self.expr.source).finish()
    }
}

impl Condition {
    /// Compiles `source` for `scope`, refusing unknown variables, and expressions too
    /// long or too deep.
    pub fn compile(source: &str, scope: Scope) -> Result<Self, String> {
        let env = Arc::new(Env::stdlib());
        let expr = match scope {
            Scope::Task => Expr::compile(&env, source)?,
            Scope::AgentAndTask => Expr::compile_with(
                &env,
                source,
                |v| matches!(v, "agent" | "task" | "now"),
                "agent, task and now: agent.skills.NAME, task.priority",
            )?,
        };
        let reads_task = match scope {
            Scope::Task => true,
            Scope::AgentAndTask => expr.variables().iter().any(|v| v == "task"),
        };
        let reads_now = expr.variables().iter().any(|v| v == "now");
        Ok(Self {
            expr,
            env,
            reads_task,
            reads_now,
        })
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.expr.source
    }

    /// Whether the condition reads the task (else its answer depends on the agent only).
    pub fn reads_task(&self) -> bool {
        self.reads_task
    }

    /// Whether the condition reads `now` (else its answer does not change with time).
    pub fn reads_now(&self) -> bool {
        self.reads_now
    }

    /// A [`Scope::Task`] condition's answer for `task` at `now`.
    pub fn holds_for_task(&self, task: &Task, now: Timestamp) -> Result<bool, String> {
        let vars = TaskVars {
            task: View::of(task),
            now,
            calendar: None,
        };
        bool_of(self.expr.eval_in(&self.env, &vars)?)
    }

    /// A [`Scope::AgentAndTask`] condition's answer. Without a task, a condition that
    /// reads one is an error.
    pub fn holds(
        &self,
        agent: &Agent,
        task: Option<&Task>,
        now: Timestamp,
    ) -> Result<bool, String> {
        let vars = AgentVars {
            agent,
            task: task.map(|task| TaskVars {
                task: View::of(task),
                now,
                calendar: None,
            }),
            now,
        };
        bool_of(self.expr.eval_in(&self.env, &vars)?)
    }
}

fn bool_of(v: Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(b),
        other => Err(format!(
            "gave {} where a bool is needed",
            crate::expr::type_name(&other)
        )),
    }
}

/// `agent.*`, `task.*` and `now`, resolved on access.
struct AgentVars<'a> {
    agent: &'a Agent,
    task: Option<TaskVars<'a>>,
    now: Timestamp,
}

fn boxed<'b, T: Val + 'b>(v: T) -> Option<CowVal<'b, 'b>> {
    Some(CowVal::Owned(Box::new(v)))
}

fn text(s: Option<&str>) -> Box<dyn Val + '_> {
    match s {
        Some(s) => Box::new(CelString::from(s)),
        None => Box::new(CelNull),
    }
}

fn list(items: &[String]) -> Box<dyn Val + '_> {
    let v: Vec<Box<dyn Val + '_>> = items
        .iter()
        .map(|s| Box::new(CelString::from(s.as_str())) as Box<dyn Val>)
        .collect();
    Box::new(CelList::from(v))
}

fn int_map<'a, V: Copy + Into<i64>>(
    m: &'a std::collections::BTreeMap<String, V>,
) -> Box<dyn Val + 'a> {
    let m: HashMap<CelMapKey<'a>, Box<dyn Val + 'a>> = m
        .iter()
        .map(|(k, v)| {
            let v: Box<dyn Val> = Box::new(CelInt::from((*v).into()));
            (CelMapKey::from(k.as_str()), v)
        })
        .collect();
    Box::new(CelMap::from(m))
}

impl AgentVars<'_> {
    fn field(&self, name: &str) -> Option<Box<dyn Val + '_>> {
        let a = self.agent;
        let p = &a.profile;
        Some(match name {
            "id" => text(Some(&a.id)),
            "name" => text(p.name.as_deref()),
            "state" => text(Some(a.state.as_str())),
            "groups" => list(&p.groups),
            "placeGroups" => list(&p.place_groups),
            "place" => text(p.place.as_deref()),
            "skills" => int_map(&p.skills),
            "capacity" => int_map(&p.capacity),
            _ => return None,
        })
    }
}

const AGENT_FIELDS: [&str; 8] = [
    "id",
    "name",
    "state",
    "groups",
    "placeGroups",
    "place",
    "skills",
    "capacity",
];

impl VariableResolver for AgentVars<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        if let Some(rest) = variable.strip_prefix("agent.") {
            // A skill the agent lacks reads as level 0, so `agent.skills.x >= 3` is false
            // for it rather than an error.
            if let Some(skill) = rest.strip_prefix("skills.") {
                let level = self.agent.profile.skills.get(skill).copied().unwrap_or(0);
                return boxed(CelInt::from(i64::from(level)));
            }
            return self.field(rest).map(CowVal::Owned);
        }
        if let Some(rest) = variable.strip_prefix("task.") {
            let t = self.task.as_ref()?;
            if !NAMES.contains(&rest) && !rest.starts_with("data.") && !rest.starts_with("ext.") {
                return None;
            }
            return t.resolve(rest);
        }
        match variable {
            "agent" => {
                let m: HashMap<CelMapKey<'b>, Box<dyn Val + 'b>> = AGENT_FIELDS
                    .iter()
                    .filter_map(|n| Some((CelMapKey::from(*n), self.field(n)?)))
                    .collect();
                boxed(CelMap::from(m))
            }
            "now" => boxed(CelTimestamp::from(cel_time(self.now))),
            _ => None,
        }
    }
}

//! A [`RuleSet`]: the configuration checked, cross-referenced and compiled once.

use crate::config::{ContractConfig, Phase, RuleConfig, RulesConfig};
use crate::expr::Expr;
use cel::Env;
use jiff::SignedDuration;
// Keys come from the configuration, so a fast non-keyed hash is safe here; lookups run
// several times per decision.
use rustc_hash::FxHashMap as HashMap;
use std::fmt;
use std::sync::Arc;
use worklane_domain::{BusinessCalendar, BusinessDuration, Ext, TaskFields, Timestamp};

/// Why a configuration cannot be used: every problem found, each naming its key
/// (`process[motor].priority: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RulesError {
    pub problems: Vec<String>,
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.problems.join("; "))
    }
}

/// Where a rule applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Scope {
    Global,
    CapturePoint(String),
    Department(String),
    Process(String),
}

impl Scope {
    fn parse(s: &str) -> Result<Self, String> {
        if s == "global" {
            return Ok(Self::Global);
        }
        let (kind, id) = s.split_once(':').ok_or_else(|| {
            format!("{s:?} is not a scope (global, capture_point:ID, department:ID or process:ID)")
        })?;
        if id.is_empty() {
            return Err(format!("{s:?} names no id after the colon"));
        }
        match kind {
            "capture_point" => Ok(Self::CapturePoint(id.to_owned())),
            "department" => Ok(Self::Department(id.to_owned())),
            "process" => Ok(Self::Process(id.to_owned())),
            _ => Err(format!(
                "{kind:?} is not a scope kind (global, capture_point, department or process)"
            )),
        }
    }

    pub(crate) fn name(&self) -> String {
        match self {
            Self::Global => "global".into(),
            Self::CapturePoint(id) => format!("capture_point:{id}"),
            Self::Department(id) => format!("department:{id}"),
            Self::Process(id) => format!("process:{id}"),
        }
    }
}

/// What a computed value is written to.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Attr(String),
    Ext(String),
    Data(String),
}

impl Target {
    pub(crate) fn name(&self) -> String {
        match self {
            Self::Attr(a) => a.clone(),
            Self::Ext(a) => format!("ext.{a}"),
            Self::Data(a) => format!("data.{a}"),
        }
    }
}

/// The attributes rules may set (TaskFields' names, without captureId).
const SETTABLE: &[&str] = &[
    "tenantId",
    "solutionId",
    "departmentId",
    "processId",
    "contractId",
    "businessCalendarId",
    "channel",
    "category",
    "priority",
    "businessValue",
    "activationDateTime",
    "dueDateTime",
    "expirationDateTime",
    "reprioritizeDateTime",
];

fn target(key: &str) -> Result<Target, String> {
    if let Some(name) = key.strip_prefix("ext.") {
        return if Ext::NAMES.contains(&name) {
            Ok(Target::Ext(name.to_owned()))
        } else {
            Err(format!(
                "ext has no attribute {name:?} (it has {})",
                Ext::NAMES.join(", ")
            ))
        };
    }
    if let Some(name) = key.strip_prefix("data.") {
        return if name.trim().is_empty() {
            Err("data. needs a name after it".into())
        } else {
            Ok(Target::Data(name.to_owned()))
        };
    }
    if SETTABLE.contains(&key) {
        Ok(Target::Attr(key.to_owned()))
    } else {
        Err(format!(
            "{key:?} is not an attribute rules may set ({}, ext.NAME, data.NAME)",
            SETTABLE.join(", ")
        ))
    }
}

/// Puts `value` under `target` in a JSON object shaped like [`TaskFields`].
pub(crate) fn put(
    obj: &mut serde_json::Map<String, serde_json::Value>,
    t: &Target,
    v: serde_json::Value,
) {
    match t {
        Target::Attr(a) => {
            obj.insert(a.clone(), v);
        }
        Target::Ext(a) | Target::Data(a) => {
            let key = if matches!(t, Target::Ext(_)) {
                "ext"
            } else {
                "data"
            };
            let inner = obj
                .entry(key)
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
            if let serde_json::Value::Object(m) = inner {
                m.insert(a.clone(), v);
            }
        }
    }
}

/// Checked attributes from a JSON object, naming what is wrong.
pub(crate) fn fields(
    obj: serde_json::Map<String, serde_json::Value>,
) -> Result<TaskFields, String> {
    let f: TaskFields =
        serde_json::from_value(serde_json::Value::Object(obj)).map_err(|e| e.to_string())?;
    f.validate().map_err(|e| e.to_string())?;
    Ok(f)
}

/// A compiled `[[rule]]`.
#[derive(Debug)]
pub(crate) struct Rule {
    pub id: String,
    pub scope: Scope,
    pub when: Option<Expr>,
    /// `set`, checked, as written (for explanations).
    pub set: serde_json::Map<String, serde_json::Value>,
    /// `set` as attributes, converted once at load.
    pub set_fields: TaskFields,
    pub compute: Vec<(Target, Expr)>,
}

#[derive(Debug)]
pub(crate) struct Department {
    pub tenant: Option<String>,
    pub solution: Option<String>,
    pub calendar: Option<String>,
}

/// A process's `due`.
#[derive(Debug)]
pub(crate) enum Due {
    Business(BusinessDuration),
    Expr(Expr),
}

/// A process's `reprioritize_every`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Every {
    Time(SignedDuration),
    Business(BusinessDuration),
}

#[derive(Debug)]
pub(crate) struct Process {
    pub id: String,
    pub department: String,
    pub contract: Option<String>,
    pub active_from: Option<Timestamp>,
    pub active_to: Option<Timestamp>,
    pub queue: Option<String>,
    /// The process's calendar, or its department's.
    pub calendar: Option<String>,
    pub priority: Option<Expr>,
    pub business_value: Option<Expr>,
    pub due: Option<Due>,
    pub every: Option<Every>,
    pub reprioritize: Option<Expr>,
    pub max_priority: Option<i32>,
}

/// The business structure and rules, checked and compiled: what processing consults.
/// Cheap to share (`Arc`); replaced whole on reload.
pub struct RuleSet {
    pub(crate) env: Arc<Env>,
    pub(crate) calendars: HashMap<String, BusinessCalendar>,
    pub(crate) departments: HashMap<String, Department>,
    pub(crate) processes: HashMap<String, Process>,
    pub(crate) contracts: HashMap<String, ContractConfig>,
    /// Rules per phase and scope, in file order.
    pub(crate) rules: HashMap<(Phase, Scope), Vec<Rule>>,
    pub(crate) empty: bool,
}

impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSet")
            .field("calendars", &self.calendars.len())
            .field("departments", &self.departments.len())
            .field("processes", &self.processes.len())
            .field("rules", &self.rules.values().map(Vec::len).sum::<usize>())
            .finish()
    }
}

impl Default for RuleSet {
    fn default() -> Self {
        Self::new(&RulesConfig::default()).expect("an empty configuration is valid")
    }
}

/// The stack the parser gets: it recurses deeply per nesting level, and a reload may run
/// on a runtime thread with a small stack.
const COMPILE_STACK: usize = 32 * 1024 * 1024;

fn parse_every(s: &str) -> Result<Every, String> {
    if s.contains("business") {
        let d: BusinessDuration = s
            .parse()
            .map_err(|e: worklane_domain::BusinessDurationError| e.to_string())?;
        if d == BusinessDuration::Minutes(0) {
            return Err("must be longer than 0".into());
        }
        return Ok(Every::Business(d));
    }
    let d: SignedDuration = s
        .parse()
        .map_err(|e| format!("{s:?} is neither a duration (\"15m\", \"2h\") nor a business duration (\"1 business hour\"): {e}"))?;
    if d <= SignedDuration::ZERO {
        return Err("must be longer than 0".into());
    }
    Ok(Every::Time(d))
}

fn window_ok(from: Option<Timestamp>, to: Option<Timestamp>) -> bool {
    match (from, to) {
        (Some(f), Some(t)) => f < t,
        _ => true,
    }
}

impl RuleSet {
    /// Checks `config` and compiles every expression. All problems are reported together.
    pub fn new(config: &RulesConfig) -> Result<Self, RulesError> {
        std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("rules-compile".into())
                .stack_size(COMPILE_STACK)
                .spawn_scoped(s, || Self::build(config))
                .map_err(|e| RulesError {
                    problems: vec![format!("cannot start the rules compiler: {e}")],
                })?
                .join()
                .unwrap_or_else(|_| {
                    Err(RulesError {
                        problems: vec!["the rules compiler failed".into()],
                    })
                })
        })
    }

    fn build(config: &RulesConfig) -> Result<Self, RulesError> {
        let env = Arc::new(Env::stdlib());
        let mut problems = Vec::new();
        let mut p = |key: String, msg: String| problems.push(format!("{key}: {msg}"));

        let mut calendars = HashMap::default();
        for c in &config.calendar {
            match BusinessCalendar::new(c) {
                Ok(cal) => {
                    if calendars.insert(c.id.clone(), cal).is_some() {
                        p(format!("calendar[{}]", c.id), "id used twice".into());
                    }
                }
                Err(e) => p(format!("calendar[{}]", c.id), e.to_string()),
            }
        }
        let mut departments = HashMap::default();
        for d in &config.department {
            let key = format!("department[{}]", d.id);
            if d.id.trim().is_empty() {
                p("department".into(), "an id is empty".into());
            }
            if let Some(c) = &d.calendar {
                if !calendars.contains_key(c) {
                    p(
                        format!("{key}.calendar"),
                        format!("no calendar {c:?} is configured"),
                    );
                }
            }
            let dep = Department {
                tenant: d.tenant.clone(),
                solution: d.solution.clone(),
                calendar: d.calendar.clone(),
            };
            if departments.insert(d.id.clone(), dep).is_some() {
                p(key, "id used twice".into());
            }
        }
        let mut contracts = HashMap::default();
        for c in &config.contract {
            let key = format!("contract[{}]", c.id);
            if !window_ok(c.active_from, c.active_to) {
                p(key.clone(), "active_from must be before active_to".into());
            }
            if contracts.insert(c.id.clone(), c.clone()).is_some() {
                p(key, "id used twice".into());
            }
        }
        let mut processes = HashMap::default();
        for c in &config.process {
            let key = format!("process[{}]", c.id);
            if c.id.trim().is_empty() {
                p("process".into(), "an id is empty".into());
            }
            let dep = departments.get(&c.department);
            if dep.is_none() {
                p(
                    format!("{key}.department"),
                    format!("no department {:?} is configured", c.department),
                );
            }
            if let Some(cal) = &c.calendar {
                if !calendars.contains_key(cal) {
                    p(
                        format!("{key}.calendar"),
                        format!("no calendar {cal:?} is configured"),
                    );
                }
            }
            if !window_ok(c.active_from, c.active_to) {
                p(key.clone(), "active_from must be before active_to".into());
            }
            let calendar = c
                .calendar
                .clone()
                .or_else(|| dep.and_then(|d| d.calendar.clone()));
            let mut compile = |name: &str, src: &Option<String>| -> Option<Expr> {
                let src = src.as_ref()?;
                match Expr::compile(&env, src) {
                    Ok(e) => Some(e),
                    Err(e) => {
                        p(format!("{key}.{name}"), e);
                        None
                    }
                }
            };
            let priority = compile("priority", &c.priority);
            let business_value = compile("business_value", &c.business_value);
            let reprioritize = compile("reprioritize", &c.reprioritize);
            let due = match &c.due {
                None => None,
                Some(s) if s.contains("business") => match s.parse::<BusinessDuration>() {
                    Ok(d) => Some(Due::Business(d)),
                    Err(e) => {
                        p(format!("{key}.due"), e.to_string());
                        None
                    }
                },
                Some(_) => compile("due", &c.due).map(Due::Expr),
            };
            let every = match c.reprioritize_every.as_deref().map(parse_every) {
                None => None,
                Some(Ok(e)) => Some(e),
                Some(Err(e)) => {
                    p(format!("{key}.reprioritize_every"), e);
                    None
                }
            };
            let business =
                matches!(due, Some(Due::Business(_))) || matches!(every, Some(Every::Business(_)));
            if business && calendar.is_none() {
                p(
                    key.clone(),
                    "business durations need a calendar: set calendar on the process or its department".into(),
                );
            }
            if c.reprioritize.is_some() && c.reprioritize_every.is_none() {
                p(
                    format!("{key}.reprioritize"),
                    "has no effect without reprioritize_every".into(),
                );
            }
            let process = Process {
                id: c.id.clone(),
                department: c.department.clone(),
                contract: c.contract.clone(),
                active_from: c.active_from,
                active_to: c.active_to,
                queue: c.queue.clone(),
                calendar,
                priority,
                business_value,
                due,
                every,
                reprioritize,
                max_priority: c.max_priority,
            };
            if processes.insert(c.id.clone(), process).is_some() {
                p(key, "id used twice".into());
            }
        }
        let mut rules: HashMap<(Phase, Scope), Vec<Rule>> = HashMap::default();
        let mut seen = std::collections::HashSet::new();
        for r in &config.rule {
            let key = format!("rule[{}]", r.id);
            if r.id.trim().is_empty() {
                p("rule".into(), "an id is empty".into());
            }
            if !seen.insert(r.id.clone()) {
                p(key.clone(), "id used twice".into());
            }
            match Self::rule(&env, r, &departments, &processes) {
                Ok(rule) => rules
                    .entry((r.phase, rule.scope.clone()))
                    .or_default()
                    .push(rule),
                Err(errs) => {
                    for (k, e) in errs {
                        p(
                            if k.is_empty() {
                                key.clone()
                            } else {
                                format!("{key}.{k}")
                            },
                            e,
                        );
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(RulesError { problems });
        }
        Ok(Self {
            env,
            calendars,
            departments,
            processes,
            contracts,
            rules,
            empty: config.is_empty(),
        })
    }

    fn rule(
        env: &Env,
        r: &RuleConfig,
        departments: &HashMap<String, Department>,
        processes: &HashMap<String, Process>,
    ) -> Result<Rule, Vec<(String, String)>> {
        let mut errs = Vec::new();
        let scope = match Scope::parse(&r.scope) {
            Ok(s) => s,
            Err(e) => {
                errs.push(("scope".into(), e));
                Scope::Global
            }
        };
        match &scope {
            Scope::Department(d) if !departments.contains_key(d) => {
                errs.push(("scope".into(), format!("no department {d:?} is configured")))
            }
            Scope::Process(p) if !processes.contains_key(p) => {
                errs.push(("scope".into(), format!("no process {p:?} is configured")))
            }
            Scope::CapturePoint(_) if r.phase == Phase::Prioritization => errs.push((
                "scope".into(),
                "prioritization rules are global, department or process scoped".into(),
            )),
            _ => {}
        }
        let when = match r.when.as_deref().map(|w| Expr::compile(env, w)) {
            None => None,
            Some(Ok(e)) => Some(e),
            Some(Err(e)) => {
                errs.push(("when".into(), e));
                None
            }
        };
        let mut set = serde_json::Map::new();
        for (k, v) in &r.set {
            match k.as_str() {
                "ext" | "data" => match v {
                    serde_json::Value::Object(m) => {
                        for (name, v) in m {
                            match target(&format!("{k}.{name}")) {
                                Ok(t) => put(&mut set, &t, v.clone()),
                                Err(e) => errs.push((format!("set.{k}"), e)),
                            }
                        }
                    }
                    _ => errs.push((format!("set.{k}"), "must be a table".into())),
                },
                _ => match target(k) {
                    Ok(t) => put(&mut set, &t, v.clone()),
                    Err(e) => errs.push(("set".into(), e)),
                },
            }
        }
        let set_fields = fields(set.clone()).unwrap_or_else(|e| {
            errs.push(("set".into(), e));
            TaskFields::default()
        });
        let mut compute = Vec::new();
        for (k, src) in &r.compute {
            match (target(k), Expr::compile(env, src)) {
                (Ok(t), Ok(e)) => compute.push((t, e)),
                (Err(e), _) => errs.push(("compute".into(), e)),
                (_, Err(e)) => errs.push((format!("compute.{k}"), e)),
            }
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(Rule {
            id: r.id.clone(),
            scope,
            when,
            set,
            set_fields,
            compute,
        })
    }

    /// True when no process and no rule is configured: processing keeps a task's own
    /// attributes and priority.
    pub fn is_empty(&self) -> bool {
        self.empty
    }

    /// A configured calendar.
    pub fn calendar(&self, id: &str) -> Option<&BusinessCalendar> {
        self.calendars.get(id)
    }

    /// Every configured calendar.
    pub fn calendars(&self) -> impl Iterator<Item = &BusinessCalendar> {
        self.calendars.values()
    }

    /// The queue a process's tasks go to.
    pub fn queue_of(&self, process_id: &str) -> Option<&str> {
        self.processes.get(process_id)?.queue.as_deref()
    }

    /// Whether a process gives its tasks a due date.
    pub fn sets_due(&self, process_id: &str) -> bool {
        self.processes
            .get(process_id)
            .is_some_and(|p| p.due.is_some())
    }

    /// How many departments, processes and rules are configured.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.departments.len(),
            self.processes.len(),
            self.rules.values().map(Vec::len).sum(),
        )
    }
}

//! What processing decides for a task: classification (New → Captured), prioritization
//! (Captured → Queued) and reprioritization (Queued, when its time comes).

use crate::config::Phase;
use crate::explain::{CurvePoint, Explanation, Outcome, Step, Trace};
use crate::expr::{to_json, to_text};
use crate::structure::{fields, put, Due, Every, Process, RuleSet, Scope, Target};
use crate::vars::{TaskVars, View};
use jiff::SignedDuration;
use worklane_domain::{
    decide, Action, ActionMeta, BusinessCalendar, Classification, Prioritization, Status, Task,
    TaskFields, Timestamp,
};

/// What the rules decide for one processing step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// New → Captured with this structure and these attributes.
    Classify(Classification),
    /// Captured → Queued.
    Prioritize(Prioritization),
    /// A Queued task's new priority and next reprioritization.
    Reprioritize(Prioritization),
    /// → ErrorHeld, with the reason (a rule's id and its error, or no process).
    ErrorHold(String),
    /// → Rejected, with the reason (a process or contract outside its window).
    Reject(String),
}

impl Decision {
    /// The action that carries the decision out, and the reason to record with it.
    pub fn into_action(self) -> (Action, Option<String>) {
        match self {
            Self::Classify(c) => (Action::Classify(c), None),
            Self::Prioritize(p) => (Action::Prioritize(p), None),
            Self::Reprioritize(p) => (Action::Reprioritize(p), None),
            Self::ErrorHold(error) => (Action::ErrorHold { error }, None),
            Self::Reject(reason) => (Action::Reject, Some(reason)),
        }
    }
}

/// Writes a computed value to its attribute in `f`. Integers, strings and timestamps go
/// straight in; anything else takes the JSON path a `set` value takes, which also words
/// the errors. Returns the JSON it built, if it built one.
fn assign(
    f: &mut TaskFields,
    target: &Target,
    v: &cel::Value,
) -> Result<Option<serde_json::Value>, String> {
    use cel::Value as V;
    match (target, v) {
        (Target::Data(name), _) => {
            f.data.insert(name.clone(), to_text(v)?);
            return Ok(None);
        }
        (Target::Attr(a), V::Int(n)) if a == "priority" => {
            f.priority = Some(*n);
            return Ok(None);
        }
        (Target::Attr(a), V::Int(n)) if a == "businessValue" => {
            f.business_value = Some(*n);
            return Ok(None);
        }
        (Target::Attr(a), V::String(s)) => {
            let slot = match a.as_str() {
                "tenantId" => Some(&mut f.tenant_id),
                "solutionId" => Some(&mut f.solution_id),
                "departmentId" => Some(&mut f.department_id),
                "processId" => Some(&mut f.process_id),
                "contractId" => Some(&mut f.contract_id),
                "businessCalendarId" => Some(&mut f.business_calendar_id),
                "channel" => Some(&mut f.channel),
                "category" => Some(&mut f.category),
                _ => None,
            };
            if let Some(slot) = slot {
                *slot = Some(s.as_str().to_owned());
                return Ok(None);
            }
        }
        _ => {}
    }
    let json = to_json(v)?;
    let mut obj = serde_json::Map::new();
    put(&mut obj, target, json.clone());
    *f = fields(obj)?.with_defaults(f);
    Ok(Some(json))
}

/// Attributes as an explanation shows them.
fn shown(f: &TaskFields) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(f) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    }
}

/// A rule's failure, as the task's error shows it.
fn rule_error(id: &str, e: &str) -> String {
    format!("rule {id:?} failed: {e}")
}

impl RuleSet {
    fn process_of(&self, t: View<'_>) -> Option<&Process> {
        self.processes.get(t.process_id()?)
    }

    /// The department whose rules `t` runs: its own, else its process's.
    fn department_of<'a>(&'a self, t: View<'a>) -> Option<&'a str> {
        t.department_id()
            .or_else(|| self.process_of(t).map(|p| p.department.as_str()))
    }

    /// The calendar business time is measured on for `t`: its own, else its process's.
    fn calendar_of(&self, t: View<'_>) -> Option<&BusinessCalendar> {
        if let Some(c) = t.business_calendar_id().and_then(|c| self.calendars.get(c)) {
            return Some(c);
        }
        let id = self
            .process_of(t)
            .and_then(|p| p.calendar.as_deref())
            .or_else(|| {
                self.departments
                    .get(t.department_id()?)?
                    .calendar
                    .as_deref()
            })?;
        self.calendars.get(id)
    }

    /// Runs the rules of `phase` and `scope` on `t`, in file order: each sees `t` with
    /// what earlier steps set (`acc`), and a matching rule's attributes are added to
    /// `acc`. Returns the error of the first rule that fails.
    fn run_scope(
        &self,
        phase: Phase,
        scope: Scope,
        t: &Task,
        acc: &mut TaskFields,
        now: Timestamp,
        trace: &mut Trace,
    ) -> Result<(), String> {
        let Some(rules) = self.rules.get(&(phase, scope)) else {
            return Ok(());
        };
        for rule in rules {
            let step = |matched, set, error| Step {
                source: format!("rule:{}", rule.id),
                scope: Some(rule.scope.name()),
                matched,
                set,
                error,
            };
            let view = View::with(t, acc);
            let vars = TaskVars {
                task: view,
                now,
                calendar: self.calendar_of(view),
            };
            let matched = match &rule.when {
                None => Ok(true),
                Some(w) => w
                    .eval_bool(&self.env, &vars)
                    .map_err(|e| format!("when {e}")),
            };
            // A rule that only sets is taken as loaded; one that computes, on a copy.
            let result = matched.and_then(|m| {
                if !m {
                    return Ok(None);
                }
                // What the step shows: only built when someone is looking.
                let mut shown = trace.is_on().then(|| rule.set.clone());
                if rule.compute.is_empty() {
                    return Ok(Some((None, shown.unwrap_or_default())));
                }
                let mut f = rule.set_fields.clone();
                for (target, expr) in &rule.compute {
                    let at = |e: String| format!("compute.{}: {e}", target.name());
                    let v = expr.eval(&self.env, &vars).map_err(at)?;
                    let json = assign(&mut f, target, &v).map_err(at)?;
                    if let Some(obj) = &mut shown {
                        let json = match json {
                            Some(j) => j,
                            None => match target {
                                Target::Data(_) => to_text(&v).map(serde_json::Value::String),
                                _ => to_json(&v),
                            }
                            .map_err(at)?,
                        };
                        put(obj, target, json);
                    }
                }
                f.validate().map_err(|e| e.to_string())?;
                Ok(Some((Some(f), shown.unwrap_or_default())))
            });
            match result {
                Ok(None) => trace.step(|| step(false, Default::default(), None)),
                Ok(Some((f, obj))) => {
                    acc.set_from(f.as_ref().unwrap_or(&rule.set_fields));
                    trace.step(|| step(true, obj, None));
                }
                Err(e) => {
                    trace.step(|| step(false, Default::default(), Some(e.clone())));
                    return Err(rule_error(&rule.id, &e));
                }
            }
        }
        Ok(())
    }

    /// Classification (New → Captured): the rules of scopes global, the task's capture
    /// point, its department and its process, then the structure from its process.
    pub fn classify(&self, task: &Task, now: Timestamp, trace: &mut Trace) -> Decision {
        trace.phase("classification");
        if self.empty {
            return Decision::Classify(Classification::default());
        }
        let mut acc = TaskFields::default();
        let mut run = |scope: Scope, acc: &mut TaskFields| {
            self.run_scope(Phase::Classification, scope, task, acc, now, trace)
        };
        let result = (|| {
            run(Scope::Global, &mut acc)?;
            run(Scope::CapturePoint(task.capture_point_id.clone()), &mut acc)?;
            let dep = self
                .department_of(View::with(task, &acc))
                .map(str::to_owned);
            if let Some(d) = dep {
                run(Scope::Department(d), &mut acc)?;
            }
            if let Some(p) = View::with(task, &acc).process_id().map(str::to_owned) {
                run(Scope::Process(p), &mut acc)?;
            }
            Ok::<_, String>(())
        })();
        if let Err(e) = result {
            return Decision::ErrorHold(e);
        }
        let Some(pid) = View::with(task, &acc).process_id().map(str::to_owned) else {
            return Decision::ErrorHold(
                "no process: no classification rule set processId and the task came without one"
                    .into(),
            );
        };
        let Some(process) = self.processes.get(&pid) else {
            return Decision::ErrorHold(format!("processId {pid:?} names no configured process"));
        };
        if let Some(reason) = self.outside_window(process, now) {
            return Decision::Reject(reason);
        }
        let dep = self.departments.get(&process.department);
        Decision::Classify(Classification {
            tenant_id: dep.and_then(|d| d.tenant.clone()),
            solution_id: dep.and_then(|d| d.solution.clone()),
            department_id: Some(process.department.clone()),
            process_id: Some(pid),
            contract_id: process.contract.clone(),
            business_calendar_id: process.calendar.clone(),
            fields: acc,
        })
    }

    fn outside_window(&self, p: &Process, now: Timestamp) -> Option<String> {
        let check = |what: String, from: Option<Timestamp>, to: Option<Timestamp>| {
            if from.is_some_and(|f| now < f) {
                return Some(format!(
                    "{what} is not active before {}",
                    from.expect("checked")
                ));
            }
            if to.is_some_and(|t| now >= t) {
                return Some(format!(
                    "{what} is not active since {}",
                    to.expect("checked")
                ));
            }
            None
        };
        check(format!("process {:?}", p.id), p.active_from, p.active_to).or_else(|| {
            let c = self.contracts.get(p.contract.as_deref()?)?;
            check(format!("contract {:?}", c.id), c.active_from, c.active_to)
        })
    }

    /// When a task of `p` is next reprioritized after `now`.
    fn next_time(
        &self,
        p: &Process,
        cal: Option<&BusinessCalendar>,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, String> {
        match p.every {
            None => Ok(None),
            Some(Every::Time(d)) => now
                .checked_add(d)
                .map(Some)
                .map_err(|e| format!("reprioritize_every: {e}")),
            Some(Every::Business(d)) => {
                let cal = cal.ok_or("reprioritize_every: the task has no business calendar")?;
                cal.add(now, d)
                    .map(Some)
                    .map_err(|e| format!("reprioritize_every: {e}"))
            }
        }
    }

    /// Prioritization (Captured → Queued): the process's priority, business value, due
    /// date and next reprioritization, then the prioritization rules.
    pub fn prioritize(&self, task: &Task, now: Timestamp, trace: &mut Trace) -> Decision {
        trace.phase("prioritization");
        if self.empty {
            return Decision::Prioritize(Prioritization::default());
        }
        let view = View::of(task);
        let Some(process) = self.process_of(view) else {
            return Decision::ErrorHold(match &task.process_id {
                Some(p) => format!("processId {p:?} names no configured process"),
                None => "no process: the task has no processId".into(),
            });
        };
        let cal = self.calendar_of(view);
        let vars = TaskVars {
            task: view,
            now,
            calendar: cal,
        };
        let mut acc = TaskFields::default();
        let at =
            |name: &'static str| move |e: String| format!("process {:?} {name}: {e}", process.id);
        let result = (|| {
            if let Some(e) = &process.priority {
                let p = e.eval_int(&self.env, &vars).map_err(at("priority"))?;
                acc.priority = Some(p.into());
            }
            if let Some(e) = &process.business_value {
                let v = e.eval_int(&self.env, &vars).map_err(at("businessValue"))?;
                acc.business_value = Some(v.into());
            }
            if task.due_date_time.is_none() {
                acc.due_date_time = match &process.due {
                    None => None,
                    Some(Due::Business(d)) => Some(
                        cal.ok_or_else(|| "the task has no business calendar".to_owned())
                            .and_then(|c| c.add(now, *d).map_err(|e| e.to_string()))
                            .map_err(at("dueDateTime"))?,
                    ),
                    Some(Due::Expr(e)) => {
                        Some(e.eval_time(&self.env, &vars).map_err(at("dueDateTime"))?)
                    }
                };
            }
            let next = self
                .next_time(process, cal, now)
                .map_err(|e| format!("process {:?} {e}", process.id))?;
            acc.validate()
                .map_err(|e| format!("process {:?}: {e}", process.id))?;
            Ok::<_, String>(next)
        })();
        let next = match result {
            Ok(next) => next,
            Err(e) => {
                trace.step(|| self.process_step(process, shown(&acc), Some(e.clone())));
                return Decision::ErrorHold(e);
            }
        };
        acc.reprioritize_date_time = next;
        trace.step(|| self.process_step(process, shown(&acc), None));
        match self.prioritization_rules(process, task, &mut acc, now, trace) {
            Ok(()) => {
                let reprioritize_date_time = acc.reprioritize_date_time.take().or(next);
                Decision::Prioritize(Prioritization {
                    fields: acc,
                    reprioritize_date_time,
                })
            }
            Err(e) => Decision::ErrorHold(e),
        }
    }

    fn process_step(
        &self,
        p: &Process,
        set: serde_json::Map<String, serde_json::Value>,
        error: Option<String>,
    ) -> Step {
        Step {
            source: format!("process:{}", p.id),
            scope: None,
            matched: true,
            set,
            error,
        }
    }

    fn prioritization_rules(
        &self,
        process: &Process,
        t: &Task,
        acc: &mut TaskFields,
        now: Timestamp,
        trace: &mut Trace,
    ) -> Result<(), String> {
        let p = Phase::Prioritization;
        self.run_scope(p, Scope::Global, t, acc, now, trace)?;
        let dep = View::with(t, acc).department_id().map(str::to_owned);
        if let Some(d) = dep {
            self.run_scope(p, Scope::Department(d), t, acc, now, trace)?;
        }
        self.run_scope(p, Scope::Process(process.id.clone()), t, acc, now, trace)
    }

    /// Reprioritization of a Queued task whose reprioritizeDateTime has come: the
    /// process's `reprioritize` (capped by `max_priority`), the prioritization rules again,
    /// and the next time.
    pub fn reprioritize(&self, task: &Task, now: Timestamp, trace: &mut Trace) -> Decision {
        trace.phase("reprioritization");
        let view = View::of(task);
        let Some(process) = self.process_of(view) else {
            // Queued before rules named its process (or the process was removed): nothing
            // raises it any more.
            return Decision::Reprioritize(Prioritization::default());
        };
        let cal = self.calendar_of(view);
        let mut acc = TaskFields::default();
        if let Some(e) = &process.reprioritize {
            let vars = TaskVars {
                task: view,
                now,
                calendar: cal,
            };
            match e.eval_int(&self.env, &vars) {
                Ok(p) => {
                    // The cap stops a rise; it never lowers a priority set above it.
                    let p = match process.max_priority {
                        Some(m) if p > m => m.max(task.priority),
                        _ => p,
                    };
                    acc.priority = Some(p.into());
                }
                Err(e) => {
                    let e = format!("process {:?} reprioritize: {e}", process.id);
                    trace.step(|| self.process_step(process, shown(&acc), Some(e.clone())));
                    return Decision::ErrorHold(e);
                }
            }
        }
        let next = match self.next_time(process, cal, now) {
            Ok(n) => n,
            Err(e) => return Decision::ErrorHold(format!("process {:?} {e}", process.id)),
        };
        if let Err(e) = acc.validate() {
            return Decision::ErrorHold(format!("process {:?}: {e}", process.id));
        }
        trace.step(|| {
            let mut set = shown(&acc);
            if let Some(n) = next {
                set.insert("reprioritizeDateTime".into(), n.to_string().into());
            }
            self.process_step(process, set, None)
        });
        match self.prioritization_rules(process, task, &mut acc, now, trace) {
            Ok(()) => {
                let reprioritize_date_time = acc.reprioritize_date_time.take().or(next);
                Decision::Reprioritize(Prioritization {
                    fields: acc,
                    reprioritize_date_time,
                })
            }
            Err(e) => Decision::ErrorHold(e),
        }
    }

    /// The step processing takes for `task` at `now`, or None when it has nothing to do:
    /// classify a New task whose activation has passed, prioritize a Captured one,
    /// reprioritize a Queued one whose time has come.
    pub fn next_step(&self, task: &Task, now: Timestamp, trace: &mut Trace) -> Option<Decision> {
        let active = task.is_active_at(now);
        match task.status {
            Status::New if active => Some(self.classify(task, now, trace)),
            Status::Captured => Some(self.prioritize(task, now, trace)),
            Status::Queued | Status::Distributed
                if active && task.reprioritize_date_time.is_some_and(|r| r <= now) =>
            {
                Some(self.reprioritize(task, now, trace))
            }
            _ => None,
        }
    }

    /// Shows what the rules do to `task` at `now`: every step until it rests (Queued,
    /// ErrorHeld, Rejected...), and the priority curve over the following `horizon`.
    pub fn explain(&self, task: &Task, now: Timestamp, horizon: SignedDuration) -> Explanation {
        const MAX_POINTS: usize = 96;
        let mut trace = Trace::on();
        let mut t = task.clone();
        let meta = ActionMeta::default().defaulted("rules");
        for _ in 0..3 {
            let Some(d) = self.next_step(&t, now, &mut trace) else {
                break;
            };
            let (action, reason) = d.into_action();
            let meta = ActionMeta {
                reason,
                ..meta.clone()
            };
            match decide(&t, &action, &meta, now) {
                Ok(tr) => {
                    if action == Action::Reject {
                        t = tr.task;
                        t.error = meta.reason;
                        break;
                    }
                    t = tr.task;
                }
                Err(e) => {
                    t.error = Some(e.to_string());
                    break;
                }
            }
        }
        let outcome = Outcome {
            status: t.status,
            tenant_id: t.tenant_id.clone(),
            solution_id: t.solution_id.clone(),
            department_id: t.department_id.clone(),
            process_id: t.process_id.clone(),
            contract_id: t.contract_id.clone(),
            business_calendar_id: t.business_calendar_id.clone(),
            queue: t
                .process_id
                .as_deref()
                .and_then(|p| self.queue_of(p))
                .map(str::to_owned),
            priority: t.priority,
            business_value: t.business_value,
            due_date_time: t.due_date_time,
            reprioritize_date_time: t.reprioritize_date_time,
            error: t.error.clone(),
        };
        let mut curve = Vec::new();
        if let Ok(end) = now.checked_add(horizon) {
            let mut off = Trace::off();
            while let Some(at) = t.reprioritize_date_time.filter(|r| *r <= end) {
                if curve.len() >= MAX_POINTS || t.status != Status::Queued {
                    break;
                }
                let Decision::Reprioritize(p) = self.reprioritize(&t, at, &mut off) else {
                    break;
                };
                match decide(&t, &Action::Reprioritize(p), &meta, at) {
                    Ok(tr) => t = tr.task,
                    Err(_) => break,
                }
                curve.push(CurvePoint {
                    at,
                    priority: t.priority,
                });
                if t.reprioritize_date_time.is_some_and(|n| n <= at) {
                    break;
                }
            }
        }
        Explanation {
            at: now,
            phases: trace.phases,
            outcome,
            curve,
        }
    }
}

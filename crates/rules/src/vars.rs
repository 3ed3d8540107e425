//! The variables a CEL expression sees (SPEC 8), resolved from the task on access: a rule
//! that reads `channel` converts `channel` and nothing else, and strings are borrowed, not
//! copied. The research measured binding a whole task per evaluation at about twice the
//! cost of evaluating it. What earlier steps of a phase set is read through an overlay,
//! not written into a copy of the task.

use cel::common::types::{
    CelBool, CelDuration, CelInt, CelMap, CelMapKey, CelNull, CelString, CelTimestamp,
};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use jiff::SignedDuration;
use std::collections::HashMap;
use worklane_domain::{BusinessCalendar, Ext, Task, TaskFields, Timestamp};

/// A task as a phase's rules see it: its attributes, with what earlier steps of the
/// phase set in their place (as [`TaskFields::apply_to`] would write them).
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub task: &'a Task,
    pub over: Option<&'a TaskFields>,
}

/// The overlay's value of attribute `$f` (an `Option<String>`), else the task's.
macro_rules! text_of {
    ($v:expr, $f:ident) => {
        $v.over
            .and_then(|o| o.$f.as_deref())
            .or($v.task.$f.as_deref())
    };
}

/// The overlay's value of attribute `$f` (an `Option` of a `Copy` type), else the task's.
macro_rules! copy_of {
    ($v:expr, $f:ident) => {
        $v.over.and_then(|o| o.$f).or($v.task.$f)
    };
}

impl<'a> View<'a> {
    /// The task as it is.
    pub fn of(task: &'a Task) -> Self {
        Self { task, over: None }
    }

    /// The task with `over` set on it.
    pub fn with(task: &'a Task, over: &'a TaskFields) -> Self {
        Self {
            task,
            over: Some(over),
        }
    }

    /// The process the task is in so far.
    pub fn process_id(&self) -> Option<&'a str> {
        text_of!(self, process_id)
    }

    /// The department the task is in so far.
    pub fn department_id(&self) -> Option<&'a str> {
        text_of!(self, department_id)
    }

    /// The business calendar named for the task so far.
    pub fn business_calendar_id(&self) -> Option<&'a str> {
        text_of!(self, business_calendar_id)
    }

    /// The priority so far.
    pub fn priority(&self) -> i32 {
        // As `apply_to` narrows it (a set priority is validated to fit first).
        self.over
            .and_then(|o| o.priority)
            .map_or(self.task.priority, |p| p as i32)
    }

    /// The business value so far.
    pub fn business_value(&self) -> Option<i32> {
        match self.over.and_then(|o| o.business_value) {
            Some(v) => Some(v as i32),
            None => self.task.business_value,
        }
    }

    /// The due date so far.
    pub fn due_date_time(&self) -> Option<Timestamp> {
        copy_of!(self, due_date_time)
    }

    fn ext_strings(&self) -> [(&'static str, Option<&'a str>); 8] {
        overlaid(self.task.ext.strings(), self.over.map(|o| o.ext.strings()))
    }

    fn ext_timestamps(&self) -> [(&'static str, Option<Timestamp>); 3] {
        overlaid(
            self.task.ext.timestamps(),
            self.over.map(|o| o.ext.timestamps()),
        )
    }

    fn data(&self, name: &str) -> Option<&'a str> {
        self.over
            .and_then(|o| o.data.get(name))
            .or_else(|| self.task.data.get(name))
            .map(String::as_str)
    }
}

/// `own`'s named values, with those `over` gives in their place.
fn overlaid<T: Copy, const N: usize>(
    mut own: [(&'static str, Option<T>); N],
    over: Option<[(&'static str, Option<T>); N]>,
) -> [(&'static str, Option<T>); N] {
    for (slot, (_, v)) in own.iter_mut().zip(over.into_iter().flatten()) {
        if v.is_some() {
            slot.1 = v;
        }
    }
    own
}

/// The identifier a presence test of `root`'s entry `name` (`has(data.NAME)`, `"NAME" in
/// data`) is rewritten into at load (`crate::expr`), for `data` and `ext`. CEL identifiers
/// cannot hold a parenthesis, so no variable is spelt so.
pub(crate) fn presence_name(root: &str, name: &str) -> String {
    format!("has({root}.{name})")
}

/// What a [`presence_name`] tests: `ROOT.NAME`.
fn presence_of(variable: &str) -> Option<&str> {
    variable.strip_prefix("has(")?.strip_suffix(')')
}

/// A task (with what earlier steps set) and the moment an expression is evaluated at.
pub(crate) struct TaskVars<'a> {
    pub task: View<'a>,
    pub now: Timestamp,
    /// The task's business calendar, for `businessAge` and `businessDueIn`.
    pub calendar: Option<&'a BusinessCalendar>,
}

/// A jiff instant as CEL's (chrono) timestamp.
pub(crate) fn cel_time(t: Timestamp) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond() as u32)
        .unwrap_or_default()
        .fixed_offset()
}

/// A chrono instant (from a CEL result) as jiff's.
pub(crate) fn jiff_time(t: &chrono::DateTime<chrono::FixedOffset>) -> Option<Timestamp> {
    Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32).ok()
}

fn cel_duration(d: SignedDuration) -> chrono::Duration {
    chrono::Duration::seconds(d.as_secs()) + chrono::Duration::nanoseconds(d.subsec_nanos().into())
}

fn boxed<'b, T: Val + 'b>(v: T) -> Option<CowVal<'b, 'b>> {
    Some(CowVal::Owned(Box::new(v)))
}

fn text(s: Option<&str>) -> Option<CowVal<'_, '_>> {
    match s {
        Some(s) => boxed(CelString::from(s)),
        None => boxed(CelNull),
    }
}

fn time<'b>(t: Option<Timestamp>) -> Option<CowVal<'b, 'b>> {
    match t {
        Some(t) => boxed(CelTimestamp::from(cel_time(t))),
        None => boxed(CelNull),
    }
}

fn duration<'b>(d: Option<SignedDuration>) -> Option<CowVal<'b, 'b>> {
    match d {
        Some(d) => boxed(CelDuration::from(cel_duration(d))),
        None => boxed(CelNull),
    }
}

/// A map of borrowed entries, built straight as CEL's own map (no conversion from
/// [`Value`]).
fn map<'b>(entries: HashMap<CelMapKey<'b>, Box<dyn Val + 'b>>) -> Option<CowVal<'b, 'b>> {
    boxed(CelMap::from(entries))
}

fn boxed_text(s: Option<&str>) -> Box<dyn Val + '_> {
    match s {
        Some(s) => Box::new(CelString::from(s)),
        None => Box::new(CelNull),
    }
}

impl TaskVars<'_> {
    fn ext(&self) -> HashMap<CelMapKey<'_>, Box<dyn Val + '_>> {
        let mut m: HashMap<CelMapKey<'_>, Box<dyn Val + '_>> =
            HashMap::with_capacity(Ext::NAMES.len());
        for (name, v) in self.task.ext_strings() {
            m.insert(CelMapKey::from(name), boxed_text(v));
        }
        for (name, v) in self.task.ext_timestamps() {
            let v: Box<dyn Val> = match v {
                Some(t) => Box::new(CelTimestamp::from(cel_time(t))),
                None => Box::new(CelNull),
            };
            m.insert(CelMapKey::from(name), v);
        }
        m
    }

    fn data(&self) -> HashMap<CelMapKey<'_>, Box<dyn Val + '_>> {
        let View { task, over } = self.task;
        let over = over.map(|o| &o.data).into_iter().flatten();
        // The overlay's entries last, so that they replace the task's.
        task.data
            .iter()
            .chain(over)
            .map(|(k, v)| {
                let v: Box<dyn Val> = Box::new(CelString::from(v.as_str()));
                (CelMapKey::from(k.as_str()), v)
            })
            .collect()
    }

    /// `has(data.NAME)` and `has(ext.NAME)` as CEL answers them on the maps `data` and
    /// `ext` resolve to (see [`presence_name`]): a data entry is there when the task or an
    /// earlier step has it; every ext attribute is, null or not.
    fn presence(&self, tested: &str) -> Option<CowVal<'_, '_>> {
        let has = if let Some(name) = tested.strip_prefix("data.") {
            self.task.data(name).is_some()
        } else {
            Ext::NAMES.contains(&tested.strip_prefix("ext.")?)
        };
        boxed(CelBool::from(has))
    }

    /// `ext.NAME` and `data.NAME`, which the interpreter asks for by their whole name
    /// before it asks for the map: answered without building the map. None leaves a
    /// missing key to the map, which reports it as CEL does. Also the presence tests
    /// rewritten at load (`has(data.NAME)`).
    fn qualified(&self, variable: &str) -> Option<CowVal<'_, '_>> {
        if let Some(tested) = presence_of(variable) {
            return self.presence(tested);
        }
        if let Some(name) = variable.strip_prefix("data.") {
            return text(Some(self.task.data(name)?));
        }
        let name = variable.strip_prefix("ext.")?;
        let v = self.task;
        if let Some((_, s)) = v.ext_strings().into_iter().find(|(n, _)| *n == name) {
            return text(s);
        }
        let (_, t) = v.ext_timestamps().into_iter().find(|(n, _)| *n == name)?;
        time(t)
    }
}

impl VariableResolver for TaskVars<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let v = self.task;
        let t = v.task;
        match variable {
            "brokerId" => boxed(CelInt::from(t.broker_id.0)),
            "captureId" => text(Some(&t.capture_id)),
            "capturePointId" => text(Some(&t.capture_point_id)),
            "distributionId" => text(t.distribution_id.as_deref()),
            "distributionPointId" => text(t.distribution_point_id.as_deref()),
            "tenantId" => text(text_of!(v, tenant_id)),
            "solutionId" => text(text_of!(v, solution_id)),
            "departmentId" => text(v.department_id()),
            "processId" => text(v.process_id()),
            "contractId" => text(text_of!(v, contract_id)),
            "businessCalendarId" => text(v.business_calendar_id()),
            "channel" => text(text_of!(v, channel)),
            "category" => text(text_of!(v, category)),
            "status" => text(Some(t.status.as_str())),
            "priority" => boxed(CelInt::from(i64::from(v.priority()))),
            "businessValue" => match v.business_value() {
                Some(b) => boxed(CelInt::from(i64::from(b))),
                None => boxed(CelNull),
            },
            "createdDateTime" => time(Some(t.created_date_time)),
            "heldDateTime" => time(t.held_date_time),
            "distributedDateTime" => time(t.distributed_date_time),
            "assignedDateTime" => time(t.assigned_date_time),
            "completedDateTime" => time(t.completed_date_time),
            "activationDateTime" => time(copy_of!(v, activation_date_time)),
            "dueDateTime" => time(v.due_date_time()),
            "expirationDateTime" => time(copy_of!(v, expiration_date_time)),
            "reprioritizeDateTime" => time(copy_of!(v, reprioritize_date_time)),
            "assignedToUser" => text(t.assigned_to_user.as_deref()),
            "queue" => text(t.queue.as_deref()),
            "queueType" => text(t.queue_type.map(|q| q.as_str())),
            "queueTarget" => text(t.queue_target.as_deref()),
            "error" => text(t.error.as_deref()),
            "ext" => map(self.ext()),
            "data" => map(self.data()),
            "now" => time(Some(self.now)),
            "age" => duration(Some(t.created_date_time.duration_until(self.now))),
            "dueIn" => duration(v.due_date_time().map(|d| self.now.duration_until(d))),
            "businessAge" => duration(
                self.calendar
                    .map(|c| c.between(t.created_date_time, self.now)),
            ),
            "businessDueIn" => duration(match (self.calendar, v.due_date_time()) {
                (Some(c), Some(d)) => Some(c.between(self.now, d)),
                _ => None,
            }),
            _ => self.qualified(variable),
        }
    }
}

/// Every variable name [`TaskVars`] answers, for checking expressions at load time.
pub(crate) const NAMES: &[&str] = &[
    "brokerId",
    "captureId",
    "capturePointId",
    "distributionId",
    "distributionPointId",
    "tenantId",
    "solutionId",
    "departmentId",
    "processId",
    "contractId",
    "businessCalendarId",
    "channel",
    "category",
    "status",
    "priority",
    "businessValue",
    "createdDateTime",
    "heldDateTime",
    "distributedDateTime",
    "assignedDateTime",
    "completedDateTime",
    "activationDateTime",
    "dueDateTime",
    "expirationDateTime",
    "reprioritizeDateTime",
    "assignedToUser",
    "queue",
    "queueType",
    "queueTarget",
    "error",
    "ext",
    "data",
    "now",
    "age",
    "dueIn",
    "businessAge",
    "businessDueIn",
];

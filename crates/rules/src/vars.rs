//! The variables a CEL expression sees (SPEC 8), resolved from the task on access: a rule
//! that reads `channel` converts `channel` and nothing else, and strings are borrowed, not
//! copied. The research measured binding a whole task per evaluation at about twice the
//! cost of evaluating it.

use cel::common::types::{
    CelDuration, CelInt, CelMap, CelMapKey, CelNull, CelString, CelTimestamp,
};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use jiff::SignedDuration;
use std::collections::HashMap;
use worklane_domain::{BusinessCalendar, Task, Timestamp};

/// A task and the moment an expression is evaluated at.
pub(crate) struct TaskVars<'a> {
    pub task: &'a Task,
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
        let e = &self.task.ext;
        let mut m: HashMap<CelMapKey<'_>, Box<dyn Val + '_>> = HashMap::with_capacity(11);
        for (name, v) in e.strings() {
            m.insert(CelMapKey::from(name), boxed_text(v));
        }
        for (name, v) in e.timestamps() {
            let v: Box<dyn Val> = match v {
                Some(t) => Box::new(CelTimestamp::from(cel_time(t))),
                None => Box::new(CelNull),
            };
            m.insert(CelMapKey::from(name), v);
        }
        m
    }

    fn data(&self) -> HashMap<CelMapKey<'_>, Box<dyn Val + '_>> {
        self.task
            .data
            .iter()
            .map(|(k, v)| {
                let v: Box<dyn Val> = Box::new(CelString::from(v.as_str()));
                (CelMapKey::from(k.as_str()), v)
            })
            .collect()
    }

    /// `ext.NAME` and `data.NAME`, which the interpreter asks for by their whole name
    /// before it asks for the map: answered without building the map. None leaves a
    /// missing key to the map, which reports it as CEL does.
    fn qualified(&self, variable: &str) -> Option<CowVal<'_, '_>> {
        if let Some(name) = variable.strip_prefix("data.") {
            return text(Some(self.task.data.get(name)?.as_str()));
        }
        let name = variable.strip_prefix("ext.")?;
        let e = &self.task.ext;
        if let Some((_, v)) = e.strings().into_iter().find(|(n, _)| *n == name) {
            return text(v);
        }
        let (_, v) = e.timestamps().into_iter().find(|(n, _)| *n == name)?;
        time(v)
    }
}

impl VariableResolver for TaskVars<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let t = self.task;
        match variable {
            "brokerId" => boxed(CelInt::from(t.broker_id.0)),
            "captureId" => text(Some(&t.capture_id)),
            "capturePointId" => text(Some(&t.capture_point_id)),
            "distributionId" => text(t.distribution_id.as_deref()),
            "distributionPointId" => text(t.distribution_point_id.as_deref()),
            "tenantId" => text(t.tenant_id.as_deref()),
            "solutionId" => text(t.solution_id.as_deref()),
            "departmentId" => text(t.department_id.as_deref()),
            "processId" => text(t.process_id.as_deref()),
            "contractId" => text(t.contract_id.as_deref()),
            "businessCalendarId" => text(t.business_calendar_id.as_deref()),
            "channel" => text(t.channel.as_deref()),
            "category" => text(t.category.as_deref()),
            "status" => text(Some(t.status.as_str())),
            "priority" => boxed(CelInt::from(i64::from(t.priority))),
            "businessValue" => match t.business_value {
                Some(v) => boxed(CelInt::from(i64::from(v))),
                None => boxed(CelNull),
            },
            "createdDateTime" => time(Some(t.created_date_time)),
            "heldDateTime" => time(t.held_date_time),
            "distributedDateTime" => time(t.distributed_date_time),
            "assignedDateTime" => time(t.assigned_date_time),
            "completedDateTime" => time(t.completed_date_time),
            "activationDateTime" => time(t.activation_date_time),
            "dueDateTime" => time(t.due_date_time),
            "expirationDateTime" => time(t.expiration_date_time),
            "reprioritizeDateTime" => time(t.reprioritize_date_time),
            "assignedToUser" => text(t.assigned_to_user.as_deref()),
            "queue" => text(t.queue.as_deref()),
            "queueType" => text(t.queue_type.map(|q| q.as_str())),
            "queueTarget" => text(t.queue_target.as_deref()),
            "error" => text(t.error.as_deref()),
            "ext" => map(self.ext()),
            "data" => map(self.data()),
            "now" => time(Some(self.now)),
            "age" => duration(Some(t.created_date_time.duration_until(self.now))),
            "dueIn" => duration(t.due_date_time.map(|d| self.now.duration_until(d))),
            "businessAge" => duration(
                self.calendar
                    .map(|c| c.between(t.created_date_time, self.now)),
            ),
            "businessDueIn" => duration(match (self.calendar, t.due_date_time) {
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

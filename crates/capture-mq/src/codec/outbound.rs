//! Outbound messages (seed 001, direction "Out"): answers and notifications, written with
//! the seed's spelling per message, and read back (for `mq listen`, tests, the benchmark).

use super::datetime;
use super::fields::{fold, set_ext_attribute};
use super::inbound::{single_message, write_data};
use super::tree::{self, Element, Limits};
use super::writer::XmlWriter;
use jiff::tz::TimeZone;
use std::collections::BTreeMap;
use worklane_domain::fields::check_int;
use worklane_domain::{
    BrokerId, DomainError, Event, EventType, Ext, QueueType, Status, Task, Timestamp,
};

/// The notification-shaped outbound messages: the common notification attributes plus
/// what each adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NoticeKind {
    TaskCreated,
    TaskUpdated,
    TaskDistributed,
    TaskDistributedQueue,
    TaskAssigned,
    TaskCompleted,
    TaskHeld,
    TaskErrorHeld,
    TaskResumed,
    TaskRestarted,
    TaskCanceled,
    TaskRejected,
    TaskReturned,
    TaskInfo,
}

impl NoticeKind {
    /// Every kind, in the seed's order.
    pub const ALL: [NoticeKind; 14] = [
        Self::TaskCreated,
        Self::TaskUpdated,
        Self::TaskDistributed,
        Self::TaskDistributedQueue,
        Self::TaskAssigned,
        Self::TaskCompleted,
        Self::TaskHeld,
        Self::TaskErrorHeld,
        Self::TaskResumed,
        Self::TaskRestarted,
        Self::TaskCanceled,
        Self::TaskRejected,
        Self::TaskReturned,
        Self::TaskInfo,
    ];

    /// The message's element name.
    pub fn name(self) -> &'static str {
        match self {
            Self::TaskCreated => "TaskCreated",
            Self::TaskUpdated => "TaskUpdated",
            Self::TaskDistributed => "TaskDistributed",
            Self::TaskDistributedQueue => "TaskDistributedQueue",
            Self::TaskAssigned => "TaskAssigned",
            Self::TaskCompleted => "TaskCompleted",
            Self::TaskHeld => "TaskHeld",
            Self::TaskErrorHeld => "TaskErrorHeld",
            Self::TaskResumed => "TaskResumed",
            Self::TaskRestarted => "TaskRestarted",
            Self::TaskCanceled => "TaskCanceled",
            Self::TaskRejected => "TaskRejected",
            Self::TaskReturned => "TaskReturned",
            Self::TaskInfo => "TaskInfo",
        }
    }

    /// The message an event is sent as; `None` for events the protocol has no message for
    /// (TaskCaptured, TaskQueued, TaskRouteRequested, TaskStopped).
    pub fn for_event(t: EventType) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == t.as_str())
    }
}

/// The names of every outbound message (what `notifications` may list).
pub const OUTBOUND_NAMES: [&str; 16] = [
    "TaskCreated",
    "TaskUpdated",
    "TaskDistributed",
    "TaskDistributedQueue",
    "TaskAssigned",
    "TaskCompleted",
    "TaskHeld",
    "TaskErrorHeld",
    "TaskResumed",
    "TaskRestarted",
    "TaskCanceled",
    "TaskRejected",
    "TaskReturned",
    "TaskInfo",
    "Error",
    "Pong",
];

/// The task attributes a notification carries beyond the common ones. Only those its kind
/// lists are written (see [`Details::of_task`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    pub tenant_id: Option<String>,
    pub solution_id: Option<String>,
    pub contract_id: Option<String>,
    pub process_id: Option<String>,
    pub channel: Option<String>,
    pub category: Option<String>,
    pub status: Option<Status>,
    pub business_calendar_id: Option<String>,
    pub created_date_time: Option<Timestamp>,
    pub held_date_time: Option<Timestamp>,
    pub distributed_date_time: Option<Timestamp>,
    pub assigned_date_time: Option<Timestamp>,
    pub completed_date_time: Option<Timestamp>,
    pub activation_date_time: Option<Timestamp>,
    pub due_date_time: Option<Timestamp>,
    pub expiration_date_time: Option<Timestamp>,
    pub priority: Option<i32>,
    pub reprioritize_date_time: Option<Timestamp>,
    pub business_value: Option<i32>,
    pub assigned_to_user: Option<String>,
    pub queue: Option<String>,
    pub queue_type: Option<QueueType>,
    pub queue_target: Option<String>,
    pub error: Option<String>,
    pub ext: Ext,
    pub data: BTreeMap<String, String>,
}

impl Details {
    /// What a `kind` message carries of `task`.
    pub fn of_task(kind: NoticeKind, task: &Task) -> Self {
        let mut d = Details::default();
        match kind {
            NoticeKind::TaskUpdated | NoticeKind::TaskInfo => {
                d = Details {
                    tenant_id: task.tenant_id.clone(),
                    solution_id: task.solution_id.clone(),
                    contract_id: task.contract_id.clone(),
                    process_id: task.process_id.clone(),
                    channel: task.channel.clone(),
                    category: task.category.clone(),
                    status: Some(task.status),
                    business_calendar_id: task.business_calendar_id.clone(),
                    created_date_time: Some(task.created_date_time),
                    held_date_time: task.held_date_time,
                    distributed_date_time: task.distributed_date_time,
                    assigned_date_time: task.assigned_date_time,
                    completed_date_time: task.completed_date_time,
                    activation_date_time: task.activation_date_time,
                    due_date_time: task.due_date_time,
                    expiration_date_time: task.expiration_date_time,
                    priority: Some(task.priority),
                    reprioritize_date_time: task.reprioritize_date_time,
                    business_value: task.business_value,
                    assigned_to_user: task.assigned_to_user.clone(),
                    ext: task.ext.clone(),
                    data: task.data.clone(),
                    ..Details::default()
                };
                if kind == NoticeKind::TaskInfo {
                    d.queue = task.queue.clone();
                    d.queue_type = task.queue_type;
                    d.queue_target = task.queue_target.clone();
                }
            }
            NoticeKind::TaskDistributedQueue => {
                d.queue = task.queue.clone();
                d.queue_type = task.queue_type;
                d.queue_target = task.queue_target.clone();
            }
            NoticeKind::TaskAssigned => d.assigned_to_user = task.assigned_to_user.clone(),
            NoticeKind::TaskErrorHeld => d.error = task.error.clone(),
            _ => {}
        }
        d
    }
}

/// A notification-shaped message: the common notification attributes and the details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: NoticeKind,
    pub broker_id: BrokerId,
    pub capture_id: String,
    pub capture_point_id: String,
    pub distribution_id: Option<String>,
    pub distribution_point_id: Option<String>,
    pub actor: Option<String>,
    pub reason: Option<String>,
    pub event_date_time: Timestamp,
    pub details: Details,
}

impl Notice {
    /// The message an event is sent as, if the protocol has one for it.
    pub fn from_event(event: &Event) -> Option<Self> {
        let kind = NoticeKind::for_event(event.event_type)?;
        Some(Self {
            kind,
            broker_id: event.broker_id,
            capture_id: event.capture_id.clone(),
            capture_point_id: event.capture_point_id.clone(),
            distribution_id: event.distribution_id.clone(),
            distribution_point_id: event.distribution_point_id.clone(),
            actor: event.actor.clone(),
            reason: event.reason.clone(),
            event_date_time: event.event_date_time,
            details: Details::of_task(kind, &event.task),
        })
    }

    /// TaskInfo for `task`, answered at `at` to `actor`'s request.
    pub fn task_info(
        task: &Task,
        actor: Option<String>,
        reason: Option<String>,
        at: Timestamp,
    ) -> Self {
        Self {
            kind: NoticeKind::TaskInfo,
            broker_id: task.broker_id,
            capture_id: task.capture_id.clone(),
            capture_point_id: task.capture_point_id.clone(),
            distribution_id: task.distribution_id.clone(),
            distribution_point_id: task.distribution_point_id.clone(),
            actor,
            reason,
            event_date_time: at,
            details: Details::of_task(NoticeKind::TaskInfo, task),
        }
    }
}

/// The Error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMessage {
    pub message: String,
    pub code: String,
    pub parameters: Vec<String>,
}

impl From<&DomainError> for ErrorMessage {
    fn from(e: &DomainError) -> Self {
        Self {
            message: e.message.clone(),
            code: e.code.as_str().to_owned(),
            parameters: e.parameters.clone(),
        }
    }
}

/// An outbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    Notice(Notice),
    Error(ErrorMessage),
    Pong,
}

impl Outbound {
    /// The message's element name (what `notifications` lists).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Notice(n) => n.kind.name(),
            Self::Error(_) => "Error",
            Self::Pong => "Pong",
        }
    }
}

pub(crate) fn write_ext(w: &mut XmlWriter<'_>, element: &str, ext: &Ext) {
    if ext.is_empty() {
        return;
    }
    w.open(element);
    // The seed's order: five strings, the three timestamps, then the three source strings.
    let s = ext.strings();
    for (name, v) in &s[..5] {
        w.opt(name, *v);
    }
    for (name, v) in ext.timestamps() {
        w.time(name, v);
    }
    for (name, v) in &s[5..] {
        w.opt(name, *v);
    }
    w.close(element);
}

/// Writes an outbound message.
pub(crate) fn render(msg: &Outbound, tz: &TimeZone) -> String {
    match msg {
        Outbound::Pong => "<GTLMessages>\n  <Pong></Pong>\n</GTLMessages>\n".to_owned(),
        Outbound::Error(e) => {
            let mut w = XmlWriter::message("Error", tz);
            w.leaf("Message", &e.message);
            w.leaf("Code", &e.code);
            for p in &e.parameters {
                w.leaf("Parameter", p);
            }
            w.finish("Error")
        }
        Outbound::Notice(n) => render_notice(n, tz),
    }
}

fn render_notice(n: &Notice, tz: &TimeZone) -> String {
    let name = n.kind.name();
    let mut w = XmlWriter::message(name, tz);
    w.int("BrokerId", Some(n.broker_id));
    w.leaf("CaptureId", &n.capture_id);
    w.leaf("CapturePointId", &n.capture_point_id);
    w.opt("DistributionId", n.distribution_id.as_deref());
    w.opt("DistributionPointId", n.distribution_point_id.as_deref());
    w.opt("Actor", n.actor.as_deref());
    w.opt("Reason", n.reason.as_deref());
    w.time("EventDateTime", Some(n.event_date_time));
    let d = &n.details;
    match n.kind {
        NoticeKind::TaskUpdated | NoticeKind::TaskInfo => {
            w.opt("tenantId", d.tenant_id.as_deref());
            w.opt("solutionId", d.solution_id.as_deref());
            w.opt("contractId", d.contract_id.as_deref());
            w.opt("processId", d.process_id.as_deref());
            w.opt("channel", d.channel.as_deref());
            w.opt("category", d.category.as_deref());
            w.opt("status", d.status.map(Status::as_str));
            w.opt("businessCalendarId", d.business_calendar_id.as_deref());
            w.time("createdDateTime", d.created_date_time);
            w.time("heldDateTime", d.held_date_time);
            w.time("distributedDateTime", d.distributed_date_time);
            w.time("assignedDateTime", d.assigned_date_time);
            w.time("completedDateTime", d.completed_date_time);
            w.time("activationDateTime", d.activation_date_time);
            w.time("dueDateTime", d.due_date_time);
            w.time("expirationDateTime", d.expiration_date_time);
            w.int("priority", d.priority);
            w.time("reprioritizeDateTime", d.reprioritize_date_time);
            w.int("businessValue", d.business_value);
            w.opt("assignedToUser", d.assigned_to_user.as_deref());
            if n.kind == NoticeKind::TaskInfo {
                w.opt("Queue", d.queue.as_deref());
                w.opt("QueueType", d.queue_type.map(QueueType::as_str));
                w.opt("QueueTarget", d.queue_target.as_deref());
                write_ext(&mut w, "Ext", &d.ext);
                write_data(&mut w, "Data", &d.data);
            } else {
                write_ext(&mut w, "ext", &d.ext);
                write_data(&mut w, "data", &d.data);
                // The seed's TaskUpdated ends with a lower-case `actor` as well.
                w.opt("actor", n.actor.as_deref());
            }
        }
        NoticeKind::TaskDistributedQueue => {
            w.opt("Queue", d.queue.as_deref());
            w.opt("QueueType", d.queue_type.map(QueueType::as_str));
            w.opt("QueueTarget", d.queue_target.as_deref());
        }
        NoticeKind::TaskAssigned => w.opt("AssignedToUser", d.assigned_to_user.as_deref()),
        NoticeKind::TaskErrorHeld => w.opt("Error", d.error.as_deref()),
        _ => {}
    }
    w.finish(name)
}

/// Reads an outbound message back (leniently, like inbound ones).
pub(crate) fn parse(bytes: &[u8], limits: &Limits, tz: &TimeZone) -> Result<Outbound, DomainError> {
    let msg = single_message(tree::parse(bytes, limits)?)?;
    if msg.is("Pong") {
        return Ok(Outbound::Pong);
    }
    if msg.is("Error") {
        let mut e = ErrorMessage {
            message: String::new(),
            code: String::new(),
            parameters: vec![],
        };
        for c in &msg.children {
            let v = c.text.trim().to_owned();
            match fold(&c.name).as_str() {
                "message" => e.message = v,
                "code" => e.code = v,
                "parameter" => e.parameters.push(v),
                _ => {
                    return Err(DomainError::invalid(
                        &c.name,
                        "is not an attribute of Error",
                    ))
                }
            }
        }
        return Ok(Outbound::Error(e));
    }
    let kind = NoticeKind::ALL
        .into_iter()
        .find(|k| msg.is(k.name()))
        .ok_or_else(|| {
            DomainError::invalid(tree::MESSAGE, format!("unknown message <{}>", msg.name))
        })?;
    parse_notice(kind, &msg, tz).map(Outbound::Notice)
}

fn parse_notice(kind: NoticeKind, msg: &Element, tz: &TimeZone) -> Result<Notice, DomainError> {
    let mut broker_id = None;
    let mut capture_id = None;
    let mut capture_point_id = None;
    let mut event_date_time = None;
    let mut n = Notice {
        kind,
        broker_id: BrokerId(0),
        capture_id: String::new(),
        capture_point_id: String::new(),
        distribution_id: None,
        distribution_point_id: None,
        actor: None,
        reason: None,
        event_date_time: Timestamp::UNIX_EPOCH,
        details: Details::default(),
    };
    let d = &mut n.details;
    for c in &msg.children {
        let key = fold(&c.name);
        if key == "ext" {
            for e in &c.children {
                if !set_ext_attribute(&mut d.ext, &e.name, e.text.trim(), tz)? {
                    return Err(DomainError::invalid(
                        &format!("ext.{}", e.name),
                        "is not an ext attribute",
                    ));
                }
            }
            continue;
        }
        if key == "data" {
            for e in &c.children {
                d.data.insert(e.name.clone(), e.text.trim().to_owned());
            }
            continue;
        }
        let v = c.text.trim();
        let s = || Some(v.to_owned());
        let t = |a: &str| datetime::parse(a, v, tz).map(Some);
        let i = |a: &str| -> Result<Option<i32>, DomainError> {
            let x: i64 = v
                .parse()
                .map_err(|_| DomainError::invalid(a, "is not an Integer"))?;
            Ok(Some(check_int(a, x)?))
        };
        match key.as_str() {
            "brokerid" => broker_id = Some(v.parse::<BrokerId>()?),
            "captureid" => capture_id = s(),
            "capturepointid" => capture_point_id = s(),
            "distributionid" => n.distribution_id = s(),
            "distributionpointid" => n.distribution_point_id = s(),
            // TaskUpdated repeats the actor as `actor`: the same value.
            "actor" => n.actor = s(),
            "reason" => n.reason = s(),
            "eventdatetime" => event_date_time = t("EventDateTime")?,
            "tenantid" => d.tenant_id = s(),
            "solutionid" => d.solution_id = s(),
            "contractid" => d.contract_id = s(),
            "processid" => d.process_id = s(),
            "channel" => d.channel = s(),
            "category" => d.category = s(),
            "status" => d.status = Some(v.parse()?),
            "businesscalendarid" => d.business_calendar_id = s(),
            "createddatetime" => d.created_date_time = t("createdDateTime")?,
            "helddatetime" => d.held_date_time = t("heldDateTime")?,
            "distributeddatetime" => d.distributed_date_time = t("distributedDateTime")?,
            "assigneddatetime" => d.assigned_date_time = t("assignedDateTime")?,
            "completeddatetime" => d.completed_date_time = t("completedDateTime")?,
            "activationdatetime" => d.activation_date_time = t("activationDateTime")?,
            "duedatetime" => d.due_date_time = t("dueDateTime")?,
            "expirationdatetime" => d.expiration_date_time = t("expirationDateTime")?,
            "priority" => d.priority = i("priority")?,
            "reprioritizedatetime" => d.reprioritize_date_time = t("reprioritizeDateTime")?,
            "businessvalue" => d.business_value = i("businessValue")?,
            "assignedtouser" => d.assigned_to_user = s(),
            "queue" => d.queue = s(),
            "queuetype" => d.queue_type = Some(v.parse()?),
            "queuetarget" => d.queue_target = s(),
            "error" => d.error = s(),
            _ => {
                return Err(DomainError::invalid(
                    &c.name,
                    format!("is not an attribute of {}", kind.name()),
                ))
            }
        }
    }
    n.broker_id = broker_id.ok_or_else(|| DomainError::invalid("BrokerId", "is missing"))?;
    n.capture_id = capture_id.ok_or_else(|| DomainError::invalid("CaptureId", "is missing"))?;
    n.capture_point_id =
        capture_point_id.ok_or_else(|| DomainError::invalid("CapturePointId", "is missing"))?;
    n.event_date_time =
        event_date_time.ok_or_else(|| DomainError::invalid("EventDateTime", "is missing"))?;
    Ok(n)
}

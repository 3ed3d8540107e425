//! Inbound messages (seed 001, direction "In"): parsing, leniently, and writing (for the
//! CLI, tests and the benchmark), with the seed's spelling.

use super::datetime;
use super::fields::{fold, set_ext_attribute, set_task_attribute};
use super::tree::{self, Element, Limits};
use super::writer::{is_xml_name, XmlWriter};
use jiff::tz::TimeZone;
use std::collections::BTreeSet;
use worklane_domain::{ActionMeta, BrokerId, DomainError, TaskFields, TaskRef};

/// An inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    CreateTask(CreateTask),
    /// Every message that names an existing task.
    Action(TaskAction),
    Ping,
}

/// CreateTask: the attributes the new task starts with (`fields.capture_id` is its
/// CaptureId when given) and whether it starts held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateTask {
    /// Actor, Reason and ActionDateTime (the rest of [`ActionMeta`] stays empty).
    pub meta: ActionMeta,
    pub fields: TaskFields,
    pub hold: bool,
}

/// How an action message names its task: BrokerId, CaptureId, or both (then BrokerId
/// finds the task, and an UpdateTask changes its CaptureId).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub broker_id: Option<BrokerId>,
    pub capture_id: Option<String>,
}

impl Target {
    /// The task reference, captureIds looked up within `capture_point_id`.
    pub fn task_ref(&self, capture_point_id: &str) -> TaskRef {
        match (&self.broker_id, &self.capture_id) {
            (Some(id), _) => TaskRef::Broker(*id),
            (None, Some(cid)) => TaskRef::Capture {
                capture_point_id: capture_point_id.to_owned(),
                capture_id: cid.clone(),
            },
            // The parser refuses a message that names no task.
            (None, None) => TaskRef::Broker(BrokerId(0)),
        }
    }

    /// The parameter an error names the task by.
    pub fn as_param(&self) -> Option<String> {
        match (&self.broker_id, &self.capture_id) {
            (Some(id), _) => Some(format!("BrokerId={id}")),
            (None, Some(cid)) => Some(format!("CaptureId={cid}")),
            (None, None) => None,
        }
    }
}

/// What an action message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionKind {
    Update(TaskFields),
    Complete,
    Hold,
    Resume,
    Restart,
    Cancel,
    GetTaskInfo,
}

impl ActionKind {
    /// The message's element name.
    pub fn message_name(&self) -> &'static str {
        match self {
            Self::Update(_) => "UpdateTask",
            Self::Complete => "CompleteTask",
            Self::Hold => "HoldTask",
            Self::Resume => "ResumeTask",
            Self::Restart => "RestartTask",
            Self::Cancel => "CancelTask",
            Self::GetTaskInfo => "GetTaskInfo",
        }
    }
}

/// A message about an existing task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskAction {
    pub kind: ActionKind,
    pub target: Target,
    pub meta: ActionMeta,
}

impl Inbound {
    /// The message's element name.
    pub fn message_name(&self) -> &'static str {
        match self {
            Self::CreateTask(_) => "CreateTask",
            Self::Action(a) => a.kind.message_name(),
            Self::Ping => "Ping",
        }
    }

    /// The names of every inbound message.
    pub const NAMES: [&'static str; 9] = [
        "CreateTask",
        "UpdateTask",
        "CompleteTask",
        "HoldTask",
        "ResumeTask",
        "RestartTask",
        "CancelTask",
        "GetTaskInfo",
        "Ping",
    ];
}

/// Parses an inbound message. Every failure is INVALID_FORMAT naming the offending
/// attribute (or `GTLMessages` for the document itself), after the task's id when the
/// message names one.
pub(crate) fn parse(bytes: &[u8], limits: &Limits, tz: &TimeZone) -> Result<Inbound, DomainError> {
    let root = tree::parse(bytes, limits)?;
    let msg = single_message(root)?;
    let target_param = target_param(&msg);
    parse_message(msg, tz).map_err(|e| match target_param {
        Some(p) if !e.parameters.contains(&p) => e.for_task(p),
        _ => e,
    })
}

/// The one child of `GTLMessages`.
pub(crate) fn single_message(root: Element) -> Result<Element, DomainError> {
    if !root.is(tree::MESSAGE) {
        return Err(DomainError::invalid(
            tree::MESSAGE,
            format!("the root element is <{}>, not <GTLMessages>", root.name),
        ));
    }
    if !root.text.trim().is_empty() {
        return Err(DomainError::invalid(
            tree::MESSAGE,
            "GTLMessages holds text",
        ));
    }
    let mut children = root.children.into_iter();
    match (children.next(), children.next()) {
        (Some(m), None) => Ok(m),
        (None, _) => Err(DomainError::invalid(
            tree::MESSAGE,
            "GTLMessages holds no message",
        )),
        (Some(_), Some(_)) => Err(DomainError::invalid(
            tree::MESSAGE,
            "GTLMessages holds more than one message",
        )),
    }
}

fn target_param(msg: &Element) -> Option<String> {
    let find = |n: &str| {
        msg.children
            .iter()
            .find(|c| c.is(n))
            .map(|c| c.text.trim())
            .filter(|v| !v.is_empty())
    };
    find("BrokerId")
        .map(|v| format!("BrokerId={v}"))
        .or_else(|| find("CaptureId").map(|v| format!("CaptureId={v}")))
}

/// A leaf's value, trimmed; an element holding elements is refused.
fn leaf_value<'e>(el: &'e Element, attribute: &str) -> Result<&'e str, DomainError> {
    if !el.children.is_empty() {
        return Err(DomainError::invalid(
            attribute,
            "must hold a value, not elements",
        ));
    }
    Ok(el.text.trim())
}

fn parse_message(msg: Element, tz: &TimeZone) -> Result<Inbound, DomainError> {
    let name = Inbound::NAMES
        .into_iter()
        .find(|n| msg.is(n))
        .ok_or_else(|| {
            DomainError::invalid(tree::MESSAGE, format!("unknown message <{}>", msg.name))
        })?;
    if name == "Ping" {
        return Ok(Inbound::Ping);
    }
    let is_create = name == "CreateTask";
    let carries_fields = is_create || name == "UpdateTask";
    let mut meta = ActionMeta::default();
    let mut target = Target::default();
    let mut fields = TaskFields::default();
    let mut hold = false;
    let mut seen = BTreeSet::new();
    for el in &msg.children {
        let key = fold(&el.name);
        if !seen.insert(key.clone()) {
            return Err(DomainError::invalid(&el.name, "is given more than once"));
        }
        if carries_fields && key == "ext" {
            parse_ext(el, &mut fields, tz)?;
            continue;
        }
        if carries_fields && key == "data" {
            parse_data(el, &mut fields)?;
            continue;
        }
        let value = leaf_value(el, &el.name)?;
        match key.as_str() {
            // An empty element is the same as an absent one.
            _ if value.is_empty() => {}
            "brokerid" if is_create => {
                return Err(DomainError::invalid(
                    "BrokerId",
                    "is generated by the server and cannot be given in CreateTask",
                ))
            }
            "brokerid" => target.broker_id = Some(value.parse()?),
            "captureid" => target.capture_id = Some(value.to_owned()),
            "actor" => meta.actor = Some(value.to_owned()),
            "reason" => meta.reason = Some(value.to_owned()),
            "actiondatetime" => {
                meta.action_date_time = Some(datetime::parse("ActionDateTime", value, tz)?)
            }
            "hold" if is_create => hold = parse_bool("Hold", value)?,
            _ if carries_fields && key != "captureid" => {
                if !set_task_attribute(&mut fields, &el.name, value, tz)? {
                    return Err(unknown(&el.name, name));
                }
            }
            _ => return Err(unknown(&el.name, name)),
        }
    }
    if is_create {
        fields.capture_id = target.capture_id;
        return Ok(Inbound::CreateTask(CreateTask { meta, fields, hold }));
    }
    if target.broker_id.is_none() && target.capture_id.is_none() {
        return Err(DomainError::invalid(
            "BrokerId",
            format!("{name} must name its task by BrokerId or CaptureId"),
        ));
    }
    let kind = match name {
        "UpdateTask" => ActionKind::Update(fields),
        "CompleteTask" => ActionKind::Complete,
        "HoldTask" => ActionKind::Hold,
        "ResumeTask" => ActionKind::Resume,
        "RestartTask" => ActionKind::Restart,
        "CancelTask" => ActionKind::Cancel,
        _ => ActionKind::GetTaskInfo,
    };
    Ok(Inbound::Action(TaskAction { kind, target, meta }))
}

fn unknown(element: &str, message: &str) -> DomainError {
    DomainError::invalid(
        element,
        format!("<{element}> is not an attribute of {message}"),
    )
}

fn parse_bool(attribute: &str, value: &str) -> Result<bool, DomainError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(DomainError::invalid(
            attribute,
            format!("{value:?} is not a Boolean"),
        )),
    }
}

fn parse_ext(el: &Element, fields: &mut TaskFields, tz: &TimeZone) -> Result<(), DomainError> {
    let mut seen = BTreeSet::new();
    for c in &el.children {
        let attribute = format!("ext.{}", c.name);
        if !seen.insert(fold(&c.name)) {
            return Err(DomainError::invalid(&attribute, "is given more than once"));
        }
        let value = leaf_value(c, &attribute)?;
        if value.is_empty() {
            continue;
        }
        if !set_ext_attribute(&mut fields.ext, &c.name, value, tz)? {
            return Err(DomainError::invalid(&attribute, "is not an ext attribute"));
        }
    }
    Ok(())
}

fn parse_data(el: &Element, fields: &mut TaskFields) -> Result<(), DomainError> {
    for c in &el.children {
        let attribute = format!("data.{}", c.name);
        let value = leaf_value(c, &attribute)?;
        // Custom attribute names keep their case: rules and reports use them verbatim.
        if fields
            .data
            .insert(c.name.clone(), value.to_owned())
            .is_some()
        {
            return Err(DomainError::invalid(&attribute, "is given more than once"));
        }
    }
    Ok(())
}

/// Writes an inbound message with the seed's spelling (`Ext`/`Data` in CreateTask,
/// `ext`/`data` in UpdateTask).
pub(crate) fn render(msg: &Inbound, tz: &TimeZone) -> String {
    let name = msg.message_name();
    let mut w = XmlWriter::message(name, tz);
    match msg {
        Inbound::Ping => {
            // The seed writes `<Ping></Ping>`.
            return format!("<GTLMessages>\n  <{name}></{name}>\n</GTLMessages>\n");
        }
        Inbound::CreateTask(c) => {
            w.opt("CaptureId", c.fields.capture_id.as_deref());
            write_meta(&mut w, &c.meta);
            write_fields(&mut w, &c.fields, "Ext", "Data");
            w.leaf("Hold", if c.hold { "true" } else { "false" });
        }
        Inbound::Action(a) => {
            w.int("BrokerId", a.target.broker_id);
            w.opt("CaptureId", a.target.capture_id.as_deref());
            write_meta(&mut w, &a.meta);
            if let ActionKind::Update(f) = &a.kind {
                write_fields(&mut w, f, "ext", "data");
            }
        }
    }
    w.finish(name)
}

fn write_meta(w: &mut XmlWriter<'_>, meta: &ActionMeta) {
    w.opt("Actor", meta.actor.as_deref());
    w.opt("Reason", meta.reason.as_deref());
    w.time("ActionDateTime", meta.action_date_time);
}

fn write_fields(w: &mut XmlWriter<'_>, f: &TaskFields, ext: &str, data: &str) {
    w.opt("tenantId", f.tenant_id.as_deref());
    w.opt("solutionId", f.solution_id.as_deref());
    w.opt("departmentId", f.department_id.as_deref());
    w.opt("contractId", f.contract_id.as_deref());
    w.opt("processId", f.process_id.as_deref());
    w.opt("businessCalendarId", f.business_calendar_id.as_deref());
    w.opt("channel", f.channel.as_deref());
    w.opt("category", f.category.as_deref());
    w.time("activationDateTime", f.activation_date_time);
    w.time("dueDateTime", f.due_date_time);
    w.time("expirationDateTime", f.expiration_date_time);
    w.time("reprioritizeDateTime", f.reprioritize_date_time);
    w.int("businessValue", f.business_value);
    w.int("priority", f.priority);
    super::outbound::write_ext(w, ext, &f.ext);
    write_data(w, data, &f.data);
}

pub(crate) fn write_data(
    w: &mut XmlWriter<'_>,
    element: &str,
    data: &std::collections::BTreeMap<String, String>,
) {
    if data.is_empty() {
        return;
    }
    w.open(element);
    for (k, v) in data {
        if is_xml_name(k) {
            w.leaf(k, v);
        } else {
            tracing::warn!(key = %k, "custom attribute name is not an XML name; left out of the message");
        }
    }
    w.close(element);
}

//! Notification bodies (pure): seed 002's event format and seed 004's ContactProcessed
//! format. A body is rendered once, when its notification is generated, and sent as is on
//! every attempt.

use crate::config::{EventSection, Filter, NotificationTargetConfig};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::HashMap;
use worklane_domain::{Event, EventType, Timestamp};

/// The body format of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Seed 002: `event_id`, `message_guid`, `timestamp`, the chosen attributes, the custom
    /// object. One notification per event.
    #[default]
    Event,
    /// Seed 004: one `ContactProcessed` message per task when it reaches a final status.
    ContactProcessed,
}

/// Attributes sent for every event by a target that has no event sections.
pub const DEFAULT_PARAMS: &[&str] = &[
    "seq",
    "eventDateTime",
    "brokerId",
    "captureId",
    "capturePointId",
    "status",
    "actor",
    "reason",
    "requestId",
    "origin",
    "changes",
    "distributionId",
    "queue",
    "assignedToUser",
    "processId",
    "tenantId",
    "error",
];

/// Attributes of the event itself (besides the task's).
const EVENT_PARAMS: &[&str] = &[
    "eventType",
    "seq",
    "actor",
    "reason",
    "eventDateTime",
    "requestId",
    "origin",
    "changes",
];

/// Attributes of the task (SPEC section 1), camelCase as in JSON and REST.
const TASK_PARAMS: &[&str] = &[
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
    "ext",
    "data",
    "error",
];

const EXT_PARAMS: &[&str] = &worklane_domain::Ext::NAMES;

/// Whether `name` can be asked for in `notify_params`: an event or task attribute, an ext
/// attribute (`customerID` or `ext.customerID`), or a custom attribute (`data.<key>`).
pub fn is_known_param(name: &str) -> bool {
    EVENT_PARAMS.contains(&name)
        || TASK_PARAMS.contains(&name)
        || EXT_PARAMS.contains(&name)
        || name
            .strip_prefix("ext.")
            .is_some_and(|e| EXT_PARAMS.contains(&e))
        || name.strip_prefix("data.").is_some_and(|k| !k.is_empty())
}

/// The events a ContactProcessed message is sent for: a task reaching a final status.
pub fn is_final_event(t: EventType) -> bool {
    matches!(
        t,
        EventType::TaskCompleted | EventType::TaskCanceled | EventType::TaskRejected
    )
}

/// `GSW_*` fields and the task attribute each is taken from (documented in
/// docs/notifications.md).
pub const GSW_MAPPING: &[(&str, &str)] = &[
    ("GSW_RECORD_HANDLE", "brokerId"),
    ("GSW_CHAIN_ID", "captureId"),
    ("GSW_CALLING_LIST", "capturePointId"),
    ("GSW_CALL_ATTEMPT_GUID", "distributionId"),
    ("GSW_CAMPAIGN_NAME", "processId"),
    ("GSW_CAMPAIGN_GROUP_NAME", "solutionId"),
    ("GSW_GROUP_NAME", "departmentId"),
    ("GSW_CONTACT_MEDIA_TYPE", "channel"),
    ("GSW_CUSTOMER_ID", "ext.customerID"),
    ("GSW_DISPOSITION_CODE", "ext.resultCode"),
    ("GSW_AGENT_ID", "assignedToUser"),
    ("GSW_QUEUE_NAME", "queue"),
    ("GSW_RECORD_STATUS", "status"),
    ("GSW_REASON", "reason"),
    ("GSW_START_PROCESSING", "createdDateTime"),
    ("GSW_CALL_TIME", "distributedDateTime"),
    ("GSW_AGENT_ANSWERED", "assignedDateTime"),
    ("GSW_SCHEDULED_TIME", "activationDateTime"),
    ("GSW_COMPLETE_PROCESSING", "completedDateTime"),
];

/// Renders a target's notifications.
#[derive(Debug, Clone)]
pub struct Renderer {
    format: Format,
    sections: HashMap<EventType, EventSection>,
    filter: Filter,
    filter_types: Vec<EventType>,
}

impl Renderer {
    /// A renderer for a validated target.
    pub fn new(cfg: &NotificationTargetConfig) -> Self {
        let sections = cfg
            .events
            .iter()
            .filter_map(|(name, s)| Some((name.parse().ok()?, s.clone())))
            .collect();
        let filter_types = cfg
            .filter
            .event_types
            .iter()
            .filter_map(|t| t.parse().ok())
            .collect();
        Self {
            format: cfg.format,
            sections,
            filter: cfg.filter.clone(),
            filter_types,
        }
    }

    /// Whether the target is notified of `event` at all.
    pub fn wants(&self, event: &Event) -> bool {
        let t = &event.task;
        let listed = |list: &[String], v: Option<&str>| {
            list.is_empty() || v.is_some_and(|v| list.iter().any(|x| x == v))
        };
        let type_ok = match self.format {
            Format::Event => {
                self.sections.is_empty() || self.sections.contains_key(&event.event_type)
            }
            Format::ContactProcessed => {
                is_final_event(event.event_type)
                    && (self.sections.is_empty() || self.sections.contains_key(&event.event_type))
            }
        };
        type_ok
            && (self.filter_types.is_empty() || self.filter_types.contains(&event.event_type))
            && listed(&self.filter.capture_points, Some(&t.capture_point_id))
            && listed(&self.filter.processes, t.process_id.as_deref())
            && listed(&self.filter.tenants, t.tenant_id.as_deref())
    }

    /// The body for `event`, or None when the target does not want it. `guid` and `at`
    /// (the generation time) are written into it.
    pub fn render(&self, event: &Event, guid: &str, at: Timestamp) -> Option<Vec<u8>> {
        self.wants(event)
            .then(|| self.render_wanted(event, guid, at))
    }

    /// The body for `event`, wanted or not (the caller has checked [`Renderer::wants`],
    /// or renders again a notification it stored without its body).
    pub fn render_wanted(&self, event: &Event, guid: &str, at: Timestamp) -> Vec<u8> {
        let section = self.sections.get(&event.event_type);
        let body = match self.format {
            Format::Event => event_body(event, section, guid, at),
            Format::ContactProcessed => contact_processed_body(event, section, guid, at),
        };
        // An ordered object of JSON values always serializes.
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

/// A JSON object that keeps its keys in insertion order (serde_json's map sorts them).
/// Keys borrow from the target's configuration and the event.
#[derive(Debug)]
struct Ordered<'a> {
    event: &'a Event,
    fields: Vec<(&'a str, Field<'a>)>,
}

/// A body field's value.
#[derive(Debug)]
enum Field<'a> {
    /// An attribute of the event, written straight from it when the body is serialized.
    Param(&'a str),
    Value(Value),
    /// From the target's `notify_custom`.
    Custom(&'a Value),
}

impl<'a> Ordered<'a> {
    fn new(event: &'a Event) -> Self {
        Self {
            event,
            fields: Vec::with_capacity(24),
        }
    }

    /// Sets `key`, replacing an earlier value in place.
    fn set(&mut self, key: &'a str, value: Field<'a>) {
        match self.fields.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key, value)),
        }
    }

    fn has(&self, key: &str) -> bool {
        self.fields.iter().any(|(k, _)| *k == key)
    }

    /// Merges a custom object; it never replaces the reserved fields in `keep`.
    fn merge(&mut self, custom: Option<&'a Map<String, Value>>, keep: &[&str]) {
        for (k, v) in custom.into_iter().flatten() {
            if !keep.contains(&k.as_str()) {
                self.set(k, Field::Custom(v));
            }
        }
    }
}

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.fields.len()))?;
        for (k, v) in &self.fields {
            match v {
                Field::Param(name) => m.serialize_entry(k, &ParamOf(self.event, name))?,
                Field::Value(v) => m.serialize_entry(k, v)?,
                Field::Custom(v) => m.serialize_entry(k, v)?,
            }
        }
        m.end()
    }
}

/// An attribute of an event, serialized as [`param`] has it without building its
/// [`Value`] first (a body is rendered for every notification).
struct ParamOf<'a>(&'a Event, &'a str);

impl Serialize for ParamOf<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (event, t) = (self.0, &self.0.task);
        match self.1 {
            "eventType" => s.serialize_str(event.event_type.as_str()),
            "seq" => s.serialize_i64(event.seq),
            "actor" => event.actor.serialize(s),
            "reason" => event.reason.serialize(s),
            "eventDateTime" => event.event_date_time.serialize(s),
            "requestId" => event.request_id.serialize(s),
            "origin" => event.origin.serialize(s),
            "changes" => event.changes.serialize(s),
            "brokerId" => t.broker_id.serialize(s),
            "captureId" => s.serialize_str(&t.capture_id),
            "capturePointId" => s.serialize_str(&t.capture_point_id),
            "distributionId" => t.distribution_id.serialize(s),
            "distributionPointId" => t.distribution_point_id.serialize(s),
            "tenantId" => t.tenant_id.serialize(s),
            "solutionId" => t.solution_id.serialize(s),
            "departmentId" => t.department_id.serialize(s),
            "processId" => t.process_id.serialize(s),
            "contractId" => t.contract_id.serialize(s),
            "businessCalendarId" => t.business_calendar_id.serialize(s),
            "channel" => t.channel.serialize(s),
            "category" => t.category.serialize(s),
            "status" => t.status.serialize(s),
            "priority" => t.priority.serialize(s),
            "createdDateTime" => t.created_date_time.serialize(s),
            "heldDateTime" => t.held_date_time.serialize(s),
            "distributedDateTime" => t.distributed_date_time.serialize(s),
            "assignedDateTime" => t.assigned_date_time.serialize(s),
            "completedDateTime" => t.completed_date_time.serialize(s),
            "activationDateTime" => t.activation_date_time.serialize(s),
            "dueDateTime" => t.due_date_time.serialize(s),
            "expirationDateTime" => t.expiration_date_time.serialize(s),
            "reprioritizeDateTime" => t.reprioritize_date_time.serialize(s),
            "assignedToUser" => t.assigned_to_user.serialize(s),
            "queue" => t.queue.serialize(s),
            "queueTarget" => t.queue_target.serialize(s),
            "error" => t.error.serialize(s),
            // Objects (their keys sorted, as a Value has them), numbers that may not be
            // finite, and the rest.
            name => param(event, name).serialize(s),
        }
    }
}

fn string(v: Option<&String>) -> Value {
    v.map_or(Value::Null, |s| Value::String(s.clone()))
}

fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Looks an attribute up in the event and its task snapshot (null when unset), as the
/// task's JSON has it.
fn param(event: &Event, name: &str) -> Value {
    let t = &event.task;
    match name {
        "eventType" => Value::String(event.event_type.as_str().into()),
        "seq" => Value::from(event.seq),
        "actor" => string(event.actor.as_ref()),
        "reason" => string(event.reason.as_ref()),
        "eventDateTime" => json(&event.event_date_time),
        "requestId" => string(event.request_id.as_ref()),
        "origin" => string(event.origin.as_ref()),
        "changes" => Value::from(event.changes.clone()),
        "brokerId" => json(&t.broker_id),
        "captureId" => Value::String(t.capture_id.clone()),
        "capturePointId" => Value::String(t.capture_point_id.clone()),
        "distributionId" => string(t.distribution_id.as_ref()),
        "distributionPointId" => string(t.distribution_point_id.as_ref()),
        "tenantId" => string(t.tenant_id.as_ref()),
        "solutionId" => string(t.solution_id.as_ref()),
        "departmentId" => string(t.department_id.as_ref()),
        "processId" => string(t.process_id.as_ref()),
        "contractId" => string(t.contract_id.as_ref()),
        "businessCalendarId" => string(t.business_calendar_id.as_ref()),
        "channel" => string(t.channel.as_ref()),
        "category" => string(t.category.as_ref()),
        "status" => json(&t.status),
        "priority" => Value::from(t.priority),
        "businessValue" => json(&t.business_value),
        "createdDateTime" => json(&t.created_date_time),
        "heldDateTime" => json(&t.held_date_time),
        "distributedDateTime" => json(&t.distributed_date_time),
        "assignedDateTime" => json(&t.assigned_date_time),
        "completedDateTime" => json(&t.completed_date_time),
        "activationDateTime" => json(&t.activation_date_time),
        "dueDateTime" => json(&t.due_date_time),
        "expirationDateTime" => json(&t.expiration_date_time),
        "reprioritizeDateTime" => json(&t.reprioritize_date_time),
        "assignedToUser" => string(t.assigned_to_user.as_ref()),
        "queue" => string(t.queue.as_ref()),
        "queueType" => json(&t.queue_type),
        "queueTarget" => string(t.queue_target.as_ref()),
        "ext" => json(&t.ext),
        "data" => json(&t.data),
        "error" => string(t.error.as_ref()),
        _ => {
            if let Some(key) = name.strip_prefix("data.") {
                return string(t.data.get(key));
            }
            let ext_name = name.strip_prefix("ext.").unwrap_or(name);
            match json(&t.ext) {
                Value::Object(mut ext) => ext.remove(ext_name).unwrap_or(Value::Null),
                _ => Value::Null,
            }
        }
    }
}

fn event_body<'a>(
    event: &'a Event,
    section: Option<&'a EventSection>,
    guid: &str,
    at: Timestamp,
) -> Ordered<'a> {
    const RESERVED: [&str; 3] = ["event_id", "message_guid", "timestamp"];
    let mut body = Ordered::new(event);
    body.set("event_id", Field::Param("eventType"));
    body.set("message_guid", Field::Value(Value::String(guid.into())));
    // Seed 002 writes the Unix seconds as a string.
    body.set(
        "timestamp",
        Field::Value(Value::String(at.as_second().to_string())),
    );
    let params: Vec<&str> = match section {
        Some(s) => s.notify_params.iter().map(String::as_str).collect(),
        None => DEFAULT_PARAMS.to_vec(),
    };
    for p in params {
        if !RESERVED.contains(&p) {
            body.set(p, Field::Param(p));
        }
    }
    body.merge(section.and_then(|s| s.notify_custom.as_ref()), &RESERVED);
    body
}

/// Unix UTC epoch dot milliseconds, as seed 004 writes times: `1467575991.123`.
pub fn epoch_millis(t: Timestamp) -> String {
    let ms = t.as_millisecond();
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

fn contact_processed_body<'a>(
    event: &'a Event,
    section: Option<&'a EventSection>,
    guid: &str,
    at: Timestamp,
) -> Ordered<'a> {
    const RESERVED: [&str; 3] = ["GSW_MESSAGE", "GSW_MESSAGE_GUID", "GSW_TIMESTAMP"];
    let mut body = Ordered::new(event);
    body.set(
        "GSW_MESSAGE",
        Field::Value(Value::String("ContactProcessed".into())),
    );
    body.set("GSW_MESSAGE_GUID", Field::Value(Value::String(guid.into())));
    body.set(
        "GSW_TIMESTAMP",
        Field::Value(Value::String(epoch_millis(at))),
    );
    for (gsw, attr) in GSW_MAPPING {
        let v = param(event, attr);
        let v = match (&v, attr.ends_with("DateTime")) {
            // Times in seed 004's epoch-dot-milliseconds form.
            (Value::String(s), true) => match s.parse::<Timestamp>() {
                Ok(t) => Value::String(epoch_millis(t)),
                Err(_) => v,
            },
            _ => v,
        };
        if !v.is_null() {
            body.set(gsw, Field::Value(v));
        }
    }
    // User-defined fields: the task's custom attributes, under their own names.
    for (k, v) in &event.task.data {
        if !RESERVED.contains(&k.as_str()) && !body.has(k) {
            body.set(k, Field::Value(Value::String(v.clone())));
        }
    }
    body.merge(section.and_then(|s| s.notify_custom.as_ref()), &RESERVED);
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use worklane_domain::{BrokerId, Task};

    fn task() -> Task {
        serde_json::from_value(serde_json::json!({
            "brokerId": 42, "captureId": "case-7", "capturePointId": "CP1",
            "status": "Completed", "priority": 3,
            "createdDateTime": "2026-01-02T03:04:05.678Z",
            "completedDateTime": "2026-01-02T04:00:00Z",
            "assignedToUser": "agent1", "processId": "billing", "tenantId": "acme",
            "channel": "Email",
            "ext": {"customerID": "C-1", "resultCode": "OK"},
            "data": {"Other1": "x", "GSW_MESSAGE": "spoof"},
            "version": 5,
            "distributionId": null, "distributionPointId": null, "solutionId": null,
            "departmentId": null, "contractId": null, "businessCalendarId": null,
            "category": null, "businessValue": null, "heldDateTime": null,
            "distributedDateTime": null, "assignedDateTime": null, "activationDateTime": null,
            "dueDateTime": null, "expirationDateTime": null, "reprioritizeDateTime": null,
            "queue": null, "queueType": null, "queueTarget": null, "error": null
        }))
        .unwrap()
    }

    fn event(t: EventType) -> Event {
        let task = task();
        Event {
            seq: 9,
            event_type: t,
            broker_id: BrokerId(42),
            capture_id: task.capture_id.clone(),
            capture_point_id: task.capture_point_id.clone(),
            distribution_id: None,
            distribution_point_id: None,
            actor: Some("sup".into()),
            reason: Some("done".into()),
            event_date_time: "2026-01-02T04:00:00Z".parse().unwrap(),
            request_id: None,
            origin: Some("REST".into()),
            changes: vec!["status".into()],
            agent: None,
            task,
        }
    }

    fn cfg(extra: &str) -> NotificationTargetConfig {
        toml::from_str(&format!("id = \"t\"\nuri = \"http://h/\"\n{extra}")).unwrap()
    }

    fn render(c: &NotificationTargetConfig, e: &Event) -> Option<Value> {
        let at: Timestamp = "2026-01-02T04:00:01.5Z".parse().unwrap();
        Renderer::new(c)
            .render(e, "g-1", at)
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn event_format_has_seed_002_shape_in_order() {
        let c = cfg(
            "[events.TaskCompleted]\nnotify_params = \"brokerId, assignedToUser, customerID, data.Other1, data.Missing, dueDateTime\"\nnotify_custom = { name1 = \"value1\", event_id = \"no\" }\n",
        );
        let e = event(EventType::TaskCompleted);
        let bytes = Renderer::new(&c)
            .render(&e, "g-1", Timestamp::from_second(1_467_575_991).unwrap())
            .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(
            text,
            r#"{"event_id":"TaskCompleted","message_guid":"g-1","timestamp":"1467575991","brokerId":42,"assignedToUser":"agent1","customerID":"C-1","data.Other1":"x","data.Missing":null,"dueDateTime":null,"name1":"value1"}"#
        );
        // Events without a section are not sent.
        assert!(render(&c, &event(EventType::TaskAssigned)).is_none());
    }

    #[test]
    fn no_sections_sends_every_event_with_the_default_set() {
        let c = cfg("");
        let v = render(&c, &event(EventType::TaskAssigned)).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        for p in DEFAULT_PARAMS {
            assert!(keys.iter().any(|k| k == p), "{p} missing");
        }
        assert_eq!(v["status"], "Completed");
        assert_eq!(v["changes"], serde_json::json!(["status"]));
    }

    #[test]
    fn filter_by_type_capture_point_process_and_tenant() {
        let e = event(EventType::TaskCompleted);
        assert!(render(
            &cfg("[filter]\nprocesses = [\"billing\"]\ntenants = [\"acme\"]\n"),
            &e
        )
        .is_some());
        assert!(render(&cfg("[filter]\nprocesses = [\"other\"]\n"), &e).is_none());
        assert!(render(&cfg("[filter]\ncapture_points = [\"CP2\"]\n"), &e).is_none());
        assert!(render(&cfg("[filter]\nevent_types = [\"TaskAssigned\"]\n"), &e).is_none());
        assert!(render(&cfg("[filter]\nevent_types = [\"TaskCompleted\"]\n"), &e).is_some());
    }

    #[test]
    fn contact_processed_has_gsw_fields_and_user_fields() {
        let c = cfg("format = \"contact-processed\"\n");
        assert!(
            render(&c, &event(EventType::TaskAssigned)).is_none(),
            "not final"
        );
        let v = render(&c, &event(EventType::TaskCompleted)).unwrap();
        assert_eq!(v["GSW_MESSAGE"], "ContactProcessed");
        assert_eq!(v["GSW_MESSAGE_GUID"], "g-1");
        assert_eq!(v["GSW_TIMESTAMP"], "1767326401.500");
        assert_eq!(v["GSW_RECORD_HANDLE"], 42);
        assert_eq!(v["GSW_CHAIN_ID"], "case-7");
        assert_eq!(v["GSW_CUSTOMER_ID"], "C-1");
        assert_eq!(v["GSW_DISPOSITION_CODE"], "OK");
        assert_eq!(v["GSW_AGENT_ID"], "agent1");
        assert_eq!(v["GSW_RECORD_STATUS"], "Completed");
        assert_eq!(v["GSW_START_PROCESSING"], "1767323045.678");
        assert_eq!(v["GSW_COMPLETE_PROCESSING"], "1767326400.000");
        assert_eq!(v["Other1"], "x");
        assert!(
            v.get("GSW_QUEUE_NAME").is_none(),
            "unset attributes are left out"
        );
    }

    #[test]
    fn every_attribute_is_written_as_its_json_value() {
        let mut e = event(EventType::TaskCompleted);
        let names = || {
            EVENT_PARAMS
                .iter()
                .chain(TASK_PARAMS)
                .chain(EXT_PARAMS)
                .chain(&["ext.customerID", "data.Other1", "data.Missing"])
        };
        for pass in 0..2 {
            for name in names() {
                let direct = serde_json::to_string(&ParamOf(&e, name)).unwrap();
                let value = serde_json::to_string(&param(&e, name)).unwrap();
                assert_eq!(direct, value, "{name}, pass {pass}");
            }
            // Then with the unset attributes set.
            let t = &mut e.task;
            t.distribution_id = Some("d\"1".into());
            t.due_date_time = Some("2026-03-04T05:06:07.89Z".parse().unwrap());
            t.business_value = Some(7);
            t.queue = Some("Q1".into());
            e.request_id = Some("r-1".into());
        }
    }

    #[test]
    fn epoch_millis_pads() {
        assert_eq!(
            epoch_millis(Timestamp::from_millisecond(1_467_575_991_007).unwrap()),
            "1467575991.007"
        );
    }
}

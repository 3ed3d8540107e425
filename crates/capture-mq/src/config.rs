//! One MQ capture point's configuration entry (SPEC section 7, `kind = "mq"`), validated
//! at start-up with errors that name the key.

use crate::codec::{
    fold, set_ext_attribute, set_task_attribute, Codec, Limits, Outbound, OUTBOUND_NAMES,
};
use crate::transform::{Direction, Transform, TransformLimits, DEFAULT_TIME_LIMIT};
use crate::transport::TransportKind;
use jiff::tz::TimeZone;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use worklane_domain::fields::{check_len, limits};
use worklane_domain::TaskFields;

/// A value in the `defaults` table: a task attribute's value, or the `ext` / `data` tables.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum DefaultValue {
    Int(i64),
    Text(String),
    Table(BTreeMap<String, String>),
}

/// The keys this entry knows (plus `kind`, the lead's enum tag).
const KEYS: [&str; 19] = [
    "kind",
    "id",
    "url",
    "transport",
    "inbound_transform",
    "outbound_transform",
    "transform_time_limit_ms",
    "input_queue",
    "output_queue",
    "error_queue",
    "check_if_captured",
    "announce_rule_updates",
    "timezone",
    "notifications",
    "defaults",
    "prefetch",
    "max_message_bytes",
    "max_depth",
    "max_in_flight",
];

/// An MQ capture point (`[[capture_point]]` with `kind = "mq"`).
#[derive(Clone, Deserialize)]
pub struct MqConfig {
    /// The CapturePointId (at most 16 characters).
    pub id: String,
    /// The broker, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f` (AMQP 0-9-1) or
    /// `amqp1s://user:pass@broker:5671` (AMQP 1.0).
    #[serde(default = "default_url")]
    pub url: String,
    /// `amqp-0-9-1` or `amqp-1.0`; by default the URL's scheme decides (`amqp1://` and
    /// `amqp1s://` are AMQP 1.0, `amqp://` and `amqps://` AMQP 0-9-1).
    #[serde(default)]
    pub transport: Option<String>,
    /// A script turning the source system's own messages into GTLMessages (SPEC 12).
    #[serde(default)]
    pub inbound_transform: Option<std::path::PathBuf>,
    /// A script turning outbound GTLMessages into the source system's format.
    #[serde(default)]
    pub outbound_transform: Option<std::path::PathBuf>,
    /// The longest one transformation of one message may run (default 100 ms).
    #[serde(default)]
    pub transform_time_limit_ms: Option<u64>,
    /// Where source systems put requests.
    #[serde(default = "default_input")]
    pub input_queue: String,
    /// Where answers and notifications go.
    #[serde(default = "default_output")]
    pub output_queue: String,
    /// Where unparseable messages are moved, with the reason in a header.
    #[serde(default = "default_error")]
    pub error_queue: String,
    /// Refuse a CreateTask whose CaptureId this capture point already has
    /// (TASK_ALREADY_CAPTURED).
    #[serde(default)]
    pub check_if_captured: bool,
    /// Also send TaskUpdated for the business rules' reprioritizations (origin `rules`);
    /// off by default, as source systems rarely want a message every few minutes per task.
    #[serde(default)]
    pub announce_rule_updates: bool,
    /// The IANA time zone DateTime values are written and read in.
    #[serde(default = "default_tz")]
    pub timezone: String,
    /// The outbound messages that are sent; every one when absent.
    #[serde(default)]
    pub notifications: Option<Vec<String>>,
    /// Attribute values a captured task starts with unless the CreateTask gives them
    /// (`ext` and `data` are tables).
    #[serde(default)]
    pub defaults: BTreeMap<String, DefaultValue>,
    /// How many unacknowledged input messages the broker hands over at once.
    #[serde(default = "default_prefetch")]
    pub prefetch: u16,
    /// The largest accepted message, in bytes (default 1 MiB).
    #[serde(default = "default_max_bytes")]
    pub max_message_bytes: usize,
    /// The deepest accepted element nesting (default 16).
    #[serde(default = "default_depth")]
    pub max_depth: usize,
    /// How many input messages are processed at once (default: `prefetch`).
    #[serde(default)]
    pub max_in_flight: Option<usize>,
    /// Keys this entry does not know, reported by [`MqConfig::validate`].
    #[serde(flatten)]
    unknown: BTreeMap<String, serde::de::IgnoredAny>,
}

fn default_url() -> String {
    "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()
}
fn default_input() -> String {
    "GTLIn".to_owned()
}
fn default_output() -> String {
    "GTLOut".to_owned()
}
fn default_error() -> String {
    "GTLError".to_owned()
}
fn default_tz() -> String {
    "UTC".to_owned()
}
fn default_prefetch() -> u16 {
    512
}
fn default_max_bytes() -> usize {
    1024 * 1024
}
fn default_depth() -> usize {
    16
}

impl fmt::Debug for MqConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqConfig")
            .field("id", &self.id)
            .field("url", &worklane_store::redact_url(&self.url))
            .field("transport", &self.transport)
            .field("inbound_transform", &self.inbound_transform)
            .field("outbound_transform", &self.outbound_transform)
            .field("transform_time_limit_ms", &self.transform_time_limit_ms)
            .field("input_queue", &self.input_queue)
            .field("output_queue", &self.output_queue)
            .field("error_queue", &self.error_queue)
            .field("check_if_captured", &self.check_if_captured)
            .field("announce_rule_updates", &self.announce_rule_updates)
            .field("timezone", &self.timezone)
            .field("notifications", &self.notifications)
            .field("defaults", &self.defaults)
            .field("prefetch", &self.prefetch)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_depth", &self.max_depth)
            .field("max_in_flight", &self.max_in_flight)
            .finish()
    }
}

impl MqConfig {
    /// An entry with every default and the given id (tests, the benchmark, the CLI).
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            url: default_url(),
            transport: None,
            inbound_transform: None,
            outbound_transform: None,
            transform_time_limit_ms: None,
            input_queue: default_input(),
            output_queue: default_output(),
            error_queue: default_error(),
            check_if_captured: false,
            announce_rule_updates: false,
            timezone: default_tz(),
            notifications: None,
            defaults: BTreeMap::new(),
            prefetch: default_prefetch(),
            max_message_bytes: default_max_bytes(),
            max_depth: default_depth(),
            max_in_flight: None,
            unknown: BTreeMap::new(),
        }
    }

    /// Checks every key; the error names the first bad one.
    pub fn validate(&self) -> Result<(), String> {
        self.resolve().map(|_| ())
    }

    /// The validated settings the capture point runs with.
    pub fn resolve(&self) -> Result<Settings, String> {
        if let Some(k) = self.unknown.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(format!("{k}: unknown key for an mq capture point"));
        }
        if self.id.trim().is_empty() {
            return Err("id: must not be empty".to_owned());
        }
        check_len("id", &self.id, limits::CAPTURE_POINT_ID).map_err(|e| e.message)?;
        let schemes = ["amqp://", "amqps://", "amqp1://", "amqp1s://"];
        if !schemes.iter().any(|s| self.url.starts_with(s)) {
            return Err(format!(
                "url: {:?} is not an amqp://, amqps://, amqp1:// or amqp1s:// URL",
                worklane_store::redact_url(&self.url)
            ));
        }
        let transport = match &self.transport {
            None => TransportKind::from_url(&self.url),
            Some(t) => TransportKind::from_name(t).ok_or_else(|| {
                format!(
                    "transport: {t:?} is not a transport (one of {})",
                    TransportKind::NAMES.join(", ")
                )
            })?,
        };
        if transport == TransportKind::Amqp091 && TransportKind::from_url(&self.url) != transport {
            return Err("url: amqp1:// and amqp1s:// URLs are for transport = \"amqp-1.0\"".into());
        }
        let queues = [
            ("input_queue", &self.input_queue),
            ("output_queue", &self.output_queue),
            ("error_queue", &self.error_queue),
        ];
        for (key, q) in queues {
            if q.trim().is_empty() || q.len() > 255 {
                return Err(format!("{key}: must be 1 to 255 bytes long"));
            }
        }
        if self.input_queue == self.output_queue || self.input_queue == self.error_queue {
            return Err("input_queue: must differ from output_queue and error_queue".to_owned());
        }
        let time_zone = TimeZone::get(&self.timezone).map_err(|e| {
            format!(
                "timezone: {:?} is not a known time zone: {e}",
                self.timezone
            )
        })?;
        let enabled = match &self.notifications {
            None => OUTBOUND_NAMES.into_iter().collect(),
            Some(list) => {
                let mut set = BTreeSet::new();
                for n in list {
                    let name = OUTBOUND_NAMES
                        .into_iter()
                        .find(|m| m.eq_ignore_ascii_case(n.trim()))
                        .ok_or_else(|| {
                            format!(
                                "notifications: {n:?} is not an outbound message (one of {})",
                                OUTBOUND_NAMES.join(", ")
                            )
                        })?;
                    set.insert(name);
                }
                set
            }
        };
        if self.prefetch == 0 {
            return Err("prefetch: must be at least 1".to_owned());
        }
        if !(64..=128 * 1024 * 1024).contains(&self.max_message_bytes) {
            return Err("max_message_bytes: must be between 64 and 134217728".to_owned());
        }
        if !(3..=256).contains(&self.max_depth) {
            return Err("max_depth: must be between 3 and 256".to_owned());
        }
        if self.max_in_flight == Some(0) {
            return Err("max_in_flight: must be at least 1".to_owned());
        }
        let defaults = self.task_defaults(&time_zone)?;
        let document = Limits {
            max_bytes: self.max_message_bytes,
            max_depth: self.max_depth,
        };
        let time = match self.transform_time_limit_ms {
            None => DEFAULT_TIME_LIMIT,
            Some(ms) if (1..=60_000).contains(&ms) => std::time::Duration::from_millis(ms),
            Some(_) => return Err("transform_time_limit_ms: must be between 1 and 60000".into()),
        };
        let limits = TransformLimits { document, time };
        let load = |key: &str, path: &Option<std::path::PathBuf>, direction| {
            path.as_deref()
                .map(|p| Transform::load(p, direction, limits).map(Arc::new))
                .transpose()
                .map_err(|e| format!("{key}: {e}"))
        };
        let inbound = load(
            "inbound_transform",
            &self.inbound_transform,
            Direction::Inbound,
        )?;
        let outbound = load(
            "outbound_transform",
            &self.outbound_transform,
            Direction::Outbound,
        )?;
        Ok(Settings {
            id: self.id.clone(),
            transport,
            inbound,
            outbound,
            codec: Codec::new(time_zone, document),
            defaults,
            check_if_captured: self.check_if_captured,
            announce_rule_updates: self.announce_rule_updates,
            enabled,
            input_queue: self.input_queue.clone(),
            output_queue: self.output_queue.clone(),
            error_queue: self.error_queue.clone(),
            prefetch: self.prefetch,
            max_in_flight: self.max_in_flight.unwrap_or(usize::from(self.prefetch)),
        })
    }

    fn task_defaults(&self, tz: &TimeZone) -> Result<TaskFields, String> {
        let mut fields = TaskFields::default();
        for (key, value) in &self.defaults {
            let name = format!("defaults.{key}");
            let bad = |m: String| format!("{name}: {m}");
            match (fold(key).as_str(), value) {
                ("captureid", _) => {
                    return Err(bad(
                        "a default CaptureId would make every task the same".into()
                    ))
                }
                ("ext", DefaultValue::Table(t)) => {
                    for (k, v) in t {
                        if !set_ext_attribute(&mut fields.ext, k, v, tz)
                            .map_err(|e| bad(e.message))?
                        {
                            return Err(format!("{name}.{k}: not an ext attribute"));
                        }
                    }
                }
                ("data", DefaultValue::Table(t)) => fields.data.extend(t.clone()),
                (_, DefaultValue::Table(_)) => {
                    return Err(bad("only ext and data are tables".into()))
                }
                (_, DefaultValue::Int(i)) => set_default(&mut fields, key, &i.to_string(), tz)?,
                (_, DefaultValue::Text(text)) => set_default(&mut fields, key, text, tz)?,
            }
        }
        fields
            .validate()
            .map_err(|e| format!("defaults.{}", e.message))?;
        Ok(fields)
    }
}

fn set_default(
    fields: &mut TaskFields,
    key: &str,
    text: &str,
    tz: &TimeZone,
) -> Result<(), String> {
    let bad = |m: String| format!("defaults.{key}: {m}");
    if !set_task_attribute(fields, key, text, tz).map_err(|e| bad(e.message))? {
        return Err(bad("not a task attribute a source may set".into()));
    }
    Ok(())
}

/// A capture point's validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub id: String,
    /// The protocol spoken to the broker.
    pub transport: TransportKind,
    /// The source system's format → GTLMessages, when it has its own.
    pub inbound: Option<Arc<Transform>>,
    /// GTLMessages → the source system's format, when it has its own.
    pub outbound: Option<Arc<Transform>>,
    pub codec: Codec,
    pub defaults: TaskFields,
    pub check_if_captured: bool,
    /// Send TaskUpdated for the rules' reprioritizations too.
    pub announce_rule_updates: bool,
    /// The outbound message names that are sent.
    pub enabled: BTreeSet<&'static str>,
    pub input_queue: String,
    pub output_queue: String,
    pub error_queue: String,
    pub prefetch: u16,
    pub max_in_flight: usize,
}

/// Header on an outbound message sent as GTLMessages because the outbound transformation
/// failed on it: why.
pub const TRANSFORM_ERROR_HEADER: &str = "x-worklane-transform-error";

impl Settings {
    /// Whether the outbound message `name` is switched on.
    pub fn sends(&self, name: &str) -> bool {
        self.enabled.contains(name)
    }

    /// The body of an outbound message and its extra headers: GTLMessages, through the
    /// outbound transformation when there is one. A message the transformation fails on
    /// is still sent, as GTLMessages with the reason in a header: its effect is already
    /// committed, and dropping it would lose it.
    pub fn outbound_body(&self, msg: &Outbound) -> (Vec<u8>, Vec<(String, String)>) {
        let gtl = self.codec.render_outbound(msg).into_bytes();
        let Some(t) = &self.outbound else {
            return (gtl, Vec::new());
        };
        match t.apply(&gtl) {
            Ok(body) => (body, Vec::new()),
            Err(e) => {
                tracing::warn!(capture_point = %self.id, error = %e, "outbound transformation failed; sending GTLMessages");
                (
                    gtl,
                    vec![(TRANSFORM_ERROR_HEADER.to_owned(), e.to_string())],
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> MqConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn reads_the_spec_example_with_defaults() {
        let c = parse(
            r#"
            id = "MQ1"
            kind = "mq"
            url = "amqp://guest:secret@127.0.0.1:5672/%2f"
            check_if_captured = true
            timezone = "Europe/Paris"
            notifications = ["TaskCreated", "taskcompleted"]
            [defaults]
            channel = "Email"
            priority = 5
            due_date_time = "2030-01-01T00:00:00"
            ext = { customer_segment = "gold" }
            data = { Source = "crm" }
            "#,
        );
        let s = c.resolve().unwrap();
        assert_eq!(s.input_queue, "GTLIn");
        assert_eq!(s.error_queue, "GTLError");
        assert!(s.sends("TaskCompleted") && !s.sends("TaskAssigned"));
        assert_eq!(s.defaults.channel.as_deref(), Some("Email"));
        assert_eq!(s.defaults.priority, Some(5));
        assert_eq!(
            s.defaults.due_date_time.unwrap().to_string(),
            "2029-12-31T23:00:00Z"
        );
        assert_eq!(s.defaults.ext.customer_segment.as_deref(), Some("gold"));
        assert_eq!(s.defaults.data["Source"], "crm");
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("secret") && debug.contains("***"),
            "{debug}"
        );
    }

    #[test]
    fn the_transport_comes_from_the_key_or_the_url() {
        let kind = |t: &str| parse(t).resolve().unwrap().transport;
        assert_eq!(kind("id = \"a\""), TransportKind::Amqp091);
        assert_eq!(
            kind("id = \"a\"\nurl = \"amqp1s://u:p@h\""),
            TransportKind::Amqp10
        );
        assert_eq!(
            kind("id = \"a\"\nurl = \"amqps://u:p@h\"\ntransport = \"amqp-1.0\""),
            TransportKind::Amqp10
        );
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("id = \"\"", "id"),
            ("id = \"12345678901234567\"", "id"),
            ("id = \"a\"\nurl = \"http://x\"", "url"),
            ("id = \"a\"\ntimezone = \"Mars/Base\"", "timezone"),
            (
                "id = \"a\"\nnotifications = [\"TaskEaten\"]",
                "notifications",
            ),
            ("id = \"a\"\nprefetch = 0", "prefetch"),
            ("id = \"a\"\ntransport = \"amqp-2\"", "transport"),
            (
                "id = \"a\"\nurl = \"amqp1://h\"\ntransport = \"amqp-0-9-1\"",
                "url",
            ),
            (
                "id = \"a\"\ntransform_time_limit_ms = 0",
                "transform_time_limit_ms",
            ),
            (
                "id = \"a\"\ninbound_transform = \"/nonexistent.rhai\"",
                "inbound_transform",
            ),
            (
                "id = \"a\"\noutbound_transform = \"/nonexistent.rhai\"",
                "outbound_transform",
            ),
            ("id = \"a\"\nmax_message_bytes = 1", "max_message_bytes"),
            ("id = \"a\"\noutput_queue = \"GTLIn\"", "input_queue"),
            ("id = \"a\"\ninput_queu = \"x\"", "input_queu"),
            (
                "id = \"a\"\n[defaults]\nstatus = \"New\"",
                "defaults.status",
            ),
            (
                "id = \"a\"\n[defaults]\npriority = \"high\"",
                "defaults.priority",
            ),
            (
                "id = \"a\"\n[defaults]\nchannel = \"123456789012345678901234567890123\"",
                "defaults.channel",
            ),
        ];
        for (text, key) in cases {
            let err = parse(text).validate().unwrap_err();
            assert!(err.starts_with(key), "{text}: {err}");
        }
    }
}

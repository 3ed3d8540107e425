//! One `[[capture_point]]` entry with `kind = "database"` (SPEC section 7). Keys are
//! snake_case except the statements, which keep the seed's names verbatim.

use crate::attributes::{near_miss, ERROR_CODE, ERROR_DESCRIPTION};
use crate::params::{self, Dialect};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;
use worklane_domain::fields::limits;
use worklane_domain::{EventType, TaskFields};

/// The Database Capture Point's configuration.
#[derive(Clone, Deserialize)]
pub struct DatabaseCaptureConfig {
    /// The CapturePointId of the tasks it captures (at most 16 characters).
    pub id: String,
    /// `postgres://...`, `mysql://...` (MariaDB too), `sqlite:FILE`, or
    /// `odbc:<connection string or DSN=...>`. Redacted in Debug.
    pub url: String,
    /// How long to wait between polls that found less than a full batch.
    #[serde(default = "default_poll_interval", deserialize_with = "duration")]
    pub poll_interval: Duration,
    /// The most rows one poll captures (and one source transaction marks).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Refuse a row whose ExternalId this capture point already captured
    /// (TASK_ALREADY_CAPTURED through errorUpdateSql).
    #[serde(default)]
    pub check_if_captured: bool,
    /// Also run updatedUpdateSql for the business rules' reprioritizations (origin
    /// `rules`); off by default.
    #[serde(default)]
    pub announce_rule_updates: bool,
    /// The zone of zone-less source timestamps (`TIMESTAMP`, `DATETIME`, text); UTC when absent.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Attribute values a captured task starts with when its row does not set them.
    #[serde(default, deserialize_with = "task_defaults")]
    pub defaults: TaskFields,
    /// How often the notification statements look for events when nothing woke them.
    #[serde(default = "default_poll_interval", deserialize_with = "duration")]
    pub notify_poll_interval: Duration,

    #[serde(rename = "captureQuerySql")]
    pub capture_query_sql: String,
    #[serde(rename = "capturedUpdateSql", default)]
    pub captured_update_sql: Option<String>,
    #[serde(rename = "errorUpdateSql", default)]
    pub error_update_sql: Option<String>,
    #[serde(rename = "assignedUpdateSql", default)]
    pub assigned_update_sql: Option<String>,
    #[serde(rename = "completedUpdateSql", default)]
    pub completed_update_sql: Option<String>,
    #[serde(rename = "canceledUpdateSql", default)]
    pub canceled_update_sql: Option<String>,
    #[serde(rename = "heldUpdateSql", default)]
    pub held_update_sql: Option<String>,
    #[serde(rename = "queuedUpdateSql", default)]
    pub queued_update_sql: Option<String>,
    #[serde(rename = "errorHeldUpdateSql", default)]
    pub error_held_update_sql: Option<String>,
    #[serde(rename = "rejectedUpdateSql", default)]
    pub rejected_update_sql: Option<String>,
    #[serde(rename = "restartedUpdateSql", default)]
    pub restarted_update_sql: Option<String>,
    #[serde(rename = "stoppedUpdateSql", default)]
    pub stopped_update_sql: Option<String>,
    #[serde(rename = "routeRequestedUpdateSql", default)]
    pub route_requested_update_sql: Option<String>,
    #[serde(rename = "updatedUpdateSql", default)]
    pub updated_update_sql: Option<String>,
    #[serde(rename = "resumedUpdateSql", default)]
    pub resumed_update_sql: Option<String>,
    #[serde(rename = "sourceUpdateQuerySql", default)]
    pub source_update_query_sql: Option<String>,
    #[serde(rename = "sourceUpdatedUpdateSql", default)]
    pub source_updated_update_sql: Option<String>,
    #[serde(rename = "sourceErrorUpdateSql", default)]
    pub source_error_update_sql: Option<String>,
    #[serde(rename = "startupQuerySql", default)]
    pub startup_query_sql: Option<String>,

    /// Keys this struct does not know (a misspelled statement name would otherwise be
    /// ignored silently); `validate` reports them.
    #[serde(flatten)]
    unknown: BTreeMap<String, serde::de::IgnoredAny>,
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(5)
}

fn default_batch_size() -> usize {
    500
}

/// Reads `"5s"`, `"250ms"`, `"1m 30s"` (humantime), or a number of seconds.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Secs(u64),
    }
    match Raw::deserialize(d)? {
        Raw::Text(s) => humantime::parse_duration(s.trim()).map_err(serde::de::Error::custom),
        Raw::Secs(n) => Ok(Duration::from_secs(n)),
    }
}

/// Reads `defaults`, refusing a key that is no settable attribute (a misspelled one
/// would otherwise be ignored).
fn task_defaults<'de, D: Deserializer<'de>>(d: D) -> Result<TaskFields, D::Error> {
    use serde::de::Error;
    let map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
    // The keys `defaults` may have: the task attributes a source may set, `ext` and `data`.
    let known =
        |k: &str| crate::attributes::TASK_SETTABLE.contains(&k) || k == "ext" || k == "data";
    if let Some(key) = map.keys().find(|k| !known(k)) {
        return Err(D::Error::custom(format!(
            "defaults.{key}: unknown attribute; one of {}, ext, data",
            crate::attributes::TASK_SETTABLE.join(", ")
        )));
    }
    serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|e| D::Error::custom(format!("defaults: {e}")))
}

impl fmt::Debug for DatabaseCaptureConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("DatabaseCaptureConfig");
        s.field("id", &self.id)
            .field("url", &worklane_store::redact_url(&self.url))
            .field("poll_interval", &self.poll_interval)
            .field("batch_size", &self.batch_size)
            .field("check_if_captured", &self.check_if_captured)
            .field("announce_rule_updates", &self.announce_rule_updates)
            .field("timezone", &self.timezone)
            .field("defaults", &self.defaults);
        for (name, sql) in self.statements() {
            if let Some(sql) = sql {
                s.field(name, &sql);
            }
        }
        s.finish()
    }
}

/// What a statement is run for: decides which parameters it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// captureQuerySql, sourceUpdateQuerySql, startupQuerySql: no parameters.
    Query,
    /// capturedUpdateSql, sourceUpdatedUpdateSql: a row and its task.
    Row,
    /// errorUpdateSql, sourceErrorUpdateSql: a row, and ErrorCode / ErrorDescription.
    RowError,
    /// The notification statements: a task.
    Notification,
}

/// Every statement option, in the seed's order, with its role.
pub const STATEMENTS: [(&str, Role); 19] = [
    ("captureQuerySql", Role::Query),
    ("capturedUpdateSql", Role::Row),
    ("errorUpdateSql", Role::RowError),
    ("assignedUpdateSql", Role::Notification),
    ("completedUpdateSql", Role::Notification),
    ("canceledUpdateSql", Role::Notification),
    ("heldUpdateSql", Role::Notification),
    ("queuedUpdateSql", Role::Notification),
    ("errorHeldUpdateSql", Role::Notification),
    ("rejectedUpdateSql", Role::Notification),
    ("restartedUpdateSql", Role::Notification),
    ("stoppedUpdateSql", Role::Notification),
    ("routeRequestedUpdateSql", Role::Notification),
    ("updatedUpdateSql", Role::Notification),
    ("resumedUpdateSql", Role::Notification),
    ("sourceUpdateQuerySql", Role::Query),
    ("sourceUpdatedUpdateSql", Role::Row),
    ("sourceErrorUpdateSql", Role::RowError),
    ("startupQuerySql", Role::Query),
];

/// The notification statement an event runs (SPEC section 5, "Notifications").
/// `TaskUpdated` runs updatedUpdateSql only for changes this capture point did not make.
pub fn notification_option(event: EventType) -> Option<&'static str> {
    Some(match event {
        EventType::TaskAssigned => "assignedUpdateSql",
        EventType::TaskCompleted => "completedUpdateSql",
        EventType::TaskCanceled => "canceledUpdateSql",
        EventType::TaskHeld => "heldUpdateSql",
        EventType::TaskQueued | EventType::TaskDistributedQueue => "queuedUpdateSql",
        EventType::TaskErrorHeld => "errorHeldUpdateSql",
        EventType::TaskRejected => "rejectedUpdateSql",
        EventType::TaskRestarted => "restartedUpdateSql",
        EventType::TaskStopped => "stoppedUpdateSql",
        EventType::TaskRouteRequested => "routeRequestedUpdateSql",
        EventType::TaskUpdated => "updatedUpdateSql",
        EventType::TaskResumed => "resumedUpdateSql",
        EventType::TaskCreated
        | EventType::TaskCaptured
        | EventType::TaskDistributed
        | EventType::TaskReturned
        | EventType::TaskOffered => return None,
    })
}

impl DatabaseCaptureConfig {
    /// A configuration with the given id, url and captureQuerySql, everything else default.
    pub fn new(id: &str, url: &str, capture_query_sql: &str) -> Self {
        Self {
            id: id.to_owned(),
            url: url.to_owned(),
            poll_interval: default_poll_interval(),
            batch_size: default_batch_size(),
            check_if_captured: false,
            announce_rule_updates: false,
            timezone: None,
            defaults: TaskFields::default(),
            notify_poll_interval: default_poll_interval(),
            capture_query_sql: capture_query_sql.to_owned(),
            captured_update_sql: None,
            error_update_sql: None,
            assigned_update_sql: None,
            completed_update_sql: None,
            canceled_update_sql: None,
            held_update_sql: None,
            queued_update_sql: None,
            error_held_update_sql: None,
            rejected_update_sql: None,
            restarted_update_sql: None,
            stopped_update_sql: None,
            route_requested_update_sql: None,
            updated_update_sql: None,
            resumed_update_sql: None,
            source_update_query_sql: None,
            source_updated_update_sql: None,
            source_error_update_sql: None,
            startup_query_sql: None,
            unknown: BTreeMap::new(),
        }
    }

    /// Every statement option by its seed name, set or not.
    pub fn statements(&self) -> [(&'static str, Option<&str>); 19] {
        fn o(s: &Option<String>) -> Option<&str> {
            s.as_deref()
        }
        [
            ("captureQuerySql", Some(self.capture_query_sql.as_str())),
            ("capturedUpdateSql", o(&self.captured_update_sql)),
            ("errorUpdateSql", o(&self.error_update_sql)),
            ("assignedUpdateSql", o(&self.assigned_update_sql)),
            ("completedUpdateSql", o(&self.completed_update_sql)),
            ("canceledUpdateSql", o(&self.canceled_update_sql)),
            ("heldUpdateSql", o(&self.held_update_sql)),
            ("queuedUpdateSql", o(&self.queued_update_sql)),
            ("errorHeldUpdateSql", o(&self.error_held_update_sql)),
            ("rejectedUpdateSql", o(&self.rejected_update_sql)),
            ("restartedUpdateSql", o(&self.restarted_update_sql)),
            ("stoppedUpdateSql", o(&self.stopped_update_sql)),
            (
                "routeRequestedUpdateSql",
                o(&self.route_requested_update_sql),
            ),
            ("updatedUpdateSql", o(&self.updated_update_sql)),
            ("resumedUpdateSql", o(&self.resumed_update_sql)),
            ("sourceUpdateQuerySql", o(&self.source_update_query_sql)),
            ("sourceUpdatedUpdateSql", o(&self.source_updated_update_sql)),
            ("sourceErrorUpdateSql", o(&self.source_error_update_sql)),
            ("startupQuerySql", o(&self.startup_query_sql)),
        ]
    }

    /// The SQL of the statement option named `option`, when set.
    pub fn statement(&self, option: &str) -> Option<&str> {
        self.statements()
            .into_iter()
            .find(|(n, _)| *n == option)
            .and_then(|(_, s)| s)
    }

    /// The dialect the url's driver speaks (None for an unsupported url).
    pub fn dialect(&self) -> Option<Dialect> {
        let u = self.url.as_str();
        if u.starts_with("postgres://") || u.starts_with("postgresql://") {
            Some(Dialect::Postgres)
        } else if u.starts_with("mysql://") || u.starts_with("mariadb://") {
            Some(Dialect::MySql)
        } else if u.starts_with("sqlite:") {
            Some(Dialect::Sqlite)
        } else if u.starts_with("odbc:") {
            Some(Dialect::Odbc)
        } else {
            None
        }
    }

    /// The configured time zone (UTC when absent).
    pub fn time_zone(&self) -> Result<jiff::tz::TimeZone, String> {
        match &self.timezone {
            None => Ok(jiff::tz::TimeZone::UTC),
            Some(name) => jiff::tz::TimeZone::get(name)
                .map_err(|e| format!("{}.timezone: unknown time zone {name:?}: {e}", self.id)),
        }
    }

    /// Checks everything that can be checked without the source; the error names the
    /// key (`DB1.completedUpdateSql: ...`).
    pub fn validate(&self) -> Result<(), String> {
        let id = &self.id;
        if id.trim().is_empty() {
            return Err("capture_point.id: must not be empty".into());
        }
        if id.chars().count() > limits::CAPTURE_POINT_ID {
            return Err(format!(
                "{id}.id: at most {} characters",
                limits::CAPTURE_POINT_ID
            ));
        }
        if let Some(key) = self.unknown.keys().find(|k| k.as_str() != "kind") {
            let hint = STATEMENTS
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(key))
                .map(|(n, _)| format!(" (did you mean {n}?)"))
                .unwrap_or_default();
            return Err(format!("{id}.{key}: unknown key{hint}"));
        }
        let Some(dialect) = self.dialect() else {
            return Err(format!(
                "{id}.url: {:?} is not a supported source; use postgres://, mysql://, sqlite: or odbc:",
                worklane_store::redact_url(&self.url)
            ));
        };
        odbc_built(id, dialect, crate::source::ODBC_AVAILABLE)?;
        if self.poll_interval.is_zero() {
            return Err(format!("{id}.poll_interval: must be more than zero"));
        }
        if self.notify_poll_interval.is_zero() {
            return Err(format!("{id}.notify_poll_interval: must be more than zero"));
        }
        if !(1..=100_000).contains(&self.batch_size) {
            return Err(format!("{id}.batch_size: must be between 1 and 100000"));
        }
        self.time_zone()?;
        self.defaults
            .validate()
            .map_err(|e| format!("{id}.defaults: {}", e.message))?;
        if self.capture_query_sql.trim().is_empty() {
            return Err(format!("{id}.captureQuerySql: must not be empty"));
        }
        for (option, role) in STATEMENTS {
            let Some(sql) = self.statement(option) else {
                continue;
            };
            let parsed = params::parse(sql, dialect).map_err(|e| format!("{id}.{option}: {e}"))?;
            check_names(&parsed.names(), role).map_err(|e| format!("{id}.{option}: {e}"))?;
        }
        if self.source_update_query_sql.is_none() {
            for option in ["sourceUpdatedUpdateSql", "sourceErrorUpdateSql"] {
                if self.statement(option).is_some() {
                    return Err(format!("{id}.{option}: needs sourceUpdateQuerySql"));
                }
            }
        }
        Ok(())
    }
}

/// Refuses an ODBC source when this build has no ODBC (`built` is false), naming the key
/// and how to get a build that has it. `built` is a parameter so both answers are tested
/// whichever way the tests were built.
fn odbc_built(id: &str, dialect: Dialect, built: bool) -> Result<(), String> {
    if dialect == Dialect::Odbc && !built {
        return Err(format!("{id}.url: {}", crate::source::ODBC_NOT_BUILT));
    }
    Ok(())
}

/// Parameter names a statement of `role` may not use, or that are typos of known ones.
fn check_names(names: &[&str], role: Role) -> Result<(), String> {
    for name in names {
        if role == Role::Query {
            return Err(format!("takes no parameters, found ?'{name}'"));
        }
        let is_error_param = [ERROR_CODE, ERROR_DESCRIPTION]
            .iter()
            .any(|e| e.eq_ignore_ascii_case(name));
        if is_error_param && role != Role::RowError {
            return Err(format!(
                "unknown parameter ?'{name}': only errorUpdateSql and sourceErrorUpdateSql have it"
            ));
        }
        if let Some(meant) = near_miss(name) {
            return Err(format!(
                "unknown parameter ?'{name}' (did you mean ?'{meant}'?)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> DatabaseCaptureConfig {
        toml::from_str(toml_text).expect("config parses")
    }

    const SEED: &str = r#"
        id = "DB1"
        kind = "database"
        url = "postgres://crm:secret@127.0.0.1/crm"
        poll_interval = "250ms"
        check_if_captured = true
        captureQuerySql = "select caseId \"ExternalId\", createdTimestamp \"ReceivedAt\", casePriority \"Priority\", status \"Status\" from cases where status='new'"
        capturedUpdateSql = "update cases set caseTrackingId=?'InteractionId', status='submitted' where caseId=?'ExternalId'"
        errorUpdateSql = "update cases set status='error', errorCode=?'ErrorCode', errorDescr=?'ErrorDescription' where caseId=?'ExternalId'"
        queuedUpdateSql = "update cases set status = 'queued', substatus=?'Queue' where caseId=?'ExternalId'"
        sourceUpdateQuerySql = "select caseId \"ExternalId\", updatedTimestamp \"SomeTime\", casePriority \"Priority\" from case_updates where status='new'"
        sourceUpdatedUpdateSql = "update case_updates set status='applied' where caseId=? 'ExternalId'"
        sourceErrorUpdateSql = "update case_updates set status='error', errorcode=? 'ErrorCode', errordescr=? 'ErrorDescription' where caseId=? 'ExternalId'"
        [defaults]
        channel = "Email"
    "#;

    #[test]
    fn the_seed_example_validates_and_redacts_its_password() {
        let c = parse(SEED);
        c.validate().expect("valid");
        assert_eq!(c.poll_interval, Duration::from_millis(250));
        assert_eq!(c.batch_size, 500);
        assert_eq!(c.defaults.channel.as_deref(), Some("Email"));
        let debug = format!("{c:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("***"), "{debug}");
    }

    #[test]
    fn errors_name_the_key() {
        let mut c = parse(SEED);
        c.completed_update_sql =
            Some("update cases set status='completed' where caseId=?'externalid'".into());
        let e = c.validate().expect_err("typo");
        assert!(
            e.starts_with("DB1.completedUpdateSql: unknown parameter ?'externalid'"),
            "{e}"
        );

        let mut c = parse(SEED);
        c.held_update_sql = Some("update cases set code=?'ErrorCode'".into());
        assert!(c
            .validate()
            .expect_err("no ErrorCode")
            .starts_with("DB1.heldUpdateSql:"));

        let mut c = parse(SEED);
        c.captured_update_sql = Some("update cases set note='open where id=?'ExternalId'".into());
        assert!(c
            .validate()
            .expect_err("unterminated")
            .starts_with("DB1.capturedUpdateSql:"));

        let mut c = parse(SEED);
        c.capture_query_sql = "select * from cases where id=?'ExternalId'".into();
        assert!(c
            .validate()
            .expect_err("no params")
            .starts_with("DB1.captureQuerySql: takes no parameters"));

        let e = parse(&format!("completedUpdateSQL = 'x'\n{SEED}"))
            .validate()
            .expect_err("unknown key");
        assert_eq!(
            e,
            "DB1.completedUpdateSQL: unknown key (did you mean completedUpdateSql?)"
        );

        let mut c = parse(SEED);
        c.url = "oracle://x".into();
        assert!(c.validate().expect_err("url").starts_with("DB1.url:"));

        let mut c = parse(SEED);
        c.timezone = Some("Mars/Olympus".into());
        assert!(c.validate().expect_err("tz").starts_with("DB1.timezone:"));
    }

    #[test]
    fn odbc_sources_need_a_build_with_odbc() {
        let e = odbc_built("DB1", Dialect::Odbc, false).expect_err("no ODBC in this build");
        assert!(e.starts_with("DB1.url: ODBC sources need"), "{e}");
        assert!(e.contains("cargo build --release --features odbc"), "{e}");
        assert!(e.contains("unixODBC"), "{e}");
        assert_eq!(odbc_built("DB1", Dialect::Odbc, true), Ok(()));
        for d in [Dialect::Postgres, Dialect::MySql, Dialect::Sqlite] {
            assert_eq!(odbc_built("DB1", d, false), Ok(()));
        }
    }

    /// The whole validation, as start-up and `worklane config check` run it, with this
    /// build's ODBC support.
    #[test]
    fn odbc_source_validates_as_this_build_allows() {
        let mut c = parse(SEED);
        c.url = "odbc:DSN=crm;UID=u;PWD=secret".into();
        let result = c.validate();
        if crate::source::ODBC_AVAILABLE {
            assert_eq!(result, Ok(()));
        } else {
            let e = result.expect_err("ODBC left out of this build");
            assert!(e.starts_with("DB1.url: ODBC sources need"), "{e}");
            assert!(!e.contains("secret"), "{e}");
        }
    }

    #[test]
    fn defaults_refuse_unknown_attributes() {
        let e = toml::from_str::<DatabaseCaptureConfig>(
            &SEED.replace("channel = \"Email\"", "chanel = \"Email\""),
        )
        .expect_err("misspelled");
        assert!(
            e.to_string().contains("defaults.chanel: unknown attribute"),
            "{e}"
        );
        let c = parse(&SEED.replace(
            "channel = \"Email\"",
            "priority = 3\ndata = { source = \"crm\" }",
        ));
        assert_eq!(c.defaults.priority, Some(3));
        assert_eq!(
            c.defaults.data.get("source").map(String::as_str),
            Some("crm")
        );
    }

    #[test]
    fn durations_take_humantime_or_seconds() {
        let c = parse(&SEED.replace("\"250ms\"", "3"));
        assert_eq!(c.poll_interval, Duration::from_secs(3));
        let e = toml::from_str::<DatabaseCaptureConfig>(&SEED.replace("\"250ms\"", "\"soon\""));
        assert!(e.is_err());
    }

    #[test]
    fn every_notification_event_has_its_statement() {
        let names: Vec<_> = EventType::ALL
            .iter()
            .filter_map(|e| notification_option(*e))
            .collect();
        for (option, role) in STATEMENTS {
            if role == Role::Notification {
                assert!(names.contains(&option), "{option} is never run");
            }
        }
    }
}

//! One `[[notification_target]]` entry (SPEC sections 6 and 7), with its validation.

use crate::format::{self, Format};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use worklane_domain::EventType;
use worklane_store::redact_url;

/// A notification target: where to POST, what, and how to retry.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationTargetConfig {
    /// The target's name: in logs, metrics, the API and its event-log position
    /// (`notify:<id>`).
    pub id: String,
    /// Where to POST (`contact-processed-notification-uri`, `_status_notification_target`).
    pub uri: String,
    /// `event` (seed 002) or `contact-processed` (seed 004).
    #[serde(default)]
    pub format: Format,
    /// Per-event sections: only these events are sent, each with its `notify_params` and
    /// `notify_custom`. Empty: every event, with [`format::DEFAULT_PARAMS`].
    #[serde(default)]
    pub events: BTreeMap<String, EventSection>,
    /// Which tasks' events are sent at all.
    #[serde(default)]
    pub filter: Filter,
    /// Extra headers on every request (values are redacted in Debug and logs).
    #[serde(default)]
    pub http_custom_headers: BTreeMap<String, String>,
    /// An HTTP proxy; HTTPS targets are tunnelled through it with CONNECT.
    #[serde(default)]
    pub http_proxy: Option<String>,
    /// How long to wait for an answer (humantime: `10s`, `1m 30s`).
    #[serde(
        default = "defaults::response_timeout",
        with = "humantime_serde_compat"
    )]
    pub http_response_timeout: Duration,
    /// The most connections, and requests in flight, to the target.
    #[serde(default = "defaults::pool_size")]
    pub http_connection_pool_size: usize,
    /// Retries after the first attempt (0: never retried).
    #[serde(default = "defaults::max_attempts")]
    pub http_retry_max_attempts: u32,
    /// Which failures are retried: `connect`, `timeout`, `5xx`, `4xx`, `429`, or any
    /// status code such as `404`. Others are final.
    #[serde(default = "defaults::applies_to")]
    pub http_retry_applies_to: Vec<String>,
    /// The first retry's delay; each next one doubles, with jitter, up to the maximum.
    #[serde(default = "defaults::backoff_initial", with = "humantime_serde_compat")]
    pub http_retry_backoff_initial: Duration,
    #[serde(default = "defaults::backoff_max", with = "humantime_serde_compat")]
    pub http_retry_backoff_max: Duration,
    /// Logs each request and response in full (`_status_notification_debug`).
    #[serde(default)]
    pub debug: bool,
    /// A PEM file of CA certificates to trust besides the public roots (on-premises
    /// receivers with a private CA).
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// Standard Webhooks signing secrets (`whsec_<base64>`); every request is signed with
    /// each, so receivers can rotate. Empty: requests are not signed.
    #[serde(default)]
    pub signing_secrets: Vec<String>,
    /// Where a target that has never run starts reading the event log: `now` (only new
    /// events) or `beginning` (the whole retained log).
    #[serde(default)]
    pub start_at: StartAt,
}

/// Where a new target starts in the event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    #[default]
    Now,
    Beginning,
}

/// One event's section: the attributes to send and the custom object to merge.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSection {
    /// Attribute names (a list, or the seed's comma-separated string).
    #[serde(default, deserialize_with = "list_or_csv")]
    pub notify_params: Vec<String>,
    /// A JSON object merged into the body (a table, or the seed's JSON string).
    #[serde(default, deserialize_with = "object_or_json")]
    pub notify_custom: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Which events a target receives; each list empty means "any".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default)]
    pub capture_points: Vec<String>,
    #[serde(default)]
    pub processes: Vec<String>,
    #[serde(default)]
    pub tenants: Vec<String>,
}

mod defaults {
    use std::time::Duration;
    pub fn response_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub fn pool_size() -> usize {
        16
    }
    pub fn max_attempts() -> u32 {
        8
    }
    pub fn applies_to() -> Vec<String> {
        ["connect", "timeout", "5xx", "429", "408"]
            .map(String::from)
            .to_vec()
    }
    pub fn backoff_initial() -> Duration {
        Duration::from_secs(1)
    }
    pub fn backoff_max() -> Duration {
        Duration::from_secs(300)
    }
}

/// Durations written the humantime way (`10s`, `500ms`, `1m 30s`).
mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

fn list_or_csv<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        Csv(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::List(v) => v.into_iter().map(|s| s.trim().to_owned()).collect(),
        Either::Csv(s) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect(),
    })
}

fn object_or_json<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, D::Error> {
    use serde::de::Error;
    let v = serde_json::Value::deserialize(d)?;
    let v = match v {
        serde_json::Value::String(s) => serde_json::from_str(&s)
            .map_err(|e| D::Error::custom(format!("notify_custom is not JSON: {e}")))?,
        other => other,
    };
    match v {
        serde_json::Value::Object(m) => Ok(Some(m)),
        _ => Err(D::Error::custom("notify_custom must be an object")),
    }
}

/// How a failed attempt is classified for `http_retry_applies_to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryRule {
    Connect,
    Timeout,
    /// Every status in `lo..=hi`.
    Status(u16, u16),
}

impl NotificationTargetConfig {
    /// Checks every key; the error names the bad one.
    pub fn validate(&self) -> Result<(), String> {
        let at = |key: &str| format!("notification_target.{}.{key}", self.id);
        if self.id.trim().is_empty() || self.id.len() > 64 {
            return Err("notification_target.id: must be 1 to 64 characters".into());
        }
        if !self
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(format!(
                "notification_target.id: {:?} may hold only letters, digits, '-', '_' and '.'",
                self.id
            ));
        }
        match url::Url::parse(&self.uri) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            Ok(_) => return Err(format!("{}: must be an http or https URL", at("uri"))),
            Err(e) => return Err(format!("{}: {e}", at("uri"))),
        }
        for (name, section) in &self.events {
            let et: EventType = name
                .parse()
                .map_err(|e| format!("{}: {e}", at(&format!("events.{name}"))))?;
            if self.format == Format::ContactProcessed {
                if !format::is_final_event(et) {
                    return Err(format!(
                        "{}: contact-processed targets send only TaskCompleted, TaskCanceled \
                         and TaskRejected",
                        at(&format!("events.{name}"))
                    ));
                }
                if !section.notify_params.is_empty() {
                    return Err(format!(
                        "{}: contact-processed bodies have a fixed attribute set",
                        at(&format!("events.{name}.notify_params"))
                    ));
                }
            }
            for p in &section.notify_params {
                if !format::is_known_param(p) {
                    return Err(format!(
                        "{}: unknown attribute {p:?} (task and event attributes in camelCase, \
                         ext attributes, or data.<key>)",
                        at(&format!("events.{name}.notify_params"))
                    ));
                }
            }
        }
        for t in &self.filter.event_types {
            t.parse::<EventType>()
                .map_err(|e| format!("{}: {e}", at("filter.event_types")))?;
        }
        for (name, value) in &self.http_custom_headers {
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                format!(
                    "{}: {name:?} is not a header name",
                    at("http_custom_headers")
                )
            })?;
            reqwest::header::HeaderValue::from_str(value).map_err(|_| {
                format!(
                    "{}: the value of {name:?} is not a header value",
                    at("http_custom_headers")
                )
            })?;
        }
        if let Some(p) = &self.http_proxy {
            reqwest::Proxy::all(p).map_err(|e| format!("{}: {e}", at("http_proxy")))?;
        }
        if self.http_response_timeout.is_zero() {
            return Err(format!(
                "{}: must be more than 0",
                at("http_response_timeout")
            ));
        }
        if !(1..=4096).contains(&self.http_connection_pool_size) {
            return Err(format!(
                "{}: must be 1 to 4096",
                at("http_connection_pool_size")
            ));
        }
        if self.http_retry_max_attempts > 1000 {
            return Err(format!("{}: at most 1000", at("http_retry_max_attempts")));
        }
        self.retry_rules()
            .map_err(|e| format!("{}: {e}", at("http_retry_applies_to")))?;
        if self.http_retry_backoff_initial.is_zero()
            || self.http_retry_backoff_max < self.http_retry_backoff_initial
        {
            return Err(format!(
                "{}: must be more than 0 and at most http_retry_backoff_max",
                at("http_retry_backoff_initial")
            ));
        }
        if let Some(f) = &self.tls_ca_file {
            let pem = std::fs::read(f)
                .map_err(|e| format!("{}: cannot read {}: {e}", at("tls_ca_file"), f.display()))?;
            reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("{}: not a PEM certificate bundle: {e}", at("tls_ca_file")))?;
        }
        crate::signing::Signer::new(&self.signing_secrets)
            .map_err(|e| format!("{}: {e}", at("signing_secrets")))?;
        Ok(())
    }

    /// `http_retry_applies_to` parsed.
    pub fn retry_rules(&self) -> Result<Vec<RetryRule>, String> {
        self.http_retry_applies_to
            .iter()
            .map(|r| match r.trim().to_ascii_lowercase().as_str() {
                "connect" => Ok(RetryRule::Connect),
                "timeout" => Ok(RetryRule::Timeout),
                "4xx" => Ok(RetryRule::Status(400, 499)),
                "5xx" => Ok(RetryRule::Status(500, 599)),
                code => match code.parse::<u16>() {
                    Ok(c) if (100..=599).contains(&c) => Ok(RetryRule::Status(c, c)),
                    _ => Err(format!(
                        "{r:?} is not connect, timeout, 4xx, 5xx or a status code"
                    )),
                },
            })
            .collect()
    }

    /// The consumer name of the target's event-log position.
    pub fn consumer_name(&self) -> String {
        format!("notify:{}", self.id)
    }
}

impl fmt::Debug for NotificationTargetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: BTreeMap<&str, &str> = self
            .http_custom_headers
            .keys()
            .map(|k| (k.as_str(), "***"))
            .collect();
        f.debug_struct("NotificationTargetConfig")
            .field("id", &self.id)
            .field("uri", &redact_url(&self.uri))
            .field("format", &self.format)
            .field("events", &self.events)
            .field("filter", &self.filter)
            .field("http_custom_headers", &headers)
            .field("http_proxy", &self.http_proxy.as_deref().map(redact_url))
            .field("http_response_timeout", &self.http_response_timeout)
            .field("http_connection_pool_size", &self.http_connection_pool_size)
            .field("http_retry_max_attempts", &self.http_retry_max_attempts)
            .field("http_retry_applies_to", &self.http_retry_applies_to)
            .field(
                "http_retry_backoff_initial",
                &self.http_retry_backoff_initial,
            )
            .field("http_retry_backoff_max", &self.http_retry_backoff_max)
            .field("debug", &self.debug)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("signing_secrets", &vec!["***"; self.signing_secrets.len()])
            .field("start_at", &self.start_at)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> NotificationTargetConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn spec_example_parses_with_seed_spellings() {
        let c = parse(
            r#"
            id = "crm-webhook"
            uri = "https://user:pw@crm.example/worklane"
            format = "event"
            http_custom_headers = { "X-Api-Key" = "s3cret" }
            http_proxy = "http://proxy.example:3128"
            http_response_timeout = "10s"
            http_connection_pool_size = 16
            http_retry_max_attempts = 8
            http_retry_applies_to = ["connect", "timeout", "5xx", "429", "404"]
            signing_secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
            [events.TaskAssigned]
            notify_params = "brokerId, captureId, assignedToUser"
            notify_custom = '{"source": "worklane"}'
            [events.TaskCompleted]
            notify_params = ["brokerId"]
            notify_custom = { state = "done" }
            "#,
        );
        c.validate().unwrap();
        assert_eq!(
            c.events["TaskAssigned"].notify_params,
            ["brokerId", "captureId", "assignedToUser"]
        );
        assert_eq!(
            c.events["TaskAssigned"].notify_custom.as_ref().unwrap()["source"],
            "worklane"
        );
        assert_eq!(
            c.events["TaskCompleted"].notify_custom.as_ref().unwrap()["state"],
            "done"
        );
        assert_eq!(c.retry_rules().unwrap()[4], RetryRule::Status(404, 404));
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("s3cret") && !dbg.contains("pw@") && !dbg.contains("whsec_Mf"),
            "{dbg}"
        );
        assert!(dbg.contains("X-Api-Key"));
    }

    #[test]
    fn errors_name_the_key() {
        let base = "id = \"t\"\nuri = \"http://127.0.0.1:1/\"\n";
        let cases = [
            ("uri = \"ftp://x\"", "notification_target.t.uri"),
            (
                "http_retry_applies_to = [\"sometimes\"]",
                "http_retry_applies_to",
            ),
            ("http_connection_pool_size = 0", "http_connection_pool_size"),
            (
                "[events.TaskExploded]\nnotify_params = []",
                "events.TaskExploded",
            ),
            (
                "[events.TaskAssigned]\nnotify_params = [\"nope\"]",
                "notify_params",
            ),
            ("signing_secrets = [\"plain\"]", "signing_secrets"),
            ("tls_ca_file = \"/does/not/exist.pem\"", "tls_ca_file"),
        ];
        for (extra, key) in cases {
            let text = if extra.starts_with("uri") {
                format!("id = \"t\"\n{extra}\n")
            } else {
                format!("{base}{extra}\n")
            };
            let c: NotificationTargetConfig = toml::from_str(&text).unwrap();
            let e = c.validate().unwrap_err();
            assert!(e.contains(key), "{extra}: {e}");
        }
        let unknown = toml::from_str::<NotificationTargetConfig>(&format!("{base}colour = 1\n"));
        assert!(unknown.unwrap_err().to_string().contains("colour"));
    }

    #[test]
    fn contact_processed_sends_only_final_events() {
        let c = parse(
            "id = \"t\"\nuri = \"http://h/\"\nformat = \"contact-processed\"\n[events.TaskAssigned]\n",
        );
        assert!(c.validate().unwrap_err().contains("events.TaskAssigned"));
    }
}

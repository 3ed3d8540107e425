//! Configuration: one TOML file (`--config`), every key overridable by a `WORKLANE_`
//! environment variable (`WORKLANE_SERVER__LISTEN`, `WORKLANE_STORE__URL`: sections and
//! keys joined by `__`), validated at start-up with errors that name the key.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// The whole configuration. `worklane.example.toml` documents every key. Its `Debug`
/// hides secrets (see `redacted_table`).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub processing: ProcessingConfig,
    #[serde(default)]
    pub retention: RetentionConfig,
    /// `[auth]`: who may call the API (SPEC 10).
    #[serde(default)]
    pub auth: AuthConfig,
    /// `[[capture_point]]` tables, each with a `kind` ("mq" or "database").
    #[serde(default)]
    pub capture_point: Vec<toml::Table>,
    /// `[[notification_target]]` tables.
    #[serde(default)]
    pub notification_target: Vec<toml::Table>,
    /// `[[calendar]]` tables: business calendars (SPEC 8), checked at start-up.
    #[serde(default)]
    pub calendar: Vec<worklane_domain::CalendarConfig>,
    /// The calendars built from `calendar` by [`Config::resolve`].
    #[serde(skip)]
    pub calendars: Vec<worklane_domain::BusinessCalendar>,
    /// `[[department]]` tables: the business structure (SPEC 8).
    #[serde(default)]
    pub department: Vec<worklane_rules::DepartmentConfig>,
    /// `[[process]]` tables.
    #[serde(default)]
    pub process: Vec<worklane_rules::ProcessConfig>,
    /// `[[contract]]` tables: contracts with an active window.
    #[serde(default)]
    pub contract: Vec<worklane_rules::ContractConfig>,
    /// `[[rule]]` tables: classification and prioritization rules, in file order.
    #[serde(default)]
    pub rule: Vec<worklane_rules::RuleConfig>,
    /// The rules built from the tables above by [`Config::resolve`].
    #[serde(skip)]
    pub rules: std::sync::Arc<worklane_rules::RuleSet>,
    /// `[[queue]]` tables: interaction queues (SPEC 9). None: tasks rest Queued.
    #[serde(default)]
    pub queue: Vec<worklane_distribution::QueueConfig>,
    /// `[distribution]`: the distribution layer's settings.
    #[serde(default)]
    pub distribution: worklane_distribution::DistributionConfig,
    /// The queues built from `queue` by [`Config::resolve`] (None without any).
    #[serde(skip)]
    pub queues: Option<std::sync::Arc<worklane_distribution::Queues>>,
    /// The file the configuration was read from (what a reload reads again).
    #[serde(skip)]
    pub file: Option<std::path::PathBuf>,
    /// The capture points and notification targets, read once from their tables by
    /// [`Config::resolve`] (which [`Config::load`] calls).
    #[serde(skip)]
    pub components: Vec<crate::components::Component>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the REST API listens on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Larger request bodies are refused with 413.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// How long in-flight requests may take to finish on shutdown.
    #[serde(default = "default_grace", with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// This node's name among the nodes sharing one store (leases); generated per start
    /// when absent.
    #[serde(default)]
    pub node_id: Option<String>,
    /// How long a lease of a part that runs once in a cluster (a database capture point,
    /// a notification target) lasts unless renewed: how long another node waits before
    /// taking over from a node that died. Renewed every third of it.
    #[serde(default = "default_lease_ttl", with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs `tls_key`.
    #[serde(default)]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The certificate's private key (PEM).
    #[serde(default)]
    pub tls_key: Option<std::path::PathBuf>,
}

impl ServerConfig {
    /// The TLS acceptor when `tls_cert` and `tls_key` are set.
    pub fn tls(&self) -> Result<Option<worklane_api::tls::TlsAcceptor>, ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => worklane_api::tls::acceptor(cert, key)
                .map(Some)
                .map_err(|e| invalid("server.tls_cert", e.to_string())),
            _ => Err(invalid(
                "server.tls_cert",
                "tls_cert and tls_key are set together",
            )),
        }
    }
}

/// `[auth]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `"on"` (the default): every route but `/healthz` and the OpenAPI document takes
    /// `Authorization: Bearer <token>`. `"off"`: anyone who reaches the port may do
    /// anything; refused unless the listener is a loopback address.
    #[serde(default)]
    pub mode: worklane_api::auth::AuthMode,
    /// Where the first start writes the admin token it creates (readable by its owner
    /// only). Relative paths are from the working directory.
    #[serde(default = "default_token_file")]
    pub bootstrap_token_file: std::path::PathBuf,
    /// A console session unused this long has ended.
    #[serde(default = "default_session_idle", with = "humantime_serde")]
    pub session_idle: Duration,
    /// A console session ends this long after sign-in, however busy.
    #[serde(default = "default_session_lifetime", with = "humantime_serde")]
    pub session_lifetime: Duration,
    /// Marks the session cookie `Secure`: set it when the console is reached over HTTPS
    /// (e.g. through a TLS-terminating proxy).
    #[serde(default)]
    pub secure_cookie: bool,
    /// Failed sign-ins for one name before the name is locked.
    #[serde(default = "default_signin_attempts")]
    pub signin_attempts: u32,
    /// How long a name is locked after that many failures (doubled for each further
    /// failure, up to 16 times).
    #[serde(default = "default_signin_lockout", with = "humantime_serde")]
    pub signin_lockout: Duration,
    /// Failed authentications one client address may make per minute; beyond, its
    /// requests are answered 429 until the minute ends (0: no limit).
    #[serde(default = "default_failed_auth")]
    pub failed_auth_per_minute: u32,
    /// Requests one authenticated caller (token or user) may make per second; beyond,
    /// 429 (0: no limit).
    #[serde(default)]
    pub caller_requests_per_second: u32,
}

impl AuthConfig {
    /// The API's view of the session settings.
    pub fn sessions(&self) -> worklane_api::session::SessionPolicy {
        worklane_api::session::SessionPolicy {
            idle: self.session_idle,
            lifetime: self.session_lifetime,
            secure_cookie: self.secure_cookie,
            attempts: self.signin_attempts,
            lockout: self.signin_lockout,
        }
    }
}

/// `[store]`. Its `Debug` shows the URL without its password.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://FILE` (the default, created when missing) or `postgres://USER@HOST/DB`.
    #[serde(default = "default_store")]
    pub url: String,
    /// The most commands committed in one transaction (group commit).
    #[serde(default = "default_batch")]
    pub max_batch: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    #[serde(default = "default_log_format")]
    pub format: String,
    /// A tracing filter, e.g. `info` or `worklane=debug,sqlx=warn`; `RUST_LOG` wins.
    #[serde(default = "default_log_level")]
    pub level: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessingConfig {
    /// How often processing looks for work when nothing woke it.
    #[serde(default = "default_poll", with = "humantime_serde")]
    pub poll_interval: Duration,
    /// A finished task without an expirationDateTime is archived this long after it
    /// finished (SPEC 8: 30 days).
    #[serde(default = "default_archive_after", with = "humantime_serde")]
    pub archive_after: Duration,
    /// The most tasks of each kind one pass takes on; due reprioritizations are claimed and
    /// decided this many to a transaction.
    #[serde(default = "default_processing_batch")]
    pub batch: u32,
}

/// `[retention]`: how long old rows are kept before a background pass prunes them, in
/// small batches, so the store stays bounded. A period is a duration (`"90d"`, `"12h"`)
/// or `"forever"`, which keeps that kind of row for good.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Events written longer ago than this are pruned, never one a consumer (an MQ
    /// capture point's notifications, a database capture point's statements, a
    /// notification target) has still to read. `None`: `"forever"`.
    #[serde(default = "default_events_kept", with = "period")]
    pub events: Option<Duration>,
    /// Idempotency records (the stored results of commands with a key, e.g. MQ message
    /// ids) older than this are pruned: a message redelivered later is applied again.
    #[serde(default = "default_records_kept", with = "period")]
    pub idempotency: Option<Duration>,
    /// Delivered and failed HTTP notifications last changed longer ago than this are
    /// pruned with their bodies and attempts; pending ones never are.
    #[serde(default = "default_records_kept", with = "period")]
    pub deliveries: Option<Duration>,
    /// The most rows of one kind deleted per transaction (a pass runs as many as it
    /// takes, one after the other).
    #[serde(default = "default_retention_batch")]
    pub batch: u32,
    /// How often a pass runs.
    #[serde(default = "default_retention_interval", with = "humantime_serde")]
    pub interval: Duration,
}

impl RetentionConfig {
    /// The store's view of the periods.
    pub fn policy(&self) -> worklane_store::RetentionPolicy {
        worklane_store::RetentionPolicy {
            events: self.events,
            idempotency: self.idempotency,
            deliveries: self.deliveries,
        }
    }
}

/// A retention period: a duration as `humantime` reads it (`"90d"`, `"36h"`), or
/// `"forever"` (None).
mod period {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// The word that keeps a kind of row for good.
    pub const FOREVER: &str = "forever";

    pub fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_str(FOREVER),
            Some(d) => humantime_serde::serialize(d, s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        if text.trim().eq_ignore_ascii_case(FOREVER) {
            return Ok(None);
        }
        humantime_serde::re::humantime::parse_duration(text.trim())
            .map(Some)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "{text:?} is not a duration (e.g. \"90d\") or \"{FOREVER}\": {e}"
                ))
            })
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tables = |list: &[toml::Table]| list.iter().map(redacted_table).collect::<Vec<_>>();
        f.debug_struct("Config")
            .field("server", &self.server)
            .field("store", &self.store)
            .field("log", &self.log)
            .field("processing", &self.processing)
            .field("retention", &self.retention)
            .field("auth", &self.auth)
            .field("capture_point", &tables(&self.capture_point))
            .field("notification_target", &tables(&self.notification_target))
            .field("calendar", &self.calendar)
            .field("rules", &self.rules)
            .finish()
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &worklane_store::redact_url(&self.url))
            .field("max_batch", &self.max_batch)
            .finish()
    }
}

/// A copy of a capture point's or notification target's raw table that is safe to print.
/// The tables are kept raw here (each kind reads its own), so the kinds' own redacting
/// `Debug` does not apply: values under secret-looking keys (`password`, `signing_secrets`,
/// `api_key`...) become `***`, header tables keep their names but not their values (they
/// carry credentials such as `Authorization`), and every other string goes through
/// [`worklane_store::redact_url`] (URL passwords, secret query parameters, ODBC `PWD=`).
fn redacted_table(t: &toml::Table) -> toml::Table {
    t.iter()
        .map(|(k, v)| (k.clone(), redacted_value(k, v)))
        .collect()
}

fn redacted_value(key: &str, v: &toml::Value) -> toml::Value {
    let hidden = || toml::Value::String("***".to_owned());
    if worklane_store::is_secret_name(key) {
        return hidden();
    }
    match v {
        toml::Value::Table(t) if key.to_ascii_lowercase().contains("header") => {
            toml::Value::Table(t.keys().map(|k| (k.clone(), hidden())).collect())
        }
        toml::Value::String(s) => toml::Value::String(worklane_store::redact_url(s)),
        toml::Value::Array(items) => {
            toml::Value::Array(items.iter().map(|i| redacted_value(key, i)).collect())
        }
        toml::Value::Table(t) => toml::Value::Table(redacted_table(t)),
        other => other.clone(),
    }
}

fn default_listen() -> String {
    "127.0.0.1:8035".into()
}
fn default_max_body() -> usize {
    1024 * 1024
}
fn default_session_idle() -> Duration {
    Duration::from_secs(30 * 60)
}
fn default_session_lifetime() -> Duration {
    Duration::from_secs(12 * 3600)
}
fn default_failed_auth() -> u32 {
    worklane_api::limits::DEFAULT_FAILED_AUTH_PER_MINUTE
}
fn default_signin_attempts() -> u32 {
    5
}
fn default_signin_lockout() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_token_file() -> std::path::PathBuf {
    worklane_api::auth::DEFAULT_TOKEN_FILE.into()
}
fn default_grace() -> Duration {
    Duration::from_secs(30)
}
fn default_lease_ttl() -> Duration {
    Duration::from_secs(15)
}
fn default_store() -> String {
    "sqlite://worklane.db".into()
}
fn default_batch() -> usize {
    256
}
fn default_log_format() -> String {
    "text".into()
}
fn default_log_level() -> String {
    "info".into()
}
fn default_poll() -> Duration {
    Duration::from_secs(1)
}
fn default_processing_batch() -> u32 {
    1024
}
fn default_archive_after() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}
fn default_events_kept() -> Option<Duration> {
    Some(Duration::from_secs(90 * 86_400))
}
fn default_records_kept() -> Option<Duration> {
    Some(Duration::from_secs(7 * 86_400))
}
fn default_retention_batch() -> u32 {
    1000
}
fn default_retention_interval() -> Duration {
    Duration::from_secs(60)
}

macro_rules! default_from_serde {
    ($($t:ty),*) => {$(
        impl Default for $t {
            fn default() -> Self {
                toml::from_str("").expect("every key has a default")
            }
        }
    )*};
}
default_from_serde!(
    ServerConfig,
    StoreConfig,
    LogConfig,
    ProcessingConfig,
    RetentionConfig,
    AuthConfig
);

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Load(#[from] Box<figment::Error>),
    #[error("{key}: {problem}")]
    Invalid { key: String, problem: String },
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

/// `WORKLANE_CAPTURE_POINT__<ID>__<KEY>=value` and `WORKLANE_NOTIFICATION_TARGET__<ID>__<KEY>`
/// set one key of the entry with that id (ids and keys match without regard to case), so
/// secrets such as broker URLs can stay out of the file. Values are read as TOML
/// (`true`, `42`, `["a", "b"]`), else taken as a string.
fn apply_entry_overrides(
    cfg: &mut Config,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, value) in vars {
        let (list, rest) = if let Some(r) = name.strip_prefix("WORKLANE_CAPTURE_POINT__") {
            (&mut cfg.capture_point, r)
        } else if let Some(r) = name.strip_prefix("WORKLANE_NOTIFICATION_TARGET__") {
            (&mut cfg.notification_target, r)
        } else {
            continue;
        };
        let Some((id, key)) = rest.split_once("__") else {
            return Err(invalid(name.clone(), "expected ..__<ID>__<KEY>"));
        };
        let entry = list
            .iter_mut()
            .find(|t| {
                t.get("id")
                    .and_then(|v| v.as_str())
                    .is_some_and(|v| v.eq_ignore_ascii_case(id))
            })
            .ok_or_else(|| invalid(name.clone(), format!("no entry with id {id:?}")))?;
        let key = entry
            .keys()
            .find(|k| k.eq_ignore_ascii_case(key))
            .cloned()
            .unwrap_or_else(|| key.to_lowercase());
        let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"));
        entry.insert(key, parsed.unwrap_or(toml::Value::String(value)));
    }
    Ok(())
}

impl Config {
    /// Defaults, then the file (when given), then `WORKLANE_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            if !f.exists() {
                return Err(invalid(
                    "--config",
                    format!("{} does not exist", f.display()),
                ));
            }
            fig = fig.merge(Toml::file_exact(f));
        }
        // Only `SECTION__KEY` variables: WORKLANE_CONFIG and the like are the CLI's.
        // Only `SECTION__KEY` variables: WORKLANE_CONFIG and the like are the CLI's, and
        // the arrays' entries are overridden by id below.
        fig = fig.merge(Env::prefixed("WORKLANE_").split("__").filter(|k| {
            let k = k.as_str();
            (k.contains('.') || k.contains("__"))
                && !k.starts_with("capture_point")
                && !k.starts_with("notification_target")
        }));
        let mut cfg: Config = fig.extract().map_err(Box::new)?;
        apply_entry_overrides(&mut cfg, std::env::vars())?;
        cfg.resolve()?;
        cfg.file = file.map(Path::to_path_buf);
        Ok(cfg)
    }

    /// A configuration from TOML text alone (no file, no environment), resolved.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| invalid("config", e.message()))?;
        cfg.resolve()?;
        Ok(cfg)
    }

    /// Validates the whole configuration and reads every component's table into its
    /// typed form (`components`), once. Call it again after changing any value.
    pub fn resolve(&mut self) -> Result<(), ConfigError> {
        self.components = self.validate()?;
        self.calendars = self.build_calendars()?;
        self.rules = std::sync::Arc::new(
            self.build_rules()
                .map_err(|problems| invalid("rules", problems.join("; ")))?,
        );
        self.queues = self.build_queues()?;
        Ok(())
    }

    /// Compiles the `[[queue]]` tables, and checks that a process's `queue` names one.
    fn build_queues(
        &self,
    ) -> Result<Option<std::sync::Arc<worklane_distribution::Queues>>, ConfigError> {
        if self.queue.is_empty() {
            return Ok(None);
        }
        let queues = worklane_distribution::Queues::new(&self.queue, self.distribution.clone())
            .map_err(|e| invalid(e.key, e.message))?;
        for p in &self.process {
            if let Some(q) = p.queue.as_deref() {
                if queues.get(q).is_none() {
                    return Err(invalid(
                        format!("process[{}].queue", p.id),
                        format!("no [[queue]] has id {q:?}"),
                    ));
                }
            }
        }
        Ok(Some(std::sync::Arc::new(queues)))
    }

    /// The rules part of the configuration.
    pub fn rules_config(&self) -> worklane_rules::RulesConfig {
        worklane_rules::RulesConfig {
            calendar: self.calendar.clone(),
            department: self.department.clone(),
            process: self.process.clone(),
            contract: self.contract.clone(),
            rule: self.rule.clone(),
        }
    }

    /// Checks the business structure and compiles every rule; each problem names its
    /// key (`process[motor].priority: ...`).
    pub fn build_rules(&self) -> Result<worklane_rules::RuleSet, Vec<String>> {
        worklane_rules::RuleSet::new(&self.rules_config()).map_err(|e| e.problems)
    }

    /// Checks every `[[calendar]]` (its hours, holidays, exceptions, time zone) and that
    /// ids are unique; errors name the calendar and the key.
    fn build_calendars(&self) -> Result<Vec<worklane_domain::BusinessCalendar>, ConfigError> {
        let mut ids = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(self.calendar.len());
        for (i, c) in self.calendar.iter().enumerate() {
            if c.id.is_empty() {
                return Err(invalid(format!("calendar[{i}].id"), "is missing"));
            }
            if !ids.insert(c.id.as_str()) {
                return Err(invalid(
                    format!("calendar[{i}].id"),
                    format!("{:?} is used twice", c.id),
                ));
            }
            let cal = worklane_domain::BusinessCalendar::new(c)
                .map_err(|e| invalid(format!("calendar {:?}: {}", e.calendar, e.key), e.problem))?;
            out.push(cal);
        }
        Ok(out)
    }

    /// Checks what types alone do not: addresses, URLs, ids, each component's options;
    /// returns the components read from their tables.
    fn validate(&self) -> Result<Vec<crate::components::Component>, ConfigError> {
        let mut components = Vec::new();
        let listen = self
            .server
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| invalid("server.listen", format!("{:?}: {e}", self.server.listen)))?;
        if self.auth.mode == worklane_api::auth::AuthMode::Off && !listen.ip().is_loopback() {
            return Err(invalid(
                "auth.mode",
                format!(
                    "\"off\" is allowed only on a loopback listener, and server.listen is {listen}"
                ),
            ));
        }
        self.server.tls()?;
        if self.auth.signin_attempts == 0 {
            return Err(invalid("auth.signin_attempts", "must be at least 1"));
        }
        if self.auth.session_idle.is_zero() || self.auth.session_lifetime.is_zero() {
            return Err(invalid(
                "auth.session_idle",
                "session_idle and session_lifetime must be longer than 0s",
            ));
        }
        let u = &self.store.url;
        if !(u.starts_with("sqlite:")
            || u.starts_with("postgres://")
            || u.starts_with("postgresql://"))
        {
            return Err(invalid(
                "store.url",
                format!(
                    "{:?} is not sqlite://FILE or postgres://...",
                    worklane_store::redact_url(u)
                ),
            ));
        }
        if self.server.lease_ttl < Duration::from_secs(3) {
            return Err(invalid("server.lease_ttl", "must be at least 3s"));
        }
        if self.store.max_batch == 0 {
            return Err(invalid("store.max_batch", "must be at least 1"));
        }
        let r = &self.retention;
        for (key, period) in [
            ("retention.events", r.events),
            ("retention.idempotency", r.idempotency),
            ("retention.deliveries", r.deliveries),
        ] {
            if period == Some(Duration::ZERO) {
                return Err(invalid(
                    key,
                    "must be longer than 0 (\"forever\" keeps everything)",
                ));
            }
        }
        if r.batch == 0 {
            return Err(invalid("retention.batch", "must be at least 1"));
        }
        if !(1..=20_000).contains(&self.processing.batch) {
            return Err(invalid(
                "processing.batch",
                format!("{} is not between 1 and 20000", self.processing.batch),
            ));
        }
        if r.interval < Duration::from_secs(1) {
            return Err(invalid("retention.interval", "must be at least 1s"));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(invalid(
                "log.format",
                format!("{:?} is not text or json", self.log.format),
            ));
        }
        let mut ids = std::collections::HashSet::new();
        for (i, cp) in self.capture_point.iter().enumerate() {
            let key = format!("capture_point[{i}]");
            let id = cp
                .get("id")
                .and_then(|v| v.as_str())
                .ok_or_else(|| invalid(format!("{key}.id"), "is missing"))?;
            if id.is_empty() || id.chars().count() > 16 {
                return Err(invalid(format!("{key}.id"), "must be 1 to 16 characters"));
            }
            if !ids.insert(id.to_owned()) {
                return Err(invalid(
                    format!("{key}.id"),
                    format!("{id:?} is used twice"),
                ));
            }
            components.push(
                crate::components::capture_point(cp)
                    .map_err(|p| invalid(format!("capture_point {id:?}"), p))?,
            );
        }
        let mut tids = std::collections::HashSet::new();
        for (i, t) in self.notification_target.iter().enumerate() {
            let key = format!("notification_target[{i}]");
            let id = t
                .get("id")
                .and_then(|v| v.as_str())
                .ok_or_else(|| invalid(format!("{key}.id"), "is missing"))?;
            if !tids.insert(id.to_owned()) {
                return Err(invalid(
                    format!("{key}.id"),
                    format!("{id:?} is used twice"),
                ));
            }
            components.push(
                crate::components::target(t)
                    .map_err(|p| invalid(format!("notification_target {id:?}"), p))?,
            );
        }
        Ok(components)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_entries() -> Config {
        toml::from_str(
            r#"
            [[capture_point]]
            id = "MQ1"
            kind = "mq"
            url = "amqp://file"
            [[notification_target]]
            id = "crm"
            uri = "http://x"
            "#,
        )
        .unwrap()
    }

    #[test]
    fn authentication_off_only_on_a_loopback_listener() {
        let off = |listen: &str| {
            Config::from_toml(&format!(
                "[server]\nlisten = \"{listen}\"\n[auth]\nmode = \"off\"\n"
            ))
        };
        assert!(off("127.0.0.1:8035").is_ok());
        assert!(off("[::1]:8035").is_ok());
        let e = off("0.0.0.0:8035").unwrap_err().to_string();
        assert!(e.starts_with("auth.mode:") && e.contains("loopback"), "{e}");
        let e = Config::from_toml("[auth]\nmode = \"maybe\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("maybe"), "{e}");
        let on = Config::from_toml("[server]\nlisten = \"0.0.0.0:8035\"\n").unwrap();
        assert_eq!(
            on.auth.mode,
            worklane_api::auth::AuthMode::On,
            "on by default"
        );
        assert_eq!(
            on.auth.bootstrap_token_file,
            std::path::Path::new("worklane-admin.token")
        );
    }

    #[test]
    fn tls_takes_a_certificate_and_its_key_and_names_a_bad_file() {
        let e = Config::from_toml("[server]\ntls_cert = \"c.pem\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("server.tls_cert:") && e.contains("together"),
            "{e}"
        );
        let dir = std::env::temp_dir().join(format!("wl-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join("cert.pem");
        std::fs::write(&cert, "not a certificate").unwrap();
        let text = format!(
            "[server]\ntls_cert = {:?}\ntls_key = {:?}\n",
            cert.display().to_string(),
            dir.join("missing.pem").display().to_string()
        );
        let e = Config::from_toml(&text).unwrap_err().to_string();
        assert!(
            e.contains("cert.pem") && e.contains("holds no certificate"),
            "{e}"
        );
    }

    #[test]
    fn entry_overrides_find_the_entry_by_id_and_key_by_name() {
        let mut cfg = with_entries();
        let vars = [
            ("WORKLANE_CAPTURE_POINT__mq1__URL", "amqp://env"),
            ("WORKLANE_CAPTURE_POINT__MQ1__CHECK_IF_CAPTURED", "true"),
            (
                "WORKLANE_NOTIFICATION_TARGET__CRM__HTTP_RETRY_MAX_ATTEMPTS",
                "3",
            ),
            ("WORKLANE_SERVER__LISTEN", "ignored here"),
        ];
        apply_entry_overrides(
            &mut cfg,
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .unwrap();
        assert_eq!(cfg.capture_point[0]["url"].as_str(), Some("amqp://env"));
        assert_eq!(
            cfg.capture_point[0]["check_if_captured"].as_bool(),
            Some(true)
        );
        assert_eq!(
            cfg.notification_target[0]["http_retry_max_attempts"].as_integer(),
            Some(3)
        );
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let cfg: Config = toml::from_str(
            r#"
            [store]
            url = "postgres://worklane:S1-store@db.example/worklane"

            [[capture_point]]
            id = "MQ1"
            kind = "mq"
            url = "amqps://mq:S2-broker@mq.example/%2f"

            [[capture_point]]
            id = "DB1"
            kind = "database"
            url = "odbc:DSN=crm;UID=crm;PWD={S3-odbc;x}"
            password = "S4-plain"
            captureQuerySql = "select 1"
            defaults = { data = { Source = "crm", api_token = "S5-nested" } }

            [[notification_target]]
            id = "crm"
            uri = "https://hook:S6-uri@crm.example/in?tenant=acme&api_key=S7-query"
            http_proxy = "http://proxy:S8-proxy@proxy.example:3128"
            signing_secrets = ["whsec_S9-sign", "whsec_S10-sign"]
            http_custom_headers = { Authorization = "Bearer S11-header", X-Tenant = "S12-header" }
            "#,
        )
        .unwrap();
        for text in [format!("{cfg:?}"), format!("{cfg:#?}")] {
            for n in 1..=12 {
                assert!(
                    !text.contains(&format!("S{n}-")),
                    "secret S{n} shown: {text}"
                );
            }
            // What is not secret stays, so the output still helps.
            for kept in [
                "db.example/worklane",
                "mq.example",
                "DSN=crm",
                "UID=crm",
                "tenant=acme",
                "X-Tenant",
                "Authorization",
                "select 1",
                "Source",
            ] {
                assert!(text.contains(kept), "{kept} missing: {text}");
            }
        }
    }

    #[test]
    fn retention_periods_read_durations_and_forever() {
        let d = Config::from_toml("").unwrap().retention;
        assert_eq!(d.events, Some(Duration::from_secs(90 * 86_400)));
        assert_eq!(d.idempotency, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(d.deliveries, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!((d.batch, d.interval), (1000, Duration::from_secs(60)));

        let c = Config::from_toml(
            r#"
            [retention]
            events = "forever"
            idempotency = "36h"
            deliveries = "2d"
            batch = 50
            interval = "5m"
            "#,
        )
        .unwrap()
        .retention;
        assert_eq!(c.events, None);
        assert_eq!(c.idempotency, Some(Duration::from_secs(36 * 3600)));
        assert_eq!(c.policy().deliveries, Some(Duration::from_secs(2 * 86_400)));
        assert_eq!((c.batch, c.interval), (50, Duration::from_secs(300)));

        // The defaults survive the round trip figment makes through `Serialized`.
        let text = toml::to_string(&c).unwrap();
        let back: RetentionConfig = toml::from_str(&text).unwrap();
        assert_eq!(back.events, None);
        assert_eq!(back.idempotency, c.idempotency);

        for (bad, key) in [
            ("events = \"0s\"", "retention.events"),
            // From TOML text alone the parser's message names the value; `Config::load`
            // (figment) names the key too.
            ("deliveries = \"soon\"", "\"soon\" is not a duration"),
            ("batch = 0", "retention.batch"),
            ("interval = \"10ms\"", "retention.interval"),
            ("[processing]\nbatch = 0", "processing.batch"),
            ("[processing]\nbatch = 50000", "processing.batch"),
        ] {
            let e = Config::from_toml(&format!("[retention]\n{bad}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{bad}: {e}");
        }
    }

    #[test]
    fn retention_keys_are_overridden_by_the_environment() {
        // No other test of this binary loads the environment (`Config::load`).
        let vars = [
            ("WORKLANE_RETENTION__EVENTS", "forever"),
            ("WORKLANE_RETENTION__DELIVERIES", "3d"),
            ("WORKLANE_RETENTION__BATCH", "10"),
        ];
        for (k, v) in vars {
            std::env::set_var(k, v);
        }
        let loaded = Config::load(None);
        for (k, _) in vars {
            std::env::remove_var(k);
        }
        let c = loaded.unwrap().retention;
        assert_eq!(c.events, None);
        assert_eq!(c.deliveries, Some(Duration::from_secs(3 * 86_400)));
        assert_eq!(c.batch, 10);
    }

    #[test]
    fn entry_override_for_an_unknown_id_names_the_variable() {
        let mut cfg = with_entries();
        let vars = [(
            "WORKLANE_CAPTURE_POINT__MQ9__URL".to_owned(),
            "x".to_owned(),
        )];
        let e = apply_entry_overrides(&mut cfg, vars.into_iter()).unwrap_err();
        assert!(
            e.to_string().contains("WORKLANE_CAPTURE_POINT__MQ9__URL"),
            "{e}"
        );
    }

    #[test]
    fn calendars_are_checked_at_load_and_errors_name_the_calendar_and_key() {
        let good = Config::from_toml(
            r#"
            [[calendar]]
            id = "uk"
            timezone = "Europe/London"
            hours = { mon = "09:00-17:30", fri = "09:00-12:00,13:00-17:00" }
            holidays = ["2026-12-25"]
            exceptions = { "2026-12-24" = "09:00-12:00" }
            "#,
        )
        .unwrap();
        assert_eq!(good.calendars.len(), 1);
        assert_eq!(good.calendars[0].id(), "uk");

        let bad = Config::from_toml(
            r#"
            [[calendar]]
            id = "uk"
            timezone = "Europe/Nowhere"
            hours = { mon = "09:00-17:30" }
            "#,
        )
        .unwrap_err()
        .to_string();
        assert!(bad.starts_with("calendar \"uk\": timezone:"), "{bad}");

        let twice = Config::from_toml(
            r#"
            [[calendar]]
            id = "uk"
            timezone = "UTC"
            hours = { mon = "09:00-17:00" }
            [[calendar]]
            id = "uk"
            timezone = "UTC"
            hours = { mon = "09:00-17:00" }
            "#,
        )
        .unwrap_err()
        .to_string();
        assert!(twice.contains("calendar[1].id"), "{twice}");
    }
}

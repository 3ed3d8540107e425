//! The one place that knows every capture point and notifier kind: reads their
//! configuration tables once into typed [`Component`]s, and starts them under the
//! supervisor.

use serde::de::DeserializeOwned;
use std::time::Duration;
use worklane_capture_db::DatabaseCaptureConfig;
use worklane_capture_mq::MqConfig;
use worklane_engine::{Engine, Lease, Stage, Supervisor};
use worklane_notify_http::NotificationTargetConfig;

/// The `kind`s a `[[capture_point]]` may have.
pub const CAPTURE_POINT_KINDS: &[&str] = &["mq", "database"];

/// A configured component, by kind: a `[[capture_point]]` (tagged by its `kind` key) or a
/// `[[notification_target]]`.
#[derive(Debug, Clone)]
pub enum Component {
    /// `kind = "mq"`.
    Mq(MqConfig),
    /// `kind = "database"`.
    Database(DatabaseCaptureConfig),
    /// A `[[notification_target]]`.
    NotificationTarget(NotificationTargetConfig),
}

impl Component {
    /// The name the supervisor, logs, `/healthz` and `/metrics` know it by, e.g. `mq:MQ1`,
    /// `database:DB1`, `notify:crm`.
    pub fn name(&self) -> String {
        match self {
            Self::Mq(c) => format!("mq:{}", c.id),
            Self::Database(c) => format!("database:{}", c.id),
            Self::NotificationTarget(c) => format!("notify:{}", c.id),
        }
    }
}

fn parse<T: DeserializeOwned>(t: &toml::Table) -> Result<T, String> {
    let mut t = t.clone();
    t.remove("kind");
    toml::Value::Table(t)
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_owned())
}

/// Reads and validates one `[[capture_point]]` table by its `kind`.
pub fn capture_point(t: &toml::Table) -> Result<Component, String> {
    match t.get("kind").and_then(|v| v.as_str()) {
        Some("mq") => {
            let c: MqConfig = parse(t)?;
            c.validate()?;
            Ok(Component::Mq(c))
        }
        Some("database") => {
            let c: DatabaseCaptureConfig = parse(t)?;
            c.validate()?;
            Ok(Component::Database(c))
        }
        Some(k) => Err(format!("kind: {k:?} is not one of {CAPTURE_POINT_KINDS:?}")),
        None => Err("kind: is missing (\"mq\" or \"database\")".to_owned()),
    }
}

/// Reads and validates one `[[notification_target]]` table.
pub fn target(t: &toml::Table) -> Result<Component, String> {
    let c: NotificationTargetConfig = parse(t)?;
    c.validate()?;
    Ok(Component::NotificationTarget(c))
}

/// Starts a component under the supervisor: capture points are inputs (stopped first),
/// notification targets outputs (stopped after the inputs have drained). MQ capture
/// points are competing consumers and run on every node; a database capture point's
/// poller and a notification target's sender must run once in a cluster, so they hold a
/// lease named like the component (`node` is this node's name, `ttl` the lease's time to
/// live).
pub fn spawn(
    sup: &mut Supervisor,
    component: Component,
    engine: &Engine,
    node: &str,
    ttl: Duration,
) {
    let name = component.name();
    let lease = Lease {
        leases: engine.leases().clone(),
        clock: engine.clock().clone(),
        holder: node.to_owned(),
        ttl,
    };
    let engine = engine.clone();
    match component {
        Component::Mq(c) => sup.spawn(name, Stage::Input, move |token| {
            worklane_capture_mq::run(engine.clone(), c.clone(), token)
        }),
        Component::Database(c) => sup.spawn_leased(name, Stage::Input, lease, move |token| {
            worklane_capture_db::run(engine.clone(), c.clone(), token)
        }),
        Component::NotificationTarget(c) => {
            sup.spawn_leased(name, Stage::Output, lease, move |token| {
                worklane_notify_http::run(engine.clone(), c.clone(), token)
            })
        }
    }
}

/// API routes the components add beside the core API (under `/api/v1`).
pub fn api_extra(components: &[Component], engine: &Engine) -> axum::Router {
    let targets: Vec<NotificationTargetConfig> = components
        .iter()
        .filter_map(|c| match c {
            Component::NotificationTarget(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    axum::Router::new().nest(
        "/api/v1",
        worklane_notify_http::api::router(engine.clone(), &targets),
    )
}

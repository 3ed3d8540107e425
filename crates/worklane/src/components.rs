//! The one place that knows every capture point and notifier kind: validates their
//! configuration tables and starts them.

use anyhow::Context;
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use worklane_capture_db::DatabaseCaptureConfig;
use worklane_capture_mq::MqConfig;
use worklane_engine::Engine;
use worklane_notify_http::NotificationTargetConfig;

/// The `kind`s a `[[capture_point]]` may have.
pub const CAPTURE_POINT_KINDS: &[&str] = &["mq", "database"];

/// A capture point's configuration, by kind.
#[derive(Debug, Clone)]
pub enum CapturePoint {
    Mq(MqConfig),
    Database(DatabaseCaptureConfig),
}

fn parse<T: DeserializeOwned>(t: &toml::Table) -> Result<T, String> {
    let mut t = t.clone();
    t.remove("kind");
    toml::Value::Table(t)
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_owned())
}

/// Reads one `[[capture_point]]` table by its `kind`.
pub fn capture_point(t: &toml::Table) -> Result<CapturePoint, String> {
    match t.get("kind").and_then(|v| v.as_str()) {
        Some("mq") => {
            let c: MqConfig = parse(t)?;
            c.validate()?;
            Ok(CapturePoint::Mq(c))
        }
        Some("database") => {
            let c: DatabaseCaptureConfig = parse(t)?;
            c.validate()?;
            Ok(CapturePoint::Database(c))
        }
        Some(k) => Err(format!("kind: {k:?} is not one of {CAPTURE_POINT_KINDS:?}")),
        None => Err("kind: is missing (\"mq\" or \"database\")".to_owned()),
    }
}

/// Reads one `[[notification_target]]` table.
pub fn target(t: &toml::Table) -> Result<NotificationTargetConfig, String> {
    let c: NotificationTargetConfig = parse(t)?;
    c.validate()?;
    Ok(c)
}

/// Checks one `[[capture_point]]` table.
pub fn validate_capture_point(t: &toml::Table) -> Result<(), String> {
    capture_point(t).map(|_| ())
}

/// Checks one `[[notification_target]]` table.
pub fn validate_target(t: &toml::Table) -> Result<(), String> {
    target(t).map(|_| ())
}

/// Starts every configured capture point (stopped by `inputs`) and notification target
/// (stopped by `outputs`, after the inputs have drained).
pub fn spawn_all(
    cfg: &crate::config::Config,
    engine: &Engine,
    inputs: &CancellationToken,
    outputs: &CancellationToken,
    input_set: &mut JoinSet<anyhow::Result<()>>,
    output_set: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    for t in &cfg.capture_point {
        let cp = capture_point(t).map_err(anyhow::Error::msg)?;
        let (engine, token) = (engine.clone(), inputs.clone());
        match cp {
            CapturePoint::Mq(c) => {
                let id = c.id.clone();
                input_set.spawn(async move {
                    worklane_capture_mq::run(engine, c, token)
                        .await
                        .with_context(|| format!("MQ capture point {id}"))
                });
            }
            CapturePoint::Database(c) => {
                let id = c.id.clone();
                input_set.spawn(async move {
                    worklane_capture_db::run(engine, c, token)
                        .await
                        .with_context(|| format!("database capture point {id}"))
                });
            }
        }
    }
    for t in &cfg.notification_target {
        let c = target(t).map_err(anyhow::Error::msg)?;
        let (engine, token, id) = (engine.clone(), outputs.clone(), c.id.clone());
        output_set.spawn(async move {
            worklane_notify_http::run(engine, c, token)
                .await
                .with_context(|| format!("notification target {id}"))
        });
    }
    Ok(())
}

/// API routes the components add beside the core API (under `/api/v1`).
pub fn api_extra(cfg: &crate::config::Config, engine: &Engine) -> anyhow::Result<axum::Router> {
    let targets = cfg
        .notification_target
        .iter()
        .map(target)
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    Ok(axum::Router::new().nest(
        "/api/v1",
        worklane_notify_http::api::router(engine.clone(), &targets),
    ))
}

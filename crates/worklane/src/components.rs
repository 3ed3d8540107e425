//! The one place that knows every capture point and notifier kind: validates their
//! configuration tables and starts them.

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use worklane_engine::Engine;

/// The `kind`s a `[[capture_point]]` may have in this build.
pub const CAPTURE_POINT_KINDS: &[&str] = &[];

fn kind(t: &toml::Table) -> Result<&str, String> {
    t.get("kind")
        .and_then(|v| v.as_str())
        .ok_or_else(|| "kind is missing".to_owned())
}

/// Checks one `[[capture_point]]` table.
pub fn validate_capture_point(t: &toml::Table) -> Result<(), String> {
    let k = kind(t)?;
    Err(format!("kind {k:?} is not one of {CAPTURE_POINT_KINDS:?}"))
}

/// Checks one `[[notification_target]]` table.
pub fn validate_target(_t: &toml::Table) -> Result<(), String> {
    Err("notification targets are not available in this build".to_owned())
}

/// Starts every configured capture point (stopped by `inputs`) and notifier (stopped by
/// `outputs`, after the inputs have drained).
pub fn spawn_all(
    _cfg: &crate::config::Config,
    _engine: &Engine,
    _inputs: &CancellationToken,
    _outputs: &CancellationToken,
    _input_set: &mut JoinSet<anyhow::Result<()>>,
    _output_set: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    Ok(())
}

/// API routes the components add beside the core API.
pub fn api_extra(_engine: &Engine) -> axum::Router {
    axum::Router::new()
}

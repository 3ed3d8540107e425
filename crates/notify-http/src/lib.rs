//! Worklane's HTTP notifications (SPEC section 6, seeds 002 and 004): every task event a
//! target wants, POSTed as JSON, at least once, never lost.
//!
//! Data flows one way: event log → reader (bodies rendered, GUIDs derived from the
//! events) → dispatcher (per-task order; results recorded with the log position in
//! batched transactions; retries stored as pending) → sender (bounded concurrency, batched
//! claims of stored retries) → the target. See [`notifier`]. [`api::router`] and [`cli`] list deliveries and their attempts, resend one,
//! and replay a target from an event sequence. See docs/notifications.md.

pub mod api;
pub mod bench;
pub mod cli;
pub mod config;
mod dispatch;
pub mod format;
pub mod http;
pub mod metrics;
pub mod notifier;
mod reader;
pub mod retry;
mod sender;
pub mod signing;

pub use config::{EventSection, Filter, NotificationTargetConfig, StartAt};
pub use format::Format;
pub use notifier::Notifier;

use tokio_util::sync::CancellationToken;
use worklane_engine::Engine;

/// Runs one notification target until `cancel`, then drains (requests in flight finish and
/// are recorded) and returns.
pub async fn run(
    engine: Engine,
    cfg: NotificationTargetConfig,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let id = cfg.id.clone();
    let notifier = Notifier::new(engine, cfg).await?;
    tracing::info!(notification_target = %id, "notification target started");
    notifier.run(cancel).await
}

//! Worklane's HTTP notifications (SPEC section 6, seeds 002 and 004): every task event a
//! target wants, POSTed as JSON, at least once, never lost.
//!
//! Data flows one way: event log → [`notifier::Enqueuer`] (pending deliveries in the
//! store, body and GUID fixed) → sender (batched claims, bounded concurrency, retries) →
//! the target. [`api::router`] and [`cli`] list deliveries and their attempts, resend one,
//! and replay a target from an event sequence. See docs/notifications.md.

pub mod api;
pub mod bench;
pub mod cli;
pub mod config;
pub mod format;
pub mod http;
pub mod metrics;
pub mod notifier;
pub mod retry;
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

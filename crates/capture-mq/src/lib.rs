//! The MQ Capture Point (seed 001, SPEC section 4): source systems put `GTLMessages` XML
//! requests on an input queue and read answers and notifications from an output queue.
//!
//! Data flows one way: [`transport`] delivers a message → [`transform`] turns a source
//! system's own format into GTLMessages (when configured) → [`codec`] parses it →
//! [`semantics`] turns it into one engine command → the answer goes back through the
//! transport (through the outbound transformation, when configured), and the message is
//! acknowledged only once both are durable. Changes made
//! elsewhere reach the output queue through [`notifications`], an event-log consumer.

pub mod bench;
pub mod cli;
pub mod codec;
pub mod config;
pub mod notifications;
pub mod semantics;
mod service;
pub mod transform;
pub mod transport;

pub use config::{MqConfig, Settings};
pub use service::run_with;

use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use worklane_engine::Engine;

/// Runs the capture point `cfg` describes until `cancel`, then drains: messages in
/// flight are finished (or left unacknowledged for redelivery) and the notifications
/// consumer stops at a saved position.
pub async fn run(engine: Engine, cfg: MqConfig, cancel: CancellationToken) -> anyhow::Result<()> {
    let settings = Arc::new(cfg.resolve().map_err(anyhow::Error::msg)?);
    let name = format!(
        "worklane capture point {} ({})",
        settings.id, settings.input_queue
    );
    let transport = settings.transport.open(&cfg.url, &name);
    run_with(engine, settings, transport, cancel).await
}

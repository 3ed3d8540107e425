//! The Database Capture Point (seed 000, SPEC section 5): polls a source database with
//! operator-written SQL, turns rows into tasks, applies update requests from the source,
//! and writes every status change back with more SQL.
//!
//! Data flows one way: source row → [`worklane_engine::Command`] → store transaction →
//! event log → notification statement. The parts:
//! - [`params`]: the `?'Name'` syntax, rewritten to each driver's placeholders;
//! - [`source`]: the source database behind one trait (PostgreSQL, MySQL/MariaDB, SQLite,
//!   ODBC);
//! - [`attributes`]: columns ↔ task attributes, parameter values;
//! - `capture`, `source_updates`, [`notify`], `checks`: the statements' three families
//!   and the start-up checks, all methods of [`CapturePoint`].

pub mod attributes;
pub mod bench;
mod capture;
mod checks;
pub mod cli;
pub mod config;
pub mod notify;
pub mod params;
mod point;
pub mod source;
mod source_updates;
mod unmarked;
pub mod value;

pub use capture::{CapturePipeline, CapturedBatch};
pub use checks::CheckError;
pub use config::DatabaseCaptureConfig;
pub use notify::{consumer_name, Notifier};
pub use point::{error_description, error_number, CapturePoint, PointError, Statement};

use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use worklane_engine::{Backoff, Engine};

/// Full capture rounds after which notifications start even if the source still has a
/// backlog (normally they start after the first round that drains it).
const CATCH_UP_ROUNDS: u32 = 10;

/// The first wait between attempts while the source (or the store) is unavailable.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait between attempts while the source (or the store) is unavailable.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Runs the capture point until `cancel`: start-up checks (waiting for the source when it
/// is down; failing on a wrong statement), then polling (capture and source updates) and
/// the notification statements side by side. On `cancel` the step in progress finishes,
/// then it returns.
pub async fn run(
    engine: Engine,
    cfg: DatabaseCaptureConfig,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let id = cfg.id.clone();
    let point = Arc::new(CapturePoint::new(engine.clone(), cfg).await?);
    tracing::info!(capture_point = %id, source = %worklane_store::redact_url(&point.config().url), "database capture point starting");
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    loop {
        match point.check().await {
            Ok(()) => break,
            Err(CheckError::Statement(m)) => anyhow::bail!(m),
            Err(CheckError::Unavailable(m)) => {
                tracing::warn!(capture_point = %id, error = %m, retry_in = ?backoff.peek(), "source unavailable for the start-up checks");
                if !backoff.wait(&cancel).await {
                    return Ok(());
                }
            }
        }
    }
    let mut notifier = Notifier::new(point.clone());
    let consumer = notifier.consumer(engine);
    let notify_cancel = cancel.clone();
    // Notifications start once capture has caught up: after a crash, rows whose tasks
    // were created but not marked are marked (capturedUpdateSql) before any of their
    // tasks' notification statements run.
    let (caught_up, mut ready) = tokio::sync::watch::channel(false);
    let notify = tokio::spawn(async move {
        tokio::select! {
            _ = notify_cancel.cancelled() => return,
            _ = ready.wait_for(|r| *r) => {}
        }
        consumer.run(&mut notifier, notify_cancel).await
    });
    poll_loop(&point, &cancel, &caught_up).await;
    notify.await?;
    point.source().close().await;
    tracing::info!(capture_point = %id, "database capture point stopped");
    Ok(())
}

/// Polls until `cancel`: a capture round (see [`CapturePipeline`]) and a source-update
/// step per round; at once again when either read a full batch, else after marking what
/// is pending and waiting `poll_interval`; with growing backoff while the source or the
/// store is unavailable. On `cancel` the pending batch is marked before returning.
async fn poll_loop(
    point: &CapturePoint,
    cancel: &CancellationToken,
    caught_up: &tokio::sync::watch::Sender<bool>,
) {
    let cfg = point.config();
    let mut pipeline = CapturePipeline::new();
    let mut rounds = 0u32;
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    while !cancel.is_cancelled() {
        let round = async {
            let captured = pipeline.step(point).await?;
            let updated = point.source_update_step().await?;
            rounds += 1;
            if captured < cfg.batch_size {
                pipeline.flush(point).await?;
                caught_up.send_replace(true);
            } else if rounds >= CATCH_UP_ROUNDS {
                // A source that never runs dry must not hold notifications back forever.
                caught_up.send_replace(true);
            }
            Ok::<_, PointError>(captured.max(updated))
        };
        let wait = match round.await {
            Ok(n) => {
                backoff.reset();
                if n >= cfg.batch_size {
                    continue;
                }
                cfg.poll_interval
            }
            Err(e) => {
                let wait = backoff.next_delay();
                tracing::warn!(capture_point = %cfg.id, error = %e, retry_in = ?wait, "poll failed");
                wait
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    if let Err(e) = pipeline.flush(point).await {
        tracing::warn!(capture_point = %cfg.id, error = %e, "could not mark the last batch; its rows are captured again on restart");
    }
}

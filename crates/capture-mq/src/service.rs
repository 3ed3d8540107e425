//! The running capture point: consumes the input queue with a bounded number of messages
//! in flight, and acknowledges each only after its effect is committed and its answer is
//! confirmed by the broker. Reconnects with backoff; drains on shutdown.

use crate::config::Settings;
use crate::notifications;
use crate::semantics::Semantics;
use crate::transport::{Incoming, Transport, TransportError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use worklane_engine::{Backoff, Engine};

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often an answer is published again before the message is left for redelivery.
const PUBLISH_ATTEMPTS: u32 = 3;

/// Runs the capture point over `transport` until `cancel`, then drains.
pub async fn run_with(
    engine: Engine,
    settings: Arc<Settings>,
    transport: Arc<dyn Transport>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let notify = tokio::spawn(notifications::run(
        engine.clone(),
        settings.clone(),
        transport.clone(),
        cancel.child_token(),
    ));
    let semantics = Semantics::new(engine, settings.clone());
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    while !cancel.is_cancelled() {
        match serve(&semantics, &settings, &transport, &cancel, &mut backoff).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(capture_point = %settings.id, error = %e, retry_in = ?backoff.peek(), "MQ input interrupted; reconnecting");
                if !backoff.wait(&cancel).await {
                    break;
                }
            }
        }
    }
    notify.await?;
    tracing::info!(capture_point = %settings.id, "MQ capture point stopped");
    Ok(())
}

/// One connection's worth of consuming. `Ok` once cancelled and drained.
async fn serve(
    semantics: &Semantics,
    settings: &Arc<Settings>,
    transport: &Arc<dyn Transport>,
    cancel: &CancellationToken,
    backoff: &mut Backoff,
) -> Result<(), TransportError> {
    let s = settings;
    transport
        .declare(&[&s.input_queue, &s.output_queue, &s.error_queue])
        .await?;
    let mut sub = transport.subscribe(&s.input_queue, s.prefetch).await?;
    tracing::info!(capture_point = %s.id, queue = %s.input_queue, "MQ capture point consuming");
    backoff.reset();
    let slots = Arc::new(Semaphore::new(s.max_in_flight));
    let mut in_flight = JoinSet::new();
    let result = loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break Ok(());
        };
        let next = tokio::select! {
            _ = cancel.cancelled() => break Ok(()),
            n = sub.next() => n,
        };
        let msg = match next {
            Some(Ok(m)) => m,
            Some(Err(e)) => break Err(e),
            None => break Err(TransportError::Closed(s.input_queue.clone())),
        };
        let (semantics, transport, cancel) = (semantics.clone(), transport.clone(), cancel.clone());
        in_flight.spawn(async move {
            process(&semantics, &*transport, msg, &cancel).await;
            drop(slot);
        });
        while in_flight.try_join_next().is_some() {}
    };
    // Drain: every message taken finishes (answered and acknowledged) or is left
    // unacknowledged for redelivery.
    while in_flight.join_next().await.is_some() {}
    sub.close().await;
    result
}

/// Handles one message to the end: command, answer confirmed, acknowledgement.
async fn process(
    semantics: &Semantics,
    transport: &dyn Transport,
    msg: Incoming,
    cancel: &CancellationToken,
) {
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    let out = loop {
        match semantics.respond(&msg).await {
            Ok(out) => break out,
            Err(e) => {
                // The store failed: nothing was written. Try again; on shutdown the
                // message stays unacknowledged and comes back.
                tracing::warn!(error = %e, message_id = ?msg.message_id, retry_in = ?backoff.peek(), "command failed; retrying");
                if !backoff.wait(cancel).await {
                    return;
                }
            }
        }
    };
    let mut backoff = Backoff::new(FIRST_BACKOFF * 2, MAX_BACKOFF);
    let mut attempt = 1;
    while let Err(e) = transport.publish(out.clone()).await {
        if attempt >= PUBLISH_ATTEMPTS || !backoff.wait(cancel).await {
            // Unacknowledged, it is redelivered and answered again from the stored result.
            tracing::warn!(error = %e, message_id = ?msg.message_id, "answer not published; leaving the message for redelivery");
            return;
        }
        attempt += 1;
    }
    if let Err(e) = msg.acker.ack().await {
        tracing::warn!(error = %e, message_id = ?msg.message_id, "acknowledgement failed; the message will be redelivered and answered again");
    }
}

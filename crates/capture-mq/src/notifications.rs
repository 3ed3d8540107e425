//! Notifications: changes to this capture point's tasks that it did not request itself
//! (an agent's assignment or completion, a supervisor's hold, distribution...) go to the
//! output queue. They are read from the event log at a durable position, so a restart
//! neither loses them nor repeats them beyond at-least-once.

use crate::codec::{Notice, Outbound};
use crate::config::Settings;
use crate::transport::{Outgoing, Transport};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use worklane_domain::Event;
use worklane_engine::{Backoff, Consumer, Engine, EventHandler};

/// The event-log consumer name of a capture point's notifications.
pub fn consumer_name(capture_point_id: &str) -> String {
    format!("mq:{capture_point_id}")
}

/// Sends the notifications for a batch of events.
#[derive(Debug)]
pub struct Notifier {
    settings: Arc<Settings>,
    transport: Arc<dyn Transport>,
}

/// The origin of the business rules' changes (reprioritization).
const RULES_ORIGIN: &str = "rules";

impl Notifier {
    /// A notifier publishing through `transport` for the capture point `settings` describe.
    pub fn new(settings: Arc<Settings>, transport: Arc<dyn Transport>) -> Self {
        Self {
            settings,
            transport,
        }
    }

    /// The message for `event`, if it is one this capture point notifies about.
    pub fn message_for(&self, event: &Event) -> Option<Outgoing> {
        let s = &self.settings;
        if event.capture_point_id != s.id || event.origin.as_deref() == Some(s.id.as_str()) {
            return None;
        }
        // Reprioritizations by the business rules stay inside Worklane unless asked for.
        if event.event_type == worklane_domain::EventType::TaskUpdated
            && event.origin.as_deref() == Some(RULES_ORIGIN)
            && !s.announce_rule_updates
        {
            return None;
        }
        let notice = Notice::from_event(event)?;
        if !s.sends(notice.kind.name()) {
            return None;
        }
        let (body, headers) = s.outbound_body(&Outbound::Notice(notice));
        Some(Outgoing {
            queue: s.output_queue.clone(),
            body,
            // A change another channel made on request carries that request's id.
            correlation_id: event.request_id.clone(),
            // Stable across redeliveries, so a receiver can drop repeats.
            message_id: Some(format!("{}:event:{}", s.id, event.seq)),
            headers,
        })
    }
}

#[async_trait]
impl EventHandler for Notifier {
    async fn handle(&mut self, events: &[Event]) -> anyhow::Result<()> {
        let messages: Vec<Outgoing> = events.iter().filter_map(|e| self.message_for(e)).collect();
        // Confirmed by the broker before the position moves past these events.
        self.transport.publish(messages).await?;
        Ok(())
    }
}

/// The most events read at once.
const BATCH: u32 = 1000;
/// After a batch, how long events may gather before the next read: one read and one saved
/// position then cover many events, instead of a store round trip (and, on SQLite, a
/// durable write of the position) per commit. The notification latency it adds is small
/// next to the broker's.
const PACE: Duration = Duration::from_millis(50);
/// How often to look for events when no commit woke the consumer (other writers).
const POLL: Duration = Duration::from_secs(1);

/// Runs the notifications of one capture point until `cancel`. Failures are logged and
/// retried with backoff; the saved position never skips an event.
pub async fn run(
    engine: Engine,
    settings: Arc<Settings>,
    transport: Arc<dyn Transport>,
    cancel: CancellationToken,
) {
    let mut wake = engine.subscribe();
    let mut consumer = Consumer::new(engine, consumer_name(&settings.id)).batch(BATCH);
    let mut notifier = Notifier::new(settings, transport);
    let mut backoff = Backoff::default();
    while !cancel.is_cancelled() {
        match consumer.step(&mut notifier).await {
            // A backlog: keep reading.
            Ok(n) if n >= BATCH as usize => continue,
            Ok(n) => {
                backoff.reset();
                if n > 0 {
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(PACE) => {}
                    }
                }
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = wake.changed() => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
            Err(e) => {
                tracing::warn!(consumer = %consumer.name(), error = format!("{e:#}"), retry_in = ?backoff.peek(), "MQ notifications failed");
                if !backoff.wait(&cancel).await {
                    break;
                }
            }
        }
    }
}

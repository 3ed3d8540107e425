//! Event-log consumers: each outbound channel reads the log from its own durable position,
//! at least once, in log order.

use crate::backoff::Backoff;
use crate::engine::Engine;
use async_trait::async_trait;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use worklane_domain::Event;

/// What a consumer does with events.
#[async_trait]
pub trait EventHandler: Send {
    /// Handles a batch of events in log order. Return `Ok` only once their effects are
    /// durable: the consumer then saves its position past them. On `Err` the same events
    /// are offered again after a backoff.
    async fn handle(&mut self, events: &[Event]) -> anyhow::Result<()>;
}

/// A named reader of the event log with a durable position.
#[derive(Debug, Clone)]
pub struct Consumer {
    engine: Engine,
    name: String,
    batch: u32,
    poll: Duration,
    position: Option<i64>,
}

impl Consumer {
    /// A consumer named `name` (its position is saved under that name).
    pub fn new(engine: Engine, name: impl Into<String>) -> Self {
        Self {
            engine,
            name: name.into(),
            batch: 500,
            poll: Duration::from_secs(1),
            position: None,
        }
    }

    /// The most events handed to the handler at once.
    pub fn batch(mut self, n: u32) -> Self {
        self.batch = n.max(1);
        self
    }

    /// How often to look for events when no wake-up came (other writers, e.g. another
    /// server on the same PostgreSQL).
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll = d;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The saved position (loaded on first use).
    pub async fn position(&mut self) -> anyhow::Result<i64> {
        if let Some(p) = self.position {
            return Ok(p);
        }
        let p = self.engine.events().cursor(&self.name).await?;
        self.position = Some(p);
        Ok(p)
    }

    /// Moves the position (replay from an earlier seq, or skip ahead).
    pub async fn seek(&mut self, seq: i64) -> anyhow::Result<()> {
        self.engine
            .events()
            .save_cursor(&self.name, seq, self.engine.now())
            .await?;
        self.position = Some(seq);
        Ok(())
    }

    /// One batch: reads events after the position, hands them over, saves the new
    /// position. Returns how many events were handled.
    pub async fn step(&mut self, handler: &mut dyn EventHandler) -> anyhow::Result<usize> {
        let from = self.position().await?;
        let events = self.engine.events().events_after(from, self.batch).await?;
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok(0);
        };
        handler.handle(&events).await?;
        self.engine
            .events()
            .save_cursor(&self.name, last, self.engine.now())
            .await?;
        self.position = Some(last);
        metrics::counter!("worklane_consumer_events_total", "consumer" => self.name.clone())
            .increment(events.len() as u64);
        Ok(events.len())
    }

    /// Runs until `cancel`: steps while there is work, then waits for new events. Errors
    /// are logged and retried with backoff (up to 30 s); the position never skips an event.
    pub async fn run(mut self, handler: &mut dyn EventHandler, cancel: CancellationToken) {
        let mut wake = self.engine.subscribe();
        let mut backoff = Backoff::default();
        loop {
            if cancel.is_cancelled() {
                break;
            }
            match self.step(handler).await {
                Ok(n) if n > 0 => {
                    backoff.reset();
                    continue;
                }
                Ok(_) => {
                    backoff.reset();
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = wake.changed() => {}
                        _ = tokio::time::sleep(self.poll) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(consumer = %self.name, error = format!("{e:#}"), retry_in = ?backoff.peek(), "event consumer failed");
                    if !backoff.wait(&cancel).await {
                        break;
                    }
                }
            }
        }
        tracing::debug!(consumer = %self.name, "event consumer stopped");
    }
}

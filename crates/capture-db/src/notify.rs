//! Notification statements (SPEC section 5): the event log, read at the durable position
//! `dbcp:<id>`, runs the matching statement for each event of a task this capture point
//! captured. A batch of events runs in one source transaction; when the source is down
//! the handler fails, so the position does not move and the same events come again.

use crate::attributes::Context;
use crate::config::notification_option;
use crate::point::CapturePoint;
use async_trait::async_trait;
use std::sync::Arc;
use worklane_domain::{Event, EventType};
use worklane_engine::{Engine, EventHandler};

/// The name under which the event-log position of capture point `id` is kept.
pub fn consumer_name(id: &str) -> String {
    format!("dbcp:{id}")
}

/// The [`EventHandler`] that runs the notification statements.
#[derive(Debug)]
pub struct Notifier {
    point: Arc<CapturePoint>,
    /// Events up to here already ran (kept in memory): when saving the position failed
    /// after the statements committed, the same events are offered again and skipped.
    done_through: i64,
}

impl Notifier {
    /// The notifier of `point`.
    pub fn new(point: Arc<CapturePoint>) -> Self {
        Self {
            point,
            done_through: 0,
        }
    }

    /// A consumer for this capture point's notifications on `engine`.
    pub fn consumer(&self, engine: Engine) -> worklane_engine::Consumer {
        worklane_engine::Consumer::new(engine, consumer_name(self.point.id()))
            .poll_interval(self.point.cfg.notify_poll_interval)
    }
}

#[async_trait]
impl EventHandler for Notifier {
    async fn handle(&mut self, events: &[Event]) -> anyhow::Result<()> {
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok(());
        };
        let p = &self.point;
        let mut execs = Vec::new();
        let mut labels = Vec::new();
        let mut seqs = Vec::new();
        for e in events {
            if e.seq <= self.done_through || e.capture_point_id != p.cfg.id {
                continue;
            }
            let Some(option) = notification_option(e.event_type) else {
                continue;
            };
            // updatedUpdateSql reports changes made by someone else, not our own.
            if e.event_type == EventType::TaskUpdated
                && e.origin.as_deref() == Some(p.cfg.id.as_str())
            {
                continue;
            }
            // Reprioritizations by the business rules stay inside Worklane unless asked for.
            if e.event_type == EventType::TaskUpdated
                && e.origin.as_deref() == Some("rules")
                && !p.cfg.announce_rule_updates
            {
                continue;
            }
            let Some(stmt) = p.statement(option) else {
                continue;
            };
            // Not before the row's capturedUpdateSql (see `unmarked`).
            p.unmarked.wait_marked(&e.capture_id).await;
            // The queue the task was placed in; before the distribution layer names one,
            // the status it is in (e.g. `Queued`).
            let queue = e
                .task
                .queue
                .clone()
                .unwrap_or_else(|| e.task.status.as_str().to_owned());
            let ctx = Context {
                task: Some(&e.task),
                queue: Some(&queue),
                ..Context::default()
            };
            execs.push(stmt.bind(&ctx));
            labels.push((
                stmt.option,
                format!("seq={} BrokerId={}", e.seq, e.broker_id),
            ));
            seqs.push(e.seq);
        }
        if let Err(partial) = p.run_statements(&execs, &labels).await {
            if partial.done > 0 {
                self.done_through = seqs[partial.done - 1];
            }
            return Err(partial.into());
        }
        self.done_through = last;
        Ok(())
    }
}

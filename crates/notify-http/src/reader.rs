//! The reader: the event log, from the target's position, turned into rendered
//! notifications for the dispatcher; at most [`WINDOW`] of them unrecorded at a time.

use crate::notifier::{Fresh, Shared, READ_BATCH, WINDOW};
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use worklane_domain::Event;
use worklane_engine::{Backoff, Engine};

/// How often replay requests and the backlog gauge are refreshed.
const HOUSEKEEPING: Duration = Duration::from_secs(2);

/// Worklane's namespace for notification GUIDs (UUID v5).
const GUID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x8f1c_2b3e_5d4a_4c6b_9e7f_0a1b_2c3d_4e5f);

/// The GUID of `target`'s notification of `event`: the same every time the event is read,
/// so one sent again after a crash carries the GUID it had.
pub fn guid(target: &str, event: &Event) -> String {
    let name = format!(
        "{target}\n{}\n{}\n{}",
        event.seq,
        event.broker_id.0,
        event.event_date_time.as_microsecond()
    );
    uuid::Uuid::new_v5(&GUID_NAMESPACE, name.as_bytes()).to_string()
}

/// A batch of the log, rendered: the last event it covers, whether it was a full read,
/// and the notifications of the events the target wants.
#[derive(Debug)]
struct Rendered {
    upto: i64,
    full: bool,
    items: Vec<Fresh>,
}

/// A read of the event log in progress (None when there was nothing after).
type Reading = JoinHandle<anyhow::Result<Option<Rendered>>>;

/// Reads the events after `after` and renders them, in tasks of their own; rendering
/// runs on the blocking pool so it never holds up a runtime thread (and the requests
/// and answers waiting for it).
fn read_after(shared: &Arc<Shared>, after: i64) -> Reading {
    let shared = shared.clone();
    tokio::spawn(async move {
        let events = shared.events.events_after(after, READ_BATCH as u32).await?;
        let Some(upto) = events.last().map(|e| e.seq) else {
            return Ok(None);
        };
        let full = events.len() == READ_BATCH;
        let items = tokio::task::spawn_blocking(move || render(&shared, &events)).await?;
        Ok(Some(Rendered { upto, full, items }))
    })
}

/// The notifications of the events the target wants.
fn render(shared: &Shared, events: &[Event]) -> Vec<Fresh> {
    let now = shared.clock.now();
    events
        .iter()
        .filter(|e| shared.renderer.wants(e))
        .map(|e| {
            let guid = guid(&shared.target, e);
            // The event's own time: the body is the same whenever it is rendered.
            let body = shared.renderer.render_wanted(e, &guid, e.event_date_time);
            Fresh {
                seq: e.seq,
                broker_id: e.broker_id.0,
                event_type: e.event_type,
                guid,
                created_at: now,
                body: Bytes::from(body),
            }
        })
        .collect()
}

/// What the reader hands the dispatcher.
#[derive(Debug)]
pub enum ReaderMsg {
    /// The notifications of the events after the previous batch up to `upto`, oldest
    /// first; each holds a window permit.
    Batch { upto: i64, items: Vec<Fresh> },
    /// A replay from event `from`: once nothing read is unrecorded, make its deliveries
    /// pending again, move the position back to just before it, and answer with the
    /// position to read from.
    Seek {
        from: i64,
        done: oneshot::Sender<i64>,
    },
}

pub(crate) async fn read_loop(
    engine: Engine,
    shared: Arc<Shared>,
    mut position: i64,
    window: Arc<Semaphore>,
    tx: mpsc::Sender<ReaderMsg>,
    cancel: CancellationToken,
) {
    let store = engine.deliveries().clone();
    let mut wake = engine.subscribe();
    let target = shared.target.as_str();
    let mut backoff = Backoff::default();
    let mut housekeeping = Instant::now() - HOUSEKEEPING;
    let mut ahead: Option<(i64, Reading)> = None;
    while !cancel.is_cancelled() {
        if housekeeping.elapsed() >= HOUSEKEEPING {
            housekeeping = Instant::now();
            match store.replay_request(target).await {
                Ok(Some(from)) => {
                    tracing::info!(notification_target = %target, from_seq = from, "replaying the event log");
                    let (done, answered) = oneshot::channel();
                    if tx.send(ReaderMsg::Seek { from, done }).await.is_err() {
                        break;
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        r = answered => match r {
                            Ok(p) => position = p,
                            Err(_) => break,
                        },
                    }
                    shared.wake.notify_one();
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(notification_target = %target, error = %e, "reading replay requests failed")
                }
            }
            match store.delivery_backlog(target).await {
                Ok(n) => shared
                    .metrics
                    .backlog
                    .set((n as usize + shared.unrecorded.load(Ordering::Relaxed)) as f64),
                Err(e) => tracing::debug!(error = %e, "backlog count failed"),
            }
        }
        // The batch read ahead, when it starts where we are.
        let read = match ahead.take() {
            Some((after, handle)) if after == position => handle,
            _ => read_after(&shared, position),
        };
        let batch = match read.await {
            Ok(r) => r.map_err(|e| format!("{e:#}")),
            Err(e) => Err(e.to_string()),
        };
        let batch = match batch {
            Ok(batch) => {
                backoff.reset();
                batch
            }
            Err(e) => {
                tracing::warn!(notification_target = %target, error = %e, retry_in = ?backoff.peek(), "reading the event log failed");
                if !backoff.wait(&cancel).await {
                    break;
                }
                continue;
            }
        };
        let Some(Rendered { upto, full, items }) = batch else {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = wake.changed() => {}
                _ = tokio::time::sleep(HOUSEKEEPING) => {}
            }
            continue;
        };
        if full {
            // More are likely there: read and render them while this batch goes out.
            ahead = Some((upto, read_after(&shared, upto)));
        }
        if !items.is_empty() {
            let n = u32::try_from(items.len().min(WINDOW)).unwrap_or(u32::MAX);
            tokio::select! {
                _ = cancel.cancelled() => break,
                permits = window.acquire_many(n) => match permits {
                    // Given back by the dispatcher as each one is recorded.
                    Ok(p) => p.forget(),
                    Err(_) => break,
                },
            }
        }
        position = upto;
        tokio::select! {
            _ = cancel.cancelled() => break,
            sent = tx.send(ReaderMsg::Batch { upto, items }) => if sent.is_err() { break },
        }
    }
}

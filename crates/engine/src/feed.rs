//! One reader of the event log per process for every live follower (the API's event
//! stream, agents' channels, the console): each commit's events are read and decoded once
//! and handed to every follower, instead of once for each. A follower that starts behind
//! the feed, or falls behind it, reads what it misses from the store itself, so it sees
//! every event in seq order exactly as reading the log would.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use worklane_domain::Event;
use worklane_store::{EventLog, StoreError};

/// Batches the feed keeps for a slow follower; one further behind reads the store.
const BACKLOG: usize = 256;
/// Events read in one go.
const READ: u32 = 500;
/// How often the feed looks at the log when no commit woke it (other writers).
const POLL: Duration = Duration::from_secs(1);
/// The least time between two reads of the log. Under load commits land every millisecond
/// or two, on this node and (announced) on others, and a read after each one cost
/// PostgreSQL three queries (the settled seq, the sequence, the events); commits within
/// the gap are read together. An idle feed reads at once.
const READ_GAP: Duration = Duration::from_millis(5);

/// Events the feed read in one go: every committed event after seq `after`, in order.
/// The first batch of a feed that starts is empty: it tells followers that joined before
/// its first read where the feed begins (see [`run`]).
#[derive(Debug)]
pub struct FeedBatch {
    pub after: i64,
    pub events: Vec<Event>,
}

/// The shared reader (cheap to clone). It runs while someone follows it.
#[derive(Clone)]
pub struct Feed {
    inner: Arc<Inner>,
}

struct Inner {
    tx: broadcast::Sender<Arc<FeedBatch>>,
    running: AtomicBool,
    events: Arc<dyn EventLog>,
    seq: watch::Receiver<i64>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("followers", &self.inner.tx.receiver_count())
            .finish()
    }
}

impl Feed {
    /// A feed over `events`, woken by `seq` (the newest committed seq).
    pub(crate) fn new(events: Arc<dyn EventLog>, seq: watch::Receiver<i64>) -> Self {
        let (tx, _) = broadcast::channel(BACKLOG);
        Self {
            inner: Arc::new(Inner {
                tx,
                running: AtomicBool::new(false),
                events,
                seq,
            }),
        }
    }

    /// Follows the log from after seq `pos`.
    pub fn follow(&self, pos: i64) -> Follower {
        // Subscribed before anything is read: no batch published from now on is missed.
        let rx = self.inner.tx.subscribe();
        if !self.inner.running.swap(true, Ordering::SeqCst) {
            tokio::spawn(run(self.inner.clone()));
        }
        Follower {
            rx,
            events: self.inner.events.clone(),
            pos,
            from_store: true,
            pending: None,
        }
    }
}

/// The feed's loop: reads what was committed after what it last read, and hands it on;
/// it stops when nobody follows (the next follower starts it again).
async fn run(inner: Arc<Inner>) {
    let mut wake = inner.seq.clone();
    let mut head = None;
    let mut last_read: Option<tokio::time::Instant> = None;
    loop {
        if inner.tx.receiver_count() == 0 {
            inner.running.store(false, Ordering::SeqCst);
            // A follower that came meanwhile saw the feed running: keep it running.
            if inner.tx.receiver_count() == 0 || inner.running.swap(true, Ordering::SeqCst) {
                return;
            }
        }
        if let Some(at) = last_read {
            tokio::time::sleep_until(at + READ_GAP).await;
        }
        wake.borrow_and_update();
        last_read = Some(tokio::time::Instant::now());
        let read = match head {
            None => inner.events.last_seq().await.map(|s| {
                head = Some(s);
                // A follower that joined before this read may stand before `s`: the feed
                // will never hand out the events up to `s`, so an empty batch tells the
                // follower to read them from the store, not wait for the next commit.
                let _ = inner.tx.send(Arc::new(FeedBatch {
                    after: s,
                    events: Vec::new(),
                }));
                None
            }),
            Some(after) => inner.events.events_after(after, READ).await.map(Some),
        };
        match read {
            Ok(Some(events)) if !events.is_empty() => {
                let after = head.expect("read after a position");
                head = events.last().map(|e| e.seq);
                // No follower left is fine: the check above ends the loop.
                let _ = inner.tx.send(Arc::new(FeedBatch { after, events }));
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "the event feed could not read the log; retrying"),
        }
        tokio::select! {
            _ = wake.changed() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Events one follower has not seen yet: `batch.events[from..]`.
#[derive(Debug)]
pub struct Events {
    batch: Arc<FeedBatch>,
    from: usize,
}

impl Events {
    pub fn iter(&self) -> impl Iterator<Item = &Event> {
        self.batch.events[self.from..].iter()
    }
}

/// One follower of the feed: [`Follower::next`] gives the events after its position, in
/// seq order, waiting for new commits.
pub struct Follower {
    rx: broadcast::Receiver<Arc<FeedBatch>>,
    events: Arc<dyn EventLog>,
    pos: i64,
    /// Reading the store until it has nothing newer (at the start, and after a gap).
    from_store: bool,
    /// A batch that showed a gap, applied once the store filled it.
    pending: Option<Arc<FeedBatch>>,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower").field("pos", &self.pos).finish()
    }
}

impl Follower {
    /// The seq of the last event handed out (or the starting position).
    pub fn position(&self) -> i64 {
        self.pos
    }

    /// The next events after this follower's position (never empty); waits for commits.
    /// An error leaves the position as it was: calling again retries.
    pub async fn next(&mut self) -> Result<Events, StoreError> {
        loop {
            if self.from_store {
                let events = self.events.events_after(self.pos, READ).await?;
                if let Some(last) = events.last() {
                    let after = self.pos;
                    self.pos = last.seq;
                    return Ok(Events {
                        batch: Arc::new(FeedBatch { after, events }),
                        from: 0,
                    });
                }
                self.from_store = false;
            }
            let batch = match self.pending.take() {
                Some(b) => b,
                None => match self.rx.recv().await {
                    Ok(b) => b,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.from_store = true;
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        // The feed is owned by the engine for as long as this follower
                        // lives; never closes while followed.
                        std::future::pending::<()>().await;
                        unreachable!()
                    }
                },
            };
            if batch.after > self.pos {
                // Events the feed read before this follower joined, or while it lagged:
                // from the store, then this batch.
                let after = batch.after;
                self.pending = Some(batch);
                let read = self.events.events_after(self.pos, READ).await?;
                let beyond = read.first().is_some_and(|e| e.seq > after);
                let gap: Vec<Event> = read.into_iter().take_while(|e| e.seq <= after).collect();
                if let Some(last) = gap.last() {
                    let from = self.pos;
                    self.pos = last.seq;
                    return Ok(Events {
                        batch: Arc::new(FeedBatch {
                            after: from,
                            events: gap,
                        }),
                        from: 0,
                    });
                }
                if beyond {
                    // The store holds none of them any more (pruned): nothing to hand out.
                    self.pos = after;
                } else {
                    // Not settled in this reader's view yet (another node's late commit).
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                continue;
            }
            let from = batch.events.partition_point(|e| e.seq <= self.pos);
            if from < batch.events.len() {
                self.pos = batch.events.last().map_or(self.pos, |e| e.seq);
                return Ok(Events { batch, from });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::Semaphore;
    use worklane_domain::{ActionMeta, BrokerId, Command, NewTask, Timestamp};
    use worklane_store::SqliteStore;

    /// A real event log whose `last_seq` answers only once the test lets it.
    #[derive(Debug)]
    struct Gated {
        log: SqliteStore,
        gate: Arc<Semaphore>,
    }

    #[async_trait::async_trait]
    impl EventLog for Gated {
        async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<Event>, StoreError> {
            self.log.events_after(after, limit).await
        }
        async fn task_events(&self, id: BrokerId) -> Result<Vec<Event>, StoreError> {
            self.log.task_events(id).await
        }
        async fn last_seq(&self) -> Result<i64, StoreError> {
            let _pass = self.gate.acquire().await.expect("gate open");
            self.log.last_seq().await
        }
        async fn cursor(&self, consumer: &str) -> Result<i64, StoreError> {
            self.log.cursor(consumer).await
        }
        async fn save_cursor(&self, c: &str, seq: i64, now: Timestamp) -> Result<(), StoreError> {
            self.log.save_cursor(c, seq, now).await
        }
    }

    async fn create(store: &SqliteStore) -> i64 {
        let new = NewTask {
            capture_point_id: "feed".into(),
            ..Default::default()
        };
        let cmd = Command::create(new, ActionMeta::default());
        let now: Timestamp = "2026-12-03T12:00:00Z".parse().unwrap();
        let results = crate::commit_batch(store, &[cmd], now).await.unwrap();
        results[0].as_ref().unwrap().event.as_ref().unwrap().seq
    }

    /// A commit that lands after a follower caught up from the store but before the feed
    /// it started read where the log ends: the follower still gets it, without another
    /// commit to wake it.
    #[tokio::test]
    async fn a_commit_between_joining_and_the_feeds_first_read_is_handed_out() {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        let first = create(&store).await;
        let gate = Arc::new(Semaphore::new(0));
        let log = Gated {
            log: store.clone(),
            gate: gate.clone(),
        };
        let (seq_tx, seq_rx) = watch::channel(first);
        let feed = Feed::new(Arc::new(log), seq_rx);
        let mut follower = feed.follow(first);
        let reading = tokio::spawn(async move {
            let events = follower.next().await.unwrap();
            events.iter().map(|e| e.seq).collect::<Vec<_>>()
        });
        let live = create(&store).await;
        seq_tx.send_replace(live);
        gate.add_permits(1);
        let got = tokio::time::timeout(Duration::from_secs(10), reading)
            .await
            .expect("the event in time")
            .unwrap();
        assert_eq!(got, vec![live]);
    }
}

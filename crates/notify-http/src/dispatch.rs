//! The dispatcher: decides which notification goes out next and records what happened.
//!
//! A task's notifications go out one at a time: while one is in flight, the later ones
//! wait in its *lane*. When it is delivered (or fails for good) the next one goes; when
//! it is to be retried, it and every one behind it are stored as pending, and the
//! sender's claims take over (a task's oldest pending delivery only, so order holds). A
//! new notification of a task with pending deliveries is stored behind them.
//!
//! A lane holds at most [`LANE_CAP`] waiting notifications, so one busy task cannot fill
//! the target's whole window: past that, its waiting ones (and its later ones) are stored
//! *held*, unclaimable until the write that records the one in flight releases them.
//!
//! Results are written by one write at a time, each one transaction that also moves the
//! target's position to just before the oldest notification not yet recorded; what
//! comes in during a write goes into the next one (group commit). The dispatcher is the
//! only writer of its target's new rows. When it asks the store about a batch, the tasks
//! it has stored as pending in writes not yet acknowledged count as pending too, so the
//! answer is never stale.

use crate::notifier::{Done, Fresh, Outgoing, Shared, RECORD_BATCH};
use crate::reader::ReaderMsg;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use worklane_engine::Backoff;
use worklane_store::{
    AttemptOutcome, AttemptResult, DeliveryRecords, KnownDeliveries, RecordedDelivery, StoreError,
};

/// One transaction's worth of records.
#[derive(Debug, Default)]
struct Write {
    new: Vec<RecordedDelivery>,
    results: Vec<AttemptResult>,
    /// The position to save, when it moves.
    position: Option<i64>,
    /// Tasks stored as pending by it (each counted once per row).
    pending_tasks: Vec<i64>,
    /// A replay carried out by it (its `from_seq`), and who waits for the new position.
    replay: Option<(i64, oneshot::Sender<i64>)>,
    /// Tasks whose held deliveries it releases: it records the notification they waited for.
    release: Vec<i64>,
}

impl Write {
    fn is_empty(&self) -> bool {
        self.new.is_empty()
            && self.results.is_empty()
            && self.position.is_none()
            && self.replay.is_none()
            && self.release.is_empty()
    }
}

/// The dispatcher's state.
pub(crate) struct Dispatcher {
    shared: Arc<Shared>,
    window: Arc<Semaphore>,
    to_sender: mpsc::UnboundedSender<Outgoing>,
    cancel: CancellationToken,
    /// Tasks with a notification in flight, and those of theirs waiting behind it.
    lanes: HashMap<i64, VecDeque<Fresh>>,
    /// Tasks whose lane overflowed: their later notifications are stored held until the
    /// one in flight is recorded.
    held: HashSet<i64>,
    /// Seqs of notifications read and not yet handed to a write.
    unrecorded: BTreeSet<i64>,
    /// The last event the reader has covered.
    read_upto: i64,
    /// The position of the last write handed out.
    position: i64,
    /// What the next write holds.
    next: Write,
    /// The write in progress (a task of its own, so it goes on while the dispatcher
    /// waits for the store's answer about a batch).
    writing: Option<JoinHandle<(Write, Result<u64, StoreError>)>>,
    /// Pending rows per task in writes not yet acknowledged.
    storing: HashMap<i64, usize>,
    /// A replay (its `from_seq`) waiting for the window to empty.
    seek: Option<(i64, oneshot::Sender<i64>)>,
    /// When the last write started.
    last_write: Instant,
}

/// Writes start at most this often unless [`FULL_WRITE`] records wait: a commit costs
/// about the same for ten rows as for a thousand (the same index pages are written).
const WRITE_INTERVAL: Duration = Duration::from_millis(25);
/// Records that start a write at once.
const FULL_WRITE: usize = 2000;
/// Notifications of one task waiting in memory behind its one in flight, at most.
pub(crate) const LANE_CAP: usize = 64;

impl Dispatcher {
    pub(crate) fn new(
        shared: Arc<Shared>,
        position: i64,
        window: Arc<Semaphore>,
        to_sender: mpsc::UnboundedSender<Outgoing>,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            shared,
            window,
            to_sender,
            cancel,
            lanes: HashMap::new(),
            held: HashSet::new(),
            unrecorded: BTreeSet::new(),
            read_upto: position,
            position,
            next: Write::default(),
            writing: None,
            storing: HashMap::new(),
            seek: None,
            last_write: Instant::now(),
        }
    }

    /// Runs until the sender has stopped (it closes `done`) and every result it gave is
    /// written (or, when the store fails while stopping, given up: unrecorded
    /// notifications are read again by the next run, claimed ones released by it).
    pub(crate) async fn run(
        mut self,
        mut from_reader: mpsc::Receiver<ReaderMsg>,
        mut done: mpsc::UnboundedReceiver<Done>,
    ) {
        let mut reader_open = true;
        let mut sender_open = true;
        let mut finished = Vec::with_capacity(RECORD_BATCH);
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
        loop {
            self.start_write(!sender_open);
            if !sender_open && self.writing.is_none() {
                break;
            }
            let next_write = self.last_write + WRITE_INTERVAL;
            tokio::select! {
                biased;
                joined = async { self.writing.as_mut().expect("guarded").await }, if self.writing.is_some() => {
                    self.writing = None;
                    let Ok((write, r)) = joined else {
                        // Only a panic gets here; the next run sends again what was not recorded.
                        tracing::error!(notification_target = %self.shared.target, "the notification writer panicked");
                        break;
                    };
                    match r {
                        Ok(_) => {
                            backoff.reset();
                            self.written(write);
                        }
                        Err(e) => {
                            let delay = backoff.next_delay();
                            tracing::warn!(notification_target = %self.shared.target, error = %e, retry_in = ?delay, "recording notifications failed");
                            if self.cancel.is_cancelled() {
                                break;
                            }
                            tokio::time::sleep(delay).await;
                            self.retry(write);
                        }
                    }
                }
                n = done.recv_many(&mut finished, RECORD_BATCH), if sender_open => {
                    if n == 0 {
                        sender_open = false;
                    }
                    for d in finished.drain(..) {
                        self.on_done(d);
                    }
                }
                msg = from_reader.recv(), if reader_open && sender_open && self.seek.is_none() => match msg {
                    Some(ReaderMsg::Batch { upto, items }) => self.on_batch(upto, items).await,
                    Some(ReaderMsg::Seek { from, done }) => self.seek = Some((from, done)),
                    None => reader_open = false,
                },
                _ = tokio::time::sleep_until(next_write.into()), if self.writing.is_none() && self.has_work() => {}
            }
        }
    }

    /// Sends out, holds back or stores each notification of a batch.
    async fn on_batch(&mut self, upto: i64, items: Vec<Fresh>) {
        let Some((first, last)) = items.first().zip(items.last()).map(|(f, l)| (f.seq, l.seq))
        else {
            self.read_upto = upto;
            return;
        };
        let ask: Vec<i64> = items
            .iter()
            .map(|n| n.broker_id)
            .filter(|b| !self.lanes.contains_key(b) && !self.storing.contains_key(b))
            .collect();
        let Some(known) = self.known(first, last, &ask).await else {
            // Stopping: these are read again by the next run.
            self.window.add_permits(items.len());
            return;
        };
        let mut fresh: u64 = 0;
        for n in items {
            if known.existing.contains(&n.seq) {
                // Recorded before a restart or a replay: the store has it.
                self.window.add_permits(1);
                continue;
            }
            fresh += 1;
            self.unrecorded.insert(n.seq);
            if self.held.contains(&n.broker_id) {
                self.record(n, None, true);
            } else if let Some(lane) = self.lanes.get_mut(&n.broker_id) {
                if lane.len() < LANE_CAP {
                    lane.push_back(n);
                } else {
                    // Full: the waiting ones go to the store, held behind the one in flight.
                    let waiting = std::mem::take(lane);
                    self.held.insert(n.broker_id);
                    for w in waiting {
                        self.record(w, None, true);
                    }
                    self.record(n, None, true);
                }
            } else if known.pending_tasks.contains(&n.broker_id)
                || self.storing.contains_key(&n.broker_id)
            {
                self.store_pending(n);
            } else {
                self.lanes.insert(n.broker_id, VecDeque::new());
                // A closed sender has stopped: the notification stays unrecorded and is
                // read again by the next run.
                let _ = self.to_sender.send(Outgoing::Fresh(n));
            }
        }
        self.shared.metrics.enqueued.increment(fresh);
        self.read_upto = upto;
        self.publish_unrecorded();
    }

    /// Asks the store about a batch, again and again while it fails; None when stopping.
    async fn known(&self, first: i64, last: i64, ask: &[i64]) -> Option<KnownDeliveries> {
        let mut backoff = Backoff::default();
        loop {
            match self
                .shared
                .store
                .known_deliveries(&self.shared.target, first, last, ask)
                .await
            {
                Ok(k) => return Some(k),
                Err(e) => {
                    tracing::warn!(notification_target = %self.shared.target, error = %e, retry_in = ?backoff.peek(), "reading deliveries failed");
                    if !backoff.wait(&self.cancel).await {
                        return None;
                    }
                }
            }
        }
    }

    /// Records `n` with its first attempt, or (without one) as pending behind its task's
    /// pending ones, or held behind its task's one in flight.
    fn record(&mut self, n: Fresh, attempt: Option<AttemptResult>, held: bool) {
        let outcome = attempt.as_ref().map(|a| a.outcome);
        let keep_body = outcome != Some(AttemptOutcome::Delivered);
        if matches!(outcome, None | Some(AttemptOutcome::Retry(_))) {
            *self.storing.entry(n.broker_id).or_default() += 1;
            self.next.pending_tasks.push(n.broker_id);
        }
        self.unrecorded.remove(&n.seq);
        self.next.new.push(RecordedDelivery {
            delivery: n.into_new(&self.shared.target, keep_body),
            attempt,
            held,
        });
    }

    /// Stores `n` pending behind its task's stored ones. Those may be held behind it
    /// (read again after a crash while it was in flight): this write releases them.
    fn store_pending(&mut self, n: Fresh) {
        self.next.release.push(n.broker_id);
        self.record(n, None, false);
    }

    fn on_done(&mut self, d: Done) {
        let n = match d.item {
            Outgoing::Stored(..) => {
                self.next.results.push(d.result);
                return;
            }
            Outgoing::Fresh(n) => n,
        };
        let task = n.broker_id;
        let outcome = d.result.outcome;
        if self.held.remove(&task) {
            self.next.release.push(task);
        }
        self.record(n, Some(d.result), false);
        match outcome {
            AttemptOutcome::Delivered | AttemptOutcome::Failed => {
                match self.lanes.get_mut(&task).and_then(VecDeque::pop_front) {
                    Some(next) => {
                        let _ = self.to_sender.send(Outgoing::Fresh(next));
                    }
                    None => {
                        self.lanes.remove(&task);
                    }
                }
            }
            AttemptOutcome::Retry(_) => {
                for waiting in self.lanes.remove(&task).unwrap_or_default() {
                    self.store_pending(waiting);
                }
            }
        }
    }

    /// Hands what is waiting to a write, when none is in progress and it is time (or
    /// `now`).
    fn start_write(&mut self, now: bool) {
        let waiting = self.next.new.len() + self.next.results.len();
        if self.writing.is_some()
            || !(now || waiting >= FULL_WRITE || self.last_write.elapsed() >= WRITE_INTERVAL)
        {
            return;
        }
        let position = self.next_position();
        if position > self.position {
            self.next.position = Some(position);
        }
        // Rides along with whatever else is written, so a busy target cannot starve it.
        self.try_seek();
        if self.next.is_empty() {
            return;
        }
        let write = std::mem::take(&mut self.next);
        self.last_write = Instant::now();
        self.retry(write);
    }

    /// The position once what is waiting is written: just before the oldest notification
    /// not yet handed to a write.
    fn next_position(&self) -> i64 {
        self.unrecorded.first().map_or(self.read_upto, |s| s - 1)
    }

    /// Whether a write is due when its time comes (then [`Dispatcher::start_write`]
    /// starts one).
    fn has_work(&self) -> bool {
        !self.next.is_empty() || self.seek_ready() || self.next_position() > self.position
    }

    /// A replay can move the position: nothing read is unrecorded.
    fn seek_ready(&self) -> bool {
        self.seek.is_some() && self.unrecorded.is_empty() && self.lanes.is_empty()
    }

    /// Starts (again) the transaction of `write`.
    fn retry(&mut self, mut write: Write) {
        if let Some(p) = write.position {
            self.position = self.position.max(p);
        }
        write.release.sort_unstable();
        write.release.dedup();
        let shared = self.shared.clone();
        self.writing = Some(tokio::spawn(async move {
            let release = &write.release;
            let records = DeliveryRecords {
                new: &write.new,
                results: &write.results,
                cursor: write.position.map(|p| (shared.consumer.as_str(), p)),
                replay: write.replay.as_ref().map(|r| (shared.target.as_str(), r.0)),
                release: (!release.is_empty()).then_some((shared.target.as_str(), &release[..])),
            };
            let r = shared
                .store
                .record_deliveries(records, shared.clock.now())
                .await;
            (write, r)
        }));
    }

    /// What follows a write's commit.
    fn written(&mut self, write: Write) {
        for task in &write.pending_tasks {
            if let Some(n) = self.storing.get_mut(task) {
                *n -= 1;
                if *n == 0 {
                    self.storing.remove(task);
                }
            }
        }
        let stored = write.results.len();
        self.window.add_permits(write.new.len());
        self.shared.claimed.fetch_sub(stored, Ordering::AcqRel);
        self.publish_unrecorded();
        if stored > 0 || !write.pending_tasks.is_empty() {
            self.shared.wake.notify_one();
        }
        if let (Some((_, answer)), Some(p)) = (write.replay, write.position) {
            let _ = answer.send(p);
        }
    }

    fn publish_unrecorded(&self) {
        self.shared
            .unrecorded
            .store(self.unrecorded.len(), Ordering::Relaxed);
    }

    /// Once nothing read is unrecorded, carries out a replay in the next write: its
    /// deliveries pending again, the position back to just before it (never forward: a
    /// target behind the replay's start reads on from where it is).
    fn try_seek(&mut self) {
        if !self.seek_ready() {
            return;
        }
        let Some((from, answer)) = self.seek.take() else {
            return;
        };
        let to = (from - 1).max(0).min(self.read_upto);
        self.next.position = Some(to);
        self.next.replay = Some((from, answer));
        self.position = to;
        self.read_upto = to;
    }
}

//! The write path: commands from every channel are queued to one writer that decides and
//! commits them in batches (group commit): one transaction, one fsync, many commands.

use crate::batch::{self, Policy};
use crate::clock::{SharedClock, SystemClock};
use crate::distribute::{self, Dispatched};
use crate::feed::Feed;
use crate::rules::Rules;
use jiff::SignedDuration;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use worklane_distribution::Queues;
use worklane_domain::{
    AgentCommand, AgentView, Command, CommandResult, DomainError, ErrorCode, Outcome, Timestamp,
};
use worklane_store::{
    Access, AgentReads, DeliveryStore, DueShare, EventLog, Leases, Retention, Stats, Store,
    StoreError, TaskReads, Writer,
};

/// Why a command did not take effect.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// The domain refused it (a protocol error code).
    #[error(transparent)]
    Refused(#[from] DomainError),
    /// The store failed; nothing was written.
    #[error("store failure: {0}")]
    Store(Arc<StoreError>),
    /// The engine is shutting down and takes no more commands.
    #[error("the engine is shutting down")]
    Closed,
}

impl EngineError {
    /// The error as the protocol reports it (INTERNAL_ERROR for the server's own faults).
    pub fn to_domain(&self) -> DomainError {
        match self {
            Self::Refused(e) => e.clone(),
            other => DomainError::new(ErrorCode::InternalError, other.to_string()),
        }
    }
}

/// Tuning of the write path.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The most commands committed in one transaction.
    pub max_batch: usize,
    /// Commands waiting for the writer before callers are made to wait.
    pub queue_depth: usize,
    /// The clock every decision reads.
    pub clock: SharedClock,
    /// Process a task a create makes ready in the create's own transaction (what a
    /// server running the [`crate::Processor`] wants: the same events, one write).
    pub process_on_create: bool,
    /// The business rules processing decides by (none: tasks keep their own attributes).
    pub rules: Rules,
    /// A task that finishes (Completed, Canceled, Rejected) without an
    /// expirationDateTime gets one this long after it finished, so it is archived then.
    /// None: kept until an expirationDateTime is given.
    pub archive_after: Option<SignedDuration>,
    /// The distribution layer's queues: Queued tasks are routed into them and handed to
    /// agents. None: tasks rest Queued.
    pub queues: Option<Arc<Queues>>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            max_batch: 256,
            queue_depth: 4096,
            clock: SystemClock::shared(),
            process_on_create: false,
            rules: Rules::default(),
            archive_after: None,
            queues: None,
        }
    }
}

type Reply = oneshot::Sender<Result<CommandResult, Arc<StoreError>>>;

/// A handle to the engine; cheap to clone. The writer stops once every handle is dropped
/// and the commands already queued are committed.
#[derive(Debug, Clone)]
pub struct Engine {
    store: Arc<dyn Store>,
    tasks: Arc<dyn TaskReads>,
    events: Arc<dyn EventLog>,
    deliveries: Arc<dyn DeliveryStore>,
    leases: Arc<dyn Leases>,
    retention: Arc<dyn Retention>,
    agents: Arc<dyn AgentReads>,
    access: Arc<dyn Access>,
    stats: Arc<dyn Stats>,
    clock: SharedClock,
    rules: Rules,
    tx: mpsc::Sender<(Command, Reply)>,
    seq_tx: Arc<watch::Sender<i64>>,
    policy: Policy,
    seq: watch::Receiver<i64>,
    feed: Feed,
}

impl Engine {
    /// Starts the writer. Await the handle after dropping every `Engine` to drain it.
    pub async fn start(
        store: Arc<dyn Store>,
        options: EngineOptions,
    ) -> Result<(Engine, JoinHandle<()>), StoreError> {
        let last = store.last_seq().await?;
        let (seq_tx, seq_rx) = watch::channel(last);
        let seq_tx = Arc::new(seq_tx);
        let (tx, rx) = mpsc::channel(options.queue_depth.max(1));
        let listener = tokio::spawn(listen_loop(store.clone(), seq_tx.clone()));
        let policy = Policy {
            process_on_create: options.process_on_create,
            rules: options.rules.clone(),
            archive_after: options.archive_after,
            queues: options.queues.clone(),
        };
        let writer = tokio::spawn(write_loop(
            store.clone(),
            options.clock.clone(),
            rx,
            seq_tx.clone(),
            options.max_batch.max(1),
            policy.clone(),
            listener.abort_handle(),
        ));
        let feed = Feed::new(store.clone(), seq_rx.clone());
        Ok((
            Engine {
                tasks: store.clone(),
                events: store.clone(),
                deliveries: store.clone(),
                leases: store.clone(),
                retention: store.clone(),
                agents: store.clone(),
                access: store.clone(),
                stats: store.clone(),
                store,
                clock: options.clock,
                rules: options.rules,
                tx,
                feed,
                seq: seq_rx,
                seq_tx,
                policy,
            },
            writer,
        ))
    }

    /// Runs one command: its effect and event are durable when this returns `Ok`.
    pub async fn execute(&self, cmd: Command) -> Result<Outcome, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((cmd, reply))
            .await
            .map_err(|_| EngineError::Closed)?;
        match rx.await {
            Ok(Ok(Ok(outcome))) => Ok(outcome),
            Ok(Ok(Err(refusal))) => Err(EngineError::Refused(refusal)),
            Ok(Err(e)) => Err(EngineError::Store(e)),
            Err(_) => Err(EngineError::Closed),
        }
    }

    /// Claims up to `limit` tasks whose reprioritization is due and processes them in a
    /// transaction of its own, beside the writer's (what the [`crate::Processor`] does
    /// with due tasks): on PostgreSQL several may run at once, each claiming other rows;
    /// on SQLite they take turns with the writer on its one write connection. Returns how
    /// many tasks changed; their events are durable when this returns. With `share`, only
    /// due tasks of that share are claimed (see [`DueShare`]).
    pub async fn process_due(
        &self,
        limit: u32,
        share: Option<DueShare>,
    ) -> Result<usize, EngineError> {
        let (n, last) = process_due(&*self.store, self.now(), limit, share, &self.policy)
            .await
            .map_err(|e| EngineError::Store(Arc::new(e)))?;
        if let Some(last) = last {
            raise(&self.seq_tx, last);
        }
        Ok(n)
    }

    /// One distribution pass in a transaction of its own (what the [`crate::Dispatcher`]
    /// runs): routes Queued tasks into their queues, returns offers that timed out, and
    /// offers tasks to Ready agents. Returns what it did, with when its offers expire.
    pub(crate) async fn dispatch(&self, limit: u32) -> Result<Dispatched, EngineError> {
        if self.policy.queues.is_none() {
            return Ok(Dispatched::default());
        }
        let store_err = |e| EngineError::Store(Arc::new(e));
        let mut tx = self.store.begin().await.map_err(store_err)?;
        let pass = distribute::dispatch(&mut *tx, self.now(), limit, &self.policy)
            .await
            .map_err(store_err)?;
        tx.commit().await.map_err(store_err)?;
        if let Some(last) = pass.last {
            raise(&self.seq_tx, last);
        }
        metrics::counter!("worklane_distribution_changes_total").increment(pass.changes as u64);
        Ok(pass)
    }

    /// Creates or changes an agent, in a transaction of its own with what follows from
    /// it (an agent that leaves Ready loses its offers). Returns the agent as it is now.
    pub async fn agent(&self, cmd: AgentCommand) -> Result<AgentView, EngineError> {
        let store_err = |e| EngineError::Store(Arc::new(e));
        let mut tx = self.store.begin().await.map_err(store_err)?;
        let (r, last) = distribute::agent_command(&mut *tx, &cmd, self.now(), &self.policy)
            .await
            .map_err(store_err)?;
        let view = r?;
        tx.commit().await.map_err(store_err)?;
        // Wakes this node's dispatcher (and readers) even when no event was written: an
        // agent that became Ready, or got more room, may be offered a task now.
        raise(&self.seq_tx, last.unwrap_or(0));
        Ok(view)
    }

    /// Users and API tokens.
    pub fn access(&self) -> &Arc<dyn Access> {
        &self.access
    }

    /// The console's figures: backlog, overdue, throughput per 15 minutes.
    pub fn stats(&self) -> &Arc<dyn Stats> {
        &self.stats
    }

    /// Agents as they are now.
    pub fn agents(&self) -> &Arc<dyn AgentReads> {
        &self.agents
    }

    /// The distribution layer's queues, when configured.
    pub fn queues(&self) -> Option<&Arc<Queues>> {
        self.policy.queues.as_ref()
    }

    /// Like [`Engine::execute`], but a refusal is a value, not an error (adapters that
    /// answer refusals in their own protocol use this).
    pub async fn execute_result(&self, cmd: Command) -> Result<CommandResult, EngineError> {
        match self.execute(cmd).await {
            Ok(o) => Ok(Ok(o)),
            Err(EngineError::Refused(e)) => Ok(Err(e)),
            Err(e) => Err(e),
        }
    }

    /// Tasks as they are now.
    pub fn tasks(&self) -> &Arc<dyn TaskReads> {
        &self.tasks
    }

    /// The event log and consumers' positions.
    pub fn events(&self) -> &Arc<dyn EventLog> {
        &self.events
    }

    /// HTTP notification deliveries.
    pub fn deliveries(&self) -> &Arc<dyn DeliveryStore> {
        &self.deliveries
    }

    /// Leases of the parts that run once in a cluster.
    pub fn leases(&self) -> &Arc<dyn Leases> {
        &self.leases
    }

    /// Pruning of old rows (the retention part).
    pub fn retention(&self) -> &Arc<dyn Retention> {
        &self.retention
    }

    /// The clock every decision reads.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The business rules in force (replace them to reload).
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The clock's time now.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Touches the store (health checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    /// The store's backend: `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// The newest committed event's seq; changes every time events are committed, by this
    /// process or (on PostgreSQL, by LISTEN/NOTIFY) by any other sharing the store.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.seq.clone()
    }

    /// The event log as it is committed, read once for every follower in this process
    /// (SSE streams): see [`Feed`].
    pub fn feed(&self) -> &Feed {
        &self.feed
    }
}

/// Decides and commits one batch in one transaction: what the engine's writer does for
/// each group commit. Only the writer calls it in a running server; tests and tools that
/// own a store alone may too.
pub async fn commit_batch(
    writer: &dyn Writer,
    batch: &[Command],
    now: Timestamp,
) -> Result<Vec<CommandResult>, StoreError> {
    commit(writer, batch, now, &Policy::default()).await
}

async fn commit(
    writer: &dyn Writer,
    batch: &[Command],
    now: Timestamp,
    policy: &Policy,
) -> Result<Vec<CommandResult>, StoreError> {
    let t0 = Instant::now();
    let mut tx = writer.begin().await?;
    let t1 = Instant::now();
    let results = batch::run(&mut *tx, batch, now, policy).await?;
    let t2 = Instant::now();
    tx.commit().await?;
    let t3 = Instant::now();
    metrics::histogram!("worklane_commit_phase_seconds", "phase" => "begin")
        .record((t1 - t0).as_secs_f64());
    metrics::histogram!("worklane_commit_phase_seconds", "phase" => "run")
        .record((t2 - t1).as_secs_f64());
    metrics::histogram!("worklane_commit_phase_seconds", "phase" => "commit")
        .record((t3 - t2).as_secs_f64());
    Ok(results)
}

async fn process_due(
    writer: &dyn Writer,
    now: Timestamp,
    limit: u32,
    share: Option<DueShare>,
    policy: &Policy,
) -> Result<(usize, Option<i64>), StoreError> {
    let started = Instant::now();
    let mut tx = writer.begin().await?;
    let r = batch::process_due(&mut *tx, now, limit, share, policy).await?;
    tx.commit().await?;
    metrics::counter!("worklane_reprioritized_total").increment(r.0 as u64);
    metrics::histogram!("worklane_commit_seconds").record(started.elapsed().as_secs_f64());
    Ok(r)
}

async fn write_loop(
    store: Arc<dyn Store>,
    clock: SharedClock,
    mut rx: mpsc::Receiver<(Command, Reply)>,
    seq: Arc<watch::Sender<i64>>,
    max_batch: usize,
    policy: Policy,
    listener: tokio::task::AbortHandle,
) {
    let mut cmds: Vec<Command> = Vec::with_capacity(max_batch);
    let mut replies: Vec<Reply> = Vec::with_capacity(max_batch);
    while let Some((cmd, reply)) = rx.recv().await {
        cmds.push(cmd);
        replies.push(reply);
        while cmds.len() < max_batch {
            match rx.try_recv() {
                Ok((c, r)) => {
                    cmds.push(c);
                    replies.push(r);
                }
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let n = cmds.len();
        let now = clock.now();
        match commit(&*store, &cmds, now, &policy).await {
            Ok(results) => {
                publish(&seq, &results);
                for (reply, r) in replies.drain(..).zip(results) {
                    let _ = reply.send(Ok(r));
                }
            }
            Err(e) if n > 1 => {
                // One command broke the batch: run each alone so the others still land.
                tracing::warn!(error = %e, batch = n, "batch failed; retrying its commands one by one");
                for (cmd, reply) in cmds.iter().zip(replies.drain(..)) {
                    let r = commit(&*store, std::slice::from_ref(cmd), now, &policy).await;
                    if let Ok(rs) = &r {
                        publish(&seq, rs);
                    }
                    let _ = reply.send(r.map(|mut v| v.remove(0)).map_err(Arc::new));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "command failed in the store");
                let e = Arc::new(e);
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
        cmds.clear();
        metrics::histogram!("worklane_commit_batch_size").record(n as f64);
        metrics::histogram!("worklane_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("worklane_commands_total").increment(n as u64);
    }
    listener.abort();
    tracing::debug!("engine writer drained and stopped");
}

/// Wakes this process's readers on other processes' commits: the store's commit
/// announcements (PostgreSQL LISTEN/NOTIFY, one per batch) move the watched seq. After a
/// lost connection it listens again and catches up from the log's newest seq, since
/// announcements made meanwhile are gone; readers' poll intervals remain the fallback.
async fn listen_loop(store: Arc<dyn Store>, seq: Arc<watch::Sender<i64>>) {
    use futures::StreamExt;
    let mut backoff = crate::Backoff::default();
    loop {
        match store.listen_commits().await {
            Ok(None) => return,
            Ok(Some(mut commits)) => {
                backoff.reset();
                match store.last_seq().await {
                    Ok(last) => raise(&seq, last),
                    Err(e) => tracing::warn!(error = %e, "reading the newest seq failed"),
                }
                while let Some(item) = commits.next().await {
                    match item {
                        Ok(s) => raise(&seq, s),
                        Err(e) => {
                            tracing::warn!(error = %e, retry_in = ?backoff.peek(), "listening for commits failed");
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff.peek(), "listening for commits failed")
            }
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// Moves the watched seq up to `s`; an announcement without a usable seq (0) still wakes
/// the readers, who read from their own positions.
fn raise(seq: &watch::Sender<i64>, s: i64) {
    if s <= 0 {
        seq.send_modify(|_| {});
        return;
    }
    seq.send_if_modified(|cur| {
        if s > *cur {
            *cur = s;
            true
        } else {
            false
        }
    });
}

fn publish(seq: &watch::Sender<i64>, results: &[CommandResult]) {
    let max = results
        .iter()
        .filter_map(|r| r.as_ref().ok()?.event.as_ref().map(|e| e.seq))
        .max();
    if let Some(m) = max {
        raise(seq, m);
    }
}

//! Deciding a batch of commands inside one write transaction: load what the commands
//! name, decide each in order against the batch's working set (so a command sees the
//! effect of the ones before it), then save the tasks, events and idempotency records.

use crate::distribute;
use crate::processor;
use crate::rules::Rules;
use jiff::SignedDuration;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use worklane_distribution::Queues;
use worklane_domain::{
    action, decide, Action, ActionMeta, Agent, BrokerId, Command, CommandResult, DomainError,
    ErrorCode, NewEvent, OnDuplicate, Op, Outcome, Selection, Task, TaskRef, Timestamp, Transition,
};
use worklane_rules::{Decision, RuleSet, Trace};
use worklane_store::{DueShare, StoreError, WriteTx};

/// How the writer decides beyond the state machine: processing by the business rules,
/// and archiving of finished tasks.
#[derive(Debug, Clone, Default)]
pub(crate) struct Policy {
    /// Process a task a create makes ready in the create's own transaction.
    pub process_on_create: bool,
    pub rules: Rules,
    pub archive_after: Option<SignedDuration>,
    /// The distribution layer's queues (none: tasks rest Queued).
    pub queues: Option<Arc<Queues>>,
}

impl Policy {
    /// What a transaction decides with at `now`, under `rules` (the rules in force when it
    /// started, held by the caller).
    pub(crate) fn ctx<'a>(&'a self, now: Timestamp, rules: &'a RuleSet) -> Ctx<'a> {
        Ctx {
            now,
            rules,
            archive_after: self.archive_after,
            queues: self.queues.as_deref(),
        }
    }
}

/// What one batch decides with: its time, and the rules in force when it started.
pub(crate) struct Ctx<'a> {
    pub now: Timestamp,
    pub rules: &'a RuleSet,
    pub archive_after: Option<SignedDuration>,
    pub queues: Option<&'a Queues>,
}

/// The state machine's decision, and the expiration a task that finishes gets.
pub(crate) fn decide_at(
    ctx: &Ctx<'_>,
    current: &Task,
    action: &Action,
    meta: &ActionMeta,
) -> Result<Transition, DomainError> {
    let mut tr = decide(current, action, meta, ctx.now)?;
    if let Some(after) = ctx.archive_after {
        let t = &mut tr.task;
        if !tr.deleted && t.status.is_final() && t.expiration_date_time.is_none() {
            let at = meta.action_date_time.unwrap_or(ctx.now);
            if let Ok(exp) = at.checked_add(after) {
                t.expiration_date_time = Some(exp);
                tr.event.changes.push("expirationDateTime".to_owned());
            }
        }
    }
    Ok(tr)
}

/// A batch's view of the tasks it touches: what the store held before the batch, changed
/// in memory as its commands are decided, and saved once at the end.
#[derive(Default)]
pub(crate) struct Working {
    /// None: deleted in this batch.
    pub tasks: HashMap<BrokerId, Option<Task>>,
    /// Touched tasks, in first-touch order.
    pub dirty: Vec<BrokerId>,
    pub dirty_set: HashSet<BrokerId>,
    /// Created in this batch (not in the store yet).
    created: HashSet<BrokerId>,
    /// Agents the batch loaded (locked), and those it changed.
    pub agents: HashMap<String, Agent>,
    pub dirty_agents: Vec<String>,
    /// What agents held when the transaction began (offers and Assigned tasks): how
    /// many tasks on each channel, by agent; read once per agent (see
    /// `distribute::loads`).
    pub holdings: HashMap<String, Vec<(Option<String>, u32)>>,
    /// Touched tasks that an agent held as the store had them: holder and channel (what
    /// `holdings` counted for them).
    pub held_before: HashMap<BrokerId, (String, Option<String>)>,
    /// Per queue: the best waiting tasks, claimed ahead for the claims still to come in
    /// this batch or pass (see `distribute::fill`).
    pub pools: HashMap<String, Pool>,
    /// How many tasks a queue's claim fetches: one for each claim the batch or pass
    /// expects, so a batch of 64 pulls claims once instead of 64 times.
    pub ahead: u32,
}

/// The waiting tasks of one queue a transaction claimed, best first (their bodies are in
/// `Working::tasks`).
#[derive(Default)]
pub(crate) struct Pool {
    pub ids: VecDeque<BrokerId>,
    /// The claim found fewer than it asked for: the store holds no other such task.
    pub exhausted: bool,
}

impl Working {
    fn find(&self, r: &TaskRef) -> Option<&Task> {
        match r {
            TaskRef::Broker(id) => self.tasks.get(id).and_then(Option::as_ref),
            // The oldest live task with that captureId, as `find_task` answers.
            TaskRef::Capture {
                capture_point_id,
                capture_id,
            } => self
                .tasks
                .values()
                .flatten()
                .filter(|t| &t.capture_point_id == capture_point_id && &t.capture_id == capture_id)
                .min_by_key(|t| t.broker_id),
        }
    }

    pub fn load(&mut self, tasks: Vec<Task>) {
        // Grown once, not rehashed (and copied) at every doubling of a pass's chunk.
        self.tasks.reserve(tasks.len());
        for t in tasks {
            self.tasks.entry(t.broker_id).or_insert(Some(t));
        }
    }

    pub fn put(&mut self, id: BrokerId, t: Option<Task>) {
        if self.dirty_set.insert(id) {
            self.dirty.push(id);
            // Its first change: what `tasks` holds is the task as the store has it.
            if let Some(Some(before)) = self.tasks.get(&id) {
                if let Some(agent) = before.holder() {
                    self.held_before
                        .insert(id, (agent.to_owned(), before.channel.clone()));
                }
            }
        }
        self.tasks.insert(id, t);
    }

    /// Keeps a changed agent, to be written back with the batch.
    pub fn put_agent(&mut self, a: Agent) {
        if !self.dirty_agents.contains(&a.id) {
            self.dirty_agents.push(a.id.clone());
        }
        self.agents.insert(a.id.clone(), a);
    }
}

/// Loads every task the batch names (by brokerId, by captureId, or as a duplicate check),
/// all rows for each captureId named, in one query whatever the batch's size.
async fn prefetch(tx: &mut dyn WriteTx, batch: &[Command]) -> Result<Working, StoreError> {
    let mut ids = BTreeSet::new();
    let mut caps = BTreeSet::new();
    for c in batch {
        match &c.op {
            Op::Create(n) if n.on_duplicate != OnDuplicate::Allow => {
                if let Some(cid) = &n.fields.capture_id {
                    caps.insert((n.capture_point_id.clone(), cid.clone()));
                }
            }
            Op::Create(_) | Op::ActOnBest { .. } | Op::Next { .. } => {}
            Op::Act {
                task: TaskRef::Broker(id),
                ..
            }
            | Op::Process {
                task: TaskRef::Broker(id),
            } => {
                ids.insert(*id);
            }
            Op::Act {
                task:
                    TaskRef::Capture {
                        capture_point_id,
                        capture_id,
                    },
                ..
            }
            | Op::Process {
                task:
                    TaskRef::Capture {
                        capture_point_id,
                        capture_id,
                    },
            } => {
                caps.insert((capture_point_id.clone(), capture_id.clone()));
            }
        }
    }
    let mut w = Working::default();
    // Agents first: every transaction locks agents before tasks.
    let agents: Vec<String> = batch
        .iter()
        .filter_map(|c| match &c.op {
            Op::Next { agent } => Some(agent.clone()),
            _ => None,
        })
        .collect();
    if !agents.is_empty() {
        for a in tx.lock_agents(&agents).await? {
            w.agents.insert(a.id.clone(), a);
        }
        // What they hold, in one query for every pull of the batch.
        distribute::read_holdings(tx, &mut w, &agents).await?;
        w.ahead = u32::try_from(agents.len()).unwrap_or(u32::MAX);
    }
    if !ids.is_empty() || !caps.is_empty() {
        let ids: Vec<BrokerId> = ids.into_iter().collect();
        let caps: Vec<(String, String)> = caps.into_iter().collect();
        w.load(tx.load(&ids, &caps).await?);
    }
    Ok(w)
}

fn not_found(task: &TaskRef) -> DomainError {
    DomainError::new(
        ErrorCode::TaskNotFound,
        format!("no task with {}", task.as_param().replace('=', " ")),
    )
    .with_param(task.as_param())
}

/// The best task `select` matches now: the best the store holds outside this batch's
/// touched tasks, or a touched task that matches after the commands before this one.
async fn best(
    tx: &mut dyn WriteTx,
    w: &mut Working,
    select: &Selection,
) -> Result<Option<BrokerId>, StoreError> {
    let stored = tx.claim(select, &w.dirty, 1).await?;
    let mut best: Option<&Task> = None;
    for t in stored.iter().chain(
        w.dirty
            .iter()
            .filter_map(|id| w.tasks.get(id).and_then(Option::as_ref)),
    ) {
        if select.matches(t) && best.is_none_or(|b| Selection::order(t, b).is_lt()) {
            best = Some(t);
        }
    }
    let id = best.map(|t| t.broker_id);
    w.load(stored);
    Ok(id)
}

/// Applies one action to a task of the working set.
pub(crate) fn act(
    w: &mut Working,
    current: &Task,
    action: &Action,
    cmd: &Command,
    ctx: &Ctx<'_>,
) -> (CommandResult, Option<(NewEvent, Task)>) {
    let tr = match decide_at(ctx, current, action, &cmd.meta) {
        Ok(tr) => tr,
        Err(e) => return (Err(e), None),
    };
    w.put(tr.task.broker_id, (!tr.deleted).then(|| tr.task.clone()));
    let out = Outcome {
        task: tr.task.clone(),
        event: None,
        replayed: false,
    };
    (Ok(out), Some((tr.event, tr.task)))
}

/// Who reprioritization acts as: its TaskUpdated events' origin and actor (SPEC 8).
fn rules_meta() -> ActionMeta {
    ActionMeta::default().defaulted("rules")
}

/// Processes task `id` of the working set: each step the rules decide for it (classify,
/// prioritize, or reprioritize), until it rests. Returns the steps' events, or why there
/// was nothing to do.
pub(crate) fn process(
    w: &mut Working,
    id: BrokerId,
    meta: &ActionMeta,
    ctx: &Ctx<'_>,
) -> Result<Vec<(NewEvent, Task)>, DomainError> {
    let mut out = Vec::new();
    // New → Captured → Queued is the longest walk; the bound guards against rules that
    // would keep a task due.
    for _ in 0..3 {
        let Some(Some(current)) = w.tasks.get(&id) else {
            break;
        };
        let Some(d) = ctx.rules.next_step(current, ctx.now, &mut Trace::off()) else {
            break;
        };
        let reprioritize = matches!(d, Decision::Reprioritize(_));
        let (action, reason) = d.into_action();
        let mut m = if reprioritize {
            rules_meta()
        } else {
            meta.clone()
        };
        if reason.is_some() {
            m.reason = reason;
        }
        match decide_at(ctx, current, &action, &m) {
            Ok(tr) => {
                w.put(id, Some(tr.task.clone()));
                out.push((tr.event, tr.task));
            }
            Err(e) if out.is_empty() => return Err(e),
            Err(e) => {
                tracing::debug!(%e, broker_id = %id, "processing stopped");
                break;
            }
        }
        if reprioritize {
            break;
        }
    }
    if let Some(queues) = ctx.queues {
        out.extend(distribute::route(w, id, queues, ctx));
    }
    if out.is_empty() {
        let status = w.tasks.get(&id).and_then(Option::as_ref).map(|t| t.status);
        return Err(DomainError::new(
            ErrorCode::InvalidTransition,
            format!(
                "task {id} in status {} has nothing to process now",
                status.map_or("(gone)", |s| s.as_str())
            ),
        ));
    }
    Ok(out)
}

/// Decides one command against the batch's working set. Returns its result and, when it
/// changed something, the event to record (its seq comes when it is appended).
async fn decide_one(
    tx: &mut dyn WriteTx,
    w: &mut Working,
    cmd: &Command,
    ctx: &Ctx<'_>,
    ids: &mut VecDeque<BrokerId>,
) -> Result<(CommandResult, Option<(NewEvent, Task)>), StoreError> {
    let now = ctx.now;
    if let Err(e) = cmd.meta.validate() {
        return Ok((Err(e), None));
    }
    Ok(match &cmd.op {
        Op::Create(new) => {
            if let Err(e) = new.validate() {
                return Ok((Err(e), None));
            }
            if let (Some(cid), true) = (
                &new.fields.capture_id,
                new.on_duplicate != OnDuplicate::Allow,
            ) {
                let r = TaskRef::Capture {
                    capture_point_id: new.capture_point_id.clone(),
                    capture_id: cid.clone(),
                };
                if let Some(existing) = w.find(&r) {
                    let result = match new.on_duplicate {
                        OnDuplicate::ReturnExisting => Ok(Outcome {
                            task: existing.clone(),
                            event: None,
                            replayed: false,
                        }),
                        _ => Err(DomainError::new(
                            ErrorCode::TaskAlreadyCaptured,
                            format!(
                                "task with CaptureId {cid:?} already captured by {} as BrokerId {}",
                                new.capture_point_id, existing.broker_id
                            ),
                        )
                        .with_param(format!("CaptureId={cid}"))
                        .with_param(format!("BrokerId={}", existing.broker_id))),
                    };
                    return Ok((result, None));
                }
            }
            let id = ids.pop_front().expect("an id was drawn for every create");
            let tr = action::create(new, id, &cmd.meta, now);
            w.created.insert(id);
            w.put(id, Some(tr.task.clone()));
            let out = Outcome {
                task: tr.task.clone(),
                event: None,
                replayed: false,
            };
            (Ok(out), Some((tr.event, tr.task)))
        }
        Op::Act { task, action } => match w.find(task).cloned() {
            Some(current) => match cmd.scope.as_ref().map_or(Ok(()), |s| s.check(&current)) {
                Ok(()) => act(w, &current, action, cmd, ctx),
                Err(e) => (Err(e), None),
            },
            None => (Err(not_found(task)), None),
        },
        // Run by `run`, which records every step's event.
        Op::Process { .. } => unreachable!("processing is run by the batch"),
        Op::Next { agent } => distribute::next(tx, w, agent, ctx.queues, cmd, ctx).await?,
        Op::ActOnBest { select, action } => {
            if let Err(e) = action.validate() {
                return Ok((Err(e), None));
            }
            if cmd.scope.is_some() {
                // "The best task" is a supervisor's choice among every task.
                return Ok((
                    Err(DomainError::new(
                        ErrorCode::Forbidden,
                        "only an admin or a supervisor acts on the best task of a selection",
                    )),
                    None,
                ));
            }
            match best(tx, w, select).await? {
                Some(id) => {
                    let current = w.tasks[&id].clone().expect("a live task was picked");
                    act(w, &current, action, cmd, ctx)
                }
                None => (
                    Err(DomainError::new(
                        ErrorCode::TaskNotFound,
                        format!("no task in status {} matches", select.status),
                    )
                    .with_param(format!("Status={}", select.status))),
                    None,
                ),
            }
        }
    })
}

/// Writes back the agents the batch changed.
pub(crate) async fn save_agents(tx: &mut dyn WriteTx, w: &Working) -> Result<(), StoreError> {
    let changed: Vec<&Agent> = w.dirty_agents.iter().map(|id| &w.agents[id]).collect();
    if !changed.is_empty() {
        tx.update_agents(&changed).await?;
    }
    Ok(())
}

/// Writes the tasks the batch changed, and deletes those it deleted.
pub(crate) async fn save_tasks(tx: &mut dyn WriteTx, w: &Working) -> Result<(), StoreError> {
    let live: Vec<&Task> = w
        .dirty
        .iter()
        .filter_map(|id| w.tasks[id].as_ref())
        .collect();
    if !live.is_empty() {
        tx.put_tasks(&live).await?;
    }
    let gone: Vec<BrokerId> = w
        .dirty
        .iter()
        .filter(|id| w.tasks[*id].is_none() && !w.created.contains(*id))
        .copied()
        .collect();
    if !gone.is_empty() {
        tx.delete_tasks(&gone).await?;
    }
    Ok(())
}

/// Tasks of a reprioritization pass decided at a time: while the store writes one chunk,
/// the next is decided on the blocking pool (a pass of 4,096 spent half its time on each).
const DUE_CHUNK: usize = 512;

/// Claims up to `limit` tasks due for reprioritization (of `share`, when given) and
/// processes each inside `tx`, as an [`Op::Process`] command for each would, but with one
/// claim query instead of a query, a command and a reply per task. Returns how many tasks
/// changed and the newest event's seq.
pub(crate) async fn process_due(
    tx: &mut dyn WriteTx,
    now: Timestamp,
    limit: u32,
    share: Option<DueShare>,
    policy: &Policy,
) -> Result<(usize, Option<i64>), StoreError> {
    let rules = policy.rules.current();
    let claimed = tx.claim_due(now, limit, share).await?;
    // Taken from the front in order (splitting off the rest would copy it once a chunk).
    let mut claimed = claimed.into_iter();
    let chunks: Vec<Vec<Task>> = std::iter::from_fn(|| {
        let chunk: Vec<Task> = claimed.by_ref().take(DUE_CHUNK).collect();
        (!chunk.is_empty()).then_some(chunk)
    })
    .collect();
    let decide = |chunk: Vec<Task>| {
        let (rules, archive_after, queues) =
            (rules.clone(), policy.archive_after, policy.queues.clone());
        tokio::task::spawn_blocking(move || {
            let ctx = Ctx {
                now,
                rules: &rules,
                archive_after,
                queues: queues.as_deref(),
            };
            decide_due(chunk, &ctx)
        })
    };
    let mut chunks = chunks.into_iter();
    let mut next = chunks.next().map(decide);
    let (mut changed, mut last) = (0, None);
    while let Some(decided) = next.take() {
        let (w, parts, n) = match decided.await {
            Ok(d) => d,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => {
                return Err(StoreError::Invalid(format!(
                    "reprioritization stopped: {e}"
                )))
            }
        };
        next = chunks.next().map(decide);
        changed += n;
        if let Some(e) = tx.append_events(parts).await?.last() {
            last = Some(e.seq);
        }
        save_tasks(tx, &w).await?;
        // Written while the next chunk is decided and serialized, not all at the commit.
        tx.flush().await?;
    }
    Ok((changed, last))
}

/// Processes claimed due tasks: the working set, its events, how many changed.
fn decide_due(claimed: Vec<Task>, ctx: &Ctx<'_>) -> (Working, Vec<(NewEvent, Task)>, usize) {
    let ids: Vec<BrokerId> = claimed.iter().map(|t| t.broker_id).collect();
    let mut w = Working::default();
    w.load(claimed);
    let meta = processor::meta();
    let mut parts = Vec::with_capacity(ids.len());
    let mut changed = 0;
    for id in ids {
        match process(&mut w, id, &meta, ctx) {
            Ok(steps) => {
                changed += 1;
                parts.extend(steps);
            }
            Err(e) => tracing::debug!(%e, broker_id = %id, "nothing to process"),
        }
    }
    (w, parts, changed)
}

/// Runs `batch` inside `tx` with a fixed number of store calls whatever its size (plus
/// one per [`Op::ActOnBest`]): load, decide every command in order, then save. Each
/// command gets its own result; a refusal does not affect the others.
///
/// With `policy.process_on_create`, a task a create makes ready is processed in the same
/// transaction (classified, then prioritized, as the [`crate::Processor`] would do a
/// moment later): the same events, without writing the task three times and reading it
/// back twice.
pub(crate) async fn run(
    tx: &mut dyn WriteTx,
    batch: &[Command],
    now: Timestamp,
    policy: &Policy,
) -> Result<Vec<CommandResult>, StoreError> {
    let rules = policy.rules.current();
    let ctx = policy.ctx(now, &rules);
    // Results stored under idempotency keys by earlier batches.
    let keys: Vec<String> = batch
        .iter()
        .filter_map(|c| c.idempotency_key.clone())
        .collect();
    let stored: HashMap<String, String> = if keys.is_empty() {
        HashMap::new()
    } else {
        tx.stored_results(&keys).await?.into_iter().collect()
    };
    let mut w = prefetch(tx, batch).await?;
    let creates = batch
        .iter()
        .filter(|c| matches!(c.op, Op::Create(_)))
        .count();
    let mut ids: VecDeque<BrokerId> = if creates > 0 {
        tx.alloc_ids(creates).await?.into()
    } else {
        VecDeque::new()
    };

    let mut results: Vec<Option<CommandResult>> = Vec::with_capacity(batch.len());
    // Events in the order they happen; each with the command whose result carries it
    // (None: processing that followed a create).
    let mut pending: Vec<(Option<usize>, NewEvent, Task)> = Vec::new();
    // Commands whose result is kept, and commands answered from an earlier result.
    let mut keep: Vec<(usize, &str)> = Vec::new();
    let mut replay_of: Vec<(usize, usize)> = Vec::new();
    let mut first_with_key: HashMap<&str, usize> = HashMap::new();
    for (i, cmd) in batch.iter().enumerate() {
        if let Some(key) = cmd.idempotency_key.as_deref() {
            if let Some(json) = stored.get(key) {
                let mut r: CommandResult = serde_json::from_str(json)?;
                if let Ok(o) = &mut r {
                    o.replayed = true;
                }
                results.push(Some(r));
                continue;
            }
            if let Some(&first) = first_with_key.get(key) {
                replay_of.push((i, first));
                results.push(None);
                continue;
            }
            first_with_key.insert(key, i);
            keep.push((i, key));
        }
        if let Op::Process { task } = &cmd.op {
            let r = match w.find(task).map(|t| t.broker_id) {
                None => Err(not_found(task)),
                Some(id) => process(&mut w, id, &cmd.meta, &ctx).map(|steps| {
                    let task = steps
                        .last()
                        .map(|(_, t)| t.clone())
                        .expect("a step was taken");
                    pending.extend(steps.into_iter().map(|(e, t)| (Some(i), e, t)));
                    Outcome {
                        task,
                        event: None,
                        replayed: false,
                    }
                }),
            };
            results.push(Some(r));
            continue;
        }
        let (r, ev) = decide_one(tx, &mut w, cmd, &ctx, &mut ids).await?;
        if let Some((e, t)) = ev {
            let created = matches!(cmd.op, Op::Create(_)).then_some(t.broker_id);
            pending.push((Some(i), e, t));
            if let Some(id) = created.filter(|_| policy.process_on_create) {
                // A create's processing is not its result: it follows, with its own events.
                if let Ok(steps) = process(&mut w, id, &processor::meta(), &ctx) {
                    pending.extend(steps.into_iter().map(|(e, t)| (None, e, t)));
                }
            }
        }
        results.push(Some(r));
    }

    // Give the events their place in the log and put them in the results.
    let (at, parts): (Vec<Option<usize>>, Vec<(NewEvent, Task)>) =
        pending.into_iter().map(|(i, e, t)| (i, (e, t))).unzip();
    let events = tx.append_events(parts).await?;
    for (i, event) in at.into_iter().zip(events) {
        if let Some(Ok(o)) = i.and_then(|i| results[i].as_mut()) {
            o.event = Some(event);
        }
    }
    for (i, first) in replay_of {
        let mut r = results[first].clone().expect("decided before its repeat");
        if let Ok(o) = &mut r {
            o.replayed = true;
        }
        results[i] = Some(r);
    }

    save_tasks(tx, &w).await?;
    save_agents(tx, &w).await?;
    if !keep.is_empty() {
        let mut rows = Vec::with_capacity(keep.len());
        for (i, key) in keep {
            let json = serde_json::to_string(results[i].as_ref().expect("decided"))?;
            rows.push((key.to_owned(), json));
        }
        tx.record_results(&rows, now).await?;
    }
    Ok(results
        .into_iter()
        .map(|r| r.expect("every command has a result"))
        .collect())
}

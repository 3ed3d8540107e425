//! Distribution inside the write transaction (SPEC 9): routing Queued tasks into their
//! queue, pull (`Op::Next`), push offers and their timeouts, and agents' commands. Every
//! decision here reads tasks and agents as the transaction loaded them, so two nodes never
//! give one task to two agents: tasks are claimed with `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, and an agent's row is locked before its work is counted.

use crate::batch::{act, decide_at, save_agents, save_tasks, Ctx, Policy, Working};
use std::collections::{BTreeSet, HashMap};
use worklane_distribution::{Queue, Queues};
use worklane_domain::{
    agent::check_agent_id, Action, ActionMeta, Agent, AgentCommand, AgentState, AgentView,
    BrokerId, Command, CommandResult, DomainError, ErrorCode, Load, NewEvent, Offer, QueueType,
    Selection, Status, Task, Timestamp,
};
use worklane_store::{StoreError, WriteTx};

/// The channel distribution writes as origin and actor.
pub const ORIGIN: &str = "distribution";

fn meta(reason: Option<&str>) -> ActionMeta {
    ActionMeta {
        reason: reason.map(str::to_owned),
        ..ActionMeta::default().defaulted(ORIGIN)
    }
}

fn agent_not_found(id: &str) -> DomainError {
    DomainError::new(ErrorCode::AgentNotFound, format!("no agent {id:?}"))
        .with_param(format!("AgentId={id}"))
}

fn not_available(agent: &Agent, why: &str) -> DomainError {
    DomainError::new(
        ErrorCode::AgentNotAvailable,
        format!("agent {:?} cannot take a task: {why}", agent.id),
    )
    .with_param(format!("AgentId={}", agent.id))
    .with_param(format!("State={}", agent.state))
}

/// Applies `actions` to task `id` in order, stopping at the first refusal.
fn steps(
    w: &mut Working,
    id: BrokerId,
    actions: Vec<Action>,
    meta: &ActionMeta,
    ctx: &Ctx<'_>,
) -> Vec<(NewEvent, Task)> {
    let mut out = Vec::new();
    for a in actions {
        let Some(Some(cur)) = w.tasks.get(&id) else {
            break;
        };
        match decide_at(ctx, cur, &a, meta) {
            Ok(tr) => {
                w.put(id, Some(tr.task.clone()));
                out.push((tr.event, tr.task));
            }
            Err(e) => {
                tracing::debug!(%e, broker_id = %id, "distribution step refused");
                break;
            }
        }
    }
    out
}

/// Routes task `id` when it is Queued and active: TaskRouteRequested, TaskDistributed
/// with a new distributionId, TaskDistributedQueue into the queue its process names (or
/// the first whose `when` holds). A task no queue takes is ErrorHeld, naming why.
pub(crate) fn route(
    w: &mut Working,
    id: BrokerId,
    queues: &Queues,
    ctx: &Ctx<'_>,
) -> Vec<(NewEvent, Task)> {
    let Some(Some(t)) = w.tasks.get(&id) else {
        return Vec::new();
    };
    if t.status != Status::Queued || !t.is_active_at(ctx.now) {
        return Vec::new();
    }
    let named = t.process_id.as_deref().and_then(|p| ctx.rules.queue_of(p));
    let actions = match queues.route(t, named, ctx.now) {
        Ok(Some(q)) => vec![
            Action::RouteRequest,
            Action::Distribute {
                // Unique: the version the task has once distributed.
                distribution_id: format!("{}.{}", t.broker_id, t.version + 2),
                distribution_point_id: queues.settings.point_id.clone(),
            },
            Action::Enqueue {
                queue: Some(q.id.clone()),
                queue_type: QueueType::InteractionQueue,
                queue_target: None,
            },
        ],
        Ok(None) => vec![Action::ErrorHold {
            error: "no queue takes the task (no process queue, and no queue's `when` holds)"
                .to_owned(),
        }],
        Err(e) => vec![Action::ErrorHold { error: e }],
    };
    steps(w, id, actions, &meta(None), ctx)
}

/// Reads what `ids` held when the transaction began, for those not read yet.
pub(crate) async fn read_holdings(
    tx: &mut dyn WriteTx,
    w: &mut Working,
    ids: &[String],
) -> Result<(), StoreError> {
    let missing: Vec<String> = ids
        .iter()
        .filter(|id| !w.holdings.contains_key(*id))
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    for id in &missing {
        w.holdings.entry(id.clone()).or_default();
    }
    for h in tx.holdings(&missing).await? {
        if let Some(held) = w.holdings.get_mut(&h.agent) {
            held.push((h.channel, h.tasks));
        }
    }
    Ok(())
}

/// The work `agents` hold: what they held when the transaction began (counted without
/// loading those tasks), less the tasks this transaction changed as they were, plus
/// those tasks as it left them.
async fn loads(
    tx: &mut dyn WriteTx,
    w: &mut Working,
    agents: &[&Agent],
) -> Result<HashMap<String, Load>, StoreError> {
    let ids: Vec<String> = agents.iter().map(|a| a.id.clone()).collect();
    read_holdings(tx, w, &ids).await?;
    let by_id: HashMap<&str, &Agent> = agents.iter().map(|a| (a.id.as_str(), *a)).collect();
    let mut out: HashMap<String, Load> = HashMap::with_capacity(agents.len());
    for a in agents {
        let mut load = Load::default();
        for (channel, n) in &w.holdings[&a.id] {
            load.add_n(a.bucket(channel.as_deref()).unwrap_or("*"), *n);
        }
        out.insert(a.id.clone(), load);
    }
    for id in &w.dirty {
        if let Some((holder, channel)) = w.held_before.get(id) {
            if let Some(a) = by_id.get(holder.as_str()) {
                let bucket = a.bucket(channel.as_deref()).unwrap_or("*");
                out.get_mut(&a.id)
                    .expect("every agent has a load")
                    .remove(bucket);
            }
        }
        let now_held = w.tasks.get(id).and_then(Option::as_ref);
        if let Some((t, a)) = now_held.and_then(|t| Some((t, *by_id.get(t.holder()?)?))) {
            let bucket = a.bucket(t.channel.as_deref()).unwrap_or("*");
            out.get_mut(&a.id)
                .expect("every agent has a load")
                .add(bucket);
        }
    }
    Ok(out)
}

/// The best task of `queues` (those `wanted` keeps) that `agent`, holding `load`, may
/// take: in queue order (priority, due date, age), with room on its channel, and meeting
/// the queue's `requires`.
async fn best_for(
    tx: &mut dyn WriteTx,
    w: &mut Working,
    agent: &Agent,
    load: &Load,
    queues: &Queues,
    wanted: impl Fn(&Queue) -> bool,
    now: Timestamp,
) -> Result<Option<BrokerId>, StoreError> {
    let mut best: Option<Task> = None;
    let any_channel = agent.takes_any_channel(load);
    for q in queues.iter().filter(|q| wanted(q)) {
        let per_task = match q.admits(agent, now) {
            Ok(Some(true)) => false,
            Ok(Some(false)) => continue,
            Ok(None) => true,
            Err(e) => {
                tracing::warn!(queue = %q.id, agent = %agent.id, error = %e, "a queue's requires failed");
                continue;
            }
        };
        let sel = Selection {
            queue: Some(q.id.clone()),
            ..Selection::in_queues(Vec::new())
        };
        // The first task fits unless the task or its channel can rule it out.
        let page = if per_task || !any_channel {
            queues.settings.scan
        } else {
            1
        };
        fill(tx, w, &sel, &q.id, page).await?;
        let stored = w.pools[&q.id]
            .ids
            .iter()
            .take(page as usize)
            .filter_map(|id| w.tasks.get(id).and_then(Option::as_ref));
        let touched = w
            .dirty
            .iter()
            .filter_map(|id| w.tasks.get(id).and_then(Option::as_ref))
            .filter(|t| sel.matches(t));
        for t in stored.chain(touched) {
            if best
                .as_ref()
                .is_some_and(|b| !Selection::order(t, b).is_lt())
            {
                continue;
            }
            if !agent.has_room(load, t.channel.as_deref()) {
                continue;
            }
            if per_task {
                match q.may_take(agent, t, now) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        tracing::debug!(queue = %q.id, broker_id = %t.broker_id, error = %e, "requires failed for a task");
                        continue;
                    }
                }
            }
            best = Some(t.clone());
        }
    }
    Ok(best.map(|t| t.broker_id))
}

/// Makes the pool of queue `key` (tasks `sel` finds, best first) hold `page` tasks this
/// transaction has not touched, or all the store has. A claim asks for `Working::ahead`
/// tasks, so the claims of a batch's pulls or a pass's offers after the first are served
/// from memory. Touched tasks are left out of the pool: callers weigh them as they are now.
async fn fill(
    tx: &mut dyn WriteTx,
    w: &mut Working,
    sel: &Selection,
    key: &str,
    page: u32,
) -> Result<(), StoreError> {
    let pool = w.pools.entry(key.to_owned()).or_default();
    let dirty = &w.dirty_set;
    pool.ids.retain(|id| !dirty.contains(id));
    if pool.exhausted || pool.ids.len() >= page as usize {
        return Ok(());
    }
    let want = page.max(w.ahead);
    let got = tx.claim(sel, &w.dirty, want).await?;
    let pool = w.pools.get_mut(key).expect("made above");
    pool.exhausted = got.len() < want as usize;
    pool.ids = got.iter().map(|t| t.broker_id).collect();
    w.load(got);
    Ok(())
}

/// Pull: assigns `agent_id` the best task it may take from the pull queues.
pub(crate) async fn next(
    tx: &mut dyn WriteTx,
    w: &mut Working,
    agent_id: &str,
    queues: Option<&Queues>,
    cmd: &Command,
    ctx: &Ctx<'_>,
) -> Result<(CommandResult, Option<(NewEvent, Task)>), StoreError> {
    let Some(agent) = w.agents.get(agent_id).cloned() else {
        return Ok((Err(agent_not_found(agent_id)), None));
    };
    if agent.state != AgentState::Ready {
        return Ok((Err(not_available(&agent, "it is not Ready")), None));
    }
    let load = loads(tx, w, &[&agent])
        .await?
        .remove(&agent.id)
        .unwrap_or_default();
    if !agent.has_any_room(&load) {
        return Ok((Err(not_available(&agent, "it is at capacity")), None));
    }
    let pick = match queues {
        Some(queues) => best_for(tx, w, &agent, &load, queues, |q| q.mode.pulls(), ctx.now).await?,
        None => None,
    };
    let Some(id) = pick else {
        return Ok((
            Err(DomainError::new(
                ErrorCode::TaskNotFound,
                format!("no task agent {agent_id:?} may take is waiting"),
            )
            .with_param(format!("AgentId={agent_id}"))),
            None,
        ));
    };
    let current = w.tasks[&id].clone().expect("a live task was picked");
    let (r, ev) = act(
        w,
        &current,
        &Action::Assign {
            user: agent.id.clone(),
        },
        cmd,
        ctx,
    );
    if r.is_ok() {
        let mut a = agent;
        a.waiting_since = ctx.now;
        a.version += 1;
        w.put_agent(a);
    }
    Ok((r, ev))
}

/// One distribution pass, in its own transaction: routes up to `limit` Queued tasks,
/// returns offers that timed out, and offers the best task to each Ready agent with
/// room, the one waiting longest first. Returns how many changes it made and the newest
/// event's seq.
pub(crate) async fn dispatch(
    tx: &mut dyn WriteTx,
    now: Timestamp,
    limit: u32,
    policy: &Policy,
) -> Result<Dispatched, StoreError> {
    let mut expiries = BTreeSet::new();
    let Some(queues) = policy.queues.as_deref() else {
        return Ok(Dispatched::default());
    };
    let rules = policy.rules.current();
    let ctx = policy.ctx(now, &rules);
    let mut w = Working::default();
    let mut parts = Vec::new();
    let mut changes = 0;
    // Agents first (every transaction locks agents before tasks); PostgreSQL skips agents
    // and tasks another transaction holds, so this pass never waits.
    // Ready agents in waiting order; those no push queue admits (remembered by version)
    // are not loaded.
    let wanted: Vec<String> = tx
        .ready_agent_ids()
        .await?
        .into_iter()
        .filter(|(id, version)| !queues.known_unpushable(id, *version))
        .take(limit as usize)
        .map(|(id, _)| id)
        .collect();
    let mut agents = tx.claim_agents(&wanted).await?;
    agents.sort_by(|a, b| (a.waiting_since, &a.id).cmp(&(b.waiting_since, &b.id)));

    for t in tx.claim_expired_offers(now, limit).await? {
        let id = t.broker_id;
        let offer_id = t.offer.as_ref().map(|o| o.id.clone());
        w.load(vec![t]);
        let s = steps(
            &mut w,
            id,
            vec![Action::Return { offer_id }],
            &meta(Some("offer timed out")),
            &ctx,
        );
        changes += usize::from(!s.is_empty());
        parts.extend(s);
    }

    let queued = tx
        .claim(&Selection::status(Status::Queued), &w.dirty, limit)
        .await?;
    let ids: Vec<BrokerId> = queued.iter().map(|t| t.broker_id).collect();
    w.load(queued);
    for id in ids {
        let s = route(&mut w, id, queues, &ctx);
        changes += usize::from(!s.is_empty());
        parts.extend(s);
    }

    // Only agents some push queue may admit: their work is counted and claims are run
    // for them, not for every Ready agent (pull-only agents cost nothing here).
    let agents: Vec<Agent> = agents
        .into_iter()
        .filter(|a| queues.may_push_to(a, now))
        .collect();
    if !agents.is_empty() {
        let refs: Vec<&Agent> = agents.iter().collect();
        let mut loads = loads(tx, &mut w, &refs).await?;
        w.ahead = u32::try_from(agents.len()).unwrap_or(u32::MAX);
        // Rounds: each agent with room gets the best task it may take, longest waiting
        // first; then again for those with room left, until tasks, room or the pass's
        // limit run out. An agent with room for several tasks gets them in one pass
        // instead of one per pass.
        let mut open: Vec<&Agent> = agents.iter().collect();
        let mut offered = 0usize;
        let limit = limit as usize;
        while !open.is_empty() && offered < limit {
            let mut again = Vec::with_capacity(open.len());
            for agent in open {
                if offered >= limit {
                    break;
                }
                let load = loads.get_mut(&agent.id).expect("every agent has a load");
                if !agent.has_any_room(load) {
                    continue;
                }
                let pick =
                    best_for(tx, &mut w, agent, load, queues, |q| q.mode.pushes(), now).await?;
                let Some(id) = pick else { continue };
                let t = w.tasks[&id].clone().expect("a live task was picked");
                let Some(q) = t.queue.as_deref().and_then(|q| queues.get(q)) else {
                    continue;
                };
                let timeout = jiff::SignedDuration::try_from(q.offer_timeout)
                    .unwrap_or(jiff::SignedDuration::from_secs(30));
                let expires = now.checked_add(timeout).unwrap_or(now);
                let offer = Offer {
                    id: format!("{}-{}", t.broker_id, t.version + 1),
                    agent: agent.id.clone(),
                    offered_date_time: now,
                    expires_date_time: expires,
                };
                let s = steps(&mut w, id, vec![Action::Offer(offer)], &meta(None), &ctx);
                if s.is_empty() {
                    continue;
                }
                expiries.insert(expires);
                changes += 1;
                offered += 1;
                parts.extend(s);
                load.add(agent.bucket(t.channel.as_deref()).unwrap_or("*"));
                let first = !w.dirty_agents.contains(&agent.id);
                let mut a = w.agents.get(&agent.id).unwrap_or(agent).clone();
                a.waiting_since = now;
                if first {
                    a.version += 1;
                }
                w.put_agent(a);
                again.push(agent);
            }
            open = again;
        }
    }

    let last = tx.append_events(parts).await?.last().map(|e| e.seq);
    save_tasks(tx, &w).await?;
    save_agents(tx, &w).await?;
    Ok(Dispatched {
        changes,
        last,
        expiries,
    })
}

/// What a distribution pass did.
#[derive(Debug, Default)]
pub(crate) struct Dispatched {
    /// Tasks routed, offers returned and offers made.
    pub(crate) changes: usize,
    /// The newest event's seq.
    pub(crate) last: Option<i64>,
    /// When the offers it made expire, each time once.
    pub(crate) expiries: BTreeSet<Timestamp>,
}

/// Applies an agent command in its own transaction, with what follows from it: an agent
/// leaving Ready loses its offers (TaskReturned). Returns the agent as it is now.
pub(crate) async fn agent_command(
    tx: &mut dyn WriteTx,
    cmd: &AgentCommand,
    now: Timestamp,
    policy: &Policy,
) -> Result<(Result<AgentView, DomainError>, Option<i64>), StoreError> {
    if let Err(e) = check_agent_id(cmd.id()) {
        return Ok((Err(e), None));
    }
    let agent = match cmd {
        AgentCommand::Create { id, profile } => {
            if let Err(e) = profile.validate() {
                return Ok((Err(e), None));
            }
            let a = Agent::new(id.clone(), profile.clone(), now);
            if !tx.insert_agent(&a).await? {
                let e = DomainError::new(ErrorCode::AgentExists, format!("agent {id:?} exists"))
                    .with_param(format!("AgentId={id}"));
                return Ok((Err(e), None));
            }
            return Ok((Ok(AgentView::new(a, &Load::default())), None));
        }
        _ => tx.lock_agents(&[cmd.id().to_owned()]).await?.pop(),
    };
    let Some(mut agent) = agent else {
        return Ok((Err(agent_not_found(cmd.id())), None));
    };
    let leaving = match cmd {
        AgentCommand::Create { .. } => unreachable!("handled above"),
        AgentCommand::Update { patch, .. } => {
            let profile = patch.apply(&agent.profile);
            if let Err(e) = profile.validate() {
                return Ok((Err(e), None));
            }
            agent.profile = profile;
            None
        }
        AgentCommand::SetState { state, reason, .. } => {
            if let Some(r) = reason {
                if let Err(e) = worklane_domain::fields::check_len("reason", r, 255) {
                    return Ok((Err(e), None));
                }
            }
            if *state == AgentState::Ready && agent.state != AgentState::Ready {
                agent.waiting_since = now;
            }
            if *state != agent.state {
                agent.state_date_time = now;
            }
            agent.state = *state;
            agent.reason = reason.clone();
            match state {
                AgentState::Ready => None,
                AgentState::NotReady => Some("agent not ready"),
                AgentState::LoggedOut => Some("agent logged out"),
            }
        }
        AgentCommand::Disconnected { .. } => {
            if agent.state == AgentState::Ready {
                agent.state = AgentState::NotReady;
                agent.reason = Some("disconnected".to_owned());
                agent.state_date_time = now;
            }
            Some("agent disconnected")
        }
    };
    agent.version += 1;
    let rules = policy.rules.current();
    let ctx = policy.ctx(now, &rules);
    let mut w = Working::default();
    let held = tx.work_of(&[agent.id.clone()]).await?;
    let mut parts = Vec::new();
    let offered: Vec<BrokerId> = held
        .iter()
        .filter(|t| t.offer.as_ref().is_some_and(|o| o.agent == agent.id))
        .map(|t| t.broker_id)
        .collect();
    w.load(held);
    if let Some(why) = leaving {
        for id in offered {
            parts.extend(steps(
                &mut w,
                id,
                vec![Action::Return { offer_id: None }],
                &meta(Some(why)),
                &ctx,
            ));
        }
    }
    let last = tx.append_events(parts).await?.last().map(|e| e.seq);
    save_tasks(tx, &w).await?;
    w.put_agent(agent.clone());
    save_agents(tx, &w).await?;
    let load = Load::of(&agent, w.tasks.values().flatten());
    Ok((Ok(AgentView::new(agent, &load)), last))
}

//! The supervisor's queues (depth, oldest, overdue, agents ready) and agents (state,
//! current tasks, capacity used).

use crate::page::{error, html, Layout, Viewer};
use crate::view::{time, Time};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use std::collections::BTreeMap;
use worklane_api::{ApiError, AppState};
use worklane_domain::{AgentState, Status};
use worklane_store::{AgentQuery, TaskQuery};

struct QueueRow {
    id: String,
    mode: String,
    depth: i64,
    oldest: Option<Time>,
    overdue: i64,
    ready: usize,
}

#[derive(Template)]
#[template(path = "queues.html")]
struct QueuesPage {
    layout: Layout,
    configured: bool,
    rows: Vec<QueueRow>,
}

/// `GET /console/queues`.
pub async fn queues(State(st): State<AppState>, viewer: Viewer) -> Response {
    match queue_rows(&st, &viewer.tz).await {
        Ok((configured, rows)) => {
            let last_seq = st.engine.events().last_seq().await.unwrap_or(0);
            html(&QueuesPage {
                layout: viewer.layout("Queues", "queues", last_seq),
                configured,
                rows,
            })
        }
        Err(e) => error(&viewer, e),
    }
}

async fn queue_rows(
    st: &AppState,
    tz: &jiff::tz::TimeZone,
) -> Result<(bool, Vec<QueueRow>), ApiError> {
    let Some(queues) = st.engine.queues() else {
        return Ok((false, vec![]));
    };
    let now = st.engine.now();
    let mut depth: BTreeMap<String, i64> = BTreeMap::new();
    for c in st.engine.stats().backlog().await? {
        let open = c.status.parse::<Status>().is_ok_and(|s| !s.is_final());
        if let (true, Some(q)) = (open, c.queue) {
            *depth.entry(q).or_default() += c.tasks;
        }
    }
    let overdue: BTreeMap<Option<String>, i64> =
        st.engine.stats().overdue(now).await?.into_iter().collect();
    let ready = st
        .engine
        .agents()
        .list_agents(&AgentQuery {
            state: Some(AgentState::Ready),
            after: None,
            limit: 1000,
        })
        .await?;
    let mut rows = vec![];
    for q in queues.iter() {
        let tasks = st.engine.tasks();
        let oldest = tasks
            .list_tasks(&TaskQuery {
                queue: Some(q.id.clone()),
                status: Some(Status::Distributed),
                limit: 1,
                ..Default::default()
            })
            .await?;
        rows.push(QueueRow {
            id: q.id.clone(),
            mode: format!("{:?}", q.mode).to_lowercase(),
            depth: depth.get(&q.id).copied().unwrap_or(0),
            oldest: oldest.first().map(|t| time(t.created_date_time, tz)),
            overdue: overdue.get(&Some(q.id.clone())).copied().unwrap_or(0),
            ready: ready
                .iter()
                .filter(|a| q.admits(a, now).ok().flatten() != Some(false))
                .count(),
        });
    }
    Ok((true, rows))
}

struct AgentRow {
    id: String,
    name: String,
    state: String,
    reason: String,
    since: Time,
    tasks: Vec<(i64, &'static str)>,
    capacity: Vec<(String, u32, u32)>,
    groups: String,
}

#[derive(Template)]
#[template(path = "agents.html")]
struct AgentsPage {
    layout: Layout,
    rows: Vec<AgentRow>,
}

/// `GET /console/agents`.
pub async fn agents(State(st): State<AppState>, viewer: Viewer) -> Response {
    let rows = async {
        let agents = st
            .engine
            .agents()
            .list_agents(&AgentQuery {
                state: None,
                after: None,
                limit: 1000,
            })
            .await?;
        let ids: Vec<String> = agents.iter().map(|a| a.id.clone()).collect();
        let work = st.engine.agents().work_of(&ids).await?;
        let views = worklane_api::agents::views(&st, agents).await?;
        Ok::<_, ApiError>(
            views
                .into_iter()
                .map(|v| {
                    let a = &v.agent;
                    AgentRow {
                        id: a.id.clone(),
                        name: a.profile.name.clone().unwrap_or_default(),
                        state: v.shown_state.clone(),
                        reason: a.reason.clone().unwrap_or_default(),
                        since: time(a.state_date_time, &viewer.tz),
                        tasks: work
                            .iter()
                            .filter(|t| {
                                t.assigned_to_user.as_deref() == Some(&a.id)
                                    || t.offer.as_ref().is_some_and(|o| o.agent == a.id)
                            })
                            .map(|t| (t.broker_id.0, t.status.as_str()))
                            .collect(),
                        capacity: a
                            .profile
                            .capacity
                            .iter()
                            .map(|(k, max)| (k.clone(), v.load.get(k).copied().unwrap_or(0), *max))
                            .collect(),
                        groups: a.profile.groups.join(", "),
                    }
                })
                .collect::<Vec<_>>(),
        )
    }
    .await;
    match rows {
        Ok(rows) => {
            let last_seq = st.engine.events().last_seq().await.unwrap_or(0);
            html(&AgentsPage {
                layout: viewer.layout("Agents", "agents", last_seq),
                rows,
            })
        }
        Err(e) => error(&viewer, e),
    }
}

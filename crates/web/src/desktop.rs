//! The agent desktop: Ready / NotReady with a reason, offers with the time left, current
//! tasks with their data (complete with a result code, transfer, move to the workbin), and
//! the agent's workbin. The page follows the agent's channel
//! (`/api/v1/agents/{id}/stream`), so an offer appears without a reload.

use crate::page::{error, html, Layout, Viewer};
use crate::view::{time, Time};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use worklane_api::{ApiError, AppState};
use worklane_domain::{QueueType, Status, Task};
use worklane_store::TaskQuery;

struct Work {
    id: i64,
    capture_id: String,
    process: String,
    queue: String,
    priority: i32,
    due: Option<Time>,
    data: Vec<(String, String)>,
}

impl Work {
    fn of(t: &Task, tz: &jiff::tz::TimeZone) -> Self {
        Work {
            id: t.broker_id.0,
            capture_id: t.capture_id.clone(),
            process: t.process_id.clone().unwrap_or_default(),
            queue: t.queue.clone().unwrap_or_default(),
            priority: t.priority,
            due: t.due_date_time.map(|d| time(d, tz)),
            data: t.data.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }
}

struct OfferRow {
    offer_id: String,
    expires: Time,
    work: Work,
}

#[derive(Template)]
#[template(path = "desktop.html")]
struct Desktop {
    layout: Layout,
    agent: String,
    state: String,
    reason: String,
    server_now: String,
    offers: Vec<OfferRow>,
    current: Vec<Work>,
    workbin: Vec<Work>,
    queues: Vec<String>,
}

/// `GET /console/desktop`: the signed-in agent's desktop.
pub async fn page(State(st): State<AppState>, viewer: Viewer) -> Response {
    let Some(agent) = viewer.agent.clone() else {
        return error(
            &viewer,
            ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "FORBIDDEN",
                "the desktop is an agent's; this user is not an agent",
            ),
        );
    };
    let loaded = async {
        let view = worklane_api::agents::one(&st, &agent).await?;
        let work = st
            .engine
            .agents()
            .work_of(std::slice::from_ref(&agent))
            .await?;
        let workbin = st
            .engine
            .tasks()
            .list_tasks(&TaskQuery {
                queue_target: Some(agent.clone()),
                status: Some(Status::Distributed),
                limit: 200,
                ..Default::default()
            })
            .await?;
        Ok::<_, ApiError>((view, work, workbin))
    }
    .await;
    let (view, work, workbin) = match loaded {
        Ok(l) => l,
        Err(e) => return error(&viewer, e),
    };
    let tz = &viewer.tz;
    let offers = work
        .iter()
        .filter_map(|t| {
            let o = t.offer.as_ref().filter(|o| o.agent == agent)?;
            Some(OfferRow {
                offer_id: o.id.clone(),
                expires: time(o.expires_date_time, tz),
                work: Work::of(t, tz),
            })
        })
        .collect();
    let current = work
        .iter()
        .filter(|t| t.status == Status::Assigned && t.assigned_to_user.as_deref() == Some(&agent))
        .map(|t| Work::of(t, tz))
        .collect();
    let workbin = workbin
        .iter()
        .filter(|t| t.queue_type == Some(QueueType::AgentWorkbin))
        .map(|t| Work::of(t, tz))
        .collect();
    let last_seq = st.engine.events().last_seq().await.unwrap_or(0);
    html(&Desktop {
        layout: viewer.layout("Desktop", "desktop", last_seq),
        state: view.shown_state.clone(),
        reason: view.agent.reason.clone().unwrap_or_default(),
        server_now: st.engine.now().to_string(),
        offers,
        current,
        workbin,
        queues: st
            .engine
            .queues()
            .map(|q| q.iter().map(|q| q.id.clone()).collect())
            .unwrap_or_default(),
        agent,
    })
}

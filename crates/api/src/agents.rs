//! Distribution's REST routes (SPEC 9): agents, their state, pull (`next`), offers and
//! their answers, the agent's SSE channel, and transfers and workbins of tasks.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{from_value, Json, OptionalJson, Path, Query};
use crate::tasks::{parse_id, ActionBody, REST_ORIGIN};
use crate::{AppState, Caller};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use worklane_domain::{
    Action, ActionMeta, AgentCommand, AgentPatch, AgentProfile, AgentState, AgentView, Command,
    Load, Offer, QueueType, Task, TaskRef,
};
use worklane_store::AgentQuery;

/// `POST /api/v1/agents`: a new agent (LoggedOut until it sets its state).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateAgentBody {
    pub id: String,
    pub name: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Skill name → level 0..=10.
    #[serde(default, deserialize_with = "worklane_domain::agent::whole::map")]
    pub skills: std::collections::BTreeMap<String, u8>,
    /// Channel → tasks held at once (0..=100); `"*"` for every other channel.
    #[serde(default, deserialize_with = "worklane_domain::agent::whole::map")]
    pub capacity: std::collections::BTreeMap<String, u32>,
    pub place: Option<String>,
    #[serde(default)]
    pub place_groups: Vec<String>,
}

/// `POST /api/v1/agents/{id}/state`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateBody {
    pub state: AgentState,
    pub reason: Option<String>,
}

/// `POST /api/v1/tasks/{brokerId}/transfer`: to a queue or to an agent (one of them).
// Documents the body in the OpenAPI schema; the handler reads it by its keys.
#[allow(dead_code)]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum TransferBody {
    Queue(TransferToQueue),
    Agent(TransferToAgent),
}

/// A transfer into an interaction queue.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransferToQueue {
    pub queue: String,
    pub actor: Option<String>,
    pub reason: Option<String>,
}

/// A transfer to an agent: Assigned to it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransferToAgent {
    pub agent: String,
    pub actor: Option<String>,
    pub reason: Option<String>,
}

/// `POST /api/v1/tasks/{brokerId}/workbin`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkbinBody {
    pub queue_type: QueueType,
    pub queue_target: String,
    pub actor: Option<String>,
    pub reason: Option<String>,
}

/// A live offer and the task it reserves.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfferView {
    pub offer: Offer,
    pub task: Task,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AgentParams {
    /// Only agents in this state (Ready, NotReady, LoggedOut).
    pub state: Option<AgentState>,
    /// Agents whose id sorts after this one (the last id of the previous page).
    pub after: Option<String>,
    /// At most this many (1..=1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Events after this seq (or the `Last-Event-ID` header): resumes the channel.
    pub after: Option<i64>,
}

/// A REST action's audit attributes (the caller's actor, or REST), as tasks' routes make
/// them.
fn meta(req: &Caller, actor: Option<String>, reason: Option<String>) -> ActionMeta {
    crate::tasks::meta(req, actor, reason, None, REST_ORIGIN)
}

/// Agents as the API shows them: each with its shown state and load.
pub async fn views(
    st: &AppState,
    agents: Vec<worklane_domain::Agent>,
) -> Result<Vec<AgentView>, ApiError> {
    let ids: Vec<String> = agents.iter().map(|a| a.id.clone()).collect();
    let work = st.engine.agents().work_of(&ids).await?;
    Ok(agents
        .into_iter()
        .map(|a| {
            let load = Load::of(&a, &work);
            AgentView::new(a, &load)
        })
        .collect())
}

#[utoipa::path(post, path = "/api/v1/agents", tag = "agents", request_body = CreateAgentBody,
    responses((status = 201, body = AgentView), (status = 409, description = "AGENT_EXISTS", body = ErrorBody), (status = 400, description = "INVALID_FORMAT: a bad id, parameter or attribute, named in the message and parameters", body = ErrorBody), (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn create_agent(
    State(st): State<AppState>,
    Json(body): Json<CreateAgentBody>,
) -> Result<Response, ApiError> {
    let v = st
        .engine
        .agent(AgentCommand::Create {
            id: body.id,
            profile: AgentProfile {
                name: body.name,
                groups: body.groups,
                skills: body.skills,
                capacity: body.capacity,
                place: body.place,
                place_groups: body.place_groups,
            },
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(v)).into_response())
}

#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", params(AgentParams),
    responses((status = 200, body = Vec<AgentView>), (status = 400, description = "INVALID_FORMAT: a bad id, parameter or attribute, named in the message and parameters", body = ErrorBody), (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn list_agents(
    State(st): State<AppState>,
    Query(p): Query<AgentParams>,
) -> Result<axum::Json<Vec<AgentView>>, ApiError> {
    if let Some(l) = p.limit {
        if !(1..=1000).contains(&l) {
            return Err(ApiError::invalid("limit", "must be 1..=1000"));
        }
    }
    let q = AgentQuery {
        state: p.state,
        after: p.after,
        limit: p.limit.unwrap_or(100),
    };
    let agents = st.engine.agents().list_agents(&q).await?;
    Ok(axum::Json(views(&st, agents).await?))
}

/// One agent as the API shows it; AGENT_NOT_FOUND when there is none.
pub async fn one(st: &AppState, id: &str) -> Result<AgentView, ApiError> {
    worklane_domain::agent::check_agent_id(id)?;
    let Some(a) = st.engine.agents().get_agent(id).await? else {
        return Err(worklane_domain::DomainError::new(
            worklane_domain::ErrorCode::AgentNotFound,
            format!("no agent {id:?}"),
        )
        .with_param(format!("AgentId={id}"))
        .into());
    };
    Ok(views(st, vec![a]).await?.remove(0))
}

#[utoipa::path(get, path = "/api/v1/agents/{id}", tag = "agents", params(("id" = String, Path)),
    responses((status = 200, body = AgentView), (status = 404, description = "AGENT_NOT_FOUND", body = ErrorBody), (status = 400, description = "INVALID_FORMAT: a bad id, parameter or attribute, named in the message and parameters", body = ErrorBody), (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn get_agent(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<AgentView>, ApiError> {
    Ok(axum::Json(one(&st, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/agents/{id}", tag = "agents", params(("id" = String, Path)), request_body = AgentPatch,
    responses((status = 200, body = AgentView), (status = 404, description = "AGENT_NOT_FOUND", body = ErrorBody), (status = 400, description = "INVALID_FORMAT: a bad id, parameter or attribute, named in the message and parameters", body = ErrorBody), (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn update_agent(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Json(patch): Json<AgentPatch>,
) -> Result<axum::Json<AgentView>, ApiError> {
    Ok(axum::Json(
        st.engine.agent(AgentCommand::Update { id, patch }).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/agents/{id}/state", tag = "agents", params(("id" = String, Path)), request_body = StateBody,
    responses((status = 200, description = "the agent; leaving Ready returned its offers to their queues", body = AgentView), (status = 404, description = "AGENT_NOT_FOUND", body = ErrorBody), (status = 400, description = "INVALID_FORMAT: a bad id, parameter or attribute, named in the message and parameters", body = ErrorBody), (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn set_state(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<StateBody>,
) -> Result<axum::Json<AgentView>, ApiError> {
    Ok(axum::Json(
        st.engine
            .agent(AgentCommand::SetState {
                id,
                state: body.state,
                reason: body.reason,
            })
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/agents/{id}/next", tag = "agents", params(("id" = String, Path)),
    responses((status = 200, description = "the task, now Assigned to the agent", body = Task), (status = 204, description = "no task the agent may take is waiting"),
              (status = 404, description = "AGENT_NOT_FOUND", body = ErrorBody), (status = 409, description = "AGENT_NOT_AVAILABLE: not Ready, or at capacity", body = ErrorBody), (status = 400, description = "INVALID_FORMAT: a bad id, parameter or attribute, named in the message and parameters", body = ErrorBody), (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn next(
    State(st): State<AppState>,
    req: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    worklane_domain::agent::check_agent_id(&id)?;
    let cmd = Command {
        op: worklane_domain::Op::Next { agent: id.clone() },
        meta: meta(&req, Some(id), None),
        idempotency_key: None,
        scope: None,
    };
    match st.engine.execute_result(cmd).await? {
        Ok(o) => Ok(axum::Json(o.task).into_response()),
        Err(e) if e.code == worklane_domain::ErrorCode::TaskNotFound => {
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(get, path = "/api/v1/agents/{id}/offers", tag = "agents", params(("id" = String, Path)),
    responses((status = 200, body = Vec<OfferView>), (status = 404, description = "AGENT_NOT_FOUND", body = ErrorBody), (status = 400, description = "INVALID_FORMAT: a bad id, parameter or attribute, named in the message and parameters", body = ErrorBody), (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn offers(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<OfferView>>, ApiError> {
    one(&st, &id).await?;
    let work = st
        .engine
        .agents()
        .work_of(std::slice::from_ref(&id))
        .await?;
    Ok(axum::Json(
        work.into_iter()
            .filter_map(|t| {
                let o = t.offer.clone().filter(|o| o.agent == id)?;
                Some(OfferView { offer: o, task: t })
            })
            .collect(),
    ))
}

async fn answer(
    st: &AppState,
    req: &Caller,
    offer_id: String,
    accept: bool,
    body: ActionBody,
) -> Result<axum::Json<Task>, ApiError> {
    let Some(id) = Offer::task_of(&offer_id) else {
        return Err(ApiError::invalid(
            "offerId",
            "is not an offer id (<brokerId>-<n>)",
        ));
    };
    let offer = offer_id.clone();
    let action = if accept {
        Action::Accept { offer_id }
    } else {
        Action::Return {
            offer_id: Some(offer_id),
        }
    };
    let reason = body
        .reason
        .or_else(|| (!accept).then(|| "rejected".to_owned()));
    let out = st
        .engine
        .execute_result(
            Command::act(TaskRef::Broker(id), action, meta(req, body.actor, reason))
                .scoped(req.scope()),
        )
        .await?;
    match out {
        Ok(o) => Ok(axum::Json(o.task)),
        // An offer id naming no task names no live offer either.
        Err(e) if e.code == worklane_domain::ErrorCode::TaskNotFound => {
            Err(worklane_domain::DomainError::new(
                worklane_domain::ErrorCode::OfferNotFound,
                format!("no live offer {offer:?}"),
            )
            .with_param(format!("OfferId={offer}"))
            .into())
        }
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(post, path = "/api/v1/offers/{offerId}/accept", tag = "agents", params(("offerId" = String, Path)), request_body(content = Option<ActionBody>),
    responses((status = 200, description = "the task, Assigned to the offered agent", body = Task), (status = 409, description = "OFFER_NOT_FOUND: answered, timed out or revoked", body = ErrorBody), (status = 400, description = "INVALID_FORMAT: a bad id, parameter or attribute, named in the message and parameters", body = ErrorBody), (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn accept(
    State(st): State<AppState>,
    req: Caller,
    Path(offer_id): Path<String>,
    OptionalJson(body): OptionalJson<ActionBody>,
) -> Result<axum::Json<Task>, ApiError> {
    answer(&st, &req, offer_id, true, body).await
}

#[utoipa::path(post, path = "/api/v1/offers/{offerId}/reject", tag = "agents", params(("offerId" = String, Path)), request_body(content = Option<ActionBody>),
    responses((status = 200, description = "the task, back in its queue (TaskReturned)", body = Task), (status = 409, description = "OFFER_NOT_FOUND: answered, timed out or revoked", body = ErrorBody), (status = 400, description = "INVALID_FORMAT: a bad id, parameter or attribute, named in the message and parameters", body = ErrorBody), (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn reject(
    State(st): State<AppState>,
    req: Caller,
    Path(offer_id): Path<String>,
    OptionalJson(body): OptionalJson<ActionBody>,
) -> Result<axum::Json<Task>, ApiError> {
    answer(&st, &req, offer_id, false, body).await
}

#[utoipa::path(post, path = "/api/v1/tasks/{brokerId}/transfer", tag = "tasks", params(("brokerId" = i64, Path, minimum = 1)), request_body = TransferBody,
    responses((status = 200, body = Task), (status = 404, description = "TASK_NOT_FOUND", body = ErrorBody), (status = 422, description = "AGENT_NOT_FOUND, QUEUE_NOT_FOUND: the body names an agent or queue that does not exist", body = ErrorBody), (status = 409, description = "CANNOT_ASSIGN_TASK, INVALID_TRANSITION: not Distributed or Assigned", body = ErrorBody), (status = 400, description = "INVALID_FORMAT: a bad id, parameter or attribute, named in the message and parameters", body = ErrorBody), (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn transfer(
    State(st): State<AppState>,
    req: Caller,
    Path(id): Path<String>,
    Json(raw): Json<serde_json::Map<String, serde_json::Value>>,
) -> Result<axum::Json<Task>, ApiError> {
    let id = parse_id(&id)?;
    let (action, actor, reason) = match (raw.contains_key("queue"), raw.contains_key("agent")) {
        (true, false) => {
            let b: TransferToQueue = from_value(raw)?;
            if st
                .engine
                .queues()
                .is_none_or(|qs| qs.get(&b.queue).is_none())
            {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "QUEUE_NOT_FOUND",
                    format!("no queue {:?} is configured", b.queue),
                ));
            }
            let action = Action::Enqueue {
                queue: Some(b.queue),
                queue_type: QueueType::InteractionQueue,
                queue_target: None,
            };
            (action, b.actor, b.reason)
        }
        (false, true) => {
            let b: TransferToAgent = from_value(raw)?;
            // The task in the path exists or not; the agent the body names is input, so
            // an unknown one is 422, not 404.
            one(&st, &b.agent).await.map_err(|mut e| {
                if e.status == StatusCode::NOT_FOUND {
                    e.status = StatusCode::UNPROCESSABLE_ENTITY;
                }
                e
            })?;
            (Action::Transfer { user: b.agent }, b.actor, b.reason)
        }
        _ => {
            return Err(ApiError::invalid(
                "queue",
                "give exactly one of queue and agent",
            ))
        }
    };
    let out = st
        .engine
        .execute(
            Command::act(TaskRef::Broker(id), action, meta(&req, actor, reason))
                .scoped(req.scope()),
        )
        .await?;
    Ok(axum::Json(out.task))
}

#[utoipa::path(post, path = "/api/v1/tasks/{brokerId}/workbin", tag = "tasks", params(("brokerId" = i64, Path, minimum = 1)), request_body = WorkbinBody,
    responses((status = 200, body = Task), (status = 404, description = "TASK_NOT_FOUND", body = ErrorBody),
              (status = 409, description = "INVALID_TRANSITION: not Distributed or Assigned", body = ErrorBody), (status = 400, description = "INVALID_FORMAT: a bad id, parameter or attribute, named in the message and parameters", body = ErrorBody), (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn workbin(
    State(st): State<AppState>,
    req: Caller,
    Path(id): Path<String>,
    Json(body): Json<WorkbinBody>,
) -> Result<axum::Json<Task>, ApiError> {
    let id = parse_id(&id)?;
    if body.queue_type == QueueType::InteractionQueue {
        return Err(ApiError::invalid(
            "queueType",
            "a workbin is AgentWorkbin, AgentGroupWorkbin, PlaceWorkbin or PlaceGroupWorkbin; use transfer for a queue",
        ));
    }
    let out = st
        .engine
        .execute(
            Command::act(
                TaskRef::Broker(id),
                Action::Enqueue {
                    queue: None,
                    queue_type: body.queue_type,
                    queue_target: Some(body.queue_target),
                },
                meta(&req, body.actor, body.reason),
            )
            .scoped(req.scope()),
        )
        .await?;
    Ok(axum::Json(out.task))
}

/// How many SSE channels each agent has open on this node, so that a channel dropped past
/// the grace period returns the agent's offers unless it came back meanwhile.
#[derive(Debug, Clone, Default)]
pub struct AgentChannels {
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl AgentChannels {
    fn open(&self, id: &str) {
        *self
            .open
            .lock()
            .expect("not poisoned")
            .entry(id.to_owned())
            .or_default() += 1;
    }

    /// Closes one channel; true when it was the agent's last.
    fn close(&self, id: &str) -> bool {
        let mut m = self.open.lock().expect("not poisoned");
        let n = m.entry(id.to_owned()).or_default();
        *n = n.saturating_sub(1);
        if *n == 0 {
            m.remove(id);
            true
        } else {
            false
        }
    }

    fn is_open(&self, id: &str) -> bool {
        self.open.lock().expect("not poisoned").contains_key(id)
    }
}

/// Runs when an agent's channel ends: after the grace period on the engine's clock, an
/// agent with no channel open again loses its offers and becomes NotReady.
struct Watch {
    st: AppState,
    id: String,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if !self.st.agent_channels.close(&self.id) || self.st.shutdown.is_cancelled() {
            return;
        }
        let Some(grace) = self.st.engine.queues().map(|q| q.settings.disconnect_grace) else {
            return;
        };
        let (st, id) = (self.st.clone(), self.id.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = st.engine.clock().sleep(grace) => {}
                _ = st.shutdown.cancelled() => return,
            }
            if st.agent_channels.is_open(&id) {
                return;
            }
            if let Err(e) = st
                .engine
                .agent(AgentCommand::Disconnected { id: id.clone() })
                .await
            {
                tracing::warn!(agent = %id, error = %e, "returning a disconnected agent's offers failed");
            }
        });
    }
}

#[utoipa::path(get, path = "/api/v1/agents/{id}/stream", tag = "agents", params(("id" = String, Path), StreamParams),
    responses((status = 200, description = "text/event-stream of the events concerning the agent (TaskOffered, TaskReturned, TaskAssigned, revocations and changes of its tasks); each event's id is its seq, so Last-Event-ID resumes", content_type = "text/event-stream"),
              (status = 404, description = "AGENT_NOT_FOUND", body = ErrorBody), (status = 400, description = "INVALID_FORMAT: a bad id, parameter or attribute, named in the message and parameters", body = ErrorBody), (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn stream(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(p): Query<StreamParams>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    one(&st, &id).await?;
    let pos = match crate::events::last_event_id(&headers)?.or(p.after) {
        Some(p) => p,
        None => st.engine.events().last_seq().await?,
    };
    st.agent_channels.open(&id);
    let watch = Watch {
        st: st.clone(),
        id: id.clone(),
    };
    let stream = crate::events::tail(
        &st,
        pos,
        move |e| e.agent.as_deref() == Some(id.as_str()),
        watch,
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

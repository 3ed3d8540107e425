//! `/api/v1/tasks`: create, read, list, update, and every action of SPEC section 2.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{split_body, Json, OptionalJson, Path, Query};
use crate::{AppState, Caller};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use worklane_domain::fields::limits;
use worklane_domain::Command;
use worklane_domain::Scope;
use worklane_domain::{
    Action, ActionMeta, BrokerId, Event, NewTask, OnDuplicate, Status, Task, TaskFields, TaskRef,
    Timestamp,
};
use worklane_store::{PageAfter, TaskOrder, TaskQuery};

/// The capture point REST creates default to, and the origin of REST changes.
pub const REST_ORIGIN: &str = "REST";

/// CreateTask's attributes plus `hold`, the audit attributes and the capture point.
// Documents the body in the OpenAPI schema; the handler parses it in two parts.
#[allow(dead_code)]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateTaskBody {
    #[serde(flatten)]
    pub fields: TaskFields,
    /// Create the task NewHeld: it is not processed until resumed.
    #[serde(default)]
    pub hold: bool,
    pub actor: Option<String>,
    pub reason: Option<String>,
    pub action_date_time: Option<Timestamp>,
    /// The capture point the task belongs to; `REST` when absent. A second create with the
    /// same captureId in the same capture point is refused (TASK_ALREADY_CAPTURED).
    pub capture_point_id: Option<String>,
}

/// UpdateTask: only the given attributes change.
// Documents the body in the OpenAPI schema; the handler parses it in two parts.
#[allow(dead_code)]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateTaskBody {
    #[serde(flatten)]
    pub fields: TaskFields,
    pub actor: Option<String>,
    pub reason: Option<String>,
    pub action_date_time: Option<Timestamp>,
}

/// The audit attributes of CreateTask, apart from the task's own attributes.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateEnvelope {
    #[serde(default)]
    hold: bool,
    actor: Option<String>,
    reason: Option<String>,
    action_date_time: Option<Timestamp>,
    capture_point_id: Option<String>,
}

const CREATE_KEYS: &[&str] = &[
    "hold",
    "actor",
    "reason",
    "actionDateTime",
    "capturePointId",
];
const AUDIT_KEYS: &[&str] = &["actor", "reason", "actionDateTime"];

/// The optional audit attributes of an action.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionBody {
    pub actor: Option<String>,
    pub reason: Option<String>,
    pub action_date_time: Option<Timestamp>,
}

/// CompleteTask: the audit attributes, and the result code an agent gives.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompleteBody {
    pub actor: Option<String>,
    pub reason: Option<String>,
    pub action_date_time: Option<Timestamp>,
    /// The agent's result code, kept as `ext.resultCode`.
    pub result_code: Option<String>,
}

/// A supervisor's direct assignment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignBody {
    pub assigned_to_user: String,
    pub actor: Option<String>,
    pub reason: Option<String>,
    pub action_date_time: Option<Timestamp>,
}

/// Filters and pagination of the task listing.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// A status, e.g. `Queued`.
    #[param(value_type = Option<Status>)]
    pub status: Option<String>,
    pub capture_point_id: Option<String>,
    pub capture_id: Option<String>,
    pub process_id: Option<String>,
    pub queue: Option<String>,
    pub assigned_to_user: Option<String>,
    /// Only tasks in a workbin of this target (an agent, agent group, place or place group).
    #[param(max_length = 255)]
    pub queue_target: Option<String>,
    /// Only tasks due before this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub due_before: Option<Timestamp>,
    /// `true`: only open tasks whose due date has passed.
    pub overdue: Option<bool>,
    /// Only tasks whose captureId starts with this text (case-sensitive).
    #[param(max_length = 255)]
    pub capture_id_prefix: Option<String>,
    /// `brokerId` (default: oldest first) or `priority` (highest first, then oldest).
    #[param(pattern = "^(brokerId|priority)$")]
    pub sort: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `nextAfter` of the previous page: a brokerId, or `priority:brokerId` when
    /// sorting by priority.
    #[param(pattern = "^(-?[0-9]{1,9}:)?[1-9][0-9]{0,17}$")]
    pub after: Option<String>,
}

/// A page of tasks.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskPage {
    pub tasks: Vec<Task>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

/// Audit attributes of a REST request. The origin is always `REST` (so a capture point
/// announces REST changes to its tasks as changes made by someone else); the actor
/// defaults to `default_actor` (the task's capture point on create). An authenticated
/// caller is always the actor: an actor named in the body is kept beside it
/// (`token:crm for jsmith`), never in its place.
pub(crate) fn meta(
    req: &Caller,
    actor: Option<String>,
    reason: Option<String>,
    at: Option<Timestamp>,
    default_actor: &str,
) -> ActionMeta {
    let actor = match (&req.principal, actor) {
        // Too long on its own: left as it is, for the action's check to refuse it.
        (Some(_), Some(a)) if a.chars().count() > limits::TEXT => a,
        (Some(p), Some(a)) if a != p.actor => {
            // The principal comes first and is kept whole; the named actor is cut so that
            // the whole fits the attribute's limit.
            let mut s = format!("{} for ", p.actor);
            let room = limits::TEXT.saturating_sub(s.chars().count());
            s.extend(a.chars().take(room));
            s
        }
        (Some(p), _) => p.actor.clone(),
        (None, a) => a.unwrap_or_else(|| default_actor.to_owned()),
    };
    ActionMeta {
        actor: Some(actor),
        reason,
        action_date_time: at,
        request_id: req.request_id.clone(),
        origin: Some(REST_ORIGIN.to_owned()),
    }
}

/// A brokerId in a path: plain decimal digits only. `+1`, ` 1` or `1 ` are refused so that
/// one task has one URL (caches, logs and metrics see the same path for the same task).
pub(crate) fn parse_id(raw: &str) -> Result<BrokerId, ApiError> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid(
            "BrokerId",
            format!("{raw:?} is not a positive integer (decimal digits only)"),
        ));
    }
    raw.parse::<BrokerId>().map_err(ApiError::from)
}

#[utoipa::path(post, path = "/api/v1/tasks", tag = "tasks", request_body = CreateTaskBody,
    responses((status = 201, body = Task), (status = 400, description = "INVALID_FORMAT: a bad id, parameter or attribute, named in the message and parameters", body = ErrorBody),
              (status = 409, description = "TASK_ALREADY_CAPTURED; parameters name the existing BrokerId", body = ErrorBody),
              (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn create_task(
    State(st): State<AppState>,
    req: Caller,
    Json(raw): Json<serde_json::Map<String, serde_json::Value>>,
) -> Result<Response, ApiError> {
    let (body, fields): (CreateEnvelope, TaskFields) = split_body(raw, CREATE_KEYS)?;
    // An integration bound to a capture point creates that capture point's tasks.
    let bound = req
        .principal
        .as_ref()
        .and_then(|p| p.capture_point_id.clone());
    let cp = match (body.capture_point_id, bound) {
        (Some(given), Some(b)) if given != b => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                format!("this token creates tasks of capture point {b:?} only"),
            ))
        }
        (given, bound) => given.or(bound).unwrap_or_else(|| REST_ORIGIN.to_owned()),
    };
    let new = NewTask {
        capture_point_id: cp.clone(),
        fields,
        hold: body.hold,
        on_duplicate: OnDuplicate::Refuse,
    };
    let m = meta(&req, body.actor, body.reason, body.action_date_time, &cp);
    let out = st.engine.execute(Command::create(new, m)).await?;
    let location = format!("/api/v1/tasks/{}", out.task.broker_id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(out.task),
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/v1/tasks/{brokerId}", tag = "tasks",
    params(("brokerId" = i64, Path, minimum = 1, description = "the task's brokerId (decimal digits)")),
    responses((status = 200, body = Task), (status = 400, description = "INVALID_FORMAT: a bad id, parameter or attribute, named in the message and parameters", body = ErrorBody), (status = 404, description = "TASK_NOT_FOUND", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn get_task(
    State(st): State<AppState>,
    req: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Task>, ApiError> {
    let id = parse_id(&id)?;
    Ok(axum::Json(visible(&st, &req, id).await?))
}

/// The task, when the caller may see it: 404 when there is none, 403 when it is outside
/// the caller's scope.
pub(crate) async fn visible(st: &AppState, req: &Caller, id: BrokerId) -> Result<Task, ApiError> {
    let t = st
        .engine
        .tasks()
        .get_task(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    req.may_see(&t)?;
    Ok(t)
}

pub(crate) fn not_found(id: BrokerId) -> ApiError {
    worklane_domain::DomainError::new(
        worklane_domain::ErrorCode::TaskNotFound,
        format!("no task with BrokerId {id}"),
    )
    .with_param(format!("BrokerId={id}"))
    .into()
}

#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks", params(ListParams),
    responses((status = 200, body = TaskPage), (status = 400, description = "INVALID_FORMAT: a bad id, parameter or attribute, named in the message and parameters", body = ErrorBody),
              (status = 404, description = "TASK_NOT_FOUND: `after` is a bare brokerId with sort=priority and there is no such task", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn list_tasks(
    State(st): State<AppState>,
    req: Caller,
    Query(p): Query<ListParams>,
) -> Result<axum::Json<TaskPage>, ApiError> {
    Ok(axum::Json(page(&st, &req, p).await?))
}

/// A page of the task listing as `req` may see it (the REST listing and the console's).
pub async fn page(st: &AppState, req: &Caller, mut p: ListParams) -> Result<TaskPage, ApiError> {
    // An agent lists the tasks assigned to it, an integration its capture point's: the
    // filter is theirs whether given or not, and naming another is refused.
    match req.scope() {
        Some(Scope::Agent(a)) => narrow(&mut p.assigned_to_user, "assignedToUser", a.id)?,
        Some(Scope::CapturePoint(cp)) => narrow(&mut p.capture_point_id, "capturePointId", cp)?,
        None => {}
    }
    let status = p.status.as_deref().map(str::parse::<Status>).transpose()?;
    for (name, v) in [
        ("captureIdPrefix", &p.capture_id_prefix),
        ("queueTarget", &p.queue_target),
    ] {
        if v.as_ref().is_some_and(|v| v.chars().count() > 255) {
            return Err(ApiError::invalid(name, "is longer than 255 characters"));
        }
    }
    let order = match p.sort.as_deref() {
        None | Some("brokerId") => TaskOrder::BrokerId,
        Some("priority") => TaskOrder::Priority,
        Some(other) => {
            return Err(ApiError::invalid(
                "sort",
                format!("{other:?} is not brokerId or priority"),
            ))
        }
    };
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 1000"));
    }
    let after = match p.after.as_deref() {
        Some(a) => Some(parse_after(st, a, order).await?),
        None => None,
    };
    let q = TaskQuery {
        status,
        capture_point_id: p.capture_point_id,
        capture_id: p.capture_id,
        process_id: p.process_id,
        queue: p.queue,
        assigned_to_user: p.assigned_to_user,
        due_before: p.due_before,
        overdue_at: p.overdue.unwrap_or(false).then(|| st.engine.now()),
        capture_id_prefix: p.capture_id_prefix,
        queue_target: p.queue_target,
        order,
        after,
        limit,
    };
    let tasks = st.engine.tasks().list_tasks(&q).await?;
    let next_after = (tasks.len() == limit as usize)
        .then(|| tasks.last())
        .flatten()
        .map(|t| match order {
            TaskOrder::BrokerId => t.broker_id.to_string(),
            TaskOrder::Priority => format!("{}:{}", t.priority, t.broker_id),
        });
    Ok(TaskPage { tasks, next_after })
}

/// A cursor names the last task of the previous page: `brokerId` (the brokerId order's
/// `nextAfter`) or `priority:brokerId` (the priority order's). Either form is read in
/// either order, since both name a task: the brokerId order needs only its brokerId, and
/// the priority order takes a bare brokerId's priority from the task (404 when there is
/// no such task). The document can then give `after` one pattern whatever `sort` is.
async fn parse_after(st: &AppState, raw: &str, order: TaskOrder) -> Result<PageAfter, ApiError> {
    let bad = || ApiError::invalid("after", format!("{raw:?} is not a cursor of this listing"));
    let (priority, id) = match raw.split_once(':') {
        Some((p, id)) => (Some(p.parse::<i32>().map_err(|_| bad())?), id),
        None => (None, raw),
    };
    let broker_id: BrokerId = id.parse().map_err(|_| bad())?;
    let priority = match (order, priority) {
        (TaskOrder::BrokerId, _) => 0,
        (TaskOrder::Priority, Some(p)) => p,
        (TaskOrder::Priority, None) => match st.engine.tasks().get_task(broker_id).await? {
            Some(t) => t.priority,
            None => return Err(not_found(broker_id)),
        },
    };
    Ok(PageAfter {
        broker_id,
        priority,
    })
}

fn narrow(filter: &mut Option<String>, name: &str, own: String) -> Result<(), ApiError> {
    match filter {
        Some(given) if *given != own => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            format!("you may list only tasks with {name}={own}"),
        )),
        _ => {
            *filter = Some(own);
            Ok(())
        }
    }
}

async fn act(
    st: &AppState,
    req: &Caller,
    id: BrokerId,
    action: Action,
    m: ActionMeta,
) -> Result<axum::Json<Task>, ApiError> {
    let out = st
        .engine
        .execute(Command::act(TaskRef::Broker(id), action, m).scoped(req.scope()))
        .await?;
    Ok(axum::Json(out.task))
}

#[utoipa::path(patch, path = "/api/v1/tasks/{brokerId}", tag = "tasks", request_body = UpdateTaskBody,
    params(("brokerId" = i64, Path, minimum = 1, description = "the task's brokerId (decimal digits)")),
    responses((status = 200, body = Task), (status = 400, description = "INVALID_FORMAT: a bad id, parameter or attribute, named in the message and parameters", body = ErrorBody), (status = 404, description = "TASK_NOT_FOUND", body = ErrorBody), (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn update_task(
    State(st): State<AppState>,
    req: Caller,
    Path(id): Path<String>,
    Json(raw): Json<serde_json::Map<String, serde_json::Value>>,
) -> Result<axum::Json<Task>, ApiError> {
    let id = parse_id(&id)?;
    let (body, fields): (ActionBody, TaskFields) = split_body(raw, AUDIT_KEYS)?;
    let m = meta(
        &req,
        body.actor,
        body.reason,
        body.action_date_time,
        REST_ORIGIN,
    );
    act(&st, &req, id, Action::Update(fields), m).await
}

/// `POST /api/v1/tasks/{brokerId}/{action}` for hold, resume, restart, cancel, complete.
#[utoipa::path(post, path = "/api/v1/tasks/{brokerId}/{action}", tag = "tasks", request_body(content = Option<ActionBody>, description = "optional: an empty body is no audit attributes"),
    params(("brokerId" = i64, Path, minimum = 1, description = "the task's brokerId (decimal digits)"),
           ("action" = String, Path, description = "hold, resume, restart, cancel or complete")),
    responses((status = 200, body = Task), (status = 400, description = "INVALID_FORMAT: a bad id, parameter or attribute, named in the message and parameters", body = ErrorBody),
              (status = 404, description = "TASK_NOT_FOUND, or NOT_FOUND for an unknown action", body = ErrorBody),
              (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody),
              (status = 409, description = "CANNOT_HOLD_ASSIGNED_TASK, CANNOT_RESUME_TASK, CANNOT_RESTART_TASK, CANNOT_CANCEL_COMPLETED_TASK, CANNOT_COMPLETE_TASK", body = ErrorBody)))]
pub async fn task_action(
    State(st): State<AppState>,
    req: Caller,
    Path((id, action)): Path<(String, String)>,
    OptionalJson(body): OptionalJson<ActionBody>,
) -> Result<axum::Json<Task>, ApiError> {
    let id = parse_id(&id)?;
    let action = match action.as_str() {
        "hold" => Action::Hold,
        "resume" => Action::Resume,
        "restart" => Action::Restart,
        "cancel" => Action::Cancel,
        "complete" => Action::Complete,
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("no action {other:?}"),
            ));
        }
    };
    let m = meta(
        &req,
        body.actor,
        body.reason,
        body.action_date_time,
        REST_ORIGIN,
    );
    act(&st, &req, id, action, m).await
}

#[utoipa::path(post, path = "/api/v1/tasks/{brokerId}/complete", tag = "tasks", request_body(content = Option<CompleteBody>, description = "optional: an empty body is no audit attributes and no result code"),
    params(("brokerId" = i64, Path, minimum = 1, description = "the task's brokerId (decimal digits)")),
    responses((status = 200, body = Task), (status = 400, description = "INVALID_FORMAT: a bad id, parameter or attribute, named in the message and parameters", body = ErrorBody), (status = 404, description = "TASK_NOT_FOUND", body = ErrorBody),
              (status = 409, description = "CANNOT_COMPLETE_TASK", body = ErrorBody),
              (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn complete_task(
    State(st): State<AppState>,
    req: Caller,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<CompleteBody>,
) -> Result<axum::Json<Task>, ApiError> {
    let id = parse_id(&id)?;
    let m = meta(
        &req,
        body.actor,
        body.reason,
        body.action_date_time,
        REST_ORIGIN,
    );
    let action = match body.result_code {
        Some(code) => Action::Finish {
            result_code: Some(code),
        },
        None => Action::Complete,
    };
    act(&st, &req, id, action, m).await
}

#[utoipa::path(post, path = "/api/v1/tasks/{brokerId}/assign", tag = "tasks", request_body = AssignBody,
    params(("brokerId" = i64, Path, minimum = 1, description = "the task's brokerId (decimal digits)")),
    responses((status = 200, body = Task), (status = 400, description = "INVALID_FORMAT: a bad id, parameter or attribute, named in the message and parameters", body = ErrorBody), (status = 404, description = "TASK_NOT_FOUND", body = ErrorBody),
              (status = 409, description = "CANNOT_ASSIGN_TASK: not Queued or Distributed", body = ErrorBody),
              (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn assign_task(
    State(st): State<AppState>,
    req: Caller,
    Path(id): Path<String>,
    Json(body): Json<AssignBody>,
) -> Result<axum::Json<Task>, ApiError> {
    let id = parse_id(&id)?;
    let m = meta(
        &req,
        body.actor,
        body.reason,
        body.action_date_time,
        REST_ORIGIN,
    );
    act(
        &st,
        &req,
        id,
        Action::Assign {
            user: body.assigned_to_user,
        },
        m,
    )
    .await
}

#[utoipa::path(get, path = "/api/v1/tasks/{brokerId}/events", tag = "events",
    params(("brokerId" = i64, Path, minimum = 1, description = "the task's brokerId (decimal digits)")),
    responses((status = 200, body = Vec<Event>), (status = 400, description = "INVALID_FORMAT: a bad id, parameter or attribute, named in the message and parameters", body = ErrorBody), (status = 404, description = "TASK_NOT_FOUND", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn task_events(
    State(st): State<AppState>,
    req: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<Event>>, ApiError> {
    let id = parse_id(&id)?;
    if !req.sees_everything() {
        visible(&st, &req, id).await?;
    }
    let events = st.engine.events().task_events(id).await?;
    if events.is_empty() {
        return Err(not_found(id));
    }
    Ok(axum::Json(events))
}

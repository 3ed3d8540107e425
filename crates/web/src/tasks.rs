//! The supervisor's global task list (filters, sorting, keyset paging, live updates,
//! bulk actions) and a task's page (every attribute, ext, data, history, actions, edit).
//! The list is the REST listing's own page function, so filters, scopes and errors are
//! the API's.

use crate::page::{error, html, Layout, Viewer};
use crate::view::{is_overdue, time, Row, Time};
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use jiff::Timestamp;
use serde::Deserialize;
use worklane_api::tasks::ListParams;
use worklane_api::{ApiError, AppState};
use worklane_domain::{BrokerId, Status};

/// Rows per page of the task list.
pub const PAGE_SIZE: u32 = 50;

/// The list's filters as the form sends them (empty fields are no filter).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Filters {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub queue: String,
    #[serde(default)]
    pub process_id: String,
    #[serde(default)]
    pub capture_point_id: String,
    #[serde(default)]
    pub assigned_to_user: String,
    /// RFC 3339, or a `datetime-local` value read in the viewer's time zone.
    #[serde(default)]
    pub due_before: String,
    #[serde(default)]
    pub overdue: String,
    #[serde(default)]
    pub capture_id_prefix: String,
    #[serde(default)]
    pub sort: String,
    #[serde(default)]
    pub after: String,
}

fn some(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

impl Filters {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| ApiError::invalid("query", e.to_string()))
    }

    fn list_params(&self, viewer: &Viewer) -> Result<ListParams, ApiError> {
        let due_before = match some(&self.due_before) {
            None => None,
            Some(v) => Some(instant(&v, viewer).ok_or_else(|| {
                ApiError::invalid("dueBefore", format!("{v:?} is not a date and time"))
            })?),
        };
        Ok(ListParams {
            status: some(&self.status),
            capture_point_id: some(&self.capture_point_id),
            process_id: some(&self.process_id),
            queue: some(&self.queue),
            assigned_to_user: some(&self.assigned_to_user),
            due_before,
            overdue: Some(!self.overdue.is_empty()),
            capture_id_prefix: some(&self.capture_id_prefix),
            sort: some(&self.sort),
            limit: Some(PAGE_SIZE),
            after: some(&self.after),
            ..ListParams::default()
        })
    }

    /// The query string of these filters, with `after` replaced.
    fn query(&self, after: Option<&str>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("status", &self.status),
            ("queue", &self.queue),
            ("processId", &self.process_id),
            ("capturePointId", &self.capture_point_id),
            ("assignedToUser", &self.assigned_to_user),
            ("dueBefore", &self.due_before),
            ("overdue", &self.overdue),
            ("captureIdPrefix", &self.capture_id_prefix),
            ("sort", &self.sort),
        ] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        if let Some(a) = after {
            q.append_pair("after", a);
        }
        q.finish()
    }
}

/// An instant typed by a person: RFC 3339, or a civil date and time in their time zone.
fn instant(v: &str, viewer: &Viewer) -> Option<Timestamp> {
    v.parse::<Timestamp>().ok().or_else(|| {
        let civil: jiff::civil::DateTime = v.parse().ok()?;
        civil
            .to_zoned(viewer.tz.clone())
            .ok()
            .map(|z| z.timestamp())
    })
}

#[derive(Template)]
#[template(path = "tasks.html")]
struct TaskList {
    layout: Layout,
    f: Filters,
    statuses: Vec<&'static str>,
    queues: Vec<String>,
    rows: Vec<Row>,
    problem: Option<(String, String)>,
    next: Option<String>,
    first: Option<String>,
}

/// `GET /console/tasks`: the global task list.
pub async fn list(State(st): State<AppState>, viewer: Viewer, RawQuery(raw): RawQuery) -> Response {
    let f = match Filters::parse(raw.as_deref()) {
        Ok(f) => f,
        Err(e) => return error(&viewer, e),
    };
    let last_seq = st.engine.events().last_seq().await.unwrap_or(0);
    let now = st.engine.now();
    let mut page = TaskList {
        layout: viewer.layout("Tasks", "tasks", last_seq),
        statuses: Status::ALL.iter().map(|s| s.as_str()).collect(),
        queues: st
            .engine
            .queues()
            .map(|q| q.iter().map(|q| q.id.clone()).collect())
            .unwrap_or_default(),
        rows: vec![],
        problem: None,
        next: None,
        first: (!f.after.is_empty()).then(|| f.query(None)),
        f: f.clone(),
    };
    let listed = match f.list_params(&viewer) {
        Ok(p) => worklane_api::tasks::page(&st, &viewer.caller, p).await,
        Err(e) => Err(e),
    };
    match listed {
        Ok(p) => {
            page.rows = p
                .tasks
                .iter()
                .map(|t| Row::of(t, now, &viewer.tz))
                .collect();
            page.next = p.next_after.map(|a| f.query(Some(&a)));
        }
        Err(e) => {
            let mut r = html(&TaskList {
                problem: Some((e.body.code.clone(), e.body.message.clone())),
                ..page
            });
            *r.status_mut() = e.status;
            return r;
        }
    }
    html(&page)
}

/// One event of a task's history.
struct HistoryRow {
    seq: i64,
    at: Time,
    event_type: &'static str,
    actor: String,
    reason: String,
    request_id: String,
    origin: String,
    changes: String,
    agent: String,
}

#[derive(Template)]
#[template(path = "task.html")]
struct TaskPage {
    layout: Layout,
    id: i64,
    status: &'static str,
    capture_id: String,
    overdue: bool,
    priority: i32,
    attributes: Vec<(String, String, Option<Time>)>,
    ext: Vec<(String, String)>,
    data: Vec<(String, String)>,
    history: Vec<HistoryRow>,
    queues: Vec<String>,
}

/// `GET /console/tasks/{id}`: a task's page.
pub async fn one(State(st): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> Response {
    let found = async {
        let id: BrokerId = id
            .parse()
            .map_err(|_| ApiError::invalid("brokerId", format!("{id:?} is not a brokerId")))?;
        let task = st.engine.tasks().get_task(id).await?;
        let Some(task) = task else {
            return Err(ApiError::from(worklane_domain::DomainError::new(
                worklane_domain::ErrorCode::TaskNotFound,
                format!("no task {id}"),
            )));
        };
        viewer.caller.may_see(&task)?;
        let events = st.engine.events().task_events(id).await?;
        Ok::<_, ApiError>((task, events))
    }
    .await;
    let (task, events) = match found {
        Ok(found) => found,
        Err(e) => return error(&viewer, e),
    };
    let tz = &viewer.tz;
    let mut attributes = vec![];
    let mut ext = vec![];
    let mut data = vec![];
    if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(&task) {
        for (k, v) in m {
            match (k.as_str(), v) {
                ("ext", serde_json::Value::Object(e)) => {
                    ext = e.into_iter().map(|(k, v)| (k, text(&v))).collect();
                }
                ("data", serde_json::Value::Object(d)) => {
                    data = d.into_iter().map(|(k, v)| (k, text(&v))).collect();
                }
                ("offer", serde_json::Value::Object(o)) => {
                    for (ok, ov) in o {
                        let t = when(&ov, tz);
                        attributes.push((format!("offer.{ok}"), text(&ov), t));
                    }
                }
                (_, serde_json::Value::Null) => {}
                (_, v) => {
                    let t = when(&v, tz).filter(|_| k.ends_with("DateTime"));
                    attributes.push((k, text(&v), t));
                }
            }
        }
    }
    let history = events
        .iter()
        .rev()
        .map(|e| HistoryRow {
            seq: e.seq,
            at: time(e.event_date_time, tz),
            event_type: e.event_type.as_str(),
            actor: e.actor.clone().unwrap_or_default(),
            reason: e.reason.clone().unwrap_or_default(),
            request_id: e.request_id.clone().unwrap_or_default(),
            origin: e.origin.clone().unwrap_or_default(),
            changes: e.changes.join(", "),
            agent: e.agent.clone().unwrap_or_default(),
        })
        .collect();
    let last_seq = events.last().map_or(0, |e| e.seq);
    let page = TaskPage {
        layout: viewer.layout(format!("Task {}", task.broker_id), "tasks", last_seq),
        id: task.broker_id.0,
        status: task.status.as_str(),
        capture_id: task.capture_id.clone(),
        overdue: is_overdue(&task, st.engine.now()),
        priority: task.priority,
        attributes,
        ext,
        data,
        history,
        queues: st
            .engine
            .queues()
            .map(|q| q.iter().map(|q| q.id.clone()).collect())
            .unwrap_or_default(),
    };
    html(&page)
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn when(v: &serde_json::Value, tz: &jiff::tz::TimeZone) -> Option<Time> {
    v.as_str()?.parse::<Timestamp>().ok().map(|t| time(t, tz))
}

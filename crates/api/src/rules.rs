//! Business rules over HTTP: explain what the rules do to a task, reload them from the
//! configuration file, and preview what a new configuration would change on live tasks.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{body_error, split_body, OptionalJson, Query};
use crate::tasks::parse_id;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use worklane_domain::{action, ActionMeta, BrokerId, NewTask, Status, Task, TaskFields, Timestamp};
use worklane_rules::{Explanation, RuleSet, RulesConfig};
use worklane_store::{PageAfter, TaskQuery};

/// Re-reads the rules from the configuration file and puts them in force; on failure the
/// rules in force stay and the problems are returned.
#[derive(Clone)]
#[allow(clippy::type_complexity)]
pub struct Reload(pub Arc<dyn Fn() -> Result<RulesSummary, Vec<String>> + Send + Sync>);

impl std::fmt::Debug for Reload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reload")
    }
}

/// What a rule set holds.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct RulesSummary {
    pub departments: usize,
    pub processes: usize,
    pub rules: usize,
}

impl RulesSummary {
    /// The counts of `set`.
    pub fn of(set: &RuleSet) -> Self {
        let (departments, processes, rules) = set.counts();
        Self {
            departments,
            processes,
            rules,
        }
    }
}

/// How far ahead the explain API draws the priority curve at most.
const MAX_HOURS: u32 = 24 * 31;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExplainParams {
    /// Explain a stored task (from its current status) instead of a new one; attributes in
    /// the body are applied to it first (a what-if: nothing is stored).
    #[param(value_type = Option<i64>, minimum = 1)]
    broker_id: Option<String>,
    /// The instant to evaluate at (RFC 3339); the server's clock when absent.
    #[param(value_type = Option<String>, format = DateTime)]
    at: Option<Timestamp>,
    /// How many hours of the priority curve to draw (default 8).
    #[param(minimum = 0, maximum = 744)]
    hours: Option<u32>,
}

/// The body of an explain request: a task as a create would give it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExplainBody {
    #[serde(flatten)]
    pub fields: TaskFields,
    /// The capture point the task comes from; `REST` when absent.
    pub capture_point_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExplainEnvelope {
    capture_point_id: Option<String>,
}

/// A task as a create would make it, from an explain body, at `now`.
pub fn task_from_body(
    raw: serde_json::Map<String, serde_json::Value>,
    now: Timestamp,
) -> Result<Task, ApiError> {
    let (env, fields): (ExplainEnvelope, TaskFields) = split_body(raw, &["capturePointId"])?;
    let new = NewTask {
        capture_point_id: env
            .capture_point_id
            .unwrap_or_else(|| crate::REST_ORIGIN.to_owned()),
        fields,
        hold: false,
        on_duplicate: Default::default(),
    };
    new.validate()?;
    Ok(action::create(&new, BrokerId(0), &ActionMeta::default(), now).task)
}

#[utoipa::path(post, path = "/api/v1/rules/explain", tag = "rules", params(ExplainParams),
    request_body(content = Option<ExplainBody>, description = "a task as a create would give it; with ?brokerId=, attributes applied to the stored task first"),
    responses((status = 200, description = "every rule tried in each phase, what it set, the outcome and the priority curve", body = Object),
              (status = 400, description = "INVALID_FORMAT: a bad parameter or attribute", body = ErrorBody),
              (status = 404, description = "TASK_NOT_FOUND", body = ErrorBody),
              (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody),
              (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody)))]
pub async fn explain(
    State(st): State<AppState>,
    Query(p): Query<ExplainParams>,
    OptionalJson(raw): OptionalJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<axum::Json<Explanation>, ApiError> {
    let now = p.at.unwrap_or_else(|| st.engine.now());
    let hours = p.hours.unwrap_or(8);
    if hours > MAX_HOURS {
        return Err(ApiError::invalid(
            "hours",
            format!("at most {MAX_HOURS} hours are drawn"),
        ));
    }
    let task = match &p.broker_id {
        Some(id) => {
            let id = parse_id(id)?;
            let mut stored = st
                .engine
                .tasks()
                .get_task(id)
                .await?
                .ok_or_else(|| crate::tasks::not_found(id))?;
            if !raw.is_empty() {
                let (env, fields): (ExplainEnvelope, TaskFields) =
                    split_body(raw, &["capturePointId"])?;
                fields.validate()?;
                fields.apply_to(&mut stored);
                if let Some(cp) = env.capture_point_id {
                    stored.capture_point_id = cp;
                }
            }
            stored
        }
        // No body: a task with no attributes, as the rules see one.
        None => task_from_body(raw, now)?,
    };
    let rules = st.engine.rules().current();
    let horizon = jiff::SignedDuration::from_hours(hours.into());
    Ok(axum::Json(rules.explain(&task, now, horizon)))
}

#[utoipa::path(post, path = "/api/v1/rules/reload", tag = "rules",
    responses((status = 200, description = "the new rules are in force", body = RulesSummary),
              (status = 422, description = "RULES_INVALID: the file was refused, the rules in force stay; `parameters` lists every problem", body = ErrorBody),
              (status = 409, description = "RELOAD_UNAVAILABLE: the server was started without a configuration file", body = ErrorBody)))]
pub async fn reload(State(st): State<AppState>) -> Result<axum::Json<RulesSummary>, ApiError> {
    let Some(reload) = st.reload.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "RELOAD_UNAVAILABLE",
            "the server was started without a configuration file: there is nothing to reload",
        ));
    };
    match tokio::task::spawn_blocking(move || (reload.0)()).await {
        Ok(Ok(summary)) => Ok(axum::Json(summary)),
        Ok(Err(problems)) => Err(refused(problems)),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            format!("reloading failed: {e}"),
        )),
    }
}

fn refused(problems: Vec<String>) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "RULES_INVALID",
        format!(
            "the rules were refused ({} problem{}); the rules in force stay",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        ),
    );
    e.body.parameters = problems;
    e
}

/// The largest configuration a diff accepts, in bytes.
const MAX_DIFF_BYTES: usize = 1024 * 1024;
/// Examples listed per kind of change.
const EXAMPLES: usize = 10;

/// One live task the new rules would treat differently.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DiffExample {
    pub broker_id: BrokerId,
    pub capture_id: String,
    /// The attribute that changes: processId, queue, priority or dueDateTime.
    pub attribute: String,
    /// Its value under the rules in force (a timestamp, number or id as text; null when unset).
    pub now: Option<String>,
    /// Its value under the new rules.
    pub new: Option<String>,
}

/// An outcome attribute as text for an example.
fn as_text(v: serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// What a new configuration would change on the live tasks.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RulesDiff {
    /// Live tasks compared (every task not finished).
    pub compared: u64,
    /// How many would change their process.
    pub process: u64,
    pub queue: u64,
    pub priority: u64,
    pub due_date_time: u64,
    /// Up to ten examples of each kind.
    pub examples: Vec<DiffExample>,
    /// The new configuration's counts.
    pub new_rules: RulesSummary,
}

/// Parses the rules part of a configuration file's text (other sections are ignored).
pub fn rules_config_from_toml(text: &str) -> Result<RulesConfig, Vec<String>> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
    let mut rules = toml::Table::new();
    for key in ["calendar", "department", "process", "contract", "rule"] {
        if let Some(v) = table.remove(key) {
            rules.insert(key.to_owned(), v);
        }
    }
    rules
        .try_into()
        .map_err(|e: toml::de::Error| vec![e.to_string()])
}

/// The task as processing would see it again: New, with what the rules derived
/// before (its due date, when its process sets one, and its next reprioritization)
/// cleared so both rule sets derive them afresh.
fn as_new(t: &Task, current: &RuleSet) -> Task {
    let mut n = t.clone();
    n.status = Status::New;
    n.reprioritize_date_time = None;
    n.activation_date_time = None;
    if t.process_id.as_deref().is_some_and(|p| current.sets_due(p)) {
        n.due_date_time = None;
    }
    n
}

#[utoipa::path(post, path = "/api/v1/rules/diff", tag = "rules",
    request_body(content = String, content_type = "text/plain", description = "a configuration file (TOML, any content type); its calendar, department, process, contract and rule tables are compared with the rules in force"),
    responses((status = 200, description = "how many live tasks would change process, queue, priority or due date, with examples; nothing is applied", body = RulesDiff),
              (status = 400, description = "INVALID_FORMAT: no body, or not UTF-8 text", body = ErrorBody),
              (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody),
              (status = 422, description = "RULES_INVALID: the configuration was refused; `parameters` lists every problem", body = ErrorBody)))]
pub async fn diff(
    State(st): State<AppState>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<axum::Json<RulesDiff>, ApiError> {
    let body = body.map_err(body_error)?;
    if body.len() > MAX_DIFF_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("a configuration of at most {MAX_DIFF_BYTES} bytes is compared"),
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(
            "body",
            "a configuration file is required (its rules tables are compared)",
        ));
    }
    let text =
        std::str::from_utf8(&body).map_err(|_| ApiError::invalid("body", "is not UTF-8 text"))?;
    let cfg = rules_config_from_toml(text).map_err(refused)?;
    let new = tokio::task::spawn_blocking(move || RuleSet::new(&cfg))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                e.to_string(),
            )
        })?
        .map_err(|e| refused(e.problems))?;
    let current = st.engine.rules().current();
    let now = st.engine.now();
    let mut out = RulesDiff {
        compared: 0,
        process: 0,
        queue: 0,
        priority: 0,
        due_date_time: 0,
        examples: Vec::new(),
        new_rules: RulesSummary::of(&new),
    };
    let horizon = jiff::SignedDuration::ZERO;
    let mut shown = std::collections::HashMap::<&'static str, usize>::new();
    let live = [
        Status::New,
        Status::NewHeld,
        Status::Captured,
        Status::Queued,
        Status::Distributed,
        Status::Assigned,
        Status::Held,
        Status::ErrorHeld,
    ];
    for status in live {
        let mut after: Option<BrokerId> = None;
        loop {
            let q = TaskQuery {
                status: Some(status),
                after: after.map(|broker_id| PageAfter {
                    broker_id,
                    priority: 0,
                }),
                limit: 1000,
                ..Default::default()
            };
            let page = st.engine.tasks().list_tasks(&q).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.broker_id);
            for t in &page {
                out.compared += 1;
                let probe = as_new(t, &current);
                let a = current.explain(&probe, now, horizon).outcome;
                let b = new.explain(&probe, now, horizon).outcome;
                let json = |v: &dyn erased::Json| v.json();
                let changes = [
                    ("processId", json(&a.process_id), json(&b.process_id)),
                    ("queue", json(&a.queue), json(&b.queue)),
                    ("priority", json(&a.priority), json(&b.priority)),
                    (
                        "dueDateTime",
                        json(&a.due_date_time),
                        json(&b.due_date_time),
                    ),
                ];
                for (attr, x, y) in changes {
                    if x == y {
                        continue;
                    }
                    *match attr {
                        "processId" => &mut out.process,
                        "queue" => &mut out.queue,
                        "priority" => &mut out.priority,
                        _ => &mut out.due_date_time,
                    } += 1;
                    let n = shown.entry(attr).or_default();
                    if *n < EXAMPLES {
                        *n += 1;
                        out.examples.push(DiffExample {
                            broker_id: t.broker_id,
                            capture_id: t.capture_id.clone(),
                            attribute: attr.to_owned(),
                            now: as_text(x),
                            new: as_text(y),
                        });
                    }
                }
            }
            if page.len() < 1000 {
                break;
            }
        }
    }
    Ok(axum::Json(out))
}

mod erased {
    /// Any serializable value as JSON (for comparing outcome attributes of mixed types).
    pub trait Json {
        fn json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }
}

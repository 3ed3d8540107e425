//! The notifications API, mounted by the server under `/api/v1`:
//!
//! - `GET  /notifications/{target}/deliveries?status=&brokerId=&after=&limit=`
//! - `GET  /notifications/{target}/deliveries/{id}` (with its body and attempts)
//! - `POST /notifications/{target}/deliveries/{id}/resend`
//! - `POST /notifications/{target}/replay` with `{"fromSeq": N}`
//!
//! Errors are `{code, message, parameters}` like the rest of the API.

use crate::config::NotificationTargetConfig;
use crate::format::Renderer;
use crate::notifier::render_again;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use worklane_engine::Engine;
use worklane_store::{Delivery, DeliveryAttempt, DeliveryQuery, DeliveryStatus, StoreError};

/// What the handlers share: the engine, and each configured target's renderer (a
/// notification delivered at its first attempt is stored without its body, which is
/// rendered again from its event to be shown).
#[derive(Clone)]
struct ApiState {
    engine: Engine,
    renderers: Arc<HashMap<String, Renderer>>,
}

impl FromRef<ApiState> for Engine {
    fn from_ref(s: &ApiState) -> Self {
        s.engine.clone()
    }
}

/// The routes, relative to `/api/v1`, for the configured `targets`.
pub fn router(engine: Engine, targets: &[NotificationTargetConfig]) -> Router {
    let renderers = targets
        .iter()
        .map(|t| (t.id.clone(), Renderer::new(t)))
        .collect();
    Router::new()
        .route("/notifications/{target}/deliveries", get(list))
        .route("/notifications/{target}/deliveries/{id}", get(show))
        .route(
            "/notifications/{target}/deliveries/{id}/resend",
            post(resend),
        )
        .route("/notifications/{target}/replay", post(replay))
        // axum's own 405 has an empty body; every answer keeps the one error shape.
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                format!("{method} is not allowed on this endpoint"),
                vec![],
            )
        })
        .with_state(ApiState {
            engine,
            renderers: Arc::new(renderers),
        })
}

/// An API error: an HTTP status and the `{code, message, parameters}` body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

/// The JSON shape of every error.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    pub parameters: Vec<String>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        code: &str,
        message: impl Into<String>,
        params: Vec<String>,
    ) -> Self {
        Self {
            status,
            body: ErrorBody {
                code: code.into(),
                message: message.into(),
                parameters: params,
            },
        }
    }

    fn not_found(target: &str, id: i64) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "DELIVERY_NOT_FOUND",
            format!("target {target} has no delivery {id}"),
            vec![format!("DeliveryId={id}")],
        )
    }

    fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_FORMAT",
            message,
            vec![param.into()],
        )
    }
}

impl From<StoreError> for ApiError {
    /// The store's error can name hosts, databases and SQL: it is logged (inside the
    /// server's per-request span, which carries the request id), and the caller gets a
    /// generic message.
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "notifications API: store failure");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "internal error; the server's log has the details",
            vec![],
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        Self::invalid("query", e.body_text())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        if e.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            return Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "the body must be sent as Content-Type: application/json",
                vec![],
            );
        }
        Self::invalid("body", e.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        Self::invalid("path", e.body_text())
    }
}

/// A delivery id in a path: plain decimal digits, so one delivery has one URL and a bad
/// id is answered in the error shape rather than axum's plain-text rejection.
fn parse_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0 && raw.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            ApiError::invalid(
                "DeliveryId",
                format!("{raw:?} is not a positive integer (decimal digits only)"),
            )
        })
}

/// The longest message or parameter answered, in characters: messages quote the
/// caller's input, which must not come back in full however large it is.
const MAX_ECHO_CHARS: usize = 200;

fn capped(mut s: String) -> String {
    if let Some((at, _)) = s.char_indices().nth(MAX_ECHO_CHARS) {
        s.truncate(at);
        s.push('…');
    }
    s
}

impl IntoResponse for ApiError {
    fn into_response(mut self) -> Response {
        self.body.message = capped(self.body.message);
        self.body.parameters = self.body.parameters.into_iter().map(capped).collect();
        (self.status, Json(self.body)).into_response()
    }
}

/// Query of the delivery listing.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    pub status: Option<String>,
    pub broker_id: Option<i64>,
    /// The last id of the previous page.
    pub after: Option<i64>,
    pub limit: Option<u32>,
}

/// A page of deliveries.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryPage {
    pub items: Vec<serde_json::Value>,
    /// Pass as `after` for the next page; absent on the last one.
    pub next_after: Option<i64>,
}

/// A delivery with its body and attempts.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: Delivery,
    /// The body exactly as sent (JSON), or as text when it is not JSON; null when it was
    /// not stored and cannot be rendered again (the target is no longer configured, or
    /// its event is gone).
    pub body: serde_json::Value,
    pub attempts: Vec<DeliveryAttempt>,
}

fn body_value(d: &Delivery) -> serde_json::Value {
    if d.body.is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(&d.body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&d.body).into()))
}

async fn list(
    State(engine): State<Engine>,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let Path(target) = path?;
    let Query(q) = q?;
    let status = q
        .status
        .as_deref()
        .map(str::parse::<DeliveryStatus>)
        .transpose()
        .map_err(|e| ApiError::invalid("status", e))?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let items = engine
        .deliveries()
        .list_deliveries(&DeliveryQuery {
            target,
            status,
            broker_id: q.broker_id,
            after_id: q.after,
            limit,
        })
        .await?;
    let next_after = (items.len() == limit as usize)
        .then(|| items.last().map(|d| d.id))
        .flatten();
    let items = items
        .iter()
        .map(|d| serde_json::to_value(d).unwrap_or_default())
        .collect();
    Ok(Json(DeliveryPage { items, next_after }))
}

async fn show(
    State(state): State<ApiState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let Path((target, id)) = path?;
    let id = parse_id(&id)?;
    let store = state.engine.deliveries();
    let mut d = store
        .get_delivery(id)
        .await?
        .filter(|d| d.target == target)
        .ok_or_else(|| ApiError::not_found(&target, id))?;
    if d.body.is_empty() {
        // Stored without its body: rendered again, the same as sent (GUID and timestamp
        // come from the delivery and its event), with the target's configuration.
        if let Some(r) = state.renderers.get(&target) {
            d.body = render_again(state.engine.events().as_ref(), r, d.seq, &d.guid)
                .await?
                .unwrap_or_default();
        }
    }
    let attempts = store.delivery_attempts(id).await?;
    Ok(Json(DeliveryDetail {
        body: body_value(&d),
        delivery: d,
        attempts,
    }))
}

async fn resend(
    State(engine): State<Engine>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Delivery>, ApiError> {
    let Path((target, id)) = path?;
    let id = parse_id(&id)?;
    let d = engine
        .deliveries()
        .resend_delivery(&target, id, engine.now())
        .await?
        .ok_or_else(|| ApiError::not_found(&target, id))?;
    tracing::info!(notification_target = %target, delivery = id, "notification resend requested");
    Ok(Json(d))
}

/// Body of a replay request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplayRequest {
    /// The first event sequence number to notify again.
    pub from_seq: i64,
}

/// Answer to a replay request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayAccepted {
    pub target: String,
    pub from_seq: i64,
    /// Existing deliveries the replay sends again (same GUIDs), as of the request.
    pub reset: u64,
}

async fn replay(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<ReplayRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<ReplayAccepted>), ApiError> {
    let Path(target) = path?;
    // Only a configured target has a notifier to send the replayed events; accepting a
    // replay for any other name would answer 202 for work nothing will ever do.
    if !state.renderers.contains_key(&target) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "TARGET_NOT_FOUND",
            format!("no notification target {target:?} is configured"),
            vec![format!("Target={target}")],
        ));
    }
    let engine = &state.engine;
    let Json(req) = body?;
    if req.from_seq < 1 {
        return Err(ApiError::invalid("fromSeq", "fromSeq must be 1 or more"));
    }
    let reset = engine
        .deliveries()
        .request_replay(&target, req.from_seq, engine.now())
        .await?;
    tracing::info!(notification_target = %target, from_seq = req.from_seq, reset, "notification replay requested");
    Ok((
        StatusCode::ACCEPTED,
        Json(ReplayAccepted {
            target,
            from_seq: req.from_seq,
            reset,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(e: ApiError) -> (StatusCode, serde_json::Value) {
        let resp = e.into_response();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 64 * 1024)
            .await
            .expect("body");
        (status, serde_json::from_slice(&body).expect("JSON"))
    }

    #[tokio::test]
    async fn internal_errors_answer_a_generic_message() {
        let internal =
            "postgres://worklane:hunter2@db.internal/wl: relation \"deliveries\" is gone";
        let (status, v) = answer(StoreError::UnsupportedUrl(internal.to_owned()).into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            v,
            serde_json::json!({
                "code": "INTERNAL_ERROR",
                "message": "internal error; the server's log has the details",
                "parameters": [],
            })
        );
        let text = v.to_string();
        for leak in ["hunter2", "db.internal", "deliveries"] {
            assert!(!text.contains(leak), "{text}");
        }
    }

    #[tokio::test]
    async fn client_errors_keep_their_messages() {
        let (status, v) = answer(ApiError::not_found("crm", 7)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(v["code"], "DELIVERY_NOT_FOUND");
        assert_eq!(v["message"], "target crm has no delivery 7");
        assert_eq!(v["parameters"], serde_json::json!(["DeliveryId=7"]));
        let (status, v) = answer(ApiError::invalid("fromSeq", "fromSeq must be 1 or more")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(v["code"], "INVALID_FORMAT");
        assert_eq!(v["message"], "fromSeq must be 1 or more");
    }
}

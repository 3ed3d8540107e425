//! Worklane's REST API (axum): tasks and their actions, the event log (paged and SSE),
//! health, Prometheus metrics and the OpenAPI document.
//!
//! [`serve`] takes an already bound listener and a shutdown token, so tests bind
//! `127.0.0.1:0` and the binary binds the configured address.

pub mod access;
pub mod agents;
pub mod auth;
mod error;
mod events;
mod extract;
pub mod limits;
pub mod openapi;
pub mod rules;
pub mod session;
pub mod stats;
pub mod tasks;
pub mod tls;

pub use error::{ApiError, ErrorBody};
pub use tasks::REST_ORIGIN;

use axum::extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use worklane_domain::{Principal, Scope};
use worklane_engine::{Engine, Health};

/// What every handler shares: cheap to clone (axum clones it for every extractor and
/// layer of every request; cloning each handle in it was about 7% of a create's CPU).
#[derive(Debug, Clone)]
pub struct AppState(Arc<AppStateParts>);

impl AppState {
    pub fn new(parts: AppStateParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateParts;

    fn deref(&self) -> &AppStateParts {
        &self.0
    }
}

/// What [`AppState`] holds.
#[derive(Debug)]
pub struct AppStateParts {
    pub engine: Engine,
    pub metrics: PrometheusHandle,
    /// Cancelled on shutdown: long-lived responses (SSE) end so the server can drain.
    pub shutdown: CancellationToken,
    /// The state of every long-running part, from the supervisor.
    pub health: Health,
    /// Reloads the business rules from the configuration file (none: started without one).
    pub reload: Option<rules::Reload>,
    /// Agents' open SSE channels on this node (for the disconnect grace period).
    pub agent_channels: agents::AgentChannels,
    /// Whether callers authenticate, and the tokens recently seen.
    pub auth: auth::Auth,
}

/// Limits of the API.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Larger request bodies are refused with 413.
    pub max_body_bytes: usize,
}

impl Default for ApiOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// The process-wide Prometheus recorder (installed on first use).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ])
                .expect("static buckets are valid")
                .install_recorder()
                .expect("the Prometheus recorder is installed once")
        })
        .clone()
}

/// Who made a request and under which id. The id is the caller's `X-Request-Id`, or one
/// generated for it: echoed on the response, it becomes the reference id of the events the
/// request causes (seed 003). The principal is the authenticated caller (None when
/// `auth.mode = "off"`).
#[derive(Debug, Clone)]
pub struct Caller {
    pub request_id: Option<String>,
    pub principal: Option<Principal>,
}

impl Caller {
    /// The tasks this caller's commands may touch (None: any).
    pub fn scope(&self) -> Option<Scope> {
        self.principal.as_ref().and_then(Principal::scope)
    }

    /// Whether the caller sees every task (admin, supervisor, or no authentication).
    pub fn sees_everything(&self) -> bool {
        self.principal
            .as_ref()
            .is_none_or(|p| p.role.sees_everything())
    }

    /// Refuses with FORBIDDEN (naming the task) when `task` is outside the caller's scope.
    pub fn may_see(&self, task: &worklane_domain::Task) -> Result<(), ApiError> {
        Ok(self.scope().map_or(Ok(()), |s| s.check(task))?)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Caller {
            request_id: parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            principal: parts.extensions.get::<Principal>().cloned(),
        })
    }
}

/// The whole API; `extra` (already given its state) is mounted beside it under the same
/// layers (request ids, tracing, metrics, body limit).
pub fn router(state: AppState, options: &ApiOptions, extra: Router) -> Router {
    Router::new()
        .route(
            "/api/v1/tasks",
            post(tasks::create_task).get(tasks::list_tasks),
        )
        .route(
            "/api/v1/tasks/{id}",
            get(tasks::get_task).patch(tasks::update_task),
        )
        .route("/api/v1/tasks/{id}/assign", post(tasks::assign_task))
        .route("/api/v1/tasks/{id}/complete", post(tasks::complete_task))
        .route("/api/v1/tasks/{id}/transfer", post(agents::transfer))
        .route("/api/v1/tasks/{id}/workbin", post(agents::workbin))
        .route(
            "/api/v1/agents",
            post(agents::create_agent).get(agents::list_agents),
        )
        .route(
            "/api/v1/agents/{id}",
            get(agents::get_agent).patch(agents::update_agent),
        )
        .route("/api/v1/agents/{id}/state", post(agents::set_state))
        .route("/api/v1/agents/{id}/next", post(agents::next))
        .route("/api/v1/agents/{id}/offers", get(agents::offers))
        .route("/api/v1/agents/{id}/stream", get(agents::stream))
        .route("/api/v1/offers/{offer}/accept", post(agents::accept))
        .route("/api/v1/offers/{offer}/reject", post(agents::reject))
        .route("/api/v1/tasks/{id}/events", get(tasks::task_events))
        .route("/api/v1/tasks/{id}/{action}", post(tasks::task_action))
        .route("/api/v1/events", get(events::list_events))
        .route("/api/v1/events/stream", get(events::stream_events))
        .route("/api/v1/rules/explain", post(rules::explain))
        .route("/api/v1/rules/reload", post(rules::reload))
        .route("/api/v1/rules/diff", post(rules::diff))
        .route(
            "/api/v1/users",
            post(access::create_user).get(access::list_users),
        )
        .route("/api/v1/users/{id}", patch(access::update_user))
        .route(
            "/api/v1/tokens",
            post(access::create_token).get(access::list_tokens),
        )
        .route("/api/v1/tokens/{name}", delete(access::revoke_token))
        .route(
            "/api/v1/session",
            post(session::sign_in)
                .get(session::current)
                .delete(session::sign_out),
        )
        .route("/api/v1/stats", get(stats::get_stats))
        .route("/api/v1/openapi.json", get(openapi::openapi_json))
        .route("/healthz", get(healthz))
        .route("/metrics", get(render_metrics))
        .with_state(state.clone())
        .merge(extra)
        // After the merge, so the routes mounted beside the API are checked too.
        .route_layer(middleware::from_fn_with_state(state, auth::authorize))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint")
        })
        // axum's own 405 has an empty body; every answer keeps the one error shape.
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                format!("{method} is not allowed on this endpoint"),
            )
        })
        .layer(middleware::from_fn(track_metrics))
        .layer(DefaultBodyLimit::max(options.max_body_bytes))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!("http", method = %req.method(), uri = %req.uri(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(middleware::from_fn(limit_headers))
}

/// At most this many request headers; more are answered 431 in the error body.
pub const MAX_HEADERS: usize = 100;
/// At most this many bytes of request header names and values; more are answered 431.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// hyper's own limits, well above ours: hyper answers what exceeds them with a bare 431
/// (empty body), so they are raised for [`limit_headers`] to see and answer such requests
/// in the error shape. Only requests beyond these still get hyper's bare answer.
const HYPER_MAX_HEADERS: usize = 1000;
const HYPER_MAX_BUF: usize = 1024 * 1024;

/// Serves `app` on `listener` until `shutdown`, then lets in-flight requests finish.
///
/// The accept loop is ours rather than `axum::serve`, which cannot configure hyper: see
/// [`HYPER_MAX_HEADERS`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_with(listener, app, shutdown, None).await
}

/// [`serve`], over TLS when `tls` is given: each connection's handshake runs in its own
/// task (bounded by [`tls::HANDSHAKE_TIMEOUT`]), so a slow client does not hold up others.
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    tls: Option<tls::TlsAcceptor>,
) -> std::io::Result<()> {
    use hyper_util::rt::TokioIo;
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .max_headers(HYPER_MAX_HEADERS)
        .max_buf_size(HYPER_MAX_BUF);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: the listener stays usable, so
                    // wait a moment instead of spinning or giving up.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        use tower::ServiceExt as _;
        let svc = hyper_util::service::TowerToHyperService::new(app.clone().map_request(
            move |mut r: axum::http::Request<hyper::body::Incoming>| {
                r.extensions_mut().insert(limits::ClientAddr(peer));
                r
            },
        ));
        let Some(acceptor) = tls.clone() else {
            let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), svc));
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
            continue;
        };
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => return tracing::debug!("TLS handshake timed out"),
                };
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Answers 431 in the error shape when the request's headers exceed [`MAX_HEADERS`] or
/// [`MAX_HEADER_BYTES`].
async fn limit_headers(req: Request, next: Next) -> Response {
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "HEADERS_TOO_LARGE",
            format!(
                "the request has {} headers of {bytes} bytes; at most {MAX_HEADERS} headers \
                 of {MAX_HEADER_BYTES} bytes are read",
                headers.len()
            ),
        )
        .into_response();
    }
    next.run(req).await
}

/// Health: 200 with every part's state when the store answers and no part is failing;
/// otherwise 503 in the standard error body: `STORE_UNAVAILABLE`, or `COMPONENT_FAILING`
/// naming the failing parts. Error details go to the log, never here.
async fn healthz(State(st): State<AppState>) -> Response {
    if let Err(e) = st.engine.ping().await {
        return store_unavailable(st.engine.backend(), &e).into_response();
    }
    let failing = st.health.failing();
    if !failing.is_empty() {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "COMPONENT_FAILING",
            format!("failing and being restarted: {}", failing.join(", ")),
        );
        e.body.parameters = failing.iter().map(|f| format!("Component={f}")).collect();
        return e.into_response();
    }
    axum::Json(serde_json::json!({
        "status": "ok",
        "store": st.engine.backend(),
        "components": st.health.parts(),
    }))
    .into_response()
}

/// The answer of a failed health check. The store's error can name hosts, databases,
/// users and files, and `/healthz` is typically open to anyone who can reach the port
/// (load balancers, probes): the detail goes to the log, the caller gets a generic message.
fn store_unavailable(backend: &str, e: &worklane_store::StoreError) -> ApiError {
    tracing::error!(store = backend, error = %e, "health check: the store does not answer");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "STORE_UNAVAILABLE",
        "the store does not answer",
    )
}

async fn render_metrics(State(st): State<AppState>) -> impl IntoResponse {
    // The figures' gauges are read when scraped; a store error leaves their last values.
    if let Err(e) = stats::update_gauges(&st.engine).await {
        tracing::warn!(error = %e.body.message, "the task figures could not be read for /metrics");
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        st.metrics.render(),
    )
}

async fn track_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("worklane_http_requests_total", &labels).increment(1);
    metrics::histogram!("worklane_http_request_duration_seconds", &labels[..2])
        .record(started.elapsed().as_secs_f64());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failed_health_check_hides_the_store_error() {
        let internal = "connection to postgres://worklane:hunter2@db.internal:5432/wl refused";
        let e = worklane_store::StoreError::UnsupportedUrl(internal.to_owned());
        let resp = store_unavailable("postgres", &e).into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(resp.into_body(), 64 * 1024)
            .await
            .expect("body");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(
            v,
            serde_json::json!({
                "code": "STORE_UNAVAILABLE",
                "message": "the store does not answer",
                "parameters": [],
            })
        );
        let text = String::from_utf8_lossy(&body);
        for leak in ["hunter2", "db.internal", "refused", "worklane"] {
            assert!(!text.contains(leak), "{text}");
        }
    }
}

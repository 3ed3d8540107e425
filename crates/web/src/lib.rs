//! Worklane's web console (SPEC 11), served by `worklane serve` itself: the supervisor's
//! global task list, a task's page, queues, agents, the dashboard, and the agent desktop.
//!
//! Pages are rendered on the server from askama templates compiled into the binary; the
//! project's own small script (`static/app.js`) makes them live (EventSource on the event
//! log and the agent channel) and performs every action through the REST API, with the
//! session's CSRF token, so a page obeys the API's validation, role checks and error
//! codes, and shows its errors as readable messages. Who may open a page is the API's
//! role matrix (`worklane_api::auth::rule`); the pages' reads narrow to the caller's scope
//! like the API's.

mod dashboard;
mod desktop;
mod overview;
mod page;
mod tasks;
mod view;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use worklane_api::AppState;

pub use dashboard::chart_svg;

/// The console's routes, to mount beside the API (which authorizes them).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(page::start))
        .route("/console/login", get(page::login))
        .route("/console/static/{file}", get(asset))
        .route("/console/tasks", get(tasks::list))
        .route("/console/tasks/{id}", get(tasks::one))
        .route("/console/queues", get(overview::queues))
        .route("/console/agents", get(overview::agents))
        .route("/console/dashboard", get(dashboard::page))
        .route("/console/desktop", get(desktop::page))
        .layer(axum::middleware::map_response(protect))
        .with_state(state)
}

/// What the browser may do with the console's pages: only the console's own script and
/// style sheet run (no inline script), no framing by another site, no sniffing.
async fn protect(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("same-origin"),
    );
    r
}

const APP_JS: &str = include_str!("../static/app.js");
const APP_CSS: &str = include_str!("../static/app.css");

/// The console's own script and style sheet, compiled into the binary.
async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            // Revalidated on each load: a new binary's script is used at once.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

//! What every page shares: who is signed in, the CSRF token its script sends back, the
//! viewer's time zone, the navigation, and how a page or its error is answered.

use askama::Template;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use jiff::tz::TimeZone;
use serde::Deserialize;
use worklane_api::session::SessionCsrf;
use worklane_api::{ApiError, AppState, Caller};
use worklane_domain::{Principal, Role};

/// The cookie the console's script keeps the browser's time zone in (IANA name).
pub const TZ_COOKIE: &str = "worklane_tz";

/// The signed-in viewer of a page.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub caller: Caller,
    /// The user id (`user:<id>` without its prefix), or the token's name.
    pub user: String,
    pub role: Role,
    /// The agent the viewer is (agents only).
    pub agent: Option<String>,
    pub csrf: String,
    pub tz: TimeZone,
}

impl Viewer {
    pub fn staff(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Supervisor)
    }

    /// The layout of a page titled `title`, with `nav` marked as the current section.
    pub fn layout(&self, title: impl Into<String>, nav: &'static str, last_seq: i64) -> Layout {
        Layout {
            title: title.into(),
            user: self.user.clone(),
            role: self.role.as_str(),
            csrf: self.csrf.clone(),
            staff: self.staff(),
            nav,
            last_seq,
            tz: self.tz.iana_name().unwrap_or("UTC").to_owned(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &S) -> Result<Self, Self::Rejection> {
        let Ok(caller) = Caller::from_request_parts(parts, s).await;
        let csrf = parts
            .extensions
            .get::<SessionCsrf>()
            .map(|c| c.0.clone())
            .unwrap_or_default();
        let tz = cookie(parts, TZ_COOKIE)
            .and_then(|n| TimeZone::get(&n).ok())
            .unwrap_or(TimeZone::UTC);
        // Without authentication (auth.mode = "off") the console acts as an admin.
        let (user, role, agent) = match &caller.principal {
            Some(Principal {
                actor, role, agent, ..
            }) => (
                actor
                    .split_once(':')
                    .map_or(actor.as_str(), |(_, id)| id)
                    .to_owned(),
                *role,
                agent.as_ref().map(|a| a.id.clone()),
            ),
            None => ("anonymous".to_owned(), Role::Admin, None),
        };
        Ok(Viewer {
            caller,
            user,
            role,
            agent,
            csrf,
            tz,
        })
    }
}

fn cookie(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(name)?.strip_prefix('='))
        .map(|v| {
            form_urlencoded::parse(format!("v={v}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
}

/// The frame of every signed-in page.
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    pub user: String,
    pub role: &'static str,
    pub csrf: String,
    pub staff: bool,
    /// The current section: tasks, queues, agents, dashboard or desktop.
    pub nav: &'static str,
    /// The event log's newest seq when the page was rendered: its live updates start there.
    pub last_seq: i64,
    pub tz: String,
}

/// A rendered page, or the error that stopped it shown as a page.
pub fn html(t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => Html(body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a console page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

/// An error page: what went wrong, in the API's words (its code and message).
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    code: String,
    message: String,
}

/// Answers `e` as a page with the API's status, code and message.
pub fn error(viewer: &Viewer, e: ApiError) -> Response {
    let page = ErrorPage {
        layout: viewer.layout("Error", "", 0),
        code: e.body.code.clone(),
        message: e.body.message.clone(),
    };
    let mut r = html(&page);
    *r.status_mut() = e.status;
    r
}

/// `/console`: each role's first page.
pub async fn start(viewer: Viewer) -> Redirect {
    if viewer.staff() {
        Redirect::to("/console/tasks")
    } else {
        Redirect::to("/console/desktop")
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginParams {
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
struct Login {
    next: String,
}

/// The sign-in page (public). Its script posts to `POST /api/v1/session`.
pub async fn login(State(_): State<AppState>, Query(p): Query<LoginParams>) -> Response {
    // Only a console path: a link cannot send a signed-in user elsewhere.
    let next = p
        .next
        .filter(|n| n.starts_with("/console") && !n.starts_with("//"))
        .unwrap_or_else(|| "/console".to_owned());
    html(&Login { next })
}

//! Who is calling, and may they (SPEC 10). Every route has one entry in [`rule`]: the roles
//! that may call it. [`authorize`] authenticates the bearer token, checks that table and
//! hands the handlers a [`Principal`]; handlers narrow an agent or an integration to its own
//! tasks with the principal's [`worklane_domain::Scope`], which the engine checks against
//! the task it loads.

use crate::{ApiError, AppState};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use worklane_domain::{AgentScope, Principal, Role};
use worklane_store::TokenRecord;

use crate::limits::{ClientAddr, Limits};
use crate::session::{SessionPolicy, Throttle};

/// Whether callers must authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Every route but the public ones takes a bearer token.
    #[default]
    On,
    /// Anyone who reaches the port may do anything: only on a loopback listener.
    Off,
}

/// Where the first start writes the admin token it makes, unless configured, and where
/// the CLI looks for a token when given none.
pub const DEFAULT_TOKEN_FILE: &str = "worklane-admin.token";

/// The name of the admin token the first start makes.
pub const BOOTSTRAP_TOKEN: &str = "bootstrap-admin";

/// How long a token's principal is used from memory before the store is asked again: a
/// token revoked on another node stops working at most this long after.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(10);

/// A token's last use is written at most this often.
const TOUCH_EVERY: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

/// Authentication state shared by every request.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    pub mode: AuthMode,
    /// How console sessions and sign-in behave.
    pub sessions: SessionPolicy,
    pub(crate) throttle: Arc<Throttle>,
    pub(crate) limits: Arc<Limits>,
    cache: Arc<Mutex<HashMap<String, (Principal, Instant)>>>,
}

impl Auth {
    pub fn new(mode: AuthMode) -> Self {
        Self {
            mode,
            ..Default::default()
        }
    }

    /// With rate limits: failed authentications per client address per minute, and
    /// requests per authenticated caller per second (0: none).
    pub fn with_limits(mut self, failed_auth_per_minute: u32, per_caller_per_second: u32) -> Self {
        self.limits = Arc::new(Limits::new(failed_auth_per_minute, per_caller_per_second));
        self
    }

    /// With the sessions' settings.
    pub fn with_sessions(mut self, sessions: SessionPolicy) -> Self {
        self.sessions = sessions;
        self
    }

    /// Forgets every cached token (after a revocation on this node).
    pub fn forget_tokens(&self) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    async fn principal(&self, st: &AppState, token: &str) -> Result<Option<Principal>, ApiError> {
        let hash = token_sha256(token);
        if let Some((p, at)) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hash)
        {
            if at.elapsed() < TOKEN_CACHE_TTL {
                return Ok(Some(p.clone()));
            }
        }
        let Some(rec) = st.engine.access().token_by_hash(&hash).await? else {
            return Ok(None);
        };
        let now = st.engine.now();
        if rec
            .last_used_at
            .is_none_or(|t| now.duration_since(t) >= TOUCH_EVERY)
        {
            st.engine.access().touch_token(&rec.name, now).await?;
        }
        let p = principal_of(st, &rec).await?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(hash, (p.clone(), Instant::now()));
        Ok(Some(p))
    }
}

async fn principal_of(st: &AppState, rec: &TokenRecord) -> Result<Principal, ApiError> {
    let agent = match (&rec.role, &rec.agent) {
        (Role::Agent, Some(id)) => Some(agent_scope(st, id).await?),
        _ => None,
    };
    Ok(Principal {
        actor: format!("token:{}", rec.name),
        role: rec.role,
        agent,
        capture_point_id: rec.capture_point_id.clone(),
    })
}

/// An agent's id with the groups and places whose workbins it may open.
pub(crate) async fn agent_scope(st: &AppState, id: &str) -> Result<AgentScope, ApiError> {
    let a = st.engine.agents().get_agent(id).await?;
    Ok(match a {
        Some(a) => AgentScope {
            id: a.id,
            groups: a.profile.groups,
            place: a.profile.place,
            place_groups: a.profile.place_groups,
        },
        None => AgentScope {
            id: id.to_owned(),
            ..Default::default()
        },
    })
}

/// A new API token: `wl_` and 32 random bytes, base64url. Shown once; only its SHA-256 is
/// kept.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    format!(
        "wl_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// What the store keeps of a token: its SHA-256, hex. A token has 256 random bits, so a
/// fast hash is safe here (argon2 is for passwords, which people choose).
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The first characters of a token, to tell tokens apart in a list.
pub fn token_hint(token: &str) -> String {
    token.chars().take(8).collect()
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allow {
    /// Anyone, without a token (health, the OpenAPI document).
    Public,
    /// These roles.
    Roles(&'static [Role]),
    /// Admins, supervisors, and the agent the path's `{id}` names.
    AgentSelf,
}

const ADMIN: &[Role] = &[Role::Admin];
const STAFF: &[Role] = &[Role::Admin, Role::Supervisor];
const ALL: &[Role] = &[
    Role::Admin,
    Role::Supervisor,
    Role::Agent,
    Role::Integration,
];
const NOT_AGENT: &[Role] = &[Role::Admin, Role::Supervisor, Role::Integration];
const NOT_INTEGRATION: &[Role] = &[Role::Admin, Role::Supervisor, Role::Agent];

/// The role matrix (SPEC 10): who may call each route, by method and route pattern
/// (`/api/v1/tasks/{id}`, parameters named as the router or the document names them).
/// Routes that reach tasks are further narrowed to the caller's own tasks by its scope.
/// A route missing here is the admin's alone.
pub fn rule(method: &Method, path: &str) -> Allow {
    // Parameters by position, not name: the router and the document name them differently.
    let mut shape = String::with_capacity(path.len());
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                shape.push_str("{}");
            }
            '}' => in_param = false,
            _ if in_param => {}
            c => shape.push(c),
        }
    }
    match (method.as_str(), shape.as_str()) {
        (_, "/healthz" | "/api/v1/openapi.json") | ("POST", "/api/v1/session") => Allow::Public,
        ("GET", "/" | "/console/login" | "/console/static/{}") => Allow::Public,
        ("GET", "/console") => Allow::Roles(NOT_INTEGRATION),
        ("GET", "/console/desktop") => Allow::Roles(&[Role::Agent]),
        (
            "GET",
            "/console/tasks" | "/console/tasks/{}" | "/console/queues" | "/console/agents"
            | "/console/dashboard",
        ) => Allow::Roles(STAFF),
        ("GET" | "DELETE", "/api/v1/session") => Allow::Roles(ALL),
        ("POST", "/api/v1/tasks") => Allow::Roles(NOT_AGENT),
        ("GET", "/api/v1/tasks") => Allow::Roles(ALL),
        ("GET" | "PATCH", "/api/v1/tasks/{}") => Allow::Roles(ALL),
        ("GET", "/api/v1/tasks/{}/events") => Allow::Roles(ALL),
        (
            "POST",
            "/api/v1/tasks/{}/complete" | "/api/v1/tasks/{}/transfer" | "/api/v1/tasks/{}/workbin",
        ) => Allow::Roles(ALL),
        ("POST", "/api/v1/tasks/{}/assign" | "/api/v1/tasks/{}/{}") => Allow::Roles(NOT_AGENT),
        (_, "/api/v1/agents") => Allow::Roles(STAFF),
        ("PATCH", "/api/v1/agents/{}") => Allow::Roles(STAFF),
        ("GET", "/api/v1/agents/{}" | "/api/v1/agents/{}/offers" | "/api/v1/agents/{}/stream") => {
            Allow::AgentSelf
        }
        ("POST", "/api/v1/agents/{}/state" | "/api/v1/agents/{}/next") => Allow::AgentSelf,
        ("POST", "/api/v1/offers/{}/accept" | "/api/v1/offers/{}/reject") => {
            Allow::Roles(NOT_INTEGRATION)
        }
        ("GET", "/api/v1/events" | "/api/v1/events/stream") => Allow::Roles(STAFF),
        ("POST", "/api/v1/rules/explain" | "/api/v1/rules/diff") => Allow::Roles(STAFF),
        ("GET", "/metrics" | "/api/v1/stats") => Allow::Roles(STAFF),
        (
            "GET",
            "/api/v1/notifications/{}/deliveries" | "/api/v1/notifications/{}/deliveries/{}",
        ) => Allow::Roles(STAFF),
        _ => Allow::Roles(ADMIN),
    }
}

/// A console page asked for without a live session: to the sign-in page, back to the page
/// (`target`: its path and query) after.
fn console_sign_in(target: &str) -> Response {
    let back: String = form_urlencoded::byte_serialize(target.as_bytes()).collect();
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/console/login?next={back}"))],
    )
        .into_response()
}

/// A console page the signed-in role may not open: a page that says so.
fn console_forbidden(p: &Principal) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not allowed · \
         Worklane</title><link rel=\"stylesheet\" href=\"/console/static/app.css\"></head><body>\
         <main class=\"narrow\"><h1>Not allowed</h1><p role=\"alert\">FORBIDDEN: role {} may \
         not open this page.</p><p><a href=\"/console\">Your start page</a></p></main></body>\
         </html>",
        p.role
    );
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The 401 answer: no credential, or one that is unknown, revoked or ended (which of them
/// is not said). [`authorize`] adds the `WWW-Authenticate` challenge to every 401.
pub(crate) fn unauthenticated(why: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", why)
}

fn forbidden(p: &Principal, what: &str) -> Response {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
        format!("role {} may not {what}", p.role),
    )
    .into_response()
}

/// The bearer token of a request, if it sent one.
fn bearer(req: &Request) -> Result<Option<&str>, ApiError> {
    let Some(v) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| unauthenticated("the Authorization header is not readable"))?;
    match v.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => {
            Ok(Some(t.trim()))
        }
        _ => Err(unauthenticated(
            "the Authorization header must be `Bearer <token>`",
        )),
    }
}

fn too_many(why: &str, wait: jiff::SignedDuration) -> Response {
    let secs = wait.as_secs().max(1);
    let mut r =
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", why).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    r
}

/// The middleware: authenticates the caller, applies the rate limits and [`rule`] to the
/// matched route.
pub async fn authorize(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let Some(path) = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
    else {
        return next.run(req).await;
    };
    let allow = rule(req.method(), &path);
    if allow == Allow::Public || st.auth.mode == AuthMode::Off {
        return next.run(req).await;
    }
    let limits = st.auth.limits.clone();
    let now = st.engine.now();
    let client = req
        .extensions()
        .get::<ClientAddr>()
        .map(|a| a.0.ip().to_string());
    if let Some(ip) = &client {
        if limits.failed_auth.exhausted(ip, now) {
            return too_many(
                "too many failed authentications from this address; try again later",
                limits.failed_auth.retry_after(now),
            );
        }
    }
    let console = path.starts_with("/console");
    let target = req
        .uri()
        .path_and_query()
        .map_or("/console", |p| p.as_str())
        .to_owned();
    let (p, mut req) = match authenticate(&st, req).await {
        Ok(done) => done,
        Err(r) if console && r.status() == StatusCode::UNAUTHORIZED => {
            return console_sign_in(&target);
        }
        Err(mut r) => {
            if r.status() == StatusCode::UNAUTHORIZED {
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer realm=\"worklane\""),
                );
                if let Some(ip) = &client {
                    limits.failed_auth.count(ip, now);
                }
            }
            return r;
        }
    };
    if !limits.per_caller.count(&p.actor, now) {
        return too_many(
            &format!("more than {} requests a second", limits.per_caller.limit),
            limits.per_caller.retry_after(now),
        );
    }
    let permitted = match allow {
        Allow::Public => true,
        Allow::Roles(roles) => roles.contains(&p.role),
        Allow::AgentSelf => {
            // Agent ids are URL-safe (no `/` or `%`), so the raw segment is the id.
            let id = req.uri().path().split('/').nth(4).unwrap_or("");
            p.is_agent(id)
        }
    };
    if !permitted {
        if console {
            return console_forbidden(&p);
        }
        return forbidden(&p, &format!("call {} {path}", req.method()));
    }
    req.extensions_mut().insert(p);
    next.run(req).await
}

/// Who is calling: a bearer token, else a console session's cookie.
async fn authenticate(st: &AppState, mut req: Request) -> Result<(Principal, Request), Response> {
    let p = match bearer(&req) {
        Ok(Some(token)) => {
            let token = token.to_owned();
            match st.auth.principal(st, &token).await {
                Ok(Some(p)) => p,
                Ok(None) => {
                    return Err(unauthenticated("the token is unknown or revoked").into_response())
                }
                Err(e) => return Err(e.into_response()),
            }
        }
        Ok(None) => {
            let Some(secret) = crate::session::cookie(req.headers()) else {
                return Err(unauthenticated(
                    "this route takes `Authorization: Bearer <token>` or a session cookie",
                )
                .into_response());
            };
            let method = req.method().clone();
            let csrf = req
                .headers()
                .get(crate::session::CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            match crate::session::principal(st, &secret, &method, csrf.as_deref()).await {
                Ok((p, id, csrf)) => {
                    req.extensions_mut().insert(id);
                    req.extensions_mut().insert(csrf);
                    p
                }
                Err(e) => return Err(e.into_response()),
            }
        }
        Err(e) => return Err(e.into_response()),
    };
    Ok((p, req))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with("wl_") && a.len() == 46, "{a}");
        assert_eq!(token_sha256(&a).len(), 64);
        assert_ne!(token_sha256(&a), token_sha256(&b));
        assert_eq!(token_hint(&a), a[..8]);
    }
}

#[cfg(test)]
mod rule_tests {
    use super::*;

    #[test]
    fn parameters_match_by_position_whatever_their_name() {
        let get = Method::GET;
        assert_eq!(
            rule(&get, "/api/v1/tasks/{brokerId}"),
            rule(&get, "/api/v1/tasks/{id}")
        );
        assert_eq!(rule(&get, "/api/v1/tasks/{id}"), Allow::Roles(ALL));
        assert_eq!(rule(&get, "/api/v1/agents/{id}/offers"), Allow::AgentSelf);
        assert_eq!(rule(&get, "/healthz"), Allow::Public);
        assert_eq!(rule(&Method::POST, "/api/v1/unknown"), Allow::Roles(ADMIN));
    }
}

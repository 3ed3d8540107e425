//! Console sessions (SPEC 10): a user signs in with a password and gets a session cookie
//! (HttpOnly, SameSite=Strict, Secure when configured); every state-changing request of a
//! session carries its CSRF token in `X-CSRF-Token`. A session ends after being idle too
//! long or at the end of its lifetime, both on the engine's clock, and on sign-out; a
//! password reset or disabling the user ends every session of that user.
//!
//! Sign-in is limited: after a number of failures for a name, that name is locked for a
//! while, longer after each further failure, whether or not such a user exists, and an
//! unknown name costs the same password hashing as a known one, so neither the answers
//! nor their timing tell which names exist.

use crate::auth::{agent_scope, new_token, token_sha256, unauthenticated};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::AppState;
use argon2::password_hash::{PasswordHash, PasswordVerifier};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use utoipa::ToSchema;
use worklane_domain::{Principal, Role, Timestamp};
use worklane_store::SessionRecord;

/// The session cookie's name.
pub const COOKIE: &str = "worklane_session";
/// The header a session's state-changing requests carry its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How sessions and sign-in behave (`[auth]` in the configuration).
#[derive(Debug, Clone)]
pub struct SessionPolicy {
    /// A session unused this long has ended.
    pub idle: Duration,
    /// A session ends this long after sign-in, however busy.
    pub lifetime: Duration,
    /// Marks the cookie `Secure` (the console is served over HTTPS, e.g. behind a proxy).
    pub secure_cookie: bool,
    /// Failed sign-ins for one name before it is locked.
    pub attempts: u32,
    /// How long a name is locked after `attempts` failures (doubled for each further
    /// failure, up to 16 times).
    pub lockout: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(30 * 60),
            lifetime: Duration::from_secs(12 * 3600),
            secure_cookie: false,
            attempts: 5,
            lockout: Duration::from_secs(15 * 60),
        }
    }
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

/// Failed sign-ins by name (lower-cased), on this node.
#[derive(Debug, Default)]
pub struct Throttle {
    by_name: Mutex<HashMap<String, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Timestamp,
    locked_until: Option<Timestamp>,
}

impl Throttle {
    /// How long `name` is still locked at `now`, if it is.
    fn locked(&self, name: &str, now: Timestamp) -> Option<SignedDuration> {
        let map = self.by_name.lock().unwrap_or_else(|e| e.into_inner());
        let until = map.get(name)?.locked_until?;
        (until > now).then(|| until.duration_since(now))
    }

    fn failed(&self, name: &str, now: Timestamp, policy: &SessionPolicy) {
        let lockout = signed(policy.lockout);
        let mut map = self.by_name.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            // Bounded: forget names whose failures are older than a lockout.
            map.retain(|_, f| now.duration_since(f.last) < lockout);
        }
        let f = map.entry(name.to_owned()).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: None,
        });
        // Failures further apart than a lockout do not add up, unless they locked the name:
        // then only a success or a long quiet (the longest lockout) forgets them, so each
        // failure after a lockout locks the name again, for twice as long.
        let quiet = now.duration_since(f.last);
        if (f.count < policy.attempts && quiet >= lockout) || quiet >= lockout * 16 {
            f.count = 0;
        }
        f.count += 1;
        f.last = now;
        if f.count >= policy.attempts {
            let factor = 1i32 << (f.count - policy.attempts).min(4);
            f.locked_until = Some(now.saturating_add(lockout * factor).unwrap_or(now));
        }
    }

    fn succeeded(&self, name: &str) {
        self.by_name
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }
}

/// Signing in.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInBody {
    /// The user's id.
    #[schema(min_length = 1, max_length = 64)]
    pub user: String,
    #[schema(min_length = 1, max_length = 1024)]
    pub password: String,
}

impl std::fmt::Debug for SignInBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInBody")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The signed-in user and what its forms need.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub user: String,
    pub name: Option<String>,
    pub role: Role,
    /// Send it as `X-CSRF-Token` on every request that changes something.
    pub csrf_token: String,
    /// When the session ends at the latest.
    pub expires_date_time: Timestamp,
}

/// The session a request was authenticated by (its secret's SHA-256).
#[derive(Debug, Clone)]
pub struct SessionId(pub String);

/// The CSRF token of the session a request was authenticated by: what the console's pages
/// send back as `X-CSRF-Token`.
#[derive(Clone)]
pub struct SessionCsrf(pub String);

impl std::fmt::Debug for SessionCsrf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionCsrf(***)")
    }
}

/// The session cookie's secret, if the request sent one.
pub(crate) fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Equal strings, compared in a time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The principal of a request authenticated by session cookie: the session must be live,
/// its user enabled, and a state-changing request must carry the session's CSRF token.
pub(crate) async fn principal(
    st: &AppState,
    secret: &str,
    method: &Method,
    csrf: Option<&str>,
) -> Result<(Principal, SessionId, SessionCsrf), ApiError> {
    let policy = &st.auth.sessions;
    let access = st.engine.access();
    let sha = token_sha256(secret);
    let Some(s) = access.session_by_hash(&sha).await? else {
        return Err(unauthenticated(
            "the session is unknown or has ended; sign in",
        ));
    };
    let now = st.engine.now();
    if now >= s.expires_at || now.duration_since(s.last_seen_at) >= signed(policy.idle) {
        access.delete_session(&sha).await?;
        return Err(unauthenticated("the session has ended; sign in again"));
    }
    let user = match access.get_user(&s.user_id).await? {
        Some(u) if !u.disabled => u,
        _ => return Err(unauthenticated("the session's user is disabled")),
    };
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !same(csrf.unwrap_or(""), &s.csrf_token) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            format!("a session's request that changes something carries its CSRF token in {CSRF_HEADER}"),
        ));
    }
    // Written at most once a minute: a busy console does not write on every request.
    if now.duration_since(s.last_seen_at) >= SignedDuration::from_secs(60) {
        access.touch_session(&sha, now).await?;
    }
    let agent = match user.role {
        Role::Agent => Some(agent_scope(st, &user.id).await?),
        _ => None,
    };
    let p = Principal {
        actor: format!("user:{}", user.id),
        role: user.role,
        agent,
        capture_point_id: None,
    };
    Ok((p, SessionId(sha), SessionCsrf(s.csrf_token)))
}

/// A hash to verify against when the user does not exist, so that an unknown name takes
/// as long as a wrong password.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| crate::access::argon2id(new_token().as_bytes()).unwrap_or_default())
}

async fn verify(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

fn set_cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("a cookie of URL-safe characters")
}

#[utoipa::path(post, path = "/api/v1/session", tag = "access", request_body = SignInBody,
    responses((status = 200, description = "signed in: the session cookie is set", body = SessionView, headers(("Set-Cookie" = String, description = "worklane_session: HttpOnly, SameSite=Strict"))),
              (status = 401, description = "UNAUTHENTICATED: unknown user, wrong password or disabled user (which of them is not said)", body = ErrorBody),
              (status = 429, description = "TOO_MANY_ATTEMPTS: too many failed sign-ins for this name; Retry-After says when to try again", body = ErrorBody),
              (status = 400, description = "INVALID_FORMAT", body = ErrorBody), (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE", body = ErrorBody)))]
pub async fn sign_in(
    State(st): State<AppState>,
    Json(body): Json<SignInBody>,
) -> Result<Response, ApiError> {
    let policy = &st.auth.sessions;
    let throttle = &st.auth.throttle;
    let key = body.user.to_lowercase();
    let now = st.engine.now();
    if let Some(wait) = throttle.locked(&key, now) {
        let secs = wait.as_secs().max(1);
        let mut r = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_ATTEMPTS",
            format!("too many failed sign-ins for this name; try again in {secs} s"),
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return Ok(r);
    }
    let user = st.engine.access().get_user(&body.user).await?;
    let hash = user
        .as_ref()
        .map_or_else(|| dummy_hash().to_owned(), |u| u.password_hash.clone());
    let ok = verify(body.password, hash).await;
    let user = match user {
        Some(u) if ok && !u.disabled => u,
        _ => {
            throttle.failed(&key, st.engine.now(), policy);
            tracing::warn!(user = %body.user, "sign-in failed");
            return Err(unauthenticated("unknown user or wrong password"));
        }
    };
    throttle.succeeded(&key);
    let access = st.engine.access();
    let now = st.engine.now();
    access
        .prune_sessions(now, now - signed(policy.idle))
        .await?;
    let secret = new_token();
    let record = SessionRecord {
        user_id: user.id.clone(),
        csrf_token: new_token(),
        created_at: now,
        last_seen_at: now,
        expires_at: now.saturating_add(signed(policy.lifetime)).unwrap_or(now),
    };
    access
        .insert_session(&record, &token_sha256(&secret))
        .await?;
    tracing::info!(user = %user.id, "signed in");
    let view = SessionView {
        user: user.id,
        name: user.name,
        role: user.role,
        csrf_token: record.csrf_token,
        expires_date_time: record.expires_at,
    };
    let mut r = axum::Json(view).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&secret, policy.lifetime.as_secs(), policy.secure_cookie),
    );
    Ok(r)
}

#[utoipa::path(get, path = "/api/v1/session", tag = "access",
    responses((status = 200, description = "the session's user and CSRF token", body = SessionView),
              (status = 404, description = "SESSION_NOT_FOUND: the request was authenticated by a token, not a session", body = ErrorBody),
              (status = 503, description = "STORE_UNAVAILABLE", body = ErrorBody)))]
pub async fn current(
    State(st): State<AppState>,
    session: Option<axum::Extension<SessionId>>,
) -> Result<axum::Json<SessionView>, ApiError> {
    let no_session = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "SESSION_NOT_FOUND",
            "this request carries no session cookie",
        )
    };
    let axum::Extension(SessionId(sha)) = session.ok_or_else(no_session)?;
    let access = st.engine.access();
    let s = access.session_by_hash(&sha).await?.ok_or_else(no_session)?;
    let u = access.get_user(&s.user_id).await?.ok_or_else(no_session)?;
    Ok(axum::Json(SessionView {
        user: u.id,
        name: u.name,
        role: u.role,
        csrf_token: s.csrf_token,
        expires_date_time: s.expires_at,
    }))
}

#[utoipa::path(delete, path = "/api/v1/session", tag = "access",
    responses((status = 204, description = "signed out: the session has ended and the cookie is cleared"),
              (status = 404, description = "SESSION_NOT_FOUND: the request was authenticated by a token, not a session", body = ErrorBody),
              (status = 503, description = "STORE_UNAVAILABLE", body = ErrorBody)))]
pub async fn sign_out(
    State(st): State<AppState>,
    session: Option<axum::Extension<SessionId>>,
) -> Result<Response, ApiError> {
    let Some(axum::Extension(SessionId(sha))) = session else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "SESSION_NOT_FOUND",
            "this request carries no session cookie",
        ));
    };
    st.engine.access().delete_session(&sha).await?;
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie("", 0, st.auth.sessions.secure_cookie),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; worklane_session=abc; b=2"),
        );
        assert_eq!(cookie(&h).as_deref(), Some("abc"));
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("worklane_sessionx=1"),
        );
        assert_eq!(cookie(&h), None);
    }

    #[test]
    fn a_name_is_locked_after_repeated_failures_longer_each_time() {
        let policy = SessionPolicy {
            attempts: 3,
            lockout: Duration::from_secs(60),
            ..Default::default()
        };
        let t = Throttle::default();
        let now: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        t.failed("ann", now, &policy);
        t.failed("ann", now, &policy);
        assert_eq!(t.locked("ann", now), None, "two failures: not yet");
        t.failed("ann", now, &policy);
        assert_eq!(t.locked("ann", now), Some(SignedDuration::from_secs(60)));
        assert_eq!(t.locked("bob", now), None, "by name");
        let later = now + SignedDuration::from_secs(61);
        assert_eq!(t.locked("ann", later), None);
        t.failed("ann", later, &policy);
        assert_eq!(
            t.locked("ann", later),
            Some(SignedDuration::from_secs(120)),
            "doubled after the next failure"
        );
        t.succeeded("ann");
        assert_eq!(t.locked("ann", later), None);
    }

    #[test]
    fn csrf_tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(!same("", "a"));
    }
}

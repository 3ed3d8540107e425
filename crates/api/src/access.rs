//! The admin's routes for people and access (SPEC 10): users (argon2id passwords; an agent
//! user is the distribution layer's agent) and API tokens (shown once, kept as a hash).

use crate::auth::{new_token, token_hint, token_sha256};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path};
use crate::AppState;
use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use worklane_domain::agent::check_agent_id;
use worklane_domain::{AgentCommand, AgentProfile, ErrorCode, Role, Timestamp};
use worklane_store::{TokenRecord, UserChange, UserRecord};

/// Passwords shorter than this are refused.
pub const MIN_PASSWORD: usize = 10;
/// Longer ones too: argon2 hashes what it is given, and a megabyte would be slow.
pub const MAX_PASSWORD: usize = 1024;

/// A new user.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateUserBody {
    /// The sign-in name; an agent user's id is its agent's id (the agent is created when
    /// missing).
    #[schema(min_length = 1, max_length = 255)]
    pub id: String,
    pub name: Option<String>,
    pub role: Role,
    #[schema(min_length = 10, max_length = 1024)]
    pub password: String,
}

/// A change to a user: a new password (a reset), or disabling or enabling it.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateUserBody {
    #[schema(min_length = 10, max_length = 1024)]
    pub password: Option<String>,
    pub disabled: Option<bool>,
}

/// A user as the API shows it (never its password hash).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: String,
    pub name: Option<String>,
    pub role: Role,
    pub disabled: bool,
    pub created_date_time: Timestamp,
    pub updated_date_time: Timestamp,
}

impl From<UserRecord> for UserView {
    fn from(u: UserRecord) -> Self {
        Self {
            id: u.id,
            name: u.name,
            role: u.role,
            disabled: u.disabled,
            created_date_time: u.created_at,
            updated_date_time: u.updated_at,
        }
    }
}

/// A new API token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTokenBody {
    /// Letters, digits, `.`, `_` and `-`; unique.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub name: String,
    pub role: Role,
    /// The agent an agent token acts as (role agent only; required there).
    pub agent: Option<String>,
    /// The capture point an integration token is bound to (role integration only).
    pub capture_point_id: Option<String>,
}

/// A token as listed: its secret is never shown again.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    pub name: String,
    /// The token's first characters.
    pub hint: String,
    pub role: Role,
    pub agent: Option<String>,
    pub capture_point_id: Option<String>,
    pub created_date_time: Timestamp,
    pub last_used_date_time: Option<Timestamp>,
    pub revoked_date_time: Option<Timestamp>,
}

impl From<TokenRecord> for TokenView {
    fn from(t: TokenRecord) -> Self {
        Self {
            name: t.name,
            hint: t.hint,
            role: t.role,
            agent: t.agent,
            capture_point_id: t.capture_point_id,
            created_date_time: t.created_at,
            last_used_date_time: t.last_used_at,
            revoked_date_time: t.revoked_at,
        }
    }
}

/// A token just made: the one answer that carries its secret.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewTokenView {
    #[serde(flatten)]
    pub token: TokenView,
    /// The secret: send it as `Authorization: Bearer <token>`. Shown this once.
    #[serde(rename = "token")]
    pub secret: String,
}

// Passwords and secrets stay out of Debug output, and so out of logs.
impl std::fmt::Debug for CreateUserBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateUserBody")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl std::fmt::Debug for UpdateUserBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateUserBody")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("disabled", &self.disabled)
            .finish()
    }
}

impl std::fmt::Debug for NewTokenView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewTokenView")
            .field("token", &self.token)
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn conflict(code: &str, message: String) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, message)
}

fn not_found(code: &str, message: String) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, code, message)
}

fn check_password(p: &str) -> Result<(), ApiError> {
    let n = p.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
        return Err(ApiError::invalid(
            "password",
            format!("must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
        ));
    }
    Ok(())
}

/// argon2id with the crate's default (OWASP) parameters, off the async threads: a hash
/// takes tens of milliseconds on purpose.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    let failed = || {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "hashing failed",
        )
    };
    tokio::task::spawn_blocking(move || argon2id(password.as_bytes()))
        .await
        .map_err(|_| failed())?
        .ok_or_else(failed)
}

/// The argon2id PHC string of `password` with a new random salt (blocking: tens of
/// milliseconds).
pub(crate) fn argon2id(password: &[u8]) -> Option<String> {
    argon2::Argon2::default()
        .hash_password(password, &SaltString::generate(&mut OsRng))
        .map(|h| h.to_string())
        .ok()
}

#[utoipa::path(post, path = "/api/v1/users", tag = "access", request_body = CreateUserBody,
    responses((status = 201, body = UserView), (status = 409, description = "USER_EXISTS", body = ErrorBody), (status = 400, description = "INVALID_FORMAT: a bad id, role or password, named in the message", body = ErrorBody), (status = 401, description = "UNAUTHENTICATED", body = ErrorBody), (status = 403, description = "FORBIDDEN: admins only", body = ErrorBody), (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn create_user(
    State(st): State<AppState>,
    Json(body): Json<CreateUserBody>,
) -> Result<Response, ApiError> {
    check_agent_id(&body.id)?;
    if let Some(n) = &body.name {
        worklane_domain::fields::check_len("name", n, worklane_domain::fields::limits::TEXT)?;
    }
    check_password(&body.password)?;
    if st.engine.access().get_user(&body.id).await?.is_some() {
        return Err(conflict(
            "USER_EXISTS",
            format!("user {:?} exists", body.id),
        ));
    }
    if body.role == Role::Agent && st.engine.agents().get_agent(&body.id).await?.is_none() {
        let profile = AgentProfile {
            name: body.name.clone(),
            ..Default::default()
        };
        match st
            .engine
            .agent(AgentCommand::Create {
                id: body.id.clone(),
                profile,
            })
            .await
        {
            Ok(_) => {}
            // Made by someone else meanwhile: the user joins it.
            Err(worklane_engine::EngineError::Refused(e)) if e.code == ErrorCode::AgentExists => {}
            Err(e) => return Err(e.into()),
        }
    }
    let now = st.engine.now();
    let user = UserRecord {
        id: body.id,
        name: body.name,
        role: body.role,
        password_hash: hash_password(body.password).await?,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    if !st.engine.access().insert_user(&user).await? {
        return Err(conflict(
            "USER_EXISTS",
            format!("user {:?} exists", user.id),
        ));
    }
    tracing::info!(user = %user.id, role = %user.role, "user created");
    Ok((StatusCode::CREATED, axum::Json(UserView::from(user))).into_response())
}

#[utoipa::path(get, path = "/api/v1/users", tag = "access",
    responses((status = 200, body = Vec<UserView>), (status = 401, description = "UNAUTHENTICATED", body = ErrorBody), (status = 403, description = "FORBIDDEN: admins only", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE", body = ErrorBody)))]
pub async fn list_users(State(st): State<AppState>) -> Result<axum::Json<Vec<UserView>>, ApiError> {
    let users = st.engine.access().list_users().await?;
    Ok(axum::Json(users.into_iter().map(UserView::from).collect()))
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "access", params(("id" = String, Path)), request_body = UpdateUserBody,
    responses((status = 200, body = UserView), (status = 404, description = "USER_NOT_FOUND", body = ErrorBody), (status = 400, description = "INVALID_FORMAT: a bad password, named in the message", body = ErrorBody), (status = 401, description = "UNAUTHENTICATED", body = ErrorBody), (status = 403, description = "FORBIDDEN: admins only", body = ErrorBody), (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn update_user(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<UpdateUserBody>,
) -> Result<axum::Json<UserView>, ApiError> {
    check_agent_id(&id)?;
    let password_hash = match body.password {
        Some(p) => {
            check_password(&p)?;
            Some(hash_password(p).await?)
        }
        None => None,
    };
    let change = UserChange {
        password_hash,
        disabled: body.disabled,
    };
    let access = st.engine.access();
    if !access.update_user(&id, &change, st.engine.now()).await? {
        return Err(not_found("USER_NOT_FOUND", format!("no user {id:?}")));
    }
    let user = access
        .get_user(&id)
        .await?
        .ok_or_else(|| not_found("USER_NOT_FOUND", format!("no user {id:?}")))?;
    tracing::info!(user = %id, password_reset = change.password_hash.is_some(), disabled = ?change.disabled, "user changed");
    Ok(axum::Json(user.into()))
}

fn check_token_name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "name",
            "must be 1 to 64 letters, digits, `.`, `_` or `-`",
        ))
    }
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "access", request_body = CreateTokenBody,
    responses((status = 201, description = "the token, with its secret shown this once", body = NewTokenView), (status = 409, description = "TOKEN_EXISTS", body = ErrorBody), (status = 422, description = "AGENT_NOT_FOUND: an agent token names no agent", body = ErrorBody), (status = 400, description = "INVALID_FORMAT: a bad name, or agent or capturePointId given to a role that takes none", body = ErrorBody), (status = 401, description = "UNAUTHENTICATED", body = ErrorBody), (status = 403, description = "FORBIDDEN: admins only", body = ErrorBody), (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn create_token(
    State(st): State<AppState>,
    Json(body): Json<CreateTokenBody>,
) -> Result<Response, ApiError> {
    check_token_name(&body.name)?;
    match (body.role, &body.agent) {
        (Role::Agent, None) => {
            return Err(ApiError::invalid("agent", "an agent token names its agent"))
        }
        (Role::Agent, Some(a)) => {
            check_agent_id(a)?;
            if st.engine.agents().get_agent(a).await?.is_none() {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "AGENT_NOT_FOUND",
                    format!("no agent {a:?}"),
                ));
            }
        }
        (_, Some(_)) => {
            return Err(ApiError::invalid(
                "agent",
                "only an agent token names an agent",
            ))
        }
        (_, None) => {}
    }
    if body.capture_point_id.is_some() && body.role != Role::Integration {
        return Err(ApiError::invalid(
            "capturePointId",
            "only an integration token is bound to a capture point",
        ));
    }
    if let Some(cp) = &body.capture_point_id {
        worklane_domain::fields::check_capture_point_id(cp)?;
    }
    let secret = new_token();
    let rec = TokenRecord {
        name: body.name,
        hint: token_hint(&secret),
        role: body.role,
        agent: body.agent,
        capture_point_id: body.capture_point_id,
        created_at: st.engine.now(),
        last_used_at: None,
        revoked_at: None,
    };
    if !st
        .engine
        .access()
        .insert_token(&rec, &token_sha256(&secret))
        .await?
    {
        return Err(conflict(
            "TOKEN_EXISTS",
            format!("a token is named {:?}", rec.name),
        ));
    }
    tracing::info!(token = %rec.name, role = %rec.role, "API token created");
    let view = NewTokenView {
        token: rec.into(),
        secret,
    };
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "access",
    responses((status = 200, body = Vec<TokenView>), (status = 401, description = "UNAUTHENTICATED", body = ErrorBody), (status = 403, description = "FORBIDDEN: admins only", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE", body = ErrorBody)))]
pub async fn list_tokens(
    State(st): State<AppState>,
) -> Result<axum::Json<Vec<TokenView>>, ApiError> {
    let tokens = st.engine.access().list_tokens().await?;
    Ok(axum::Json(
        tokens.into_iter().map(TokenView::from).collect(),
    ))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{name}", tag = "access", params(("name" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$")),
    responses((status = 204, description = "revoked: it stops working on every node within 10 seconds, on this one at once"), (status = 404, description = "TOKEN_NOT_FOUND: no live token of that name", body = ErrorBody), (status = 400, description = "INVALID_FORMAT: a bad name", body = ErrorBody), (status = 401, description = "UNAUTHENTICATED", body = ErrorBody), (status = 403, description = "FORBIDDEN: admins only", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn revoke_token(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    check_token_name(&name)?;
    if !st
        .engine
        .access()
        .revoke_token(&name, st.engine.now())
        .await?
    {
        return Err(not_found(
            "TOKEN_NOT_FOUND",
            format!("no live token {name:?}"),
        ));
    }
    st.auth.forget_tokens();
    tracing::info!(token = %name, "API token revoked");
    Ok(StatusCode::NO_CONTENT)
}

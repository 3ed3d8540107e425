//! Users and API tokens (SPEC 10) as the store keeps them. Passwords arrive hashed
//! (argon2id PHC strings) and tokens as the SHA-256 of the secret: this module never sees
//! a password or a token.

use crate::{micros, StoreError};
use async_trait::async_trait;
use worklane_domain::{Role, Timestamp};

/// A user of the console and the API.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// An agent user's id is its agent's id.
    pub id: String,
    pub name: Option<String>,
    pub role: Role,
    /// argon2id, PHC string format.
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

// The hash stays out of Debug output and so out of logs.
impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password_hash", &"<redacted>")
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// An API token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub name: String,
    /// The token's first characters, to tell tokens apart in a list.
    pub hint: String,
    pub role: Role,
    /// The agent an agent token acts as.
    pub agent: Option<String>,
    /// The capture point an integration token is bound to.
    pub capture_point_id: Option<String>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A console session, without its secret (the cookie's; only its SHA-256 is kept).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub user_id: String,
    /// What every state-changing request of the session must carry (`X-CSRF-Token`).
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// The end of its lifetime, however busy it is.
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("user_id", &self.user_id)
            .field("csrf_token", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("last_seen_at", &self.last_seen_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What a user update changes (None: unchanged).
#[derive(Default)]
pub struct UserChange {
    pub password_hash: Option<String>,
    pub disabled: Option<bool>,
}

impl std::fmt::Debug for UserChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserChange")
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .field("disabled", &self.disabled)
            .finish()
    }
}

/// Users and API tokens.
#[async_trait]
pub trait Access: Send + Sync + std::fmt::Debug + 'static {
    /// Adds a user; false when the id is taken.
    async fn insert_user(&self, user: &UserRecord) -> Result<bool, StoreError>;

    async fn get_user(&self, id: &str) -> Result<Option<UserRecord>, StoreError>;

    /// Every user, in id order.
    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError>;

    /// Changes a user; false when there is none with that id. A new password or disabling
    /// ends the user's sessions, in the same transaction.
    async fn update_user(
        &self,
        id: &str,
        change: &UserChange,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Adds a token under the SHA-256 (hex) of its secret; false when the name is taken.
    async fn insert_token(&self, token: &TokenRecord, sha256: &str) -> Result<bool, StoreError>;

    /// The live (not revoked) token with this SHA-256 (hex).
    async fn token_by_hash(&self, sha256: &str) -> Result<Option<TokenRecord>, StoreError>;

    /// Every token, revoked ones too, in name order.
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;

    /// Revokes a live token; false when there is no live token with that name.
    async fn revoke_token(&self, name: &str, now: Timestamp) -> Result<bool, StoreError>;

    /// Records a use of the token.
    async fn touch_token(&self, name: &str, now: Timestamp) -> Result<(), StoreError>;

    /// How many tokens were ever made, revoked ones included (first start makes one).
    async fn count_tokens(&self) -> Result<i64, StoreError>;

    /// Adds a session under the SHA-256 (hex) of its secret.
    async fn insert_session(&self, s: &SessionRecord, sha256: &str) -> Result<(), StoreError>;

    async fn session_by_hash(&self, sha256: &str) -> Result<Option<SessionRecord>, StoreError>;

    /// Records a use of the session.
    async fn touch_session(&self, sha256: &str, now: Timestamp) -> Result<(), StoreError>;

    /// Ends a session (sign-out); false when there was none.
    async fn delete_session(&self, sha256: &str) -> Result<bool, StoreError>;

    /// Deletes the sessions that ended: past their lifetime at `now`, or last seen before
    /// `idle_before`. Returns how many.
    async fn prune_sessions(
        &self,
        now: Timestamp,
        idle_before: Timestamp,
    ) -> Result<u64, StoreError>;
}

fn ts(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap_or(Timestamp::MAX)
}

fn role(s: &str) -> Result<Role, StoreError> {
    s.parse()
        .map_err(|e: String| StoreError::Invalid(format!("a stored role: {e}")))
}

type UserRow = (String, Option<String>, String, String, i64, i64, i64);

fn user(r: UserRow) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        id: r.0,
        name: r.1,
        role: role(&r.2)?,
        password_hash: r.3,
        disabled: r.4 != 0,
        created_at: ts(r.5),
        updated_at: ts(r.6),
    })
}

type SessionRow = (String, String, i64, i64, i64);

fn session(r: SessionRow) -> SessionRecord {
    SessionRecord {
        user_id: r.0,
        csrf_token: r.1,
        created_at: ts(r.2),
        last_seen_at: ts(r.3),
        expires_at: ts(r.4),
    }
}

type TokenRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
);

fn token(r: TokenRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        name: r.0,
        hint: r.1,
        role: role(&r.2)?,
        agent: r.3,
        capture_point_id: r.4,
        created_at: ts(r.5),
        last_used_at: r.6.map(ts),
        revoked_at: r.7.map(ts),
    })
}

const USER_COLS: &str = "id, name, role, password_hash, disabled, created_at, updated_at";
const TOKEN_COLS: &str =
    "name, hint, role, agent, capture_point_id, created_at, last_used_at, revoked_at";

macro_rules! impl_access {
    ($ty:ty) => {
        #[async_trait]
        impl Access for $ty {
            async fn insert_user(&self, u: &UserRecord) -> Result<bool, StoreError> {
                let r = sqlx::query(
                    "INSERT INTO users (id, name, role, password_hash, disabled, created_at, \
                     updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                )
                .bind(&u.id)
                .bind(&u.name)
                .bind(u.role.as_str())
                .bind(&u.password_hash)
                .bind(i64::from(u.disabled))
                .bind(micros(u.created_at))
                .bind(micros(u.updated_at))
                .execute(&mut *self.write().acquire().await?)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn get_user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
                let row: Option<UserRow> =
                    sqlx::query_as(&format!("SELECT {USER_COLS} FROM users WHERE id = $1"))
                        .bind(id)
                        .fetch_optional(self.read())
                        .await?;
                row.map(user).transpose()
            }

            async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
                let rows: Vec<UserRow> =
                    sqlx::query_as(&format!("SELECT {USER_COLS} FROM users ORDER BY id"))
                        .fetch_all(self.read())
                        .await?;
                rows.into_iter().map(user).collect()
            }

            async fn update_user(
                &self,
                id: &str,
                c: &UserChange,
                now: Timestamp,
            ) -> Result<bool, StoreError> {
                let mut tx = self.write().begin().await?;
                let r = sqlx::query(
                    "UPDATE users SET password_hash = COALESCE($2, password_hash), \
                     disabled = COALESCE($3, disabled), updated_at = $4 WHERE id = $1",
                )
                .bind(id)
                .bind(&c.password_hash)
                .bind(c.disabled.map(i64::from))
                .bind(micros(now))
                .execute(&mut *tx)
                .await?;
                if c.password_hash.is_some() || c.disabled == Some(true) {
                    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(r.rows_affected() == 1)
            }

            async fn insert_token(
                &self,
                t: &TokenRecord,
                sha256: &str,
            ) -> Result<bool, StoreError> {
                let r = sqlx::query(
                    "INSERT INTO api_tokens (name, secret_sha256, hint, role, agent, \
                     capture_point_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&t.name)
                .bind(sha256)
                .bind(&t.hint)
                .bind(t.role.as_str())
                .bind(&t.agent)
                .bind(&t.capture_point_id)
                .bind(micros(t.created_at))
                .execute(&mut *self.write().acquire().await?)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn token_by_hash(&self, sha256: &str) -> Result<Option<TokenRecord>, StoreError> {
                let row: Option<TokenRow> = sqlx::query_as(&format!(
                    "SELECT {TOKEN_COLS} FROM api_tokens \
                     WHERE secret_sha256 = $1 AND revoked_at IS NULL"
                ))
                .bind(sha256)
                .fetch_optional(self.read())
                .await?;
                row.map(token).transpose()
            }

            async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
                let rows: Vec<TokenRow> =
                    sqlx::query_as(&format!("SELECT {TOKEN_COLS} FROM api_tokens ORDER BY name"))
                        .fetch_all(self.read())
                        .await?;
                rows.into_iter().map(token).collect()
            }

            async fn revoke_token(&self, name: &str, now: Timestamp) -> Result<bool, StoreError> {
                let r = sqlx::query(
                    "UPDATE api_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL",
                )
                .bind(name)
                .bind(micros(now))
                .execute(&mut *self.write().acquire().await?)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn touch_token(&self, name: &str, now: Timestamp) -> Result<(), StoreError> {
                sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE name = $1")
                    .bind(name)
                    .bind(micros(now))
                    .execute(&mut *self.write().acquire().await?)
                    .await?;
                Ok(())
            }

            async fn count_tokens(&self) -> Result<i64, StoreError> {
                let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM api_tokens")
                    .fetch_one(self.read())
                    .await?;
                Ok(n)
            }

            async fn insert_session(
                &self,
                s: &SessionRecord,
                sha256: &str,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO sessions (secret_sha256, user_id, csrf_token, created_at, \
                     last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(sha256)
                .bind(&s.user_id)
                .bind(&s.csrf_token)
                .bind(micros(s.created_at))
                .bind(micros(s.last_seen_at))
                .bind(micros(s.expires_at))
                .execute(&mut *self.write().acquire().await?)
                .await?;
                Ok(())
            }

            async fn session_by_hash(
                &self,
                sha256: &str,
            ) -> Result<Option<SessionRecord>, StoreError> {
                let row: Option<SessionRow> = sqlx::query_as(
                    "SELECT user_id, csrf_token, created_at, last_seen_at, expires_at \
                     FROM sessions WHERE secret_sha256 = $1",
                )
                .bind(sha256)
                .fetch_optional(self.read())
                .await?;
                Ok(row.map(session))
            }

            async fn touch_session(&self, sha256: &str, now: Timestamp) -> Result<(), StoreError> {
                sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE secret_sha256 = $1")
                    .bind(sha256)
                    .bind(micros(now))
                    .execute(&mut *self.write().acquire().await?)
                    .await?;
                Ok(())
            }

            async fn delete_session(&self, sha256: &str) -> Result<bool, StoreError> {
                let r = sqlx::query("DELETE FROM sessions WHERE secret_sha256 = $1")
                    .bind(sha256)
                    .execute(&mut *self.write().acquire().await?)
                    .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn prune_sessions(
                &self,
                now: Timestamp,
                idle_before: Timestamp,
            ) -> Result<u64, StoreError> {
                let r = sqlx::query(
                    "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at < $2",
                )
                .bind(micros(now))
                .bind(micros(idle_before))
                .execute(&mut *self.write().acquire().await?)
                .await?;
                Ok(r.rows_affected())
            }
        }
    };
}

impl_access!(crate::SqliteStore);
impl_access!(crate::PostgresStore);

//! The one error shape of the API: `{code, message, parameters}` with the protocol's codes,
//! and the one place that maps them to HTTP statuses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use worklane_domain::{DomainError, ErrorCode};
use worklane_engine::EngineError;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code, e.g. `TASK_NOT_FOUND`, `INVALID_FORMAT`.
    pub code: String,
    /// What was wrong, for people; the caller's input quoted in it is cut at 200 characters.
    pub message: String,
    /// The task's id and, where there is one, the offending attribute.
    pub parameters: Vec<String>,
}

/// An error answered to an API caller.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                code: code.to_owned(),
                message: message.into(),
                parameters: vec![],
            },
        }
    }

    /// 400 INVALID_FORMAT naming the field.
    pub fn invalid(field: &str, problem: impl std::fmt::Display) -> Self {
        DomainError::invalid(field, problem).into()
    }
}

fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidFormat => StatusCode::BAD_REQUEST,
        ErrorCode::TaskNotFound | ErrorCode::AgentNotFound => StatusCode::NOT_FOUND,
        ErrorCode::TaskAlreadyCaptured
        | ErrorCode::CannotCompleteTask
        | ErrorCode::CannotHoldAssignedTask
        | ErrorCode::CannotResumeTask
        | ErrorCode::CannotRestartTask
        | ErrorCode::CannotCancelCompletedTask
        | ErrorCode::CannotAssignTask
        | ErrorCode::InvalidTransition
        | ErrorCode::OfferNotFound
        | ErrorCode::AgentNotAvailable
        | ErrorCode::AgentExists => StatusCode::CONFLICT,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        Self {
            status: status_of(e.code),
            body: ErrorBody {
                code: e.code.as_str().to_owned(),
                message: e.message,
                parameters: e.parameters,
            },
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Refused(d) => d.into(),
            EngineError::Closed => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "SHUTTING_DOWN",
                "the server is shutting down",
            ),
            EngineError::Store(s) => {
                tracing::error!(error = %s, "store failure");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "STORE_UNAVAILABLE",
                    "the store failed; nothing was written",
                )
            }
        }
    }
}

impl From<worklane_store::StoreError> for ApiError {
    fn from(e: worklane_store::StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "STORE_UNAVAILABLE",
            "the store failed",
        )
    }
}

/// The longest message or parameter answered, in characters. Messages quote the caller's
/// input (a bad timestamp, an unknown status); without a cap a 500 KB value comes back in
/// full, doubling the traffic of a bad request and flooding logs that record answers.
pub const MAX_ECHO_CHARS: usize = 200;

/// `s` cut to [`MAX_ECHO_CHARS`] characters, an ellipsis marking the cut.
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

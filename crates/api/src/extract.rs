//! Extractors that answer malformed input in the API's error shape, naming the field.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

/// JSON body; malformed JSON and wrong types give 400 INVALID_FORMAT with the field's path,
/// an oversized body 413. An empty body reads as `{}`.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PAYLOAD_TOO_LARGE",
                    e.body_text(),
                )
            } else {
                ApiError::invalid("body", e.body_text())
            }
        })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(de).map(Json).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." { "body".to_owned() } else { path };
            ApiError::invalid(&field, e.into_inner())
        })
    }
}

/// Query string; a bad value gives 400 INVALID_FORMAT naming the parameter.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                let path = e.path().to_string();
                let field = if path == "." {
                    "query".to_owned()
                } else {
                    path
                };
                ApiError::invalid(&field, e.into_inner())
            })
    }
}

/// Splits a JSON object body into its envelope (`keys`: actor, reason...) and the task
/// attributes, deserializing each with the path of a bad field in the error. Unknown task
/// attributes are refused.
pub fn split_body<E: DeserializeOwned, F: DeserializeOwned>(
    mut body: serde_json::Map<String, serde_json::Value>,
    keys: &[&str],
) -> Result<(E, F), ApiError> {
    let mut envelope = serde_json::Map::new();
    for k in keys {
        if let Some(v) = body.remove(*k) {
            envelope.insert((*k).to_owned(), v);
        }
    }
    Ok((from_value(envelope)?, from_value(body)?))
}

fn from_value<T: DeserializeOwned>(
    m: serde_json::Map<String, serde_json::Value>,
) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(serde_json::Value::Object(m)).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        ApiError::invalid(&field, e.into_inner())
    })
}

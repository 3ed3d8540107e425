//! Extractors that answer malformed input in the API's error shape, naming the field.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::{DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::HashSet;
use std::fmt;

/// JSON body that must be present; an empty body is refused with 400 INVALID_FORMAT
/// naming `body`, because an empty create or update would otherwise write an event that
/// says nothing. Malformed JSON, trailing data after the value, duplicate keys and wrong
/// types give 400 INVALID_FORMAT with the field's path; a body that is not
/// `application/json` 415, an oversized body 413.
#[derive(Debug)]
pub struct Json<T>(pub T);

/// Like [`Json`], but an empty body reads as `{}`: the audit
/// attributes of an action are all optional, so `POST .../hold` with no body is valid.
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        body_json(req, state, true).await.map(Json)
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        body_json(req, state, false).await.map(OptionalJson)
    }
}

/// A body that could not be read, in the API's error shape: 413 when it is too large.
pub(crate) fn body_error(e: axum::extract::rejection::BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            e.body_text(),
        )
    } else {
        ApiError::invalid("body", e.body_text())
    }
}

async fn body_json<S: Send + Sync, T: DeserializeOwned>(
    req: Request,
    state: &S,
    required: bool,
) -> Result<T, ApiError> {
    let json_type = is_json(req.headers());
    let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
    // No body at all is judged before its type: a caller that sent nothing learns that a
    // body is required, not which type the body it did not send should have had.
    if bytes.iter().all(u8::is_ascii_whitespace) {
        if required {
            return Err(ApiError::invalid("body", "a JSON object is required"));
        }
        return parse(b"{}");
    }
    if json_type != Some(true) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "the body must be sent as Content-Type: application/json",
        ));
    }
    parse(&bytes)
}

/// `Some(true)` for `application/json` (any parameters, any case), `Some(false)` for
/// another type, `None` without a Content-Type.
fn is_json(headers: &HeaderMap) -> Option<bool> {
    let v = headers.get(header::CONTENT_TYPE)?;
    let essence = v
        .to_str()
        .ok()
        .and_then(|s| s.split(';').next())
        .map(str::trim);
    Some(essence.is_some_and(|e| e.eq_ignore_ascii_case("application/json")))
}

/// Parses one JSON value and nothing after it, refusing duplicate keys at any depth
/// (serde would silently keep the last, so `{"priority":1,"priority":9}` would mean
/// whatever the last sender intended), then deserializes it naming the bad field.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let field_of = |path: String| {
        if path == "." {
            "body".to_owned()
        } else {
            path
        }
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize::<_, NoDuplicates>(&mut de)
        .map_err(|e| ApiError::invalid(&field_of(e.path().to_string()), e.into_inner()))?;
    de.end().map_err(|e| ApiError::invalid("body", e))?;
    // serde would read a struct from an array too (`[null, null]`): every body here is
    // one object.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de)
        .map_err(|e| ApiError::invalid(&field_of(e.path().to_string()), e.into_inner()))
}

/// A JSON value checked for duplicate object keys; its content is discarded.
struct NoDuplicates;

impl<'de> Deserialize<'de> for NoDuplicates {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicatesVisitor)
    }
}

struct NoDuplicatesVisitor;

impl<'de> Visitor<'de> for NoDuplicatesVisitor {
    type Value = NoDuplicates;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_i64<E>(self, _: i64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_u64<E>(self, _: u64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_f64<E>(self, _: f64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_str<E>(self, _: &str) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_unit<E>(self) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NoDuplicates, A::Error> {
        while seq.next_element::<NoDuplicates>()?.is_some() {}
        Ok(NoDuplicates)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NoDuplicates, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate key {key:?}"
                )));
            }
            map.next_value::<NoDuplicates>()?;
        }
        Ok(NoDuplicates)
    }
}

/// A path parameter as text; a path that is not valid UTF-8 (or otherwise does not
/// match) gives 400 INVALID_FORMAT instead of axum's plain-text rejection.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| ApiError::invalid("path", e.body_text()))
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

pub(crate) fn from_value<T: DeserializeOwned>(
    m: serde_json::Map<String, serde_json::Value>,
) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(serde_json::Value::Object(m)).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        ApiError::invalid(&field, e.into_inner())
    })
}

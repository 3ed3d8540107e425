//! `/api/v1/events`: the event log, paged and as a resumable Server-Sent Events stream.

use crate::error::{ApiError, ErrorBody};
use crate::extract::Query;
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use worklane_domain::Event;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Events after this seq (default 0: from the start).
    pub after: Option<i64>,
    /// At most this many, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// A page of the event log.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    pub events: Vec<Event>,
    /// The seq to pass as `after` for the next page.
    pub last: i64,
}

#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventParams),
    responses((status = 200, body = EventPage), (status = 400, description = "INVALID_FORMAT: a bad id, parameter or attribute, named in the message and parameters", body = ErrorBody), (status = 503, description = "STORE_UNAVAILABLE or SHUTTING_DOWN; nothing was written", body = ErrorBody)))]
pub async fn list_events(
    State(st): State<AppState>,
    Query(p): Query<EventParams>,
) -> Result<axum::Json<EventPage>, ApiError> {
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 1000"));
    }
    let after = p.after.unwrap_or(0);
    let events = st.engine.events().events_after(after, limit).await?;
    let last = events.last().map_or(after, |e| e.seq);
    Ok(axum::Json(EventPage { events, last }))
}

/// Streams events as they are committed. Each SSE message has `id` = seq, `event` = the
/// event type and the event as JSON data; reconnecting with `Last-Event-ID` (or `?after=`)
/// resumes right after it.
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "events", params(EventParams),
    responses((status = 200, content_type = "text/event-stream", description = "Server-Sent Events"),
              (status = 400, description = "INVALID_FORMAT: a bad parameter or Last-Event-ID", body = ErrorBody)))]
pub async fn stream_events(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<EventParams>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let pos = last_event_id(&headers)?.or(p.after).unwrap_or(0);
    let stream = tail(&st, pos, |_| true, ());
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The position a client resumes from: its `Last-Event-ID` header, when it sent one.
pub(crate) fn last_event_id(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    headers
        .get("last-event-id")
        .map(|v| v.to_str().ok().and_then(|s| s.trim().parse::<i64>().ok()))
        .map(|v| v.ok_or_else(|| ApiError::invalid("Last-Event-ID", "is not an event seq")))
        .transpose()
}

/// The event log after `pos` as SSE events, those `keep` accepts, following new commits
/// until shutdown; `guard` lives as long as the stream (it runs its Drop when the client
/// goes away).
pub(crate) fn tail(
    st: &AppState,
    pos: i64,
    keep: impl Fn(&Event) -> bool + Send + 'static,
    guard: impl Send + 'static,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let mut follower = st.engine.feed().follow(pos);
    let shutdown = st.shutdown.clone();
    async_stream::stream! {
        let _guard = guard;
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => break,
                next = follower.next() => next,
            };
            match next {
                Ok(events) => {
                    for e in events.iter().filter(|e| keep(e)) {
                        let data = serde_json::to_string(e).unwrap_or_default();
                        yield Ok(SseEvent::default().id(e.seq.to_string()).event(e.event_type.as_str()).data(data));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "event stream read failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }
}

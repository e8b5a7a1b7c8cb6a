//! `GET /v1/me/events`: Server-Sent Events of changes that concern the caller.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::AppState;
use crate::extract::Caller;
use crate::live::concerns;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/me/events", get(events))
}

/// Server-Sent Events of changes that concern the caller.
#[utoipa::path(get, path = "/v1/me/events", tag = "live", security(("bearer" = [])),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = String),
        (status = 401, description = "Not authenticated", body = crate::openapi::Problem),
    ))]
pub(crate) async fn events(
    State(state): State<AppState>,
    caller: Caller,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = state.live.subscribe();
    let user = caller.user_id;
    let stream = futures::stream::unfold(receiver, move |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(event) if concerns(user, &event) => {
                    let data = serde_json::json!({
                        "stream_id": event.stream_id,
                        "stream_version": event.stream_version,
                        "event_type": event.event_type,
                        "recorded_at": event.recorded_at,
                    });
                    let sse = Event::default()
                        .event(event.event_type.clone())
                        .id(event.global_position.to_string())
                        .data(data.to_string());
                    return Some((Ok(sse), receiver));
                }
                Ok(_) => {}
                // A slow client missed some; it keeps the stream and re-reads state.
                Err(RecvError::Lagged(missed)) => {
                    let sse = Event::default().event("lagged").data(missed.to_string());
                    return Some((Ok(sse), receiver));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

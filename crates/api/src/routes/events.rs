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
use crate::error::ApiError;
use crate::extract::Caller;
use crate::openapi::LiveEvent;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/me/events", get(events))
}

/// Server-Sent Events of changes that concern the caller. A user holds at most
/// `TRELLIS_LIVE_STREAMS_PER_USER` streams; a stream ends when its access token expires, its
/// session is revoked (logout, password change) or the user is deactivated (re-checked every
/// `TRELLIS_LIVE_RECHECK_SECONDS`): the client reconnects with a fresh token.
#[utoipa::path(get, path = "/v1/me/events", tag = "live", operation_id = "streamMyEvents",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Server-Sent Events: each `data:` is a `LiveEvent` (JSON), `event:` its type and `id:` its global position; `event: lagged` carries the number of events a slow client missed",
            content_type = "text/event-stream", body = String),
        (status = 429, description = "Too many open streams for this user; see Retry-After"),
    ))]
pub(crate) async fn events(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let slot = state
        .live
        .open_stream(caller.user_id, state.edge.config.live_streams_per_user)
        .ok_or(ApiError::TooManyRequests { retry_after: 15 })?;
    let receiver = state.live.subscribe();
    let user = caller.user_id;
    let mut recheck = tokio::time::interval(state.edge.config.live_recheck);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let live = Live {
        receiver,
        recheck,
        state,
        caller,
        _slot: slot,
    };
    let stream = futures::stream::unfold(live, move |mut live| async move {
        loop {
            tokio::select! {
                received = live.receiver.recv() => match received {
                    Ok(event) if live.state.modules.concerns(user, &event) => {
                        let data = LiveEvent {
                            event_type: event.event_type.clone(),
                            recorded_at: event.recorded_at,
                            stream_id: event.stream_id.to_string(),
                            stream_version: event.stream_version,
                        };
                        let data = serde_json::to_string(&data).unwrap_or_default();
                        let sse = Event::default()
                            .event(event.event_type.clone())
                            .id(event.global_position.to_string())
                            .data(data);
                        return Some((Ok(sse), live));
                    }
                    Ok(_) => {}
                    // A slow client missed some; it keeps the stream and re-reads state.
                    Err(RecvError::Lagged(missed)) => {
                        let sse = Event::default().event("lagged").data(missed.to_string());
                        return Some((Ok(sse), live));
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = live.recheck.tick() => {
                    if !live.still_allowed().await {
                        return None;
                    }
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// One open stream and what it needs to re-check its caller.
struct Live {
    receiver: tokio::sync::broadcast::Receiver<std::sync::Arc<trellis_kernel::RecordedEvent>>,
    recheck: tokio::time::Interval,
    state: AppState,
    caller: Caller,
    _slot: crate::live::StreamSlot,
}

impl Live {
    /// The token has not expired, the session is alive and the user active. A database
    /// hiccup keeps the stream (the next check decides).
    async fn still_allowed(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if now >= self.caller.token_expires {
            return false;
        }
        let caller = &self.caller;
        let allowed = self
            .state
            .edge
            .sessions
            .principal(caller.user_id, caller.organization_id, caller.session_id)
            .await;
        !matches!(allowed, Ok(None))
    }
}

//! Live updates of what concerns the caller: `GET /v1/me/events` (Server-Sent Events) and
//! `GET /v1/me/ws` (a WebSocket carrying the same messages). Both come from one [`feed`].

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures::{SinkExt, Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Caller;
use crate::live::LiveMessage;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/me/events", get(events)).route(
        "/v1/me/ws",
        get(websocket).layer(axum::Extension(crate::extract::TokenInSubprotocol)),
    )
}

/// One message of a caller's live feed.
enum LiveItem {
    /// An event that concerns them.
    Event(Arc<LiveMessage>),
    /// They were too slow and missed this many (they keep the feed and re-read state).
    Lagged(u64),
}

impl LiveItem {
    /// As a Server-Sent Event.
    fn sse(&self) -> Event {
        match self {
            Self::Event(message) => Event::default()
                .event(&message.event_type)
                .id(&message.id)
                .data(&message.data),
            Self::Lagged(missed) => Event::default().event("lagged").data(missed.to_string()),
        }
    }

    /// As a WebSocket text message.
    fn text(&self) -> String {
        match self {
            Self::Event(message) => message.text.clone(),
            Self::Lagged(missed) => {
                serde_json::json!({ "event": "lagged", "id": null, "data": missed }).to_string()
            }
        }
    }
}

/// The caller's feed: every event that concerns them from now on, until their access token
/// expires, their session is revoked or they are deactivated (re-checked every
/// `TRELLIS_LIVE_RECHECK_SECONDS`). Holds one of the user's
/// `TRELLIS_LIVE_STREAMS_PER_USER` slots while it lives.
fn feed(state: AppState, caller: Caller) -> Result<impl Stream<Item = LiveItem>, ApiError> {
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
    Ok(futures::stream::unfold(live, move |mut live| async move {
        loop {
            tokio::select! {
                received = live.receiver.recv() => match received {
                    Ok(message) if message.concerned.binary_search(&user).is_ok() => {
                        return Some((LiveItem::Event(message), live));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => return Some((LiveItem::Lagged(missed), live)),
                    Err(RecvError::Closed) => return None,
                },
                _ = live.recheck.tick() => {
                    if !live.still_allowed().await {
                        return None;
                    }
                }
            }
        }
    }))
}

/// Server-Sent Events of changes that concern the caller. A user holds at most
/// `TRELLIS_LIVE_STREAMS_PER_USER` streams (SSE and WebSocket together); a stream ends when
/// its access token expires, its session is revoked (logout, password change) or the user is
/// deactivated (re-checked every `TRELLIS_LIVE_RECHECK_SECONDS`): the client reconnects with
/// a fresh token.
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
    let stream = feed(state, caller)?.map(|item| Ok(item.sse()));
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The WebSocket sub-protocol the server speaks.
const PROTOCOL: &str = "trellis.v1";

/// The same messages as `GET /v1/me/events` over a WebSocket (seed 003's clients): each text
/// message is `{"event": type, "id": global position, "data": LiveEvent}` (`{"event":
/// "lagged", "data": missed}` for a slow client). Authenticate with `Authorization: Bearer`
/// or, from a browser, by offering the sub-protocols `trellis.v1` and `bearer.<access
/// token>`; the server selects `trellis.v1`. The server pings every 15 s; the socket closes
/// (code 1008) when the token expires or the session ends, as the SSE stream does.
#[utoipa::path(get, path = "/v1/me/ws", tag = "live", operation_id = "openMyWebSocket",
    security(("bearer" = [])),
    responses(
        (status = 101, description = "Switching to a WebSocket of live messages"),
        (status = 400, description = "Not a WebSocket upgrade request"),
        (status = 429, description = "Too many open streams for this user; see Retry-After"),
    ))]
pub(crate) async fn websocket(
    State(state): State<AppState>,
    caller: Caller,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::BadRequest(format!(
            "not a WebSocket upgrade: {}",
            rejection.body_text()
        ))
    })?;
    let feed = feed(state, caller)?;
    Ok(upgrade
        .protocols([PROTOCOL])
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| serve_socket(socket, feed)))
}

/// Sends the feed until it ends (then closes with 1008, policy) or the client goes away.
async fn serve_socket(socket: WebSocket, feed: impl Stream<Item = LiveItem>) {
    let (mut sender, mut incoming) = socket.split();
    let mut ping = tokio::time::interval(Duration::from_secs(15));
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    futures::pin_mut!(feed);
    loop {
        tokio::select! {
            item = feed.next() => {
                let Some(item) = item else {
                    let close = axum::extract::ws::CloseFrame {
                        code: 1008,
                        reason: "session ended: reconnect with a fresh token".into(),
                    };
                    let _ = sender.send(Message::Close(Some(close))).await;
                    return;
                };
                if sender.send(Message::Text(item.text().into())).await.is_err() {
                    return;
                }
            }
            received = incoming.next() => match received {
                // Clients have nothing to say; pongs and pings are answered by the library.
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if sender.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// One open feed and what it needs to re-check its caller.
struct Live {
    receiver: tokio::sync::broadcast::Receiver<Arc<LiveMessage>>,
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

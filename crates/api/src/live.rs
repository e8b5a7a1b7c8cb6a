//! Live updates: one follower of `$all` per process fans events out to the live feeds
//! (`GET /v1/me/events`, `GET /v1/me/ws`), each filtered to what concerns its caller. Who an
//! event concerns and what a feed sends of it are worked out once per event here, not once
//! per listener.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use trellis_kernel::{AllSubscription, EventStore, SubscriptionOptions};
use trellis_module::Modules;
use uuid::Uuid;

use crate::openapi::LiveEvent;

/// One event as the live feeds send it.
#[derive(Debug)]
pub struct LiveMessage {
    /// The event type (SSE `event:`).
    pub event_type: String,
    /// Its global position (SSE `id:`).
    pub id: String,
    /// What a client reads: a `LiveEvent` as JSON (SSE `data:`).
    pub data: String,
    /// The WebSocket text message: `{"event", "id", "data"}`.
    pub text: String,
    /// The users it concerns, sorted.
    pub concerned: Vec<Uuid>,
}

/// The fan-out.
pub struct LiveHub {
    sender: broadcast::Sender<Arc<LiveMessage>>,
    /// Open streams per user.
    open: Arc<std::sync::Mutex<std::collections::HashMap<Uuid, u32>>>,
}

/// One open stream of a user; dropping it frees the slot.
pub struct StreamSlot {
    open: Arc<std::sync::Mutex<std::collections::HashMap<Uuid, u32>>>,
    user: Uuid,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

impl LiveHub {
    /// Starts following the store from its current head. The follower lives as long as the
    /// process (one per API process, however many clients listen).
    pub fn start(store: Arc<dyn EventStore>, modules: Arc<Modules>) -> Arc<Self> {
        let (sender, _) = broadcast::channel(4096);
        let hub = Arc::new(Self {
            sender: sender.clone(),
            open: Arc::default(),
        });
        tokio::spawn(async move {
            let head = loop {
                match store.head().await {
                    Ok(head) => break head,
                    Err(error) => {
                        tracing::warn!(%error, "live updates cannot read the head; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            };
            let mut subscription =
                AllSubscription::new(store, head, SubscriptionOptions::default());
            loop {
                match subscription.next_batch().await {
                    Ok(batch) => {
                        // Nobody listening: nothing to work out.
                        if sender.receiver_count() == 0 {
                            continue;
                        }
                        for event in batch {
                            let data = LiveEvent {
                                event_type: event.event_type.clone(),
                                recorded_at: event.recorded_at,
                                stream_id: event.stream_id.to_string(),
                                stream_version: event.stream_version,
                            };
                            let id = event.global_position.to_string();
                            let text = serde_json::json!({
                                "event": event.event_type, "id": id, "data": data,
                            })
                            .to_string();
                            let message = LiveMessage {
                                concerned: modules.concerned(&event),
                                data: serde_json::to_string(&data).unwrap_or_default(),
                                text,
                                id,
                                event_type: event.event_type,
                            };
                            // Receivers may all have gone since: fine.
                            let _ = sender.send(Arc::new(message));
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "live updates cannot read $all; backing off");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        hub
    }

    /// Takes one of `user`'s at most `cap` stream slots; `None` when all are taken.
    pub fn open_stream(&self, user: Uuid, cap: u32) -> Option<StreamSlot> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = open.entry(user).or_default();
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            open: Arc::clone(&self.open),
            user,
        })
    }

    /// A new receiver of every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveMessage>> {
        self.sender.subscribe()
    }
}

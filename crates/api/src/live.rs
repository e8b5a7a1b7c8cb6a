//! Live updates: one follower of `$all` per process fans events out to Server-Sent Event
//! streams (`GET /v1/me/events`), each filtered to what concerns its caller.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use trellis_kernel::{AllSubscription, EventStore, RecordedEvent, SubscriptionOptions};
use uuid::Uuid;

/// The fan-out.
pub struct LiveHub {
    sender: broadcast::Sender<Arc<RecordedEvent>>,
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
    pub fn start(store: Arc<dyn EventStore>) -> Arc<Self> {
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
                        for event in batch {
                            // No receivers is fine: nobody is listening right now.
                            let _ = sender.send(Arc::new(event));
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
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<RecordedEvent>> {
        self.sender.subscribe()
    }
}

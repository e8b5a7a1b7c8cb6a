//! A live catch-up subscription to `$all`, built on the port alone.
//!
//! It reads pages after its checkpoint until it is caught up, then waits for the store's
//! append signal (this process's appends) or its poll interval (other processes' appends and
//! events held back behind a slow transaction), whichever comes first. Because it only uses
//! [`EventStore::read_all`], it inherits that method's no-skip guarantee on every adapter.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::envelope::RecordedEvent;
use crate::ids::GlobalPosition;
use crate::store::{EventStore, StoreError};

/// Tuning for a subscription.
#[derive(Debug, Clone, Copy)]
pub struct SubscriptionOptions {
    /// Events per read.
    pub batch_size: usize,
    /// Longest wait between reads when idle: the latency bound for appends made by other
    /// processes, which do not trip this process's append signal.
    pub poll_interval: Duration,
}

impl Default for SubscriptionOptions {
    fn default() -> Self {
        Self {
            batch_size: 500,
            poll_interval: Duration::from_millis(20),
        }
    }
}

/// Follows `$all` from a checkpoint, forever.
pub struct AllSubscription<S: ?Sized> {
    store: Arc<S>,
    after: Option<GlobalPosition>,
    signal: watch::Receiver<u64>,
    options: SubscriptionOptions,
}

impl<S: EventStore + ?Sized> AllSubscription<S> {
    /// Starts after the event at `after` (from the beginning when `None`).
    pub fn new(store: Arc<S>, after: Option<GlobalPosition>, options: SubscriptionOptions) -> Self {
        let signal = store.append_signal();
        Self {
            store,
            after,
            signal,
            options,
        }
    }

    /// The position of the last event handed out: the checkpoint to persist.
    pub fn checkpoint(&self) -> Option<GlobalPosition> {
        self.after
    }

    /// The next non-empty batch, waiting as long as it takes.
    ///
    /// Cancel-safe: dropping the future before it resolves loses nothing, since the
    /// checkpoint only moves when a batch is returned.
    ///
    /// # Errors
    /// Store failures; the caller decides whether to back off and call again.
    pub async fn next_batch(&mut self) -> Result<Vec<RecordedEvent>, StoreError> {
        loop {
            // Mark the signal seen *before* reading, so an append racing the read wakes the
            // wait below instead of being noticed only at the next poll.
            self.signal.borrow_and_update();
            let batch = self
                .store
                .read_all(self.after, self.options.batch_size)
                .await?;
            if let Some(last) = batch.last() {
                self.after = Some(last.global_position);
                return Ok(batch);
            }
            let poll = self.options.poll_interval;
            if let Ok(Err(_closed)) = tokio::time::timeout(poll, self.signal.changed()).await {
                // The store's signal is gone: degrade to plain polling.
                tokio::time::sleep(poll).await;
            }
        }
    }
}

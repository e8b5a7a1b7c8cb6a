//! A projection handler that records, per stream, how long after a command was sent its
//! effect became visible: the moment the projection's transaction committed the first event
//! `done` accepts for that stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use trellis_kernel::RecordedEvent;
use trellis_runtime::projection::{Projection, ProjectionHandler};
use trellis_runtime::{EventHandler, HandlerError};
use uuid::Uuid;

/// Send times by stream id.
pub(crate) type Sent = Arc<Mutex<HashMap<Uuid, Instant>>>;

pub(crate) struct Timed<P: Projection> {
    pub inner: ProjectionHandler<P>,
    pub sent: Sent,
    pub seen: Arc<Mutex<Vec<Duration>>>,
    /// Which event makes the effect visible (the first of the stream, an answer, …).
    pub done: fn(&RecordedEvent) -> bool,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[async_trait]
impl<P: Projection> EventHandler for Timed<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn wants(&self, event_type: &str) -> bool {
        self.inner.wants(event_type)
    }

    async fn handle(&self, events: &[RecordedEvent]) -> Result<(), HandlerError> {
        self.inner.handle(events).await?;
        let now = Instant::now();
        let mut sent = lock(&self.sent);
        let mut seen = lock(&self.seen);
        for event in events.iter().filter(|e| (self.done)(e)) {
            if let Some(at) = sent.remove(&event.stream_id.id()) {
                seen.push(now - at);
            }
        }
        Ok(())
    }
}

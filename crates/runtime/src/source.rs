//! The transport side of a consumer.

use async_trait::async_trait;
use trellis_kernel::RecordedEvent;

/// A transport failed (broker or database unreachable, undecodable record).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    /// What failed.
    pub message: String,
    /// The cause.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SourceError {
    /// Wraps a cause.
    pub fn from_error(
        message: &str,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: format!("{message}: {error}"),
            source: Some(Box::new(error)),
        }
    }
}

/// Where a consumer's events come from.
#[async_trait]
pub trait EventSource: Send {
    /// The next batch (at least one event), waiting as long as needed. Cancel-safe.
    ///
    /// # Errors
    /// Transport failures; the runtime backs off and asks again.
    async fn next_batch(&mut self) -> Result<Vec<RecordedEvent>, SourceError>;

    /// Everything handed out so far is handled: commit offsets / the checkpoint.
    ///
    /// # Errors
    /// Transport failures; harmless to lose (events are redelivered and deduplicated).
    async fn ack(&mut self) -> Result<(), SourceError>;

    /// Records an event the consumer gives up on, with the reason.
    ///
    /// # Errors
    /// Transport failures; the runtime retries before acknowledging past the event.
    async fn dead_letter(&mut self, event: &RecordedEvent, error: &str) -> Result<(), SourceError>;

    /// How far behind the head of the log this consumer is, in events, when known.
    async fn lag(&mut self) -> Option<u64> {
        None
    }
}

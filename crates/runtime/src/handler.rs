//! What a consumer does with events.

use async_trait::async_trait;
use trellis_kernel::RecordedEvent;

/// A handler failed. Retried with backoff; after the last retry the failing event is
/// isolated and dead-lettered, and the consumer goes on.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    /// What went wrong, for logs and the dead-letter record.
    pub message: String,
    /// The underlying cause.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl HandlerError {
    /// An error with a message only.
    pub fn msg(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// The organization `event` belongs to; an error (the event is dead-lettered, not silently
    /// skipped) when it carries none.
    pub fn organization_of(event: &RecordedEvent) -> Result<uuid::Uuid, Self> {
        event
            .metadata
            .tenant_id
            .map(|t| t.as_uuid())
            .ok_or_else(|| {
                Self::msg(format!(
                    "{} {} carries no organization",
                    event.event_type, event.event_id
                ))
            })
    }

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

/// A consumer's logic. Implementations must be idempotent (a transport may redeliver):
/// projections get that from their per-stream guard, reactions from idempotency keys.
#[async_trait]
pub trait EventHandler: Send + Sync {
    /// Stable name: the consumer group, the checkpoint key and the dead-letter topic suffix.
    fn name(&self) -> &str;

    /// Whether this handler wants events of this type (others are acknowledged unseen).
    fn wants(&self, event_type: &str) -> bool;

    /// Handles a batch, in log order (per stream order is guaranteed; across streams only on
    /// the in-process transport).
    ///
    /// # Errors
    /// Any failure; the runtime retries, then isolates and dead-letters.
    async fn handle(&self, events: &[RecordedEvent]) -> Result<(), HandlerError>;
}

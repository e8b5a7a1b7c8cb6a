//! Upcasting: old stored payloads are rewritten to the current schema on read.
//!
//! Stored events are never migrated in place (the log is an audit record). Instead each
//! incompatible change registers a function from version N to N+1 of one event type; reading
//! applies the chain until no upcaster matches, so a v1 event is seen as v3 by code that only
//! knows v3.

use std::collections::HashMap;
use std::sync::Arc;

use crate::envelope::RecordedEvent;

/// One step: payload of `event_type` at `from_version` to `from_version + 1`.
pub type Upcaster =
    Arc<dyn Fn(serde_json::Value) -> Result<serde_json::Value, String> + Send + Sync>;

/// An upcast step failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot upcast {event_type} v{from_version}: {reason}")]
pub struct UpcastError {
    /// The event type.
    pub event_type: String,
    /// The version the failing step started from.
    pub from_version: u32,
    /// What the step said.
    pub reason: String,
}

/// The registry of upcast steps, keyed by (event type, from version).
#[derive(Clone, Default)]
pub struct Upcasters {
    steps: HashMap<(String, u32), Upcaster>,
}

impl std::fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upcasters")
            .field("steps", &self.steps.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Upcasters {
    /// An empty chain.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the step from `from_version` to `from_version + 1` of `event_type`.
    #[must_use]
    pub fn with(
        mut self,
        event_type: &str,
        from_version: u32,
        step: impl Fn(serde_json::Value) -> Result<serde_json::Value, String> + Send + Sync + 'static,
    ) -> Self {
        self.steps
            .insert((event_type.to_owned(), from_version), Arc::new(step));
        self
    }

    /// Applies every matching step in order.
    ///
    /// # Errors
    /// [`UpcastError`] from the first failing step.
    pub fn upcast(&self, mut event: RecordedEvent) -> Result<RecordedEvent, UpcastError> {
        while let Some(step) = self
            .steps
            .get(&(event.event_type.clone(), event.schema_version))
        {
            event.payload = step(event.payload).map_err(|reason| UpcastError {
                event_type: event.event_type.clone(),
                from_version: event.schema_version,
                reason,
            })?;
            event.schema_version += 1;
        }
        Ok(event)
    }
}

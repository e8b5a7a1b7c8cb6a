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

/// The process-wide registry (ADR 0011): installed once at start-up from the context modules
/// and read by every path that decodes stored events (commands, projections, reactions,
/// followers, audit), so none can forget it.
static GLOBAL: std::sync::OnceLock<Arc<Upcasters>> = std::sync::OnceLock::new();

/// Installs the process-wide upcasters. The first call wins; a later call with another
/// registry returns `false` (tests run one process per test, so each installs its own).
pub fn install(upcasters: Upcasters) -> bool {
    GLOBAL.set(Arc::new(upcasters)).is_ok()
}

/// The process-wide upcasters (empty until [`install`]ed). Read per consumer batch: a clone
/// of an `Arc`, never a new registry.
pub fn global() -> Arc<Upcasters> {
    static EMPTY: std::sync::OnceLock<Arc<Upcasters>> = std::sync::OnceLock::new();
    Arc::clone(
        GLOBAL
            .get()
            .unwrap_or_else(|| EMPTY.get_or_init(|| Arc::new(Upcasters::new()))),
    )
}

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

    /// Adds every step of `other` (a later module's steps win on a clash).
    #[must_use]
    pub fn merge(mut self, other: Upcasters) -> Self {
        self.steps.extend(other.steps);
        self
    }

    /// Whether no step is registered.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Whether some step applies to `event` (its type at its version).
    pub fn applies(&self, event: &RecordedEvent) -> bool {
        !self.steps.is_empty()
            && self
                .steps
                .contains_key(&(event.event_type.clone(), event.schema_version))
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

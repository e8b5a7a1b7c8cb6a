//! The `events/` schema registry: one JSON Schema per event type and schema version, at
//! `events/<context>/<EventType>.v<N>.json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use tokio::sync::watch;
use trellis_kernel::{
    AppendOptions, AppendResult, Direction, EventStore, ExpectedVersion, GlobalPosition,
    IdempotencyKey, NewEvent, RecordedEvent, StoreError, StreamId, StreamVersion,
};

/// Compiled schemas keyed by (event type, schema version).
pub struct SchemaRegistry {
    validators: HashMap<(String, u32), jsonschema::Validator>,
}

/// The repository's `events/` folder.
pub fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

impl SchemaRegistry {
    /// Loads and compiles every schema under `dir`.
    ///
    /// # Panics
    /// On unreadable files, bad names or invalid schemas: a broken registry is a test bug.
    pub fn load(dir: &Path) -> Self {
        let mut validators = HashMap::new();
        for context in std::fs::read_dir(dir).expect("events/ is readable") {
            let context = context.expect("events/ entry").path();
            if !context.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(&context).expect("context folder is readable") {
                let path = file.expect("schema entry").path();
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                let Some(stem) = name.strip_suffix(".json") else {
                    continue;
                };
                let (event_type, version) = stem
                    .rsplit_once(".v")
                    .unwrap_or_else(|| panic!("{name}: expected <EventType>.v<N>.json"));
                let version: u32 = version
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}: version is not a number"));
                let text = std::fs::read_to_string(&path).expect("schema is readable");
                let schema: serde_json::Value =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
                let validator = jsonschema::validator_for(&schema)
                    .unwrap_or_else(|e| panic!("{name}: invalid schema: {e}"));
                let previous = validators.insert((event_type.to_owned(), version), validator);
                assert!(previous.is_none(), "{name}: defined twice");
            }
        }
        Self { validators }
    }

    /// The registry for this repository's `events/`, loaded once per test binary.
    pub fn global() -> &'static Self {
        static REGISTRY: OnceLock<SchemaRegistry> = OnceLock::new();
        REGISTRY.get_or_init(|| Self::load(&events_dir()))
    }

    /// Validates one payload.
    ///
    /// # Errors
    /// A readable explanation when no schema exists or the payload does not conform.
    pub fn validate(
        &self,
        event_type: &str,
        version: u32,
        payload: &serde_json::Value,
    ) -> Result<(), String> {
        let validator = self
            .validators
            .get(&(event_type.to_owned(), version))
            .ok_or_else(|| format!("no schema events/*/{event_type}.v{version}.json"))?;
        let errors: Vec<String> = validator
            .iter_errors(payload)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!("{event_type} v{version}: {}", errors.join("; ")))
        }
    }

    /// Panics unless every event conforms to its schema.
    pub fn assert_valid(&self, events: &[NewEvent]) {
        for event in events {
            if let Err(why) = self.validate(&event.event_type, event.schema_version, &event.payload)
            {
                panic!("emitted event does not match its schema: {why}");
            }
        }
    }

    /// Number of schemas loaded.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// True when no schema is loaded.
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }
}

/// Wraps a store and panics when an appended event does not match its schema, so integration
/// tests check every event the code under test emits.
pub struct SchemaCheckingStore<S: ?Sized> {
    inner: Arc<S>,
}

impl<S: ?Sized> SchemaCheckingStore<S> {
    /// Wraps `inner`.
    pub fn new(inner: Arc<S>) -> Self {
        Self { inner }
    }
}

#[async_trait]
impl<S: EventStore + ?Sized> EventStore for SchemaCheckingStore<S> {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        options: AppendOptions,
    ) -> Result<AppendResult, StoreError> {
        SchemaRegistry::global().assert_valid(&events);
        self.inner.append(stream, expected, events, options).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: StreamVersion,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, from, direction, limit).await
    }

    async fn read_all(
        &self,
        after: Option<GlobalPosition>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(after, limit).await
    }

    async fn idempotent_result(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<AppendResult>, StoreError> {
        self.inner.idempotent_result(key).await
    }

    fn append_signal(&self) -> watch::Receiver<u64> {
        self.inner.append_signal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_in_events_compiles_and_is_named_by_type_and_version() {
        assert!(SchemaRegistry::global().len() >= 5);
    }

    #[test]
    fn payloads_that_break_the_schema_are_reported() {
        let registry = SchemaRegistry::global();
        let ok = serde_json::json!({"amount": 3, "unit": "point"});
        assert!(registry.validate("AmountAdded", 2, &ok).is_ok());
        let bad = serde_json::json!({"amount": 0});
        assert!(registry.validate("AmountAdded", 2, &bad).is_err());
        assert!(registry.validate("NoSuchEvent", 1, &ok).is_err());
    }
}

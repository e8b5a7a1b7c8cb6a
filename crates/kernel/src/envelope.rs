//! The event envelope of SPEC §2: what is appended ([`NewEvent`]) and what is read back
//! ([`RecordedEvent`]).
//!
//! The stored shape is deliberately separate from any domain enum: a payload is plain JSON
//! tagged with `event_type` and `schema_version`, so old shapes can be upcast on read
//! without keeping old Rust types around.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ActorId, EventId, GlobalPosition, StreamId, StreamVersion, TenantId, TraceId};

/// Who caused an event and why; travels with it to Kafka and into audits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// The request (or first event) that started the chain this event belongs to.
    pub correlation_id: Option<EventId>,
    /// The event or command that directly caused this one.
    pub causation_id: Option<EventId>,
    /// The user or service acting.
    pub actor_id: Option<ActorId>,
    /// The organization; every query is scoped by it.
    pub tenant_id: Option<TenantId>,
    /// Distributed-trace id of the request, for logs.
    pub trace_id: Option<TraceId>,
    /// The client's own `x-request-id`, kept as given (1–200 visible ASCII characters) so a
    /// client can find its requests; never used as a correlation id, which the server makes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Why metadata text was rejected.
#[derive(Debug, thiserror::Error)]
#[error("event metadata is not valid")]
pub struct MetadataError(#[source] serde_json::Error);

impl Metadata {
    /// Parses metadata from JSON text (e.g. from a replay file or an HTTP body).
    ///
    /// # Errors
    /// [`MetadataError`] for malformed JSON, unknown fields or ids that are not UUIDs.
    pub fn from_json(text: &str) -> Result<Self, MetadataError> {
        serde_json::from_str(text).map_err(MetadataError)
    }

    /// Metadata for an event caused by `cause`: same correlation, tenant and trace, with
    /// `cause` as the causation.
    pub fn caused_by(cause: &RecordedEvent, actor_id: Option<ActorId>) -> Self {
        Self {
            correlation_id: cause.metadata.correlation_id.or(Some(cause.event_id)),
            causation_id: Some(cause.event_id),
            actor_id,
            tenant_id: cause.metadata.tenant_id,
            trace_id: cause.metadata.trace_id,
            request_id: cause.metadata.request_id.clone(),
        }
    }
}

/// Why a [`NewEvent`] was rejected before it reached the store.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NewEventError {
    /// Event types are PascalCase past-tense names of at most 128 ASCII characters.
    #[error("event type `{0}` must be a PascalCase name of at most 128 ASCII letters and digits")]
    BadEventType(String),
    /// Schema versions start at 1.
    #[error("schema version must be at least 1")]
    BadSchemaVersion,
    /// The payload must be a JSON object so that it can grow fields.
    #[error("the payload of `{0}` must be a JSON object")]
    PayloadNotAnObject(String),
    /// PostgreSQL's `jsonb` and `text` cannot hold the NUL character, so no store accepts it.
    #[error("the payload of `{0}` contains a NUL character")]
    NulCharacter(String),
}

/// Whether any string or key in `value` contains NUL.
fn contains_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(contains_nul),
        serde_json::Value::Object(map) => {
            map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v))
        }
        _ => false,
    }
}

/// An event about to be appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Minted by the writer so that a retried append can be recognised.
    pub event_id: EventId,
    /// Past-tense name, e.g. `IdpCreated`.
    pub event_type: String,
    /// Version of the payload's schema (`events/<context>/<EventType>.v<N>.json`).
    pub schema_version: u32,
    /// The event's data.
    pub payload: serde_json::Value,
    /// Who and why.
    pub metadata: Metadata,
}

impl NewEvent {
    /// Builds a validated event with a fresh UUIDv7 id.
    ///
    /// # Errors
    /// [`NewEventError`] when the type, version or payload shape is invalid.
    pub fn new(
        event_type: impl Into<String>,
        schema_version: u32,
        payload: serde_json::Value,
        metadata: Metadata,
    ) -> Result<Self, NewEventError> {
        let event = Self {
            event_id: EventId::new(),
            event_type: event_type.into(),
            schema_version,
            payload,
            metadata,
        };
        event.validate()?;
        Ok(event)
    }

    /// Checks the invariants every store enforces; adapters call it before writing.
    ///
    /// # Errors
    /// [`NewEventError`] naming the first broken rule.
    pub fn validate(&self) -> Result<(), NewEventError> {
        let t = &self.event_type;
        let ok_type = t.len() <= 128
            && t.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && t.chars().all(|c| c.is_ascii_alphanumeric());
        if !ok_type {
            return Err(NewEventError::BadEventType(t.chars().take(200).collect()));
        }
        if self.schema_version == 0 {
            return Err(NewEventError::BadSchemaVersion);
        }
        if !self.payload.is_object() {
            return Err(NewEventError::PayloadNotAnObject(t.clone()));
        }
        if contains_nul(&self.payload) {
            return Err(NewEventError::NulCharacter(t.clone()));
        }
        Ok(())
    }
}

/// An event as stored: the envelope of SPEC §2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// UUIDv7 minted by the writer.
    pub event_id: EventId,
    /// The stream it belongs to.
    pub stream_id: StreamId,
    /// 1-based, gap-free position within the stream.
    pub stream_version: StreamVersion,
    /// Position in `$all` (unique; see [`GlobalPosition`] for ordering).
    pub global_position: GlobalPosition,
    /// Past-tense name.
    pub event_type: String,
    /// Payload schema version (after upcasting, the current one).
    pub schema_version: u32,
    /// The data.
    pub payload: serde_json::Value,
    /// Who and why.
    pub metadata: Metadata,
    /// Commit time, UTC.
    pub recorded_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_with_unknown_fields_or_bad_ids_is_rejected() {
        assert!(Metadata::from_json("{").is_err());
        assert!(Metadata::from_json(r#"{"tenant_id":"nope"}"#).is_err());
        assert!(Metadata::from_json(r#"{"surprise":1}"#).is_err());
        assert!(Metadata::from_json("{}").is_ok());
    }

    #[test]
    fn new_events_need_pascal_case_types_versions_and_object_payloads() {
        let meta = Metadata::default();
        let obj = serde_json::json!({});
        assert!(NewEvent::new("IdpCreated", 1, obj.clone(), meta.clone()).is_ok());
        assert_eq!(
            NewEvent::new("idp created", 1, obj.clone(), meta.clone()).map(|_| ()),
            Err(NewEventError::BadEventType("idp created".into()))
        );
        assert_eq!(
            NewEvent::new("IdpCreated", 0, obj, meta.clone()).map(|_| ()),
            Err(NewEventError::BadSchemaVersion)
        );
        assert!(matches!(
            NewEvent::new("IdpCreated", 1, serde_json::json!([1]), meta),
            Err(NewEventError::PayloadNotAnObject(_))
        ));
    }
}

//! The CloudEvents Kafka binding, binary mode (SPEC §4): metadata in headers, the payload
//! JSON as the record value. Any consumer, in any language, can rebuild the envelope from a
//! record alone; `docs/consuming-events.md` shows how.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use trellis_kernel::{
    ActorId, EventId, GlobalPosition, Metadata, RecordedEvent, StreamId, TenantId, TraceId,
};

/// A record that is not a Trellis CloudEvent.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// A required header is missing.
    #[error("header `{0}` is missing")]
    Missing(&'static str),
    /// A header's value does not parse.
    #[error("header `{0}` is malformed")]
    Malformed(&'static str),
    /// The value is not JSON.
    #[error("the record value is not JSON")]
    Payload(#[source] serde_json::Error),
}

/// `trellis.<context>.<EventType>.v<N>`.
pub fn ce_type(context: &str, event: &RecordedEvent) -> String {
    format!(
        "trellis.{context}.{}.v{}",
        event.event_type, event.schema_version
    )
}

/// How long a record may wait for its delivery report.
const DELIVERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Sends a stored event as a record of `topic`: keyed by its stream (per-stream order), its
/// payload as stored as the value, with `headers`; waits for the delivery report. The relay
/// and republications both publish through it.
pub(crate) async fn send_event(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    event: &RecordedEvent,
    headers: OwnedHeaders,
) -> Result<(), rdkafka::error::KafkaError> {
    let key = event.stream_id.to_string();
    let value = event.payload.to_string();
    let record = rdkafka::producer::FutureRecord::to(topic)
        .key(&key)
        .payload(&value)
        .headers(headers);
    producer
        .send(record, DELIVERY_TIMEOUT)
        .await
        .map(|_| ())
        .map_err(|(error, _)| error)
}

/// The headers of `event` published on `context`'s topic.
pub fn encode_headers(context: &str, event: &RecordedEvent) -> OwnedHeaders {
    let mut pairs: Vec<(&str, String)> = vec![
        ("ce_specversion", "1.0".into()),
        ("ce_id", event.event_id.to_string()),
        ("ce_type", ce_type(context, event)),
        ("ce_source", format!("/trellis/{context}")),
        ("ce_subject", event.stream_id.to_string()),
        (
            "ce_time",
            event
                .recorded_at
                .to_rfc3339_opts(SecondsFormat::Micros, true),
        ),
        ("content-type", "application/json".into()),
        ("trellis_stream_version", event.stream_version.to_string()),
        ("trellis_global_position", event.global_position.to_string()),
    ];
    let m = &event.metadata;
    let optional = [
        (
            "trellis_correlation_id",
            m.correlation_id.map(|v| v.to_string()),
        ),
        (
            "trellis_causation_id",
            m.causation_id.map(|v| v.to_string()),
        ),
        ("trellis_tenant_id", m.tenant_id.map(|v| v.to_string())),
        ("trellis_actor_id", m.actor_id.map(|v| v.to_string())),
        ("trellis_trace_id", m.trace_id.map(|v| v.to_string())),
        ("trellis_request_id", m.request_id.clone()),
    ];
    pairs.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    pairs.iter().fold(
        OwnedHeaders::new_with_capacity(pairs.len()),
        |h, (key, value)| {
            h.insert(Header {
                key,
                value: Some(value.as_str()),
            })
        },
    )
}

/// Rebuilds the envelope from a record.
///
/// # Errors
/// [`CodecError`] naming the first missing or malformed part.
pub fn decode_record<M: Message>(record: &M) -> Result<RecordedEvent, CodecError> {
    let mut headers: HashMap<&str, &str> = HashMap::new();
    if let Some(h) = record.headers() {
        for header in h.iter() {
            if let Some(value) = header.value.and_then(|v| std::str::from_utf8(v).ok()) {
                headers.insert(header.key, value);
            }
        }
    }
    let get = |key: &'static str| headers.get(key).copied().ok_or(CodecError::Missing(key));
    let parse_opt = |key: &'static str| -> Result<Option<uuid::Uuid>, CodecError> {
        headers
            .get(key)
            .map(|v| uuid::Uuid::parse_str(v).map_err(|_| CodecError::Malformed(key)))
            .transpose()
    };
    let ce_type = get("ce_type")?;
    let (prefix, version) = ce_type
        .rsplit_once(".v")
        .ok_or(CodecError::Malformed("ce_type"))?;
    let event_type = prefix
        .rsplit_once('.')
        .map(|(_, t)| t)
        .ok_or(CodecError::Malformed("ce_type"))?;
    let payload =
        serde_json::from_slice(record.payload().unwrap_or(b"{}")).map_err(CodecError::Payload)?;
    Ok(RecordedEvent {
        event_id: get("ce_id")?
            .parse::<EventId>()
            .map_err(|_| CodecError::Malformed("ce_id"))?,
        stream_id: StreamId::parse(get("ce_subject")?)
            .map_err(|_| CodecError::Malformed("ce_subject"))?,
        stream_version: get("trellis_stream_version")?
            .parse()
            .map_err(|_| CodecError::Malformed("trellis_stream_version"))?,
        global_position: GlobalPosition(
            get("trellis_global_position")?
                .parse()
                .map_err(|_| CodecError::Malformed("trellis_global_position"))?,
        ),
        event_type: event_type.to_owned(),
        schema_version: version
            .parse()
            .map_err(|_| CodecError::Malformed("ce_type"))?,
        payload,
        metadata: Metadata {
            correlation_id: parse_opt("trellis_correlation_id")?.map(EventId::from_uuid),
            causation_id: parse_opt("trellis_causation_id")?.map(EventId::from_uuid),
            actor_id: parse_opt("trellis_actor_id")?.map(ActorId::from_uuid),
            tenant_id: parse_opt("trellis_tenant_id")?.map(TenantId::from_uuid),
            trace_id: parse_opt("trellis_trace_id")?.map(TraceId::from_uuid),
            request_id: headers.get("trellis_request_id").map(|v| (*v).to_owned()),
        },
        recorded_at: DateTime::parse_from_rfc3339(get("ce_time")?)
            .map_err(|_| CodecError::Malformed("ce_time"))?
            .with_timezone(&Utc),
    })
}

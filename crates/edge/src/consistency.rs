//! Read-your-writes: command responses carry the stream version they produced; GET
//! endpoints take `?min_version=N` and wait, bounded, until their read model has applied it
//! (the waits themselves are [`trellis_runtime::Commands`]').

use serde::Deserialize;
use uuid::Uuid;

pub use trellis_runtime::commands::wait_for_version;

/// The `?min_version=` query parameter.
#[derive(Debug, Default, Deserialize)]
pub struct MinVersion {
    /// Wait until the read model shows at least this stream version (an int64: versions
    /// are stored as PostgreSQL `bigint`).
    #[serde(default, deserialize_with = "stream_version")]
    pub min_version: Option<u64>,
}

fn stream_version<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let version = Option::<u64>::deserialize(d)?;
    if version.is_some_and(|v| i64::try_from(v).is_err()) {
        return Err(serde::de::Error::custom(
            "min_version must be at most 9223372036854775807",
        ));
    }
    Ok(version)
}

/// Whether `stream` is in the event store and belongs to `organization_id` (the tenant of its
/// first event). Reads one event. A `?min_version=` wait starts only for such a stream: an id
/// that names nothing (or another organization's stream) answers 404 at once, so the time a
/// response takes does not tell whether an id exists.
///
/// # Errors
/// Store failures.
pub async fn stream_in_organization(
    edge: &crate::Edge,
    stream: &trellis_kernel::StreamId,
    organization_id: Uuid,
) -> Result<bool, crate::ApiError> {
    let first = edge
        .commands
        .handler()
        .store()
        .read_stream(stream, 1, trellis_kernel::Direction::Forwards, 1)
        .await?;
    Ok(first.first().is_some_and(|e| {
        e.metadata
            .tenant_id
            .is_some_and(|t| t.as_uuid() == organization_id)
    }))
}

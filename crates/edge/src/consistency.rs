//! Read-your-writes: command responses carry the stream version they produced; GET
//! endpoints take `?min_version=N` and wait, bounded, until their read model has applied it
//! (the waits, and the check that a stream is the caller's before one starts, are
//! [`trellis_runtime::Commands`]').

use serde::Deserialize;

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

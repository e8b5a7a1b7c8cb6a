//! Mapping sqlx errors to [`StoreError`] by constraint name, never by raw SQLSTATE text.

use sqlx::error::ErrorKind;
use trellis_kernel::StoreError;

/// The unique index that enforces gap-free stream versions.
pub(crate) const STREAM_VERSION_KEY: &str = "events_stream_version_key";
/// The unique index on event ids.
pub(crate) const EVENT_ID_KEY: &str = "events_event_id_key";

/// Wraps any backend failure as [`StoreError::Unavailable`].
pub fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable(Box::new(error))
}

/// Which unique constraint an error violated, if that is what it is.
pub(crate) fn violated_constraint(error: &sqlx::Error) -> Option<&str> {
    match error {
        sqlx::Error::Database(db) if db.kind() == ErrorKind::UniqueViolation => db.constraint(),
        _ => None,
    }
}

/// A row that does not decode into the envelope.
pub(crate) fn corrupt(
    event_id: impl ToString,
    error: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    StoreError::Corrupt {
        event_id: event_id.to_string(),
        source: Box::new(error),
    }
}

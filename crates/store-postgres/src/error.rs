//! Mapping sqlx errors to [`StoreError`] by constraint name and SQLSTATE class, never by
//! message text.

use sqlx::error::ErrorKind;
use sqlx::migrate::MigrateError;
use trellis_kernel::StoreError;

/// The unique index that enforces gap-free stream versions.
pub(crate) const STREAM_VERSION_KEY: &str = "events_stream_version_key";
/// The unique index on event ids.
pub(crate) const EVENT_ID_KEY: &str = "events_event_id_key";

/// Wraps a failure known to mean "cannot reach the database" as [`StoreError::Unavailable`].
/// For a sqlx error use [`store_error`], which tells unavailability from a failed query.
pub fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable(Box::new(error))
}

/// A sqlx error as a [`StoreError`]: [`StoreError::Unavailable`] when [`is_unavailable`],
/// [`StoreError::Backend`] otherwise (a query or schema bug is not an outage).
pub fn store_error(error: sqlx::Error) -> StoreError {
    if is_unavailable(&error) {
        StoreError::Unavailable(Box::new(error))
    } else {
        StoreError::Backend(Box::new(error))
    }
}

/// A failed migration as a [`StoreError`]: unavailable only when the statement could not reach
/// the database; a broken, missing or edited migration is [`StoreError::Backend`].
pub(crate) fn migrate_error(error: MigrateError) -> StoreError {
    let unreachable = match &error {
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => is_unavailable(e),
        _ => false,
    };
    if unreachable {
        StoreError::Unavailable(Box::new(error))
    } else {
        StoreError::Backend(Box::new(error))
    }
}

/// Whether a sqlx error means the database cannot be reached or has no connection to spare,
/// so that a retry later may succeed (503 at the edge), rather than a failed query (500):
/// - the pool timed out or is closed, the connection's I/O or TLS failed, its worker died;
/// - the server answered with SQLSTATE class 08 (connection exception), 57P01–57P03 (admin
///   or crash shutdown, cannot connect now) or 53300 (too many connections).
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| unavailable_sqlstate(&code)),
        _ => false,
    }
}

fn unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_of_an_unreachable_or_full_server_are_unavailable() {
        for code in [
            "08000", "08001", "08003", "08006", "57P01", "57P02", "57P03", "53300",
        ] {
            assert!(unavailable_sqlstate(code), "{code}");
        }
        // Syntax error, undefined table, unique violation, disk full, query canceled.
        for code in ["42601", "42P01", "23505", "53100", "57014"] {
            assert!(!unavailable_sqlstate(code), "{code}");
        }
    }

    #[test]
    fn pool_and_connection_failures_are_unavailable_and_query_failures_are_not() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for error in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::WorkerCrashed,
            sqlx::Error::Io(refused),
            sqlx::Error::Tls("handshake failed".into()),
        ] {
            assert!(matches!(store_error(error), StoreError::Unavailable(_)));
        }
        for error in [
            sqlx::Error::RowNotFound,
            sqlx::Error::ColumnNotFound("global_position".into()),
            sqlx::Error::Protocol("unexpected message".into()),
            sqlx::Error::Decode("not an i64".into()),
        ] {
            assert!(matches!(store_error(error), StoreError::Backend(_)));
        }
    }
}

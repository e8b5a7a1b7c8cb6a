//! Read-your-writes: command responses carry the stream version they produced; GET
//! endpoints take `?min_version=N` and wait, bounded, until their read model has applied it.

use std::time::Duration;

use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

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
    state: &crate::AppState,
    stream: &trellis_kernel::StreamId,
    organization_id: Uuid,
) -> Result<bool, crate::ApiError> {
    let first = state
        .commands
        .store()
        .read_stream(stream, 1, trellis_kernel::Direction::Forwards, 1)
        .await?;
    Ok(first.first().is_some_and(|e| {
        e.metadata
            .tenant_id
            .is_some_and(|t| t.as_uuid() == organization_id)
    }))
}

/// Polls `table.version` for the row `id_column = id` until it reaches `version`, backing
/// off from 1 ms to 25 ms, for at most `timeout`. `table` and `id_column` are code constants,
/// never input. Returns whether it caught up.
///
/// # Errors
/// Database failures.
pub async fn wait_for_version(
    pool: &PgPool,
    table: &'static str,
    id_column: &'static str,
    id: Uuid,
    version: u64,
    timeout: Duration,
) -> Result<bool, sqlx::Error> {
    let sql = format!("SELECT version FROM {table} WHERE {id_column} = $1");
    let deadline = tokio::time::Instant::now() + timeout;
    let mut delay = Duration::from_millis(1);
    loop {
        let seen: Option<i64> = sqlx::query_scalar(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await?;
        if seen.is_some_and(|v| v >= i64::try_from(version).unwrap_or(i64::MAX)) {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(25));
    }
}

/// Runs `command` on aggregate `A`'s entity `id` and waits (bounded) until `table` shows the version it produced:
/// the one shape every command endpoint has. `domain` maps the aggregate's refusals.
///
/// # Errors
/// The mapped domain error, or store and database failures.
pub async fn handle_and_wait<A: trellis_kernel::Aggregate>(
    state: &crate::AppState,
    id: uuid::Uuid,
    command: &A::Command,
    metadata: &trellis_kernel::Metadata,
    table: &'static str,
    id_column: &'static str,
    domain: impl FnOnce(A::Error) -> crate::ApiError,
) -> Result<u64, crate::ApiError> {
    let context = trellis_kernel::CommandContext {
        metadata: metadata.clone(),
        ..trellis_kernel::CommandContext::default()
    };
    let outcome = state
        .commands
        .handle::<A>(id, command, &context)
        .await
        .map_err(|e| crate::error::from_handle(e, domain))?;
    wait_for_version(
        &state.pool,
        table,
        id_column,
        id,
        outcome.version,
        state.config.max_read_wait,
    )
    .await?;
    Ok(outcome.version)
}

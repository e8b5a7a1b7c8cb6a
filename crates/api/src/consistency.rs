//! Read-your-writes: command responses carry the stream version they produced; GET
//! endpoints take `?min_version=N` and wait, bounded, until their read model has applied it.

use std::time::Duration;

use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

/// The `?min_version=` query parameter.
#[derive(Debug, Default, Deserialize)]
pub struct MinVersion {
    /// Wait until the read model shows at least this stream version.
    pub min_version: Option<u64>,
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

//! Reads: one stream, `$all` in commit order, idempotency results.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};
use trellis_kernel::{
    AllFilter, AppendResult, Direction, EventId, GlobalPosition, IdempotencyKey, Metadata,
    RecordedEvent, StoreError, StreamId, StreamVersion,
};
use uuid::Uuid;

use crate::error::{corrupt, store_error};

pub(crate) const COLUMNS: &str = "global_position, event_id, stream_id, stream_version, \
                       event_type, schema_version, payload, metadata, tenant_id, recorded_at";

/// A row of `events` as stored: what every read decodes and what a chain link covers
/// ([`crate::chain`]).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredEvent {
    /// Position in `$all`.
    pub global_position: i64,
    /// Event id.
    pub event_id: Uuid,
    /// Stream.
    pub stream_id: String,
    /// Version in the stream.
    pub stream_version: i64,
    /// Type.
    pub event_type: String,
    /// Payload schema version.
    pub schema_version: i32,
    /// Payload as stored.
    pub payload: serde_json::Value,
    /// Metadata as stored.
    pub metadata: serde_json::Value,
    /// Organization (a copy of the metadata's, for indexes).
    pub tenant_id: Option<Uuid>,
    /// Commit time.
    pub recorded_at: DateTime<Utc>,
}

impl StoredEvent {
    pub(crate) fn into_event(self) -> Result<RecordedEvent, StoreError> {
        let stream_id = StreamId::parse(&self.stream_id).map_err(|e| corrupt(self.event_id, e))?;
        let metadata: Metadata =
            serde_json::from_value(self.metadata).map_err(|e| corrupt(self.event_id, e))?;
        Ok(RecordedEvent {
            event_id: EventId::from_uuid(self.event_id),
            stream_id,
            stream_version: self.stream_version as StreamVersion,
            global_position: GlobalPosition(self.global_position),
            event_type: self.event_type,
            schema_version: self.schema_version as u32,
            payload: self.payload,
            metadata,
            recorded_at: self.recorded_at,
        })
    }
}

fn into_events(rows: Vec<StoredEvent>) -> Result<Vec<RecordedEvent>, StoreError> {
    rows.into_iter().map(StoredEvent::into_event).collect()
}

fn clamp_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

pub(crate) async fn read_stream(
    pool: &PgPool,
    stream: &StreamId,
    from: StreamVersion,
    direction: Direction,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let from = i64::try_from(from).unwrap_or(i64::MAX);
    let sql = match direction {
        Direction::Forwards => format!(
            "SELECT {COLUMNS} FROM events WHERE stream_id = $1 AND stream_version >= $2 \
             ORDER BY stream_version LIMIT $3"
        ),
        Direction::Backwards => format!(
            "SELECT {COLUMNS} FROM events WHERE stream_id = $1 AND stream_version <= $2 \
             ORDER BY stream_version DESC LIMIT $3"
        ),
    };
    let rows: Vec<StoredEvent> = sqlx::query_as(&sql)
        .bind(stream.to_string())
        .bind(from)
        .bind(clamp_limit(limit))
        .fetch_all(pool)
        .await
        .map_err(store_error)?;
    into_events(rows)
}

/// `$all` from the start. Only transactions older than every running one are visible, so a
/// transaction that is still open can never be overtaken by a reader (ADR 0001).
const READ_ALL_FROM_START: &str = "WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
     ORDER BY transaction_id, global_position LIMIT $1";

/// `$all` after a checkpoint: the checkpoint's own (transaction_id, global_position) is
/// looked up, so callers only ever keep a plain global position.
const READ_ALL_AFTER: &str = "WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
     AND (transaction_id, global_position) > \
         (SELECT transaction_id, global_position FROM events WHERE global_position = $2) \
     ORDER BY transaction_id, global_position LIMIT $1";

pub(crate) async fn read_all(
    pool: &PgPool,
    after: Option<GlobalPosition>,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows: Vec<StoredEvent> = match after {
        None => {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM events {READ_ALL_FROM_START}"
            ))
            .bind(clamp_limit(limit))
            .fetch_all(pool)
            .await
        }
        Some(position) => {
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM events {READ_ALL_AFTER}"))
                .bind(clamp_limit(limit))
                .bind(position.0)
                .fetch_all(pool)
                .await
        }
    }
    .map_err(store_error)?;
    if rows.is_empty() {
        ensure_known(pool, after).await?;
    }
    into_events(rows)
}

/// `$all` filtered by tenant and type, same order and visibility rule as [`read_all`]; the
/// `(tenant_id, transaction_id, global_position)` index serves per-organization audits.
pub(crate) async fn read_all_filtered(
    pool: &PgPool,
    after: Option<GlobalPosition>,
    limit: usize,
    filter: &AllFilter,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let after_clause = if after.is_some() {
        "AND (transaction_id, global_position) > \
         (SELECT transaction_id, global_position FROM events WHERE global_position = $2)"
    } else {
        "AND $2::bigint IS NULL"
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM events \
         WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) {after_clause} \
           AND ($3::uuid IS NULL OR tenant_id = $3) AND ($4::text IS NULL OR event_type = $4) \
         ORDER BY transaction_id, global_position LIMIT $1"
    );
    // Planned with its values every time, never as a cached generic plan: with values the
    // `IS NULL OR` filters fold away and the organization index serves an organization's
    // pages in order; a generic plan of `($3 IS NULL OR tenant_id = $3)` cannot use that
    // index at all. (Without statistics, right after a bulk load, PostgreSQL may still sort
    // the whole rest of an organization per page until autovacuum analyzes `events`:
    // docs/benchmarks.md, "Replay".)
    let rows: Vec<StoredEvent> = sqlx::query_as(&sql)
        .bind(clamp_limit(limit))
        .bind(after.map(|p| p.0))
        .bind(filter.tenant_id.map(|t| t.as_uuid()))
        .bind(filter.event_type.as_deref())
        .persistent(false)
        .fetch_all(pool)
        .await
        .map_err(store_error)?;
    if rows.is_empty() {
        ensure_known(pool, after).await?;
    }
    into_events(rows)
}

/// An empty page is normal when caught up; make sure it is not a bad checkpoint.
async fn ensure_known(pool: &PgPool, after: Option<GlobalPosition>) -> Result<(), StoreError> {
    let Some(position) = after else {
        return Ok(());
    };
    let known: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE global_position = $1)")
            .bind(position.0)
            .fetch_one(pool)
            .await
            .map_err(store_error)?;
    if known {
        Ok(())
    } else {
        Err(StoreError::UnknownPosition(position))
    }
}

pub(crate) async fn idempotent_result<'e>(
    executor: impl PgExecutor<'e>,
    key: &IdempotencyKey,
) -> Result<Option<AppendResult>, StoreError> {
    let row: Option<(String, i64, i64, Vec<Uuid>)> = sqlx::query_as(
        "SELECT stream_id, first_version, last_version, event_ids \
         FROM idempotency_keys WHERE key = $1",
    )
    .bind(key.as_str())
    .fetch_optional(executor)
    .await
    .map_err(store_error)?;
    row.map(|(stream_id, first, last, ids)| {
        Ok(AppendResult {
            stream_id: StreamId::parse(&stream_id).map_err(|e| corrupt(key.as_str(), e))?,
            first_version: first as StreamVersion,
            last_version: last as StreamVersion,
            event_ids: ids.into_iter().map(EventId::from_uuid).collect(),
            duplicate: true,
        })
    })
    .transpose()
}

pub(crate) async fn stream_version<'e>(
    executor: impl PgExecutor<'e>,
    stream: &StreamId,
) -> Result<StreamVersion, StoreError> {
    let version: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(stream_version), 0)::bigint FROM events WHERE stream_id = $1",
    )
    .bind(stream.to_string())
    .fetch_one(executor)
    .await
    .map_err(store_error)?;
    Ok(version as StreamVersion)
}

/// The organization's events whose metadata carries `correlation_id`, in global order (at
/// most `limit`): one request's consequences, for audits.
///
/// # Errors
/// Database failures; a stored event that does not decode.
pub async fn read_correlation(
    pool: &PgPool,
    tenant_id: Uuid,
    correlation_id: Uuid,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows: Vec<StoredEvent> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM events \
         WHERE tenant_id = $1 AND metadata->>'correlation_id' = $2 \
         ORDER BY global_position LIMIT $3"
    ))
    .bind(tenant_id)
    .bind(correlation_id.to_string())
    .bind(clamp_limit(limit))
    .fetch_all(pool)
    .await
    .map_err(store_error)?;
    into_events(rows)
}

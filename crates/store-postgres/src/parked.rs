//! The relay's parked records (`relay_parked`, migration 0005): events the broker refused
//! for good, set aside so the relay goes on with the rest of `$all` (ADR 0004, "Parking").
//!
//! Shared by the relay (parks and republishes), `trellis relay parked|retry` and the
//! `/v1/ops/parked` routes, so all three read and write the table the same way.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;
use uuid::Uuid;

/// Where a parked record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParkedState {
    /// Refused by the broker and waiting for an operator.
    Parked,
    /// An operator asked for a retry; the relay has not taken it yet.
    RetryRequested,
    /// Republished after a retry (out of its original order).
    Republished,
}

/// One row of `relay_parked`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ParkedRecord {
    /// The relay (checkpoint name) that parked it.
    pub relay: String,
    /// The event.
    pub event_id: Uuid,
    /// Its position in `$all`.
    pub global_position: i64,
    /// Its stream, e.g. `skill-<uuid>`.
    pub stream_id: String,
    /// Its version in the stream.
    pub stream_version: i64,
    /// Its type.
    pub event_type: String,
    /// Its organization, when it has one.
    pub tenant_id: Option<Uuid>,
    /// The topic it was (or is) to be published to.
    pub topic: String,
    /// The broker's or producer's last refusal.
    pub error: String,
    /// Publication attempts that ended in a permanent refusal.
    pub attempts: i32,
    /// When it was first parked.
    pub parked_at: DateTime<Utc>,
    /// When an operator last asked for a retry the relay has not handled yet.
    pub retry_requested_at: Option<DateTime<Utc>>,
    /// When the relay last republished it.
    pub retried_at: Option<DateTime<Utc>>,
}

impl ParkedRecord {
    /// Where it stands.
    pub fn state(&self) -> ParkedState {
        if self.retry_requested_at.is_some() {
            ParkedState::RetryRequested
        } else if self.retried_at.is_some() {
            ParkedState::Republished
        } else {
            ParkedState::Parked
        }
    }
}

/// What the relay records when it parks an event.
#[derive(Debug, Clone)]
pub struct NewParked<'a> {
    /// The relay's checkpoint name.
    pub relay: &'a str,
    /// The event.
    pub event_id: Uuid,
    /// Its position in `$all`.
    pub global_position: i64,
    /// Its stream.
    pub stream_id: &'a str,
    /// Its stream version.
    pub stream_version: i64,
    /// Its type.
    pub event_type: &'a str,
    /// Its organization.
    pub tenant_id: Option<Uuid>,
    /// Target topic.
    pub topic: &'a str,
    /// The refusal.
    pub error: &'a str,
}

/// Parks an event. Parking it again (a relay that crashed before its checkpoint, or a record
/// republished and refused again) records the new error, counts the attempt and puts it back
/// in the parked state.
///
/// # Errors
/// Database errors.
pub async fn park<'e>(
    executor: impl PgExecutor<'e>,
    record: &NewParked<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO relay_parked (relay, event_id, global_position, stream_id, stream_version, \
                                   event_type, tenant_id, topic, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (relay, event_id) DO UPDATE SET \
             error = EXCLUDED.error, topic = EXCLUDED.topic, \
             attempts = relay_parked.attempts + 1, \
             retry_requested_at = NULL, retried_at = NULL",
    )
    .bind(record.relay)
    .bind(record.event_id)
    .bind(record.global_position)
    .bind(record.stream_id)
    .bind(record.stream_version)
    .bind(record.event_type)
    .bind(record.tenant_id)
    .bind(record.topic)
    .bind(record.error)
    .execute(executor)
    .await?;
    Ok(())
}

/// Parked records in `$all` order, every organization's or only `tenant`'s, at most `limit`.
///
/// # Errors
/// Database errors.
pub async fn list<'e>(
    executor: impl PgExecutor<'e>,
    tenant: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ParkedRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM relay_parked WHERE $1::uuid IS NULL OR tenant_id = $1 \
         ORDER BY global_position, relay LIMIT $2",
    )
    .bind(tenant)
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// The rows of one event (one per relay that parked it), every organization's or only
/// `tenant`'s.
///
/// # Errors
/// Database errors.
pub async fn get<'e>(
    executor: impl PgExecutor<'e>,
    event_id: Uuid,
    tenant: Option<Uuid>,
) -> Result<Vec<ParkedRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM relay_parked WHERE event_id = $1 AND ($2::uuid IS NULL OR tenant_id = $2) \
         ORDER BY relay",
    )
    .bind(event_id)
    .bind(tenant)
    .fetch_all(executor)
    .await
}

/// Asks the relay to republish one event (only if it belongs to `tenant`, when given).
/// Returns the rows marked: 0 when no such parked record is visible.
///
/// # Errors
/// Database errors.
pub async fn request_retry<'e>(
    executor: impl PgExecutor<'e>,
    event_id: Uuid,
    tenant: Option<Uuid>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE relay_parked SET retry_requested_at = now() \
         WHERE event_id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)",
    )
    .bind(event_id)
    .bind(tenant)
    .execute(executor)
    .await?;
    Ok(done.rows_affected())
}

/// Asks the relay to republish every record still parked (not those already republished).
/// Returns the rows marked.
///
/// # Errors
/// Database errors.
pub async fn request_retry_all<'e>(executor: impl PgExecutor<'e>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE relay_parked SET retry_requested_at = now() \
         WHERE retry_requested_at IS NULL AND retried_at IS NULL",
    )
    .execute(executor)
    .await?;
    Ok(done.rows_affected())
}

/// Records of `relay` an operator asked to retry, in `$all` order (so records of one stream
/// are republished in stream order), at most `limit`.
///
/// # Errors
/// Database errors.
pub async fn due_for_retry<'e>(
    executor: impl PgExecutor<'e>,
    relay: &str,
    limit: i64,
) -> Result<Vec<ParkedRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM relay_parked WHERE relay = $1 AND retry_requested_at IS NOT NULL \
         ORDER BY global_position LIMIT $2",
    )
    .bind(relay)
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// The relay republished a record whose retry was requested at `requested_at`. A request
/// made since then stays pending (the record is published once more).
///
/// # Errors
/// Database errors.
pub async fn mark_republished<'e>(
    executor: impl PgExecutor<'e>,
    relay: &str,
    event_id: Uuid,
    requested_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE relay_parked SET retried_at = now(), \
             retry_requested_at = CASE WHEN retry_requested_at <= $3 THEN NULL \
                                       ELSE retry_requested_at END \
         WHERE relay = $1 AND event_id = $2",
    )
    .bind(relay)
    .bind(event_id)
    .bind(requested_at)
    .execute(executor)
    .await?;
    Ok(())
}

/// How many records are in each state: for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ParkedCounts {
    /// Parked, waiting for an operator.
    pub parked: i64,
    /// Retry requested, not yet handled.
    pub retry_requested: i64,
    /// Republished after a retry.
    pub republished: i64,
}

/// Counts of every relay's records by state.
///
/// # Errors
/// Database errors.
pub async fn counts<'e>(executor: impl PgExecutor<'e>) -> Result<ParkedCounts, sqlx::Error> {
    let (parked, retry_requested, republished): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE retry_requested_at IS NULL AND retried_at IS NULL), \
                count(*) FILTER (WHERE retry_requested_at IS NOT NULL), \
                count(*) FILTER (WHERE retry_requested_at IS NULL AND retried_at IS NOT NULL) \
         FROM relay_parked",
    )
    .fetch_one(executor)
    .await?;
    Ok(ParkedCounts {
        parked,
        retry_requested,
        republished,
    })
}

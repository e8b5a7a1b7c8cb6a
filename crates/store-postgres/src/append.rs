//! The append statement.
//!
//! Everything happens in one statement so that an autocommit append is one round trip:
//! `current` reads the stream's version through the `(stream_id, stream_version)` index,
//! `admitted` applies the expected-version check, `idem` claims the idempotency key (waiting
//! on a concurrent claimant, then doing nothing if it committed), and `inserted` writes the
//! events only if both passed. Races between writers of one stream surface as a unique
//! violation on the version index.

use sqlx::{PgConnection, PgExecutor, PgPool};
use trellis_kernel::{
    AppendOptions, AppendResult, ExpectedVersion, NewEvent, StoreError, StreamId, StreamVersion,
};
use uuid::Uuid;

use crate::error::{EVENT_ID_KEY, STREAM_VERSION_KEY, unavailable, violated_constraint};
use crate::read::{idempotent_result, stream_version};

const APPEND_SQL: &str = r#"
WITH current AS (
    SELECT COALESCE(MAX(stream_version), 0)::bigint AS version
    FROM events WHERE stream_id = $1
), admitted AS (
    SELECT version FROM current WHERE $2::bigint IS NULL OR version = $2::bigint
), idem AS (
    INSERT INTO idempotency_keys (key, stream_id, first_version, last_version, event_ids)
    SELECT $3::text, $1, version + 1, version + cardinality($4::uuid[]), $4::uuid[]
    FROM admitted WHERE $3::text IS NOT NULL
    ON CONFLICT (key) DO NOTHING
    RETURNING 1
), inserted AS (
    INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version,
                        payload, metadata, tenant_id)
    SELECT e.event_id, $1, admitted.version + e.ord, e.event_type, e.schema_version,
           e.payload, e.metadata, e.tenant_id
    FROM admitted,
         unnest($4::uuid[], $5::text[], $6::int4[], $7::jsonb[], $8::jsonb[], $9::uuid[])
             WITH ORDINALITY AS e(event_id, event_type, schema_version, payload, metadata,
                                  tenant_id, ord)
    WHERE $3::text IS NULL OR EXISTS (SELECT 1 FROM idem)
    RETURNING 1
)
SELECT (SELECT version FROM current) AS current_version,
       (SELECT count(*) FROM inserted) AS inserted
"#;

/// How many times an `Any` append is retried when a concurrent writer takes its version.
const ANY_RETRIES: u32 = 20;

/// What one execution of the statement found.
enum Attempt {
    Appended(AppendResult),
    /// Nothing written: the version did not match, or the idempotency key was taken.
    NotWritten {
        current: StreamVersion,
    },
    /// A concurrent writer took the version between our read and our insert.
    Raced,
}

async fn attempt<'e>(
    executor: impl PgExecutor<'e>,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: &[NewEvent],
    options: &AppendOptions,
) -> Result<Attempt, StoreError> {
    let expected_version: Option<i64> = match expected {
        ExpectedVersion::Any => None,
        ExpectedVersion::NoStream => Some(0),
        ExpectedVersion::Exact(v) => Some(to_i64(v)),
    };
    let mut ids = Vec::with_capacity(events.len());
    let mut types = Vec::with_capacity(events.len());
    let mut versions = Vec::with_capacity(events.len());
    let mut payloads = Vec::with_capacity(events.len());
    let mut metadata = Vec::with_capacity(events.len());
    let mut tenants: Vec<Option<Uuid>> = Vec::with_capacity(events.len());
    for event in events {
        ids.push(event.event_id.as_uuid());
        types.push(event.event_type.as_str());
        versions.push(i32::try_from(event.schema_version).unwrap_or(i32::MAX));
        payloads.push(&event.payload);
        let meta = serde_json::to_value(&event.metadata).map_err(unavailable)?;
        metadata.push(meta);
        tenants.push(event.metadata.tenant_id.map(|t| t.as_uuid()));
    }
    let row: Result<(i64, i64), sqlx::Error> = sqlx::query_as(APPEND_SQL)
        .bind(stream.to_string())
        .bind(expected_version)
        .bind(options.idempotency_key.as_ref().map(|k| k.as_str()))
        .bind(&ids)
        .bind(&types)
        .bind(&versions)
        .bind(&payloads)
        .bind(&metadata)
        .bind(&tenants)
        .fetch_one(executor)
        .await;
    match row {
        Ok((current, inserted)) => {
            let current = current as StreamVersion;
            if inserted == 0 {
                return Ok(Attempt::NotWritten { current });
            }
            Ok(Attempt::Appended(AppendResult {
                stream_id: stream.clone(),
                first_version: current + 1,
                last_version: current + inserted as StreamVersion,
                event_ids: events.iter().map(|e| e.event_id).collect(),
                duplicate: false,
            }))
        }
        Err(error) => match violated_constraint(&error) {
            Some(STREAM_VERSION_KEY) => Ok(Attempt::Raced),
            Some(EVENT_ID_KEY) => {
                // Which id is not reported by PostgreSQL in a parseable way; name the first.
                Err(StoreError::DuplicateEventId(events[0].event_id))
            }
            _ => Err(unavailable(error)),
        },
    }
}

/// Appends with the pool, retrying `Any` appends that lose a race.
pub(crate) async fn append_retrying(
    pool: &PgPool,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: &[NewEvent],
    options: &AppendOptions,
) -> Result<AppendResult, StoreError> {
    let mut races = 0;
    loop {
        match attempt(pool, stream, expected, events, options).await? {
            Attempt::Appended(result) => return Ok(result),
            Attempt::NotWritten { current } => {
                return not_written(pool, stream, expected, options, current).await;
            }
            Attempt::Raced if expected == ExpectedVersion::Any && races < ANY_RETRIES => {
                races += 1;
            }
            Attempt::Raced => {
                if let Some(first) = claimed_key(pool, options).await? {
                    return Ok(first);
                }
                let actual = stream_version(pool, stream).await?;
                return Err(StoreError::Concurrency {
                    stream_id: stream.clone(),
                    expected,
                    actual,
                });
            }
        }
    }
}

/// Appends on a caller's connection, typically inside the caller's open transaction; the
/// events become visible when that transaction commits. No retries: a race is reported as
/// [`StoreError::Concurrency`]. Checks the same limits as the pooled path.
///
/// # Errors
/// As [`trellis_kernel::EventStore::append`].
pub async fn append_in(
    conn: &mut PgConnection,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: &[NewEvent],
    options: &AppendOptions,
) -> Result<AppendResult, StoreError> {
    trellis_kernel::StoreLimits::default().check(events)?;
    match attempt(&mut *conn, stream, expected, events, options).await? {
        Attempt::Appended(result) => Ok(result),
        Attempt::NotWritten { current } => {
            not_written(&mut *conn, stream, expected, options, current).await
        }
        Attempt::Raced => Err(StoreError::Concurrency {
            stream_id: stream.clone(),
            expected,
            actual: stream_version(&mut *conn, stream).await?,
        }),
    }
}

/// Explains an append that wrote nothing: the key's first result, or a version conflict.
async fn not_written<'e>(
    executor: impl PgExecutor<'e>,
    stream: &StreamId,
    expected: ExpectedVersion,
    options: &AppendOptions,
    current: StreamVersion,
) -> Result<AppendResult, StoreError> {
    if let Some(key) = &options.idempotency_key
        && let Some(first) = idempotent_result(executor, key).await?
    {
        return Ok(first);
    }
    Err(StoreError::Concurrency {
        stream_id: stream.clone(),
        expected,
        actual: current,
    })
}

async fn claimed_key(
    pool: &PgPool,
    options: &AppendOptions,
) -> Result<Option<AppendResult>, StoreError> {
    match &options.idempotency_key {
        Some(key) => idempotent_result(pool, key).await,
        None => Ok(None),
    }
}

fn to_i64(version: StreamVersion) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}

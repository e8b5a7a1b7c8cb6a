//! The append statements.
//!
//! Every append is one statement, so in autocommit it is one round trip and one commit. The
//! unique index on `(stream_id, stream_version)` does the concurrency check: a writer that
//! expects version v inserts v+1.. and either succeeds or hits the index. Which statement
//! runs depends on the expectation, so the common cases stay as cheap as a plain insert:
//! - `NoStream`: insert versions 1..n, no read at all;
//! - `Exact(v)`: insert v+1.., guarded by "version v exists" so a stale writer cannot leave a
//!   gap;
//! - `Any`: read the current version in the same statement;
//! - with an idempotency key: a CTE that also claims the key (`ON CONFLICT DO NOTHING`, which
//!   waits for a concurrent claimant) and inserts only if the claim succeeded.

use sqlx::{PgConnection, PgExecutor, PgPool};
use trellis_kernel::{
    AppendOptions, AppendResult, ExpectedVersion, NewEvent, StoreError, StreamId, StreamVersion,
};
use uuid::Uuid;

use crate::error::{EVENT_ID_KEY, STREAM_VERSION_KEY, store_error, violated_constraint};
use crate::read::{idempotent_result, stream_version};

/// Appends with an idempotency key: the key is claimed in the same statement.
const APPEND_KEYED_SQL: &str = r#"
WITH current AS (
    SELECT COALESCE(MAX(stream_version), 0)::bigint AS version
    FROM events WHERE stream_id = $1
), admitted AS (
    SELECT version FROM current WHERE $2::bigint IS NULL OR version = $2::bigint
), idem AS (
    INSERT INTO idempotency_keys (key, stream_id, first_version, last_version, event_ids)
    SELECT $3::text, $1, version + 1, version + cardinality($4::uuid[]), $4::uuid[]
    FROM admitted
    ON CONFLICT (key) DO NOTHING
    RETURNING 1
)
INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version,
                    payload, metadata, tenant_id)
SELECT e.event_id, $1, admitted.version + e.ord, e.event_type, e.schema_version,
       e.payload, e.metadata, e.tenant_id
FROM admitted,
     unnest($4::uuid[], $5::text[], $6::int4[], $7::jsonb[], $8::jsonb[], $9::uuid[])
         WITH ORDINALITY AS e(event_id, event_type, schema_version, payload, metadata,
                              tenant_id, ord)
WHERE EXISTS (SELECT 1 FROM idem)
RETURNING stream_version
"#;

/// Appends to a stream that must be empty. No read: if version 1 exists, the unique index
/// on `(stream_id, stream_version)` rejects the insert.
const APPEND_NEW_SQL: &str = r#"
INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version,
                    payload, metadata, tenant_id)
SELECT e.event_id, $1, e.ord, e.event_type, e.schema_version, e.payload, e.metadata, e.tenant_id
FROM unnest($2::uuid[], $3::text[], $4::int4[], $5::jsonb[], $6::jsonb[], $7::uuid[])
         WITH ORDINALITY AS e(event_id, event_type, schema_version, payload, metadata,
                              tenant_id, ord)
RETURNING stream_version
"#;

/// Appends after exactly version $8 (> 0): the unique index rejects the insert if the stream
/// is past $8, and the `EXISTS` writes nothing if it has not reached $8 (no gaps).
const APPEND_EXACT_SQL: &str = r#"
INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version,
                    payload, metadata, tenant_id)
SELECT e.event_id, $1, $8::bigint + e.ord, e.event_type, e.schema_version, e.payload,
       e.metadata, e.tenant_id
FROM unnest($2::uuid[], $3::text[], $4::int4[], $5::jsonb[], $6::jsonb[], $7::uuid[])
         WITH ORDINALITY AS e(event_id, event_type, schema_version, payload, metadata,
                              tenant_id, ord)
WHERE EXISTS (SELECT 1 FROM events WHERE stream_id = $1 AND stream_version = $8::bigint)
RETURNING stream_version
"#;

/// Appends after whatever is there.
const APPEND_ANY_SQL: &str = r#"
INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version,
                    payload, metadata, tenant_id)
SELECT e.event_id, $1, current.version + e.ord, e.event_type, e.schema_version, e.payload,
       e.metadata, e.tenant_id
FROM (SELECT COALESCE(MAX(stream_version), 0)::bigint AS version
      FROM events WHERE stream_id = $1) AS current,
     unnest($2::uuid[], $3::text[], $4::int4[], $5::jsonb[], $6::jsonb[], $7::uuid[])
         WITH ORDINALITY AS e(event_id, event_type, schema_version, payload, metadata,
                              tenant_id, ord)
RETURNING stream_version
"#;

/// How many times an `Any` append is retried when a concurrent writer takes its version.
const ANY_RETRIES: u32 = 20;

/// What one execution of the statement found.
enum Attempt {
    Appended(AppendResult),
    /// Nothing written: the stream was behind the expected version, or the idempotency key
    /// was taken (or, for keyed appends, the version did not match).
    NotWritten,
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
        metadata.push(sqlx::types::Json(&event.metadata));
        tenants.push(event.metadata.tenant_id.map(|t| t.as_uuid()));
    }
    let stream_text = stream.to_string();
    let key = options.idempotency_key.as_ref().map(|k| k.as_str());
    let query = match (key, expected_version) {
        (Some(key), expected) => sqlx::query_scalar(APPEND_KEYED_SQL)
            .bind(&stream_text)
            .bind(expected)
            .bind(key),
        (None, Some(0)) => sqlx::query_scalar(APPEND_NEW_SQL).bind(&stream_text),
        (None, None) => sqlx::query_scalar(APPEND_ANY_SQL).bind(&stream_text),
        (None, Some(_)) => sqlx::query_scalar(APPEND_EXACT_SQL).bind(&stream_text),
    };
    let mut query = query
        .bind(&ids)
        .bind(&types)
        .bind(&versions)
        .bind(&payloads)
        .bind(&metadata)
        .bind(&tenants);
    if let (None, Some(exact @ 1..)) = (key, expected_version) {
        query = query.bind(exact);
    }
    let written: Result<Vec<i64>, sqlx::Error> = query.fetch_all(executor).await;
    match written {
        Ok(versions) => {
            let (Some(first), Some(last)) = (versions.iter().min(), versions.iter().max()) else {
                return Ok(Attempt::NotWritten);
            };
            Ok(Attempt::Appended(AppendResult {
                stream_id: stream.clone(),
                first_version: *first as StreamVersion,
                last_version: *last as StreamVersion,
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
            _ => Err(store_error(error)),
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
            Attempt::NotWritten => {
                let mut conn = pool.acquire().await.map_err(store_error)?;
                return not_written(&mut conn, stream, expected, options).await;
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
        Attempt::NotWritten => not_written(&mut *conn, stream, expected, options).await,
        Attempt::Raced => Err(StoreError::Concurrency {
            stream_id: stream.clone(),
            expected,
            actual: stream_version(&mut *conn, stream).await?,
        }),
    }
}

/// Explains an append that wrote nothing: the key's first result, or a version conflict.
async fn not_written(
    conn: &mut PgConnection,
    stream: &StreamId,
    expected: ExpectedVersion,
    options: &AppendOptions,
) -> Result<AppendResult, StoreError> {
    if let Some(key) = &options.idempotency_key
        && let Some(first) = idempotent_result(&mut *conn, key).await?
    {
        return Ok(first);
    }
    Err(StoreError::Concurrency {
        stream_id: stream.clone(),
        expected,
        actual: stream_version(&mut *conn, stream).await?,
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

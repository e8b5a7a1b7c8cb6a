//! Projections: read models in PostgreSQL with exactly-once effects and blue/green rebuilds.
//!
//! Each projection owns a schema, `rm_<name>`, created from its DDL (`projections/<name>/
//! schema.sql`) plus a guard table `_streams (stream_id, stream_version)`. A batch is applied
//! in one transaction that (1) reads the guard for the batch's streams, (2) hands the handler
//! only events newer than the guard, (3) advances the guard. Whatever the transport
//! redelivers (relay duplicates, uncommitted offsets, a crash mid-batch), an event changes the
//! read model once.
//!
//! A new projection version, or `trellis projections rebuild`, builds `rm_<name>__next` from
//! the event store (not Kafka: retention is finite), then swaps it in under an advisory lock
//! that live batches share, so the live projector pauses for the swap only.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use sqlx::{Connection, PgConnection, PgPool};
use trellis_kernel::{EventStore, GlobalPosition, RecordedEvent};
use trellis_store_postgres::GuardedConnection;

use crate::handler::{EventHandler, HandlerError};

/// A projection's failure.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The database failed.
    #[error("read-model database error")]
    Database(#[from] sqlx::Error),
    /// The store could not be read during a rebuild.
    #[error("event store error")]
    Store(#[from] trellis_kernel::StoreError),
    /// An event could not be applied (bad payload, broken invariant).
    #[error("cannot apply {event_type} {event_id}: {reason}")]
    Apply {
        /// The event's type.
        event_type: String,
        /// The event.
        event_id: String,
        /// Why.
        reason: String,
    },
    /// A stored event could not be brought to the current schema.
    #[error("upcasting a stored event")]
    Upcast(#[from] trellis_kernel::upcast::UpcastError),
    /// The request itself is refused (a replay's target schema).
    #[error("{0}")]
    Refused(String),
}

impl From<trellis_kernel::personal::ReadError> for ProjectionError {
    fn from(error: trellis_kernel::personal::ReadError) -> Self {
        match error {
            trellis_kernel::personal::ReadError::Store(e) => Self::Store(e),
            trellis_kernel::personal::ReadError::Upcast(e) => Self::Upcast(e),
        }
    }
}

impl ProjectionError {
    /// The organization an event belongs to; an apply failure when it carries none (every
    /// command of a tenant-scoped aggregate sets it).
    pub fn tenant_of(event: &RecordedEvent) -> Result<uuid::Uuid, Self> {
        event
            .metadata
            .tenant_id
            .map(|t| t.as_uuid())
            .ok_or_else(|| Self::apply(event, "no tenant in metadata"))
    }

    /// An apply failure for `event`.
    pub fn apply(event: &RecordedEvent, reason: impl Into<String>) -> Self {
        Self::Apply {
            event_type: event.event_type.clone(),
            event_id: event.event_id.to_string(),
            reason: reason.into(),
        }
    }
}

/// A read model.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Lowercase name: `[a-z][a-z0-9_]*`, the schema is `rm_<name>`.
    fn name(&self) -> &'static str;
    /// Bump to rebuild from scratch (with new DDL) on the next start.
    fn version(&self) -> i32;
    /// Event types it reads.
    fn event_types(&self) -> &'static [&'static str];
    /// DDL creating its tables, with unqualified names (run with the schema on the path).
    fn schema_sql(&self) -> &'static str;
    /// Applies new events, in log order, inside the caller's transaction (the search path
    /// points at the projection's schema, so SQL uses unqualified table names).
    ///
    /// # Errors
    /// Database failures or events that cannot be applied.
    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError>;
}

/// The live schema of a projection.
pub fn live_schema(name: &str) -> String {
    format!("rm_{name}")
}

fn next_schema(name: &str) -> String {
    format!("rm_{name}__next")
}

/// Advisory-lock key of a projection (FNV-1a of its name): live batches take it shared, the
/// swap takes it exclusively.
fn lock_key(name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

const GUARD_DDL: &str =
    "CREATE TABLE _streams (stream_id text PRIMARY KEY, stream_version bigint NOT NULL);";

/// Applies events inside `conn`'s open transaction to the projection's tables in `schema`.
/// Returns how many events were new.
async fn apply_in<P: Projection + ?Sized>(
    conn: &mut PgConnection,
    projection: &P,
    schema: &str,
    events: &[RecordedEvent],
) -> Result<usize, ProjectionError> {
    sqlx::query(&format!("SET LOCAL search_path TO {schema}, public"))
        .execute(&mut *conn)
        .await?;
    let streams: Vec<String> = events.iter().map(|e| e.stream_id.to_string()).collect();
    // Lock the guard rows of the batch's streams (creating missing ones), in a fixed order so
    // concurrent appliers cannot deadlock. A second applier of the same events (a zombie
    // consumer during a rebalance, two processes racing) waits here and then reads the
    // advanced guard, so it skips what the first applied instead of applying it again.
    let mut locked = streams.clone();
    locked.sort_unstable();
    locked.dedup();
    sqlx::query(
        "INSERT INTO _streams (stream_id, stream_version) \
         SELECT s, 0 FROM unnest($1::text[]) AS s ORDER BY s ON CONFLICT (stream_id) DO NOTHING",
    )
    .bind(&locked)
    .execute(&mut *conn)
    .await?;
    let guards: Vec<(String, i64)> = sqlx::query_as(
        "SELECT stream_id, stream_version FROM _streams WHERE stream_id = ANY($1) \
         ORDER BY stream_id FOR UPDATE",
    )
    .bind(&locked)
    .fetch_all(&mut *conn)
    .await?;
    let mut seen: std::collections::HashMap<String, i64> = guards.into_iter().collect();
    let mut fresh = Vec::with_capacity(events.len());
    for (event, stream) in events.iter().zip(&streams) {
        let version = event.stream_version as i64;
        let guard = seen.entry(stream.clone()).or_insert(0);
        if version > *guard {
            *guard = version;
            fresh.push(event.clone());
        }
    }
    if fresh.is_empty() {
        return Ok(0);
    }
    projection.apply(&mut *conn, &fresh).await?;
    let (ids, versions): (Vec<String>, Vec<i64>) = seen.into_iter().unzip();
    sqlx::query(
        "INSERT INTO _streams (stream_id, stream_version) \
         SELECT * FROM unnest($1::text[], $2::bigint[]) \
         ON CONFLICT (stream_id) DO UPDATE SET stream_version = EXCLUDED.stream_version \
         WHERE _streams.stream_version < EXCLUDED.stream_version",
    )
    .bind(&ids)
    .bind(&versions)
    .execute(&mut *conn)
    .await?;
    Ok(fresh.len())
}

async fn record_progress(
    conn: &mut PgConnection,
    name: &str,
    applied: usize,
    last: Option<&RecordedEvent>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE public.projection_state SET events_applied = events_applied + $2, \
         last_position = GREATEST(last_position, $3), \
         last_event_at = COALESCE($4, last_event_at), updated_at = now() \
         WHERE projection = $1",
    )
    .bind(name)
    .bind(applied as i64)
    .bind(last.map(|e| e.global_position.0))
    .bind(last.map(|e| e.recorded_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// Applies one batch to the live read model in its own transaction.
///
/// # Errors
/// Database or apply failures; nothing is written then.
pub async fn apply_batch<P: Projection + ?Sized>(
    pool: &PgPool,
    projection: &P,
    events: &[RecordedEvent],
) -> Result<usize, ProjectionError> {
    let mut conn = GuardedConnection::acquire(pool).await?;
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(lock_key(projection.name()))
        .execute(&mut *tx)
        .await?;
    let applied = apply_in(&mut tx, projection, &live_schema(projection.name()), events).await?;
    record_progress(&mut tx, projection.name(), applied, events.last()).await?;
    tx.commit().await?;
    conn.finish();
    Ok(applied)
}

/// Progress of a rebuild, reported after each batch.
#[derive(Debug, Clone, Copy)]
pub struct RebuildProgress {
    /// Events read from the store so far.
    pub events_read: u64,
    /// Events the projection applied.
    pub events_applied: u64,
    /// Read rate so far.
    pub events_per_sec: f64,
}

/// Events read per rebuild batch: large enough to amortise the transaction.
const REBUILD_BATCH: usize = 5000;

/// Rebuilds the projection from the event store into a fresh schema and swaps it in.
///
/// # Errors
/// Store, database or apply failures; the live read model is untouched then.
pub async fn rebuild<P, S>(
    pool: &PgPool,
    store: &S,
    projection: &P,
    mut progress: impl FnMut(RebuildProgress) + Send,
) -> Result<RebuildProgress, ProjectionError>
where
    P: Projection + ?Sized,
    S: EventStore + ?Sized,
{
    let name = projection.name();
    let (live, next) = (live_schema(name), next_schema(name));
    let mut conn = GuardedConnection::acquire(pool).await?;
    sqlx::raw_sql(&format!(
        "DROP SCHEMA IF EXISTS {next} CASCADE; CREATE SCHEMA {next}; \
         SET search_path TO {next}, public; {GUARD_DDL} {ddl} RESET search_path;",
        ddl = projection.schema_sql()
    ))
    .execute(&mut *conn)
    .await?;
    let started = Instant::now();
    let mut stats = RebuildProgress {
        events_read: 0,
        events_applied: 0,
        events_per_sec: 0.0,
    };
    let mut after: Option<GlobalPosition> = None;
    // Catch up outside the lock, batch by batch.
    loop {
        let (read, applied, last) = copy_batch(&mut conn, store, projection, &next, after).await?;
        stats.events_read += read as u64;
        stats.events_applied += applied as u64;
        stats.events_per_sec = stats.events_read as f64 / started.elapsed().as_secs_f64().max(1e-9);
        progress(stats);
        after = last.or(after);
        if read < REBUILD_BATCH {
            break;
        }
    }
    // Swap: wait for in-flight live batches, copy what arrived meanwhile, rename.
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(lock_key(name))
        .execute(&mut *tx)
        .await?;
    loop {
        let (read, applied, last) = copy_batch(&mut tx, store, projection, &next, after).await?;
        stats.events_read += read as u64;
        stats.events_applied += applied as u64;
        after = last.or(after);
        if read < REBUILD_BATCH {
            break;
        }
    }
    let live_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(&live)
            .fetch_one(&mut *tx)
            .await?;
    let retire = if live_exists {
        format!("ALTER SCHEMA {live} RENAME TO {live}__old; ")
    } else {
        String::new()
    };
    sqlx::raw_sql(&format!(
        "DROP SCHEMA IF EXISTS {live}__old CASCADE; {retire}\
         ALTER SCHEMA {next} RENAME TO {live}; \
         DROP SCHEMA IF EXISTS {live}__old CASCADE;"
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO public.projection_state \
             (projection, version, state, events_applied, last_position, updated_at) \
         VALUES ($1, $2, 'live', $3, $4, now()) \
         ON CONFLICT (projection) DO UPDATE SET version = EXCLUDED.version, state = 'live', \
             events_applied = EXCLUDED.events_applied, last_position = EXCLUDED.last_position, \
             updated_at = now()",
    )
    .bind(name)
    .bind(projection.version())
    .bind(stats.events_applied as i64)
    .bind(after.map(|p| p.0))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    conn.finish();
    stats.events_per_sec = stats.events_read as f64 / started.elapsed().as_secs_f64().max(1e-9);
    progress(stats);
    Ok(stats)
}

/// Reads one batch of `$all` after `after` and applies it to `schema` (in `conn`'s
/// transaction if one is open, else in its own).
async fn copy_batch<P, S>(
    conn: &mut PgConnection,
    store: &S,
    projection: &P,
    schema: &str,
    after: Option<GlobalPosition>,
) -> Result<(usize, usize, Option<GlobalPosition>), ProjectionError>
where
    P: Projection + ?Sized,
    S: EventStore + ?Sized,
{
    let events = store.read_all(after, REBUILD_BATCH).await?;
    let last = events.last().map(|e| e.global_position);
    let applied = apply_wanted(conn, projection, schema, &events).await?;
    Ok((events.len(), applied, last))
}

/// Applies the events of `events` the projection reads, decrypted and upcast, to `schema`
/// (a search path) in one transaction of `conn`'s; returns how many were new.
pub(crate) async fn apply_wanted<P: Projection + ?Sized>(
    conn: &mut PgConnection,
    projection: &P,
    schema: &str,
    events: &[RecordedEvent],
) -> Result<usize, ProjectionError> {
    let wanted = prepare_for(&[projection.event_types()], events).await?;
    apply_all(conn, projection, schema, &wanted).await
}

/// The events of `events` of the given event types, decrypted (ADR 0017) and upcast
/// (ADR 0011), as every read path sees stored events: once per batch, however many
/// projections then apply it.
pub(crate) async fn prepare_for(
    types: &[&[&str]],
    events: &[RecordedEvent],
) -> Result<Vec<RecordedEvent>, ProjectionError> {
    let wanted: Vec<RecordedEvent> = events
        .iter()
        .filter(|e| types.iter().any(|t| t.contains(&e.event_type.as_str())))
        .cloned()
        .collect();
    Ok(trellis_kernel::personal::prepare(wanted).await?)
}

/// Applies the events of `prepared` (decrypted and upcast) the projection reads to `schema`
/// (a search path: replays pass a guard schema and their target) in one transaction of
/// `conn`'s; returns how many were new.
pub(crate) async fn apply_prepared<P: Projection + ?Sized>(
    conn: &mut PgConnection,
    projection: &P,
    schema: &str,
    prepared: &[RecordedEvent],
) -> Result<usize, ProjectionError> {
    let wanted: Vec<RecordedEvent> = prepared
        .iter()
        .filter(|e| projection.event_types().contains(&e.event_type.as_str()))
        .cloned()
        .collect();
    apply_all(conn, projection, schema, &wanted).await
}

/// Applies `events` (prepared, all of types the projection reads) to `schema` in one
/// transaction of `conn`'s; returns how many were new.
async fn apply_all<P: Projection + ?Sized>(
    conn: &mut PgConnection,
    projection: &P,
    schema: &str,
    events: &[RecordedEvent],
) -> Result<usize, ProjectionError> {
    if events.is_empty() {
        return Ok(0);
    }
    let mut tx = conn.begin().await?;
    let applied = apply_in(&mut tx, projection, schema, events).await?;
    tx.commit().await?;
    Ok(applied)
}

/// Makes sure the projection's live schema exists at its current version, rebuilding from
/// the store when it is missing or its version changed. Returns whether it rebuilt.
///
/// # Errors
/// As [`rebuild`].
pub async fn ensure<P, S>(pool: &PgPool, store: &S, projection: &P) -> Result<bool, ProjectionError>
where
    P: Projection + ?Sized,
    S: EventStore + ?Sized,
{
    let current: Option<i32> = sqlx::query_scalar(
        "SELECT s.version FROM projection_state s \
         JOIN pg_namespace n ON n.nspname = 'rm_' || s.projection \
         WHERE s.projection = $1",
    )
    .bind(projection.name())
    .fetch_optional(pool)
    .await?;
    if current == Some(projection.version()) {
        return Ok(false);
    }
    tracing::info!(
        projection = projection.name(),
        from = ?current,
        to = projection.version(),
        "building projection from the event store"
    );
    rebuild(pool, store, projection, |_| {}).await?;
    Ok(true)
}

/// Status of one projection, for `trellis projections status` and `/v1/ops/projections`.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct ProjectionStatus {
    /// Name.
    pub projection: String,
    /// Version built.
    pub version: i32,
    /// `live`.
    pub state: String,
    /// Events applied since the last build.
    pub events_applied: i64,
    /// Global position of the last event applied.
    pub last_position: Option<i64>,
    /// Events in the store after that position (an upper bound: positions are not dense).
    pub lag: i64,
    /// When the last applied event was recorded.
    pub last_event_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Status of every projection built in this database.
///
/// # Errors
/// Database failures.
pub async fn status(pool: &PgPool) -> Result<Vec<ProjectionStatus>, ProjectionError> {
    Ok(sqlx::query_as(
        "SELECT projection, version, state, events_applied, last_position, last_event_at, \
                GREATEST(COALESCE((SELECT max(global_position) FROM events), 0) \
                         - COALESCE(last_position, 0), 0) AS lag \
         FROM projection_state ORDER BY projection",
    )
    .fetch_all(pool)
    .await?)
}

/// Runs a projection as a consumer: each batch is applied in one guarded transaction.
pub struct ProjectionHandler<P: ?Sized> {
    projection: Arc<P>,
    pool: PgPool,
    consumer_name: String,
}

impl<P: Projection + ?Sized> ProjectionHandler<P> {
    /// A handler writing to `pool`. The consumer name is `projection.<name>`.
    pub fn new(projection: Arc<P>, pool: PgPool) -> Self {
        let consumer_name = format!("projection.{}", projection.name());
        Self {
            projection,
            pool,
            consumer_name,
        }
    }
}

#[async_trait]
impl<P: Projection + ?Sized> EventHandler for ProjectionHandler<P> {
    fn name(&self) -> &str {
        &self.consumer_name
    }

    fn wants(&self, event_type: &str) -> bool {
        self.projection.event_types().contains(&event_type)
    }

    async fn handle(&self, events: &[RecordedEvent]) -> Result<(), HandlerError> {
        apply_batch(&self.pool, &*self.projection, events)
            .await
            .map(|_| ())
            .map_err(|e| HandlerError::from_error("projection batch failed", e))
    }
}

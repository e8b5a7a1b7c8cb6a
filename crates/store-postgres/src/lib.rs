//! PostgreSQL adapter for the [`EventStore`] port.
//!
//! - An append is **one SQL statement** (a CTE that reads the stream's version, records the
//!   idempotency key and inserts the events), so in autocommit it costs one round trip and
//!   one commit, like a raw insert. Concurrent single-event appends share one statement and
//!   one commit (group commit, ADR 0018), each keeping its own outcome.
//! - Optimistic concurrency is enforced by the unique index on `(stream_id, stream_version)`:
//!   a writer that loses the race gets a unique violation, reported as
//!   [`StoreError::Concurrency`].
//! - `$all` is read in `(transaction_id, global_position)` order below the oldest running
//!   transaction (ADR 0001), which never skips an event whose transaction commits late.

mod append;
pub mod chain;
mod error;
mod group;
mod guarded;
pub mod history;
pub mod keys;
pub mod migrations;
pub mod parked;
mod read;
pub use read::read_correlation;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::watch;
use trellis_kernel::{
    AllFilter, AppendOptions, AppendResult, Direction, EventStore, ExpectedVersion, GlobalPosition,
    IdempotencyKey, NewEvent, RecordedEvent, StoreError, StoreLimits, StreamId, StreamVersion,
};

pub use append::append_in;
pub use error::{is_unavailable, store_error, unavailable};
pub use group::GroupCommitOptions;
pub use guarded::GuardedConnection;

/// Connection settings.
#[derive(Debug, Clone)]
pub struct PgStoreOptions {
    /// Pool size; size it to the expected append concurrency.
    pub max_connections: u32,
    /// How long to wait for a pooled connection before reporting the store unavailable.
    pub acquire_timeout: Duration,
    /// Input limits.
    pub limits: StoreLimits,
    /// Group commit (ADR 0018): beyond a few statements in flight, concurrent single-event
    /// appends share a statement and a commit. `None` writes every append with its own.
    pub group_commit: Option<GroupCommitOptions>,
}

impl Default for PgStoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            limits: StoreLimits::default(),
            group_commit: Some(GroupCommitOptions::default()),
        }
    }
}

/// The PostgreSQL event store. Cheap to clone.
#[derive(Clone)]
pub struct PgEventStore {
    pool: PgPool,
    limits: StoreLimits,
    signal: Arc<watch::Sender<u64>>,
    group: Option<Arc<group::GroupCommit>>,
}

impl PgEventStore {
    /// Connects a pool to `url`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database cannot be reached, [`StoreError::Backend`]
    /// when it refuses the connection otherwise (a bad URL, password or database name).
    pub async fn connect(url: &str, options: PgStoreOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            // sqlx pings every idle connection before handing it out by default: one extra
            // round trip per append, a third of the cost of a single-event append. A dead
            // connection fails its query instead and the pool replaces it.
            .test_before_acquire(false)
            .connect(url)
            .await
            .map_err(store_error)?;
        Ok(Self::from_pool(pool, options.limits).with_group_commit(options.group_commit))
    }

    /// Wraps an existing pool, with group commit's defaults.
    pub fn from_pool(pool: PgPool, limits: StoreLimits) -> Self {
        Self {
            group: Some(Arc::new(group::GroupCommit::new(
                pool.clone(),
                GroupCommitOptions::default(),
            ))),
            pool,
            limits,
            signal: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Sets when appends are grouped ([`PgStoreOptions::group_commit`]; `None` turns group
    /// commit off).
    #[must_use]
    pub fn with_group_commit(mut self, options: Option<GroupCommitOptions>) -> Self {
        self.group =
            options.map(|options| Arc::new(group::GroupCommit::new(self.pool.clone(), options)));
        self
    }

    /// Applies the event store's pending migrations (its own tables only; a process that
    /// runs projections, consumers or the API migrates their owners' too, with
    /// [`Self::migrate_with`]).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database cannot be reached, [`StoreError::Backend`]
    /// when a migration fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrations::run(&self.pool, Vec::new()).await
    }

    /// Applies the event store's pending migrations, then those of `others` (each owner's,
    /// ADR 0011).
    ///
    /// # Errors
    /// As [`Self::migrate`]; also when two owners claim one migration version.
    pub async fn migrate_with(&self, others: Vec<migrations::Owned>) -> Result<(), StoreError> {
        migrations::run(&self.pool, others).await
    }

    /// The pool, for read-model code that shares the database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The limits this store enforces.
    pub fn limits(&self) -> StoreLimits {
        self.limits
    }
}

#[async_trait]
impl EventStore for PgEventStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        mut events: Vec<NewEvent>,
        options: AppendOptions,
    ) -> Result<AppendResult, StoreError> {
        self.limits.check(&events)?;
        // Personal fields are written only as ciphertext (ADR 0017).
        trellis_kernel::personal::encrypt(stream, &mut events).await?;
        let grouped = self
            .group
            .as_ref()
            .filter(|_| events.len() == 1 && options.idempotency_key.is_none());
        let result = match grouped {
            Some(group) => match group.append(stream, expected, events.swap_remove(0)).await {
                group::Flushed::Appended(result) => result,
                group::Flushed::Failed(error) => return Err(error),
                group::Flushed::Alone(event, _slot) => {
                    let alone = std::slice::from_ref(&event);
                    append::append_retrying(&self.pool, stream, expected, alone, &options).await?
                }
            },
            None => {
                append::append_retrying(&self.pool, stream, expected, &events, &options).await?
            }
        };
        if !result.duplicate {
            self.signal.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(result)
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: StreamVersion,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read::read_stream(&self.pool, stream, from, direction, limit).await
    }

    async fn read_all(
        &self,
        after: Option<GlobalPosition>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read::read_all(&self.pool, after, limit).await
    }

    async fn read_all_filtered(
        &self,
        after: Option<GlobalPosition>,
        limit: usize,
        filter: &AllFilter,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read::read_all_filtered(&self.pool, after, limit, filter).await
    }

    async fn head(&self) -> Result<Option<GlobalPosition>, StoreError> {
        sqlx::query_scalar(
            "SELECT global_position FROM events \
             WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY transaction_id DESC, global_position DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map(|p: Option<i64>| p.map(GlobalPosition))
        .map_err(store_error)
    }

    async fn idempotent_result(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<AppendResult>, StoreError> {
        read::idempotent_result(&self.pool, key).await
    }

    fn append_signal(&self) -> watch::Receiver<u64> {
        self.signal.subscribe()
    }
}

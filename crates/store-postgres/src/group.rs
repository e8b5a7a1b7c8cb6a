//! Group commit: concurrent single-event appends share one statement and one commit
//! (ADR 0018).
//!
//! While fewer than [`GroupCommitOptions::statements`] of these appends' statements are in
//! flight (single-event appends written alone, and flushers), a single-event append is
//! written at once with its own statement, as without grouping: at
//! low concurrency grouping would only add a hand-over. Beyond that, single-event appends
//! without an idempotency key queue, and up to [`GroupCommitOptions::flushers`] tasks drain
//! the queue: each takes what is queued (at most [`MAX_BATCH`]), writes it with one
//! `INSERT … ON CONFLICT DO NOTHING` in autocommit, and answers every caller when that
//! statement has committed, so a caller's success still means its event is durable.
//!
//! Each append keeps its own outcome:
//! - the statement checks every row's expectation (`NoStream`, `Exact`, `Any`) as the
//!   single-append statements do, and `ON CONFLICT DO NOTHING` skips a row whose version or
//!   event id is taken instead of failing the others;
//! - a row the statement did not write, and every row of a statement of several that the
//!   server refused and rolled back (one row it would not take, a deadlock), is appended
//!   again alone by its caller ([`Flushed::Alone`]), which reports the precise error or
//!   succeeds; so is a second append of one event id in a batch (a writer's retry); a
//!   statement of one append reports its own error, as the single path would;
//! - an outage, and any failure after which the commit is unknown, is reported to every
//!   caller of the statement, as it would be to each alone; nothing is written again;
//! - a caller that went away before its statement started gets nothing written.
//!
//! Rows are written in stream order, so two grouped statements take their
//! `(stream_id, stream_version)` entries in the same order and do not deadlock each other
//! over a contested version (event-id conflicts and other transactions can still deadlock;
//! PostgreSQL then aborts one statement, whose appends are written alone, or fail with it
//! when it held one).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use sqlx::PgPool;
use tokio::sync::oneshot;
use trellis_kernel::{
    AppendResult, ExpectedVersion, NewEvent, StoreError, StreamId, StreamVersion,
};
use uuid::Uuid;

use crate::error::{is_unavailable, store_error};

/// Most appends one statement writes.
pub(crate) const MAX_BATCH: usize = 256;

/// Every row checks its own expectation: `expected` is NULL for `Any` (after the stream's
/// current version), 0 for `NoStream`, v for `Exact(v)` (which must exist: no gaps).
const APPEND_GROUP_SQL: &str = r#"
INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version,
                    payload, metadata, tenant_id)
SELECT e.event_id, e.stream_id,
       COALESCE(e.expected, (SELECT COALESCE(MAX(x.stream_version), 0)
                             FROM events x WHERE x.stream_id = e.stream_id)) + 1,
       e.event_type, e.schema_version, e.payload, e.metadata, e.tenant_id
FROM unnest($1::uuid[], $2::text[], $3::int8[], $4::text[], $5::int4[], $6::jsonb[],
            $7::jsonb[], $8::uuid[])
         WITH ORDINALITY AS e(event_id, stream_id, expected, event_type, schema_version,
                              payload, metadata, tenant_id, ord)
WHERE e.expected IS NULL OR e.expected = 0
   OR EXISTS (SELECT 1 FROM events x
              WHERE x.stream_id = e.stream_id AND x.stream_version = e.expected)
ORDER BY e.ord
ON CONFLICT DO NOTHING
RETURNING event_id, stream_id, stream_version
"#;

/// When appends are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitOptions {
    /// Statements in flight (single-event appends written alone, and grouped statements;
    /// keyed and multi-event appends are not counted) before single-event appends queue:
    /// below it an append is written at once with its own statement, as without grouping.
    /// At most the pool's size.
    pub statements: usize,
    /// Grouped statements in flight at most (each one of `statements`).
    pub flushers: usize,
}

impl Default for GroupCommitOptions {
    fn default() -> Self {
        Self {
            statements: 8,
            flushers: 2,
        }
    }
}

/// How one single-event append is written.
pub(crate) enum Flushed {
    /// Written and committed with others.
    Appended(AppendResult),
    /// The caller writes it with its own statement. With a [`Slot`], because few statements
    /// are in flight (the slot counts this one until dropped); without, because a grouped
    /// statement did not write it, and alone the caller learns why (or writes it).
    Alone(NewEvent, Option<Slot>),
    /// The statement failed with no way to tell this append's outcome apart: an outage, a
    /// failure after which the commit is unknown, or a statement of this append alone.
    Failed(StoreError),
}

struct Pending {
    stream: StreamId,
    /// `stream` as stored.
    stream_text: String,
    expected: ExpectedVersion,
    event: NewEvent,
    reply: oneshot::Sender<Flushed>,
}

#[derive(Default)]
struct Queue {
    pending: Vec<Pending>,
    /// Statements in flight: single appends holding a [`Slot`], and flushers.
    statements: usize,
    flushers: usize,
}

/// The queue and its flushers; one per store.
pub(crate) struct GroupCommit {
    pool: PgPool,
    options: GroupCommitOptions,
    queue: Mutex<Queue>,
}

/// One single append's statement in flight; dropping it (after the append, or when the caller
/// goes away) may start a flusher for what queued meanwhile.
pub(crate) struct Slot(Arc<GroupCommit>);

impl Drop for Slot {
    fn drop(&mut self) {
        let start = {
            let mut queue = self.0.lock();
            queue.statements -= 1;
            self.0.claim_flusher(&mut queue)
        };
        if start {
            self.0.spawn_flusher();
        }
    }
}

impl GroupCommit {
    /// `options.statements` is clamped to the pool's size: more statements in flight than
    /// connections would wait for a connection where they could have been grouped.
    pub(crate) fn new(pool: PgPool, options: GroupCommitOptions) -> Self {
        let connections = usize::try_from(pool.options().get_max_connections()).unwrap_or(1);
        let statements = options.statements.clamp(1, connections.max(1));
        Self {
            pool,
            options: GroupCommitOptions {
                statements,
                flushers: options.flushers.clamp(1, statements),
            },
            queue: Mutex::new(Queue::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes one event: at once with its own statement while fewer than
    /// [`GroupCommitOptions::statements`] are in flight, else queued and written with the
    /// others waiting (returns when that statement has committed, or failed).
    pub(crate) async fn append(
        self: &Arc<Self>,
        stream: &StreamId,
        expected: ExpectedVersion,
        event: NewEvent,
    ) -> Flushed {
        let (reply, answer) = oneshot::channel();
        {
            let mut queue = self.lock();
            if queue.statements < self.options.statements {
                queue.statements += 1;
                return Flushed::Alone(event, Some(Slot(Arc::clone(self))));
            }
            // Every statement is taken, so no flusher can start now: the next statement to
            // end (a slot dropped, or a flusher going round) takes what is queued.
            queue.pending.push(Pending {
                stream: stream.clone(),
                stream_text: stream.to_string(),
                expected,
                event,
                reply,
            });
        }
        // A reply dropped by a flusher that panicked mid-statement: whether it committed is
        // unknown, as after a lost connection.
        answer.await.unwrap_or_else(|_| {
            Flushed::Failed(StoreError::Backend(
                "the grouped append's flusher failed".into(),
            ))
        })
    }

    /// Counts a new flusher in if appends wait and there is room for one.
    fn claim_flusher(&self, queue: &mut Queue) -> bool {
        let room = !queue.pending.is_empty()
            && queue.flushers < self.options.flushers
            && queue.statements < self.options.statements;
        if room {
            queue.flushers += 1;
            queue.statements += 1;
        }
        room
    }

    /// Starts a claimed flusher: a task of its own, so that a caller that goes away does not
    /// strand the others of its statement. Its guard exists before the task does, so a task
    /// dropped before it first runs (a runtime shutting down) still counts itself out.
    fn spawn_flusher(self: &Arc<Self>) {
        let flushing = Flushing {
            group: Arc::clone(self),
            done: false,
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(flushing.run());
            }
            // A slot dropped outside any runtime: nothing can flush here.
            Err(_) => drop(flushing),
        }
    }
}

/// A claimed flusher. Counted out under the lock that sees the queue empty; if it is dropped
/// before that (unwinding, or never run), it is counted out then and, when it was the last,
/// what is still queued is handed back to be written alone (else those callers would wait
/// forever).
struct Flushing {
    group: Arc<GroupCommit>,
    done: bool,
}

impl Flushing {
    async fn run(mut self) {
        loop {
            let batch: Vec<Pending> = {
                let mut queue = self.group.lock();
                // Callers that went away get nothing written.
                queue.pending.retain(|p| !p.reply.is_closed());
                if queue.pending.is_empty() {
                    // Counted out under the lock that saw the queue empty, so that an append
                    // queued after this finds no flusher and starts one.
                    queue.flushers -= 1;
                    queue.statements -= 1;
                    self.done = true;
                    return;
                }
                let take = queue.pending.len().min(MAX_BATCH);
                queue.pending.drain(..take).collect()
            };
            flush(&self.group.pool, batch).await;
        }
    }
}

impl Drop for Flushing {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut queue = self.group.lock();
        queue.flushers -= 1;
        queue.statements -= 1;
        if queue.flushers == 0 {
            for pending in queue.pending.drain(..) {
                let _ = pending.reply.send(Flushed::Alone(pending.event, None));
            }
        }
    }
}

async fn flush(pool: &PgPool, mut batch: Vec<Pending>) {
    batch.sort_by(|a, b| a.stream.cmp(&b.stream));
    // A reused event id (a writer retrying) is written alone: rows are matched back to their
    // callers by id and stream, which must name one append.
    let mut ids_seen = HashSet::with_capacity(batch.len());
    let (mut batch, reused): (Vec<Pending>, Vec<Pending>) = batch
        .into_iter()
        .partition(|p| ids_seen.insert(p.event.event_id.as_uuid()));
    for pending in reused {
        let _ = pending.reply.send(Flushed::Alone(pending.event, None));
    }
    let n = batch.len();
    let mut ids = Vec::with_capacity(n);
    let mut streams = Vec::with_capacity(n);
    let mut expected: Vec<Option<i64>> = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    let mut payloads = Vec::with_capacity(n);
    let mut metadata = Vec::with_capacity(n);
    let mut tenants: Vec<Option<Uuid>> = Vec::with_capacity(n);
    for pending in &batch {
        let event = &pending.event;
        ids.push(event.event_id.as_uuid());
        streams.push(pending.stream_text.as_str());
        expected.push(match pending.expected {
            ExpectedVersion::Any => None,
            ExpectedVersion::NoStream => Some(0),
            ExpectedVersion::Exact(v) => Some(i64::try_from(v).unwrap_or(i64::MAX)),
        });
        types.push(event.event_type.as_str());
        versions.push(i32::try_from(event.schema_version).unwrap_or(i32::MAX));
        payloads.push(&event.payload);
        metadata.push(sqlx::types::Json(&event.metadata));
        tenants.push(event.metadata.tenant_id.map(|t| t.as_uuid()));
    }
    let written: Result<Vec<(Uuid, String, i64)>, sqlx::Error> = sqlx::query_as(APPEND_GROUP_SQL)
        .bind(&ids)
        .bind(&streams)
        .bind(&expected)
        .bind(&types)
        .bind(&versions)
        .bind(&payloads)
        .bind(&metadata)
        .bind(&tenants)
        .fetch_all(pool)
        .await;
    match written {
        Ok(rows) => {
            let mut written: HashMap<(Uuid, String), i64> = rows
                .into_iter()
                .map(|(id, stream, version)| ((id, stream), version))
                .collect();
            for pending in batch {
                let key = (pending.event.event_id.as_uuid(), pending.stream_text);
                let flushed = match written.remove(&key) {
                    Some(version) => Flushed::Appended(AppendResult {
                        event_ids: vec![pending.event.event_id],
                        first_version: version as StreamVersion,
                        last_version: version as StreamVersion,
                        stream_id: pending.stream,
                        duplicate: false,
                    }),
                    None => Flushed::Alone(pending.event, None),
                };
                let _ = pending.reply.send(flushed);
            }
        }
        Err(error) if batch.len() == 1 => {
            // Alone already: its own error, not a second attempt.
            if let Some(pending) = batch.pop() {
                let _ = pending.reply.send(Flushed::Failed(store_error(error)));
            }
        }
        // The server refused the statement and rolled it back (a row it would not take, a
        // deadlock): each append is written alone, so only the bad one fails.
        Err(error @ sqlx::Error::Database(_)) if !is_unavailable(&error) => {
            tracing::debug!(%error, rows = batch.len(), "a grouped append failed; appending alone");
            for pending in batch {
                let _ = pending.reply.send(Flushed::Alone(pending.event, None));
            }
        }
        // An outage, or a failure after which whether the statement committed is unknown:
        // every caller is told, nothing is written again.
        Err(error) => {
            let unavailable = is_unavailable(&error);
            let error = Arc::new(error);
            for pending in batch {
                let shared = Box::new(Shared(Arc::clone(&error)));
                let failed = if unavailable {
                    StoreError::Unavailable(shared)
                } else {
                    StoreError::Backend(shared)
                };
                let _ = pending.reply.send(Flushed::Failed(failed));
            }
        }
    }
}

/// One statement's failure, reported to each of its callers.
#[derive(Debug)]
struct Shared(Arc<sqlx::Error>);

impl std::fmt::Display for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Shared {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

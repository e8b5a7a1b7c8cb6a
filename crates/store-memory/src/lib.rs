//! In-memory [`EventStore`] for fast unit tests of domain code and services.
//!
//! One mutex guards the whole log, so every append is atomic and the log order is the commit
//! order: `$all` can simply be read in position order. It honours the same limits, errors and
//! idempotency rules as the PostgreSQL adapter, which the shared contract suite checks.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::watch;
use trellis_kernel::{
    AppendOptions, AppendResult, Direction, EventId, EventStore, ExpectedVersion, GlobalPosition,
    IdempotencyKey, NewEvent, RecordedEvent, StoreError, StoreLimits, StreamId, StreamVersion,
};

#[derive(Default)]
struct Log {
    /// Every event, in commit order; index i holds global position i + 1.
    events: Vec<RecordedEvent>,
    /// Indexes into `events`, per stream, in version order.
    streams: HashMap<StreamId, Vec<usize>>,
    /// Used event ids, to reject reuse like the PostgreSQL unique index does.
    event_ids: HashMap<EventId, usize>,
    idempotency: HashMap<IdempotencyKey, AppendResult>,
}

/// The in-memory store.
pub struct MemoryEventStore {
    log: Mutex<Log>,
    limits: StoreLimits,
    signal: watch::Sender<u64>,
}

impl Default for MemoryEventStore {
    fn default() -> Self {
        Self::new(StoreLimits::default())
    }
}

impl MemoryEventStore {
    /// An empty store with the given limits.
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            log: Mutex::new(Log::default()),
            limits,
            signal: watch::Sender::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        // A panic while holding the lock cannot leave the log half-written (appends build
        // everything before pushing), so a poisoned lock is still consistent.
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl EventStore for MemoryEventStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        mut events: Vec<NewEvent>,
        options: AppendOptions,
    ) -> Result<AppendResult, StoreError> {
        self.limits.check(&events)?;
        // Personal fields leave the process only as ciphertext (ADR 0017).
        trellis_kernel::personal::encrypt(stream, &mut events).await?;
        let result = {
            let mut log = self.lock();
            if let Some(key) = &options.idempotency_key
                && let Some(first) = log.idempotency.get(key)
            {
                return Ok(AppendResult {
                    duplicate: true,
                    ..first.clone()
                });
            }
            let current = log
                .streams
                .get(stream)
                .map_or(0, |s| s.len() as StreamVersion);
            if !expected.admits(current) {
                return Err(StoreError::Concurrency {
                    stream_id: stream.clone(),
                    expected,
                    actual: current,
                });
            }
            if let Some(dup) = events
                .iter()
                .find(|e| log.event_ids.contains_key(&e.event_id))
            {
                return Err(StoreError::DuplicateEventId(dup.event_id));
            }
            let now = Utc::now();
            let mut event_ids = Vec::with_capacity(events.len());
            for (offset, event) in events.into_iter().enumerate() {
                let index = log.events.len();
                event_ids.push(event.event_id);
                log.event_ids.insert(event.event_id, index);
                log.streams.entry(stream.clone()).or_default().push(index);
                log.events.push(RecordedEvent {
                    event_id: event.event_id,
                    stream_id: stream.clone(),
                    stream_version: current + offset as StreamVersion + 1,
                    global_position: GlobalPosition(index as i64 + 1),
                    event_type: event.event_type,
                    schema_version: event.schema_version,
                    payload: event.payload,
                    metadata: event.metadata,
                    recorded_at: now,
                });
            }
            let result = AppendResult {
                stream_id: stream.clone(),
                first_version: current + 1,
                last_version: current + event_ids.len() as StreamVersion,
                event_ids,
                duplicate: false,
            };
            if let Some(key) = options.idempotency_key {
                log.idempotency.insert(key, result.clone());
            }
            result
        };
        self.signal.send_modify(|n| *n = n.wrapping_add(1));
        Ok(result)
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: StreamVersion,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.lock();
        let Some(indexes) = log.streams.get(stream) else {
            return Ok(Vec::new());
        };
        let len = indexes.len() as StreamVersion;
        let picked: Vec<usize> = match direction {
            Direction::Forwards => indexes
                .iter()
                .skip(from.saturating_sub(1).min(len) as usize)
                .take(limit)
                .copied()
                .collect(),
            Direction::Backwards => {
                let end = from.min(len) as usize;
                indexes[..end].iter().rev().take(limit).copied().collect()
            }
        };
        Ok(picked.into_iter().map(|i| log.events[i].clone()).collect())
    }

    async fn read_all(
        &self,
        after: Option<GlobalPosition>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.lock();
        let start = match after {
            None => 0,
            Some(p) if p.0 >= 1 && (p.0 as usize) <= log.events.len() => p.0 as usize,
            Some(p) => return Err(StoreError::UnknownPosition(p)),
        };
        Ok(log.events[start..].iter().take(limit).cloned().collect())
    }

    async fn idempotent_result(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<AppendResult>, StoreError> {
        Ok(self.lock().idempotency.get(key).map(|first| AppendResult {
            duplicate: true,
            ..first.clone()
        }))
    }

    fn append_signal(&self) -> watch::Receiver<u64> {
        self.signal.subscribe()
    }
}

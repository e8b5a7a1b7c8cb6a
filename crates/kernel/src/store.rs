//! The `EventStore` port: the only write a command makes is an append through it.
//!
//! Guarantees every adapter must keep (checked by `trellis-testkit`'s contract suite):
//! - streams have gap-free versions starting at 1; appends check an [`ExpectedVersion`] and a
//!   mismatch is [`StoreError::Concurrency`], never a partial write;
//! - an append with an [`IdempotencyKey`] that was already used appends nothing and returns
//!   the first append's result;
//! - `$all` is read in commit order, and a reader that checkpoints the position of the last
//!   event it saw never skips an event that committed late (ADR 0001).

use async_trait::async_trait;
use tokio::sync::watch;

use crate::envelope::{NewEvent, NewEventError, RecordedEvent};
use crate::ids::{EventId, GlobalPosition, StreamId, StreamVersion};

/// What the writer believes the stream's version is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// No check: append after whatever is there.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be at exactly this version (0 means empty, like `NoStream`).
    Exact(StreamVersion),
}

impl ExpectedVersion {
    /// Whether a stream currently at `current` satisfies the expectation.
    pub fn admits(self, current: StreamVersion) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => current == 0,
            Self::Exact(v) => current == v,
        }
    }
}

/// A client-chosen key that makes a command apply at most once.
///
/// Scoped by the caller (e.g. `tenant/user/key`) so two tenants can use the same key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Longest key accepted, so keys stay cheap to index.
    pub const MAX_LEN: usize = 200;

    /// Validates a key: 1 to [`Self::MAX_LEN`] visible ASCII characters.
    ///
    /// # Errors
    /// [`StoreError::InvalidIdempotencyKey`].
    pub fn parse(key: &str) -> Result<Self, StoreError> {
        let ok = !key.is_empty()
            && key.len() <= Self::MAX_LEN
            && key.chars().all(|c| c.is_ascii_graphic());
        if ok {
            Ok(Self(key.to_owned()))
        } else {
            Err(StoreError::InvalidIdempotencyKey)
        }
    }

    /// The key text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Extra instructions for one append.
#[derive(Debug, Clone, Default)]
pub struct AppendOptions {
    /// Apply at most once per key.
    pub idempotency_key: Option<IdempotencyKey>,
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendResult {
    /// The stream written.
    pub stream_id: StreamId,
    /// Version of the first event written (or of the first append, for a duplicate).
    pub first_version: StreamVersion,
    /// Version of the stream after the append: what a client passes as `min_version`.
    pub last_version: StreamVersion,
    /// Ids of the events written, in order.
    pub event_ids: Vec<EventId>,
    /// True when the idempotency key had been used: nothing was written this time.
    pub duplicate: bool,
}

/// Which `$all` events a filtered read keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllFilter {
    /// Only this organization's events.
    pub tenant_id: Option<crate::ids::TenantId>,
    /// Only events of this type.
    pub event_type: Option<String>,
}

impl AllFilter {
    /// Whether `event` passes.
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        self.tenant_id
            .is_none_or(|t| event.metadata.tenant_id == Some(t))
            && self
                .event_type
                .as_ref()
                .is_none_or(|t| &event.event_type == t)
    }
}

/// Direction of a stream read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first, starting at the given version.
    Forwards,
    /// Newest first, starting at the given version (`u64::MAX` for the end).
    Backwards,
}

/// Limits every adapter enforces, so bad input fails the same way everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Largest serialized payload of one event, in bytes.
    pub max_payload_bytes: usize,
    /// Most events in one append.
    pub max_events_per_append: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            max_payload_bytes: 1024 * 1024,
            max_events_per_append: 1000,
        }
    }
}

impl StoreLimits {
    /// Checks a batch against the limits and the envelope rules.
    ///
    /// # Errors
    /// The first [`StoreError`] found.
    pub fn check(&self, events: &[NewEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Err(StoreError::EmptyAppend);
        }
        if events.len() > self.max_events_per_append {
            return Err(StoreError::TooManyEvents {
                count: events.len(),
                limit: self.max_events_per_append,
            });
        }
        for event in events {
            event.validate()?;
            let size = event.payload.to_string().len();
            if size > self.max_payload_bytes {
                return Err(StoreError::PayloadTooLarge {
                    event_type: event.event_type.clone(),
                    size,
                    limit: self.max_payload_bytes,
                });
            }
        }
        Ok(())
    }
}

/// Errors of the store layer. The HTTP edge maps them; the status each becomes is noted.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream is not at the expected version. Becomes 409 Conflict.
    #[error("stream {stream_id} is at version {actual}, expected {expected:?}")]
    Concurrency {
        /// The stream.
        stream_id: StreamId,
        /// What the writer expected.
        expected: ExpectedVersion,
        /// What the store found.
        actual: StreamVersion,
    },
    /// An event with this id is already stored (a writer reused an id). Becomes 409.
    #[error("event {0} is already stored")]
    DuplicateEventId(EventId),
    /// An append with no events. Becomes 400 (a bug in the caller, in practice).
    #[error("an append needs at least one event")]
    EmptyAppend,
    /// Too many events in one append. Becomes 413.
    #[error("{count} events in one append; the limit is {limit}")]
    TooManyEvents {
        /// Events offered.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A payload over the size limit. Becomes 413 Payload Too Large.
    #[error("payload of {event_type} is {size} bytes; the limit is {limit}")]
    PayloadTooLarge {
        /// The event's type.
        event_type: String,
        /// Serialized size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The envelope breaks a rule. Becomes 400.
    #[error("invalid event")]
    InvalidEvent(#[from] NewEventError),
    /// The idempotency key is empty, too long or not printable ASCII. Becomes 400.
    #[error("idempotency keys are 1 to 200 visible ASCII characters")]
    InvalidIdempotencyKey,
    /// A `$all` read started after a position the store has never assigned. Becomes 400.
    #[error("no event has global position {0}")]
    UnknownPosition(GlobalPosition),
    /// Stored data could not be decoded (a bug or a manual edit). Becomes 500.
    #[error("stored event {event_id} is corrupt")]
    Corrupt {
        /// The event.
        event_id: String,
        /// What was wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The backing database failed or is unreachable. Becomes 503.
    #[error("the event store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The event store port.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends `events` to `stream` atomically if the stream is at `expected`.
    ///
    /// # Errors
    /// [`StoreError::Concurrency`] on a version mismatch; validation errors for bad input;
    /// [`StoreError::Unavailable`] when the backend fails.
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        options: AppendOptions,
    ) -> Result<AppendResult, StoreError>;

    /// Reads up to `limit` events of one stream, starting at version `from` (inclusive) in
    /// `direction`. An unknown stream reads as empty.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Corrupt`].
    async fn read_stream(
        &self,
        stream: &StreamId,
        from: StreamVersion,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Reads up to `limit` events of `$all` in commit order, after the event at `after`
    /// (from the start when `None`). Events whose transaction may still be overtaken by an
    /// older, uncommitted one are held back, so this never skips a late commit.
    ///
    /// # Errors
    /// [`StoreError::UnknownPosition`] when `after` names no event; backend errors.
    async fn read_all(
        &self,
        after: Option<GlobalPosition>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// As [`Self::read_all`], keeping only events that match `filter` (same order, same
    /// no-skip guarantee). `limit` counts matching events. The default scans `$all`;
    /// adapters override it with an index.
    ///
    /// # Errors
    /// As [`Self::read_all`].
    async fn read_all_filtered(
        &self,
        after: Option<GlobalPosition>,
        limit: usize,
        filter: &AllFilter,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut matched = Vec::new();
        let mut cursor = after;
        loop {
            let page = self.read_all(cursor, 1000).await?;
            let Some(last) = page.last() else {
                return Ok(matched);
            };
            cursor = Some(last.global_position);
            for event in page {
                if filter.matches(&event) {
                    matched.push(event);
                    if matched.len() == limit {
                        return Ok(matched);
                    }
                }
            }
        }
    }

    /// Position of the last event visible in `$all` (`None` for an empty store): where a
    /// reader that only wants new events starts. The default scans; adapters override it.
    ///
    /// # Errors
    /// As [`Self::read_all`].
    async fn head(&self) -> Result<Option<GlobalPosition>, StoreError> {
        let mut last = None;
        loop {
            let page = self.read_all(last, 1000).await?;
            match page.last() {
                Some(event) => last = Some(event.global_position),
                None => return Ok(last),
            }
        }
    }

    /// The result of the first append made with `key`, if any.
    ///
    /// # Errors
    /// Backend errors.
    async fn idempotent_result(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<AppendResult>, StoreError>;

    /// A signal that changes whenever this process appends, so that subscriptions wake at
    /// once instead of waiting for their next poll. Appends by other processes are seen by
    /// polling; the signal is a latency hint, never needed for correctness.
    fn append_signal(&self) -> watch::Receiver<u64>;
}

/// Reads a whole stream forwards, page by page.
///
/// # Errors
/// As [`EventStore::read_stream`].
pub async fn read_whole_stream<S: EventStore + ?Sized>(
    store: &S,
    stream: &StreamId,
) -> Result<Vec<RecordedEvent>, StoreError> {
    const PAGE: usize = 1000;
    let mut events = Vec::new();
    loop {
        let from = events.len() as StreamVersion + 1;
        let page = store
            .read_stream(stream, from, Direction::Forwards, PAGE)
            .await?;
        let done = page.len() < PAGE;
        events.extend(page);
        if done {
            return Ok(events);
        }
    }
}

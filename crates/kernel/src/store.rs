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
    /// Largest event, in bytes: its payload and its metadata, each serialized as compact JSON
    /// (what the relay publishes as the record's value and CloudEvents headers).
    pub max_event_bytes: usize,
    /// Most events in one append.
    pub max_events_per_append: usize,
}

impl StoreLimits {
    /// The default per-event limit: 256 KiB of payload plus metadata.
    ///
    /// Every stored event must also fit in one Kafka record, or the relay cannot publish it.
    /// The relay's producer refuses records over `message.max.bytes`, which Trellis sets
    /// explicitly to 1,000,000 bytes (`trellis_bus_kafka::PRODUCER_MESSAGE_MAX_BYTES`, the
    /// librdkafka default and just under the broker's and topics' default of 1,048,588).
    /// A record adds to the event the stream id as key, a dozen CloudEvents headers and the
    /// record framing: under 2 KiB. 256 KiB leaves almost 4x headroom for that overhead, for a
    /// broker or topic configured lower than the default, and for envelope growth, while
    /// staying far above the largest event any command produces (the API's field limits keep
    /// every command body's text under about 100 KB; docs/security.md, "Input limits").
    pub const DEFAULT_MAX_EVENT_BYTES: usize = 256 * 1024;
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            max_event_bytes: Self::DEFAULT_MAX_EVENT_BYTES,
            max_events_per_append: 1000,
        }
    }
}

/// Counts the bytes written to it, so sizes are measured without building the text.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Size of `value` serialized as compact JSON.
fn json_size(value: &impl serde::Serialize) -> usize {
    let mut count = ByteCount(0);
    // Serializing a `Value` or plain derived struct into a writer that never fails cannot
    // fail; if it ever did, count what was written so far (the check stays conservative).
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

impl StoreLimits {
    /// The size [`Self::max_event_bytes`] is checked against: payload plus metadata as
    /// compact JSON.
    pub fn event_size(event: &NewEvent) -> usize {
        json_size(&event.payload) + json_size(&event.metadata)
    }

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
            let size = Self::event_size(event);
            if size > self.max_event_bytes {
                return Err(StoreError::PayloadTooLarge {
                    event_type: event.event_type.clone(),
                    size,
                    limit: self.max_event_bytes,
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
    /// An append with no events: a bug in the caller. Becomes 500.
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
    /// An event whose payload and metadata together exceed the per-event limit
    /// ([`StoreLimits::max_event_bytes`]). Becomes 413 Payload Too Large.
    #[error("{event_type} is {size} bytes (payload and metadata); the limit is {limit}")]
    PayloadTooLarge {
        /// The event's type.
        event_type: String,
        /// Serialized size of payload plus metadata.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The envelope breaks a rule. Becomes 422 naming the body.
    #[error("invalid event")]
    InvalidEvent(#[from] NewEventError),
    /// The idempotency key is empty, too long or not printable ASCII. Becomes 422 naming the
    /// `Idempotency-Key` header.
    #[error("idempotency keys are 1 to 200 visible ASCII characters")]
    InvalidIdempotencyKey,
    /// A `$all` read started after a position the store has never assigned. Becomes 422 where
    /// the client gave the position (the audit feed's `after`), 500 elsewhere.
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
    /// The backing database cannot be reached or has no connection to spare (refused or lost
    /// connections, a shutting-down server, an exhausted pool); a retry later may succeed.
    /// Becomes 503.
    #[error("the event store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The backing database answered with an error that retrying will not fix (a query or
    /// schema bug, an unexpected constraint). Becomes 500.
    #[error("the event store failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The event store port.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends `events` to `stream` atomically if the stream is at `expected`.
    ///
    /// # Errors
    /// [`StoreError::Concurrency`] on a version mismatch; validation errors for bad input;
    /// [`StoreError::Unavailable`] when the backend cannot be reached, [`StoreError::Backend`]
    /// when it fails otherwise.
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
    /// [`StoreError::Unavailable`], [`StoreError::Backend`] or [`StoreError::Corrupt`].
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Metadata;
    use crate::ids::TenantId;

    fn event_of_size(bytes: usize, metadata: Metadata) -> NewEvent {
        // `{"s":"…"}` is 8 bytes of framing around the string.
        let payload = serde_json::json!({ "s": "x".repeat(bytes - 8) });
        NewEvent::new("Sized", 1, payload, metadata).unwrap()
    }

    #[test]
    fn the_event_limit_counts_payload_and_metadata() {
        let limits = StoreLimits {
            max_event_bytes: 1000,
            max_events_per_append: 10,
        };
        let bare = Metadata::default();
        let bare_size = json_size(&bare);
        let fits = event_of_size(1000 - bare_size, bare.clone());
        assert_eq!(StoreLimits::event_size(&fits), 1000);
        assert!(limits.check(std::slice::from_ref(&fits)).is_ok());
        let over = event_of_size(1001 - bare_size, bare);
        assert!(matches!(
            limits.check(&[over]),
            Err(StoreError::PayloadTooLarge {
                size: 1001,
                limit: 1000,
                ..
            })
        ));
        // The same payload with more metadata is over the limit.
        let tagged = NewEvent {
            metadata: Metadata {
                tenant_id: Some(TenantId::new()),
                ..Metadata::default()
            },
            ..fits
        };
        assert!(matches!(
            limits.check(&[tagged]),
            Err(StoreError::PayloadTooLarge { .. })
        ));
    }

    #[test]
    fn the_default_limit_is_256_kib() {
        assert_eq!(StoreLimits::default().max_event_bytes, 256 * 1024);
    }
}

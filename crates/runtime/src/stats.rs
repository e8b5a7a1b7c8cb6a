//! Counters a consumer keeps for `/metrics` and `trellis projections status`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Shared, lock-free counters of one consumer.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Events handed to the handler (after filtering and dedupe).
    pub handled: AtomicU64,
    /// Events skipped because they were seen moments ago.
    pub duplicates: AtomicU64,
    /// Handler failures (each retry counts).
    pub failures: AtomicU64,
    /// Events sent to the dead-letter destination.
    pub dead_lettered: AtomicU64,
    /// Global position of the last event acknowledged.
    pub last_position: AtomicI64,
    /// Events between the last acknowledged one and the head of the log, when known.
    pub lag: AtomicU64,
}

impl ConsumerStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A plain snapshot for display.
    pub fn snapshot(&self) -> [(&'static str, i64); 6] {
        let get = |c: &AtomicU64| i64::try_from(c.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
        [
            ("handled", get(&self.handled)),
            ("duplicates", get(&self.duplicates)),
            ("failures", get(&self.failures)),
            ("dead_lettered", get(&self.dead_lettered)),
            ("last_position", self.last_position.load(Ordering::Relaxed)),
            ("lag", get(&self.lag)),
        ]
    }
}

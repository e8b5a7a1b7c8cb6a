//! The consumer loop: the same for every transport and every handler.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use trellis_kernel::personal::ReadError;
use trellis_kernel::{EventId, RecordedEvent};

use crate::handler::EventHandler;
use crate::source::EventSource;
use crate::stats::ConsumerStats;

/// Tuning of the loop.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// Attempts per batch (and then per isolated event) before dead-lettering.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt.
    pub initial_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// How many recent event ids are remembered to drop redeliveries cheaply (durable
    /// idempotence is the handler's job; this only saves work).
    pub dedupe_window: usize,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            dedupe_window: 100_000,
        }
    }
}

/// How a consumer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerOutcome {
    /// Shutdown was requested; in-flight work was finished and acknowledged.
    Drained,
}

/// Remembers the last `capacity` event ids.
struct RecentIds {
    set: HashSet<EventId>,
    order: VecDeque<EventId>,
    capacity: usize,
}

impl RecentIds {
    fn new(capacity: usize) -> Self {
        Self {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// True when the id is new.
    fn insert(&mut self, id: EventId) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

fn backoff(options: &ConsumerOptions, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.min(16));
    options
        .initial_backoff
        .saturating_mul(factor)
        .min(options.max_backoff)
}

/// Runs `handler` on `source` until `shutdown` resolves. A batch in progress when shutdown
/// is requested is finished and acknowledged first (drain).
pub async fn run_consumer<S, H>(
    source: &mut S,
    handler: &H,
    options: &ConsumerOptions,
    stats: Arc<ConsumerStats>,
    shutdown: impl Future<Output = ()>,
) -> ConsumerOutcome
where
    S: EventSource + ?Sized,
    H: EventHandler + ?Sized,
{
    tokio::pin!(shutdown);
    let mut recent = RecentIds::new(options.dedupe_window);
    let mut source_failures = 0u32;
    loop {
        let batch = tokio::select! {
            biased;
            () = &mut shutdown => return ConsumerOutcome::Drained,
            batch = source.next_batch() => batch,
        };
        let batch = match batch {
            Ok(batch) => {
                source_failures = 0;
                batch
            }
            Err(error) => {
                tracing::warn!(consumer = handler.name(), %error, "source failed; backing off");
                source_failures += 1;
                let delay = backoff(options, source_failures);
                tokio::select! {
                    () = &mut shutdown => return ConsumerOutcome::Drained,
                    () = tokio::time::sleep(delay) => continue,
                }
            }
        };
        let last_position = batch.last().map(|e| e.global_position.0);
        let mut wanted = Vec::with_capacity(batch.len());
        for event in batch {
            if !handler.wants(&event.event_type) {
                continue;
            }
            if recent.insert(event.event_id) {
                wanted.push(event);
            } else {
                ConsumerStats::add(&stats.duplicates, 1);
            }
        }
        if !wanted.is_empty() {
            process(source, handler, options, &stats, wanted).await;
        }
        acknowledge(source, handler.name(), options).await;
        if let Some(position) = last_position {
            stats.last_position.store(position, Ordering::Relaxed);
        }
        if let Some(lag) = source.lag().await {
            stats.lag.store(lag, Ordering::Relaxed);
        }
    }
}

async fn acknowledge<S: EventSource + ?Sized>(
    source: &mut S,
    name: &str,
    options: &ConsumerOptions,
) {
    for attempt in 0..options.max_attempts {
        match source.ack().await {
            Ok(()) => return,
            Err(error) => {
                // Losing an ack only means redelivery, which handlers absorb.
                tracing::warn!(consumer = name, %error, attempt, "ack failed");
                tokio::time::sleep(backoff(options, attempt)).await;
            }
        }
    }
}

/// Handles a batch; on repeated failure isolates the poison event(s) and dead-letters them.
async fn process<S, H>(
    source: &mut S,
    handler: &H,
    options: &ConsumerOptions,
    stats: &ConsumerStats,
    events: Vec<RecordedEvent>,
) where
    S: EventSource + ?Sized,
    H: EventHandler + ?Sized,
{
    if handle_with_retries(handler, options, stats, &events)
        .await
        .is_ok()
    {
        ConsumerStats::add(&stats.handled, events.len() as u64);
        return;
    }
    // One by one, so a single poison event does not hold back the rest.
    for event in events {
        match handle_with_retries(handler, options, stats, std::slice::from_ref(&event)).await {
            Ok(()) => ConsumerStats::add(&stats.handled, 1),
            Err(error) => {
                tracing::error!(
                    consumer = handler.name(),
                    event_id = %event.event_id,
                    event_type = %event.event_type,
                    %error,
                    "giving up on event; dead-lettering"
                );
                let mut attempt = 0;
                while let Err(dl_error) = source.dead_letter(&event, &error).await {
                    tracing::warn!(consumer = handler.name(), %dl_error, "dead-letter failed; retrying");
                    attempt += 1;
                    tokio::time::sleep(backoff(options, attempt)).await;
                }
                ConsumerStats::add(&stats.dead_lettered, 1);
            }
        }
    }
}

async fn handle_with_retries<H: EventHandler + ?Sized>(
    handler: &H,
    options: &ConsumerOptions,
    stats: &ConsumerStats,
    events: &[RecordedEvent],
) -> Result<(), String> {
    // Every handler sees stored events as the current code reads them: decrypted (ADR 0017)
    // and upcast (ADR 0011) by the process-wide cipher and upcasters, once per batch. A step
    // that fails to upcast is the event's fault: dead-lettered. A key store that cannot be
    // reached counts as a failed attempt.
    let mut last = String::new();
    let mut prepared = None;
    for attempt in 0..options.max_attempts.max(1) {
        if prepared.is_none() {
            match trellis_kernel::personal::prepare_slice(events).await {
                Ok(events) => prepared = Some(events),
                Err(ReadError::Upcast(error)) => return Err(error.to_string()),
                Err(ReadError::Store(error)) => last = error.to_string(),
            }
        }
        let handled = match &prepared {
            Some(events) => handler.handle(events).await.map_err(|e| e.to_string()),
            None => Err(last.clone()),
        };
        match handled {
            Ok(()) => return Ok(()),
            Err(error) => {
                ConsumerStats::add(&stats.failures, 1);
                tracing::warn!(consumer = handler.name(), %error, attempt, "handler failed");
                last = error;
                if attempt + 1 < options.max_attempts {
                    tokio::time::sleep(backoff(options, attempt)).await;
                }
            }
        }
    }
    Err(last)
}

/// Runs a consumer on its own task; returns the task and its live counters.
pub fn spawn_consumer(
    mut source: Box<dyn EventSource>,
    handler: std::sync::Arc<dyn EventHandler>,
    options: ConsumerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (tokio::task::JoinHandle<ConsumerOutcome>, Arc<ConsumerStats>) {
    let stats = Arc::new(ConsumerStats::default());
    let task_stats = Arc::clone(&stats);
    let task = tokio::spawn(async move {
        run_consumer(&mut *source, &*handler, &options, task_stats, shutdown).await
    });
    (task, stats)
}

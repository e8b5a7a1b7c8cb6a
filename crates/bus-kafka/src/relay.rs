//! The relay: the only bridge from the store to Kafka.
//!
//! It reads committed events from `$all` (commit order, never skipping a late commit),
//! publishes each batch, waits for every acknowledgement, and only then moves its checkpoint
//! in PostgreSQL. A crash between publishing and checkpointing republishes the batch:
//! duplicates on the wire (consumers dedupe by `ce_id` / stream version), never loss. A
//! failed publish (broker down, timeout) is retried with backoff from the same batch, so the
//! backlog drains in order when the broker returns while appends go on regardless.
//!
//! A record the producer or broker refuses *for good* ([`is_permanent`]: too large, invalid,
//! a topic the relay may not write) would fail the same way forever and stop publication for
//! every organization. The relay parks it instead (`relay_parked`, with the error), counts it
//! ([`RelayStats::parked`], `trellis_relay_parked_records` in `/metrics`) and goes on with the
//! rest of the batch; the checkpoint moves past it once the rest is acknowledged. An operator
//! retries it later (`trellis relay retry`, `POST /v1/ops/parked/{event_id}/retry`): the relay
//! polls for retry requests and republishes those records out of their original order.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use futures::future::join_all;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, Producer};
use sqlx::PgPool;
use trellis_kernel::{
    AllSubscription, Direction, EventStore, GlobalPosition, RecordedEvent, StreamId,
    SubscriptionOptions,
};
use trellis_store_postgres::parked::{self, NewParked, ParkedRecord};

use crate::cloudevents::{encode_headers, send_event};
use crate::config::KafkaConfig;
use crate::routing::{Routing, UnknownKind};

/// The relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The producer could not be created.
    #[error("cannot create the Kafka producer")]
    Producer(#[source] rdkafka::error::KafkaError),
    /// The checkpoint could not be read.
    #[error("cannot read the relay checkpoint")]
    Checkpoint(#[source] sqlx::Error),
}

/// Tuning.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Checkpoint name: one per relay deployment (run one relay per store).
    pub name: String,
    /// How the relay follows `$all`.
    pub subscription: SubscriptionOptions,
    /// Longest backoff between failed publish attempts.
    pub max_backoff: Duration,
    /// How often the relay looks for parked records an operator asked to retry.
    pub retry_poll_interval: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            name: "relay".into(),
            subscription: SubscriptionOptions {
                batch_size: 1000,
                poll_interval: Duration::from_millis(5),
            },
            max_backoff: Duration::from_secs(2),
            retry_poll_interval: Duration::from_secs(1),
        }
    }
}

/// Counters for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Events acknowledged by the broker.
    pub published: AtomicU64,
    /// Failed publish attempts (batches).
    pub failed_attempts: AtomicU64,
    /// Checkpointed position.
    pub checkpoint: AtomicI64,
    /// Records parked because the broker refused them for good (each refusal counts, so a
    /// retry refused again counts again).
    pub parked: AtomicU64,
    /// Parked records republished after an operator's retry.
    pub republished: AtomicU64,
}

/// Whether a delivery error will recur however often the same record is sent: the record
/// itself (or its topic) is refused, not the connection. Such records are parked; every other
/// error (broker down, timeouts, leader changes, a full queue, even cluster-wide
/// authorization, which no single record causes) is retried as before.
pub fn is_permanent(error: &KafkaError) -> bool {
    let code = match error {
        KafkaError::MessageProduction(code) => *code,
        _ => return false,
    };
    matches!(
        code,
        // Over the producer's `message.max.bytes` (refused locally, at once) or the broker's
        // or topic's limit.
        RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::MessageBatchTooLarge
            // The broker rejects the record's content or the topic's name.
            | RDKafkaErrorCode::InvalidRecord
            | RDKafkaErrorCode::InvalidTopic
            | RDKafkaErrorCode::UnsupportedForMessageFormat
            | RDKafkaErrorCode::PolicyViolation
            // The relay may not write this topic (ACLs): only this context's records fail.
            | RDKafkaErrorCode::TopicAuthorizationFailed
    )
}

/// Why one record was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The producer or broker said no.
    #[error(transparent)]
    Kafka(KafkaError),
    /// No context module declares the record's stream kind.
    #[error(transparent)]
    Unrouted(UnknownKind),
}

impl PublishError {
    /// Whether sending the same record again would fail the same way.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Kafka(error) => is_permanent(error),
            Self::Unrouted(_) => true,
        }
    }
}

/// The relay.
pub struct Relay<S: ?Sized> {
    store: Arc<S>,
    pool: PgPool,
    producer: FutureProducer,
    config: KafkaConfig,
    routing: Routing,
    options: RelayOptions,
    stats: Arc<RelayStats>,
}

impl<S: EventStore + ?Sized> Relay<S> {
    /// A relay publishing `store`'s log; checkpoints and parked records go to `pool`.
    ///
    /// # Errors
    /// [`RelayError::Producer`] for a bad configuration.
    pub fn new(
        store: Arc<S>,
        pool: PgPool,
        config: KafkaConfig,
        routing: Routing,
        options: RelayOptions,
    ) -> Result<Self, RelayError> {
        let producer = config.producer().create().map_err(RelayError::Producer)?;
        Ok(Self {
            store,
            pool,
            producer,
            config,
            routing,
            options,
            stats: Arc::default(),
        })
    }

    /// Counters, shared.
    pub fn stats(&self) -> Arc<RelayStats> {
        Arc::clone(&self.stats)
    }

    async fn checkpoint(&self) -> Result<Option<GlobalPosition>, RelayError> {
        let position: Option<i64> =
            sqlx::query_scalar("SELECT global_position FROM relay_checkpoints WHERE name = $1")
                .bind(&self.options.name)
                .fetch_optional(&self.pool)
                .await
                .map_err(RelayError::Checkpoint)?;
        Ok(position.map(GlobalPosition))
    }

    async fn save_checkpoint(&self, position: GlobalPosition) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO relay_checkpoints (name, global_position) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET global_position = EXCLUDED.global_position, \
             updated_at = now()",
        )
        .bind(&self.options.name)
        .bind(position.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The topic of an event, or `-` for a kind no module declares (such records are parked).
    fn topic_of(&self, event: &RecordedEvent) -> String {
        self.routing
            .context_of(event.stream_id.kind())
            .map_or_else(|_| "-".to_owned(), |context| self.config.topic(context))
    }

    /// Sends `events` (enqueued in order, so per-key order holds) and waits for every
    /// delivery report; one result per event, in order.
    async fn publish(&self, events: &[&RecordedEvent]) -> Vec<Result<(), PublishError>> {
        let (producer, routing, config) = (&self.producer, &self.routing, &self.config);
        let deliveries = events.iter().map(|event| {
            let routed = routing
                .context_of(event.stream_id.kind())
                .map(str::to_owned);
            let headers = routed
                .as_ref()
                .ok()
                .map(|context| encode_headers(context, event));
            let topic = routed.as_ref().ok().map(|context| config.topic(context));
            async move {
                // A kind no module declares: never published to a catch-all topic where no
                // projection would see it; parked, naming the kind.
                let (Some(topic), Some(headers)) = (topic, headers) else {
                    return Err(PublishError::Unrouted(
                        routed.err().unwrap_or_else(|| UnknownKind(String::new())),
                    ));
                };
                send_event(producer, &topic, event, headers)
                    .await
                    .map_err(PublishError::Kafka)
            }
        });
        join_all(deliveries).await
    }

    /// Records a permanently refused event in `relay_parked`, retrying the write until it
    /// succeeds: the checkpoint must not move past an event that is neither published nor
    /// parked.
    async fn park(&self, event: &RecordedEvent, error: &PublishError) {
        let topic = self.topic_of(event);
        let error_text = error.to_string();
        let stream_id = event.stream_id.to_string();
        let record = NewParked {
            relay: &self.options.name,
            event_id: event.event_id.as_uuid(),
            global_position: event.global_position.0,
            stream_id: &stream_id,
            stream_version: i64::try_from(event.stream_version).unwrap_or(i64::MAX),
            event_type: &event.event_type,
            tenant_id: event.metadata.tenant_id.map(|t| t.as_uuid()),
            topic: &topic,
            error: &error_text,
        };
        while let Err(db_error) = parked::park(&self.pool, &record).await {
            tracing::warn!(error = %db_error, "relay cannot park a refused record; retrying");
            tokio::time::sleep(self.options.max_backoff).await;
        }
        self.stats.parked.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            relay = %self.options.name,
            event_id = %event.event_id,
            stream_id = %stream_id,
            global_position = event.global_position.0,
            topic = %topic,
            error = %error_text,
            "the broker refused a record for good; parked it and going on \
             (`trellis relay parked`, `trellis relay retry`)"
        );
    }

    /// A librdkafka producer that hit a fatal error (possible with idempotence after some
    /// broker refusals) fails every later send: replace it.
    fn replace_producer_if_fatal(&mut self) {
        if let Some((code, reason)) = self.producer.client().fatal_error() {
            tracing::error!(?code, %reason, "Kafka producer failed fatally; creating a new one");
            match self.config.producer().create() {
                Ok(producer) => self.producer = producer,
                Err(error) => tracing::error!(%error, "cannot create a new Kafka producer"),
            }
        }
    }

    /// Publishes one batch until every record is acknowledged or parked. Returns how many
    /// were acknowledged.
    async fn publish_batch(&mut self, batch: &[RecordedEvent]) -> u64 {
        let mut pending: Vec<&RecordedEvent> = batch.iter().collect();
        let mut attempt = 0u32;
        loop {
            let results = self.publish(&pending).await;
            let mut again = Vec::with_capacity(pending.len());
            let mut failed = 0usize;
            let mut first_error = None;
            for (event, result) in pending.iter().zip(results) {
                match result {
                    Ok(()) => again.push(*event),
                    Err(error) if error.is_permanent() => self.park(event, &error).await,
                    Err(error) => {
                        failed += 1;
                        first_error.get_or_insert(error);
                        again.push(*event);
                    }
                }
            }
            if failed == 0 {
                return again.len() as u64;
            }
            // The same records (all but the parked ones) until the broker has taken them.
            pending = again;
            attempt += 1;
            self.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(failed, attempt, error = ?first_error, "publish failed; retrying the batch");
            self.replace_producer_if_fatal();
            let backoff = Duration::from_millis(50 * 2u64.saturating_pow(attempt.min(8)))
                .min(self.options.max_backoff);
            tokio::time::sleep(backoff).await;
        }
    }

    /// Republishes the parked records an operator asked to retry, in `$all` order. A record
    /// refused for good again is parked again (the request is cleared, the error updated); on
    /// a transient failure the requests stay and the next poll tries again.
    async fn republish_requested(&mut self) {
        let due = match parked::due_for_retry(&self.pool, &self.options.name, 100).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "relay cannot read retry requests");
                return;
            }
        };
        if due.is_empty() {
            return;
        }
        let mut found: Vec<(ParkedRecord, RecordedEvent)> = Vec::with_capacity(due.len());
        for row in due {
            match self.load(&row).await {
                Ok(Some(event)) => found.push((row, event)),
                Ok(None) => {
                    tracing::error!(event_id = %row.event_id, stream_id = %row.stream_id,
                        "a parked record is not in the store; leaving it parked");
                }
                Err(error) => {
                    tracing::warn!(%error, "relay cannot read a parked event; will retry");
                    return;
                }
            }
        }
        let events: Vec<&RecordedEvent> = found.iter().map(|(_, e)| e).collect();
        let results = self.publish(&events).await;
        let mut transient = false;
        for ((row, event), result) in found.iter().zip(results) {
            match result {
                Ok(()) => {
                    let Some(requested_at) = row.retry_requested_at else {
                        continue;
                    };
                    while let Err(error) = parked::mark_republished(
                        &self.pool,
                        &self.options.name,
                        row.event_id,
                        requested_at,
                    )
                    .await
                    {
                        tracing::warn!(%error, "relay cannot mark a record republished; retrying");
                        tokio::time::sleep(self.options.max_backoff).await;
                    }
                    self.stats.republished.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(event_id = %row.event_id, stream_id = %row.stream_id,
                        "republished a parked record (out of its original order)");
                }
                Err(error) if error.is_permanent() => self.park(event, &error).await,
                Err(error) => {
                    transient = true;
                    tracing::warn!(event_id = %row.event_id, %error,
                        "republishing a parked record failed; will retry");
                }
            }
        }
        if transient {
            self.replace_producer_if_fatal();
        }
    }

    /// The stored event a parked row names.
    async fn load(
        &self,
        row: &ParkedRecord,
    ) -> Result<Option<RecordedEvent>, trellis_kernel::StoreError> {
        let Ok(stream) = StreamId::parse(&row.stream_id) else {
            return Ok(None);
        };
        let version = u64::try_from(row.stream_version).unwrap_or_default();
        let events = self
            .store
            .read_stream(&stream, version, Direction::Forwards, 1)
            .await?;
        Ok(events
            .into_iter()
            .find(|e| e.event_id.as_uuid() == row.event_id))
    }

    /// Publishes until `shutdown` resolves. A batch in flight is finished (acknowledged or
    /// parked, and checkpointed) before returning.
    ///
    /// # Errors
    /// Only start-up failures; everything later is retried or parked.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), RelayError> {
        tokio::pin!(shutdown);
        let start = self.checkpoint().await?;
        tracing::info!(relay = %self.options.name, checkpoint = ?start, "relay starting");
        let mut subscription =
            AllSubscription::new(Arc::clone(&self.store), start, self.options.subscription);
        let mut retries = tokio::time::interval(self.options.retry_poll_interval);
        retries.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // `next_batch` is cancel-safe, so a retry poll may interrupt its wait.
            let batch = tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                _ = retries.tick() => {
                    self.republish_requested().await;
                    continue;
                }
                batch = subscription.next_batch() => batch,
            };
            let batch = match batch {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(%error, "relay cannot read the store; backing off");
                    tokio::time::sleep(self.options.max_backoff).await;
                    continue;
                }
            };
            let published = self.publish_batch(&batch).await;
            self.stats.published.fetch_add(published, Ordering::Relaxed);
            if let Some(last) = batch.last() {
                // A failed checkpoint write only means republishing after a restart.
                while let Err(error) = self.save_checkpoint(last.global_position).await {
                    tracing::warn!(%error, "relay checkpoint failed; retrying");
                    tokio::time::sleep(self.options.max_backoff).await;
                }
                self.stats
                    .checkpoint
                    .store(last.global_position.0, Ordering::Relaxed);
            }
        }
    }
}

//! The relay: the only bridge from the store to Kafka.
//!
//! It reads committed events from `$all` (commit order, never skipping a late commit),
//! publishes each batch, waits for every acknowledgement, and only then moves its checkpoint
//! in PostgreSQL. A crash between publishing and checkpointing republishes the batch:
//! duplicates on the wire (consumers dedupe by `ce_id` / stream version), never loss. A
//! failed publish (broker down, timeout) is retried with backoff from the same batch, so the
//! backlog drains in order when the broker returns while appends go on regardless.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use futures::future::join_all;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;
use trellis_kernel::{AllSubscription, EventStore, GlobalPosition, SubscriptionOptions};

use crate::cloudevents::encode_headers;
use crate::config::KafkaConfig;
use crate::routing::Routing;

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
    /// A relay publishing `store`'s log; checkpoints go to `pool`.
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

    /// Publishes until `shutdown` resolves. A batch in flight is finished (acknowledged and
    /// checkpointed) before returning.
    ///
    /// # Errors
    /// Only start-up failures; everything later is retried.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), RelayError> {
        tokio::pin!(shutdown);
        let start = self.checkpoint().await?;
        tracing::info!(relay = %self.options.name, checkpoint = ?start, "relay starting");
        let mut subscription =
            AllSubscription::new(Arc::clone(&self.store), start, self.options.subscription);
        let mut attempt = 0u32;
        loop {
            let batch = tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
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
            // The same batch until the broker has taken all of it.
            loop {
                let (producer, routing, config) = (&self.producer, &self.routing, &self.config);
                let deliveries = batch.iter().map(|event| {
                    let context = routing.context_of(event.stream_id.kind());
                    let topic = config.topic(context);
                    let key = event.stream_id.to_string();
                    let value = event.payload.to_string();
                    let headers = encode_headers(context, event);
                    async move {
                        let record = FutureRecord::to(&topic)
                            .key(&key)
                            .payload(&value)
                            .headers(headers);
                        producer
                            .send(record, Duration::from_secs(30))
                            .await
                            .map_err(|(error, _)| error)
                    }
                });
                let results = join_all(deliveries).await;
                let failed = results.iter().filter(|r| r.is_err()).count();
                if failed == 0 {
                    break;
                }
                attempt += 1;
                self.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                let first = results.into_iter().find_map(Result::err);
                tracing::warn!(failed, attempt, error = ?first, "publish failed; retrying the batch");
                let backoff = Duration::from_millis(50 * 2u64.saturating_pow(attempt.min(8)))
                    .min(self.options.max_backoff);
                tokio::time::sleep(backoff).await;
            }
            attempt = 0;
            self.stats
                .published
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
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

//! A Kafka consumer-group member as an [`EventSource`] for the shared consumer runtime.
//!
//! Offsets are committed only after the runtime acknowledges a handled batch; a member that
//! dies before that has its records redelivered to whoever takes its partitions, and the
//! handler's idempotence absorbs them. Dead letters go to `<prefix>dlq.<consumer>` with the
//! original CloudEvents headers plus `trellis_error` and `trellis_consumer`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use trellis_kernel::{EventId, RecordedEvent};
use trellis_runtime::{EventSource, SourceError};

use crate::cloudevents::{decode_record, encode_headers};
use crate::config::KafkaConfig;

/// How long to keep filling a batch once its first record arrived: zero takes only what is
/// already buffered (a fetch response carries many records), adding no latency.
const FILL_WINDOW: Duration = Duration::ZERO;

/// One consumer-group member.
pub struct KafkaSource {
    consumer: Arc<StreamConsumer>,
    dead_letters: FutureProducer,
    config: KafkaConfig,
    name: String,
    batch_size: usize,
    /// Next offset to commit per (topic, partition).
    pending: HashMap<(String, i32), i64>,
    /// Context (topic suffix) of each event in the current batch, for dead letters.
    contexts: HashMap<EventId, String>,
    last_lag_check: Option<Instant>,
    lag: Option<u64>,
}

impl KafkaSource {
    /// Joins consumer group `name` on `topics`.
    ///
    /// # Errors
    /// When the clients cannot be created or the subscription fails.
    pub fn new(config: &KafkaConfig, name: &str, topics: &[String]) -> Result<Self, SourceError> {
        let consumer: StreamConsumer = config
            .client()
            .set("group.id", name)
            .set("client.id", name)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", config.session_timeout_ms.to_string())
            .set(
                "heartbeat.interval.ms",
                (config.session_timeout_ms / 3).to_string(),
            )
            .set("topic.metadata.refresh.interval.ms", "2000")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", config.fetch_wait_max_ms.to_string())
            .create()
            .map_err(|e| SourceError::from_error("creating consumer", e))?;
        let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topic_refs)
            .map_err(|e| SourceError::from_error("subscribing", e))?;
        let dead_letters = config
            .producer()
            .create()
            .map_err(|e| SourceError::from_error("creating dead-letter producer", e))?;
        Ok(Self {
            consumer: Arc::new(consumer),
            dead_letters,
            config: config.clone(),
            name: name.to_owned(),
            batch_size: 500,
            pending: HashMap::new(),
            contexts: HashMap::new(),
            last_lag_check: None,
            lag: None,
        })
    }

    fn take(&mut self, message: &rdkafka::message::BorrowedMessage<'_>) -> Option<RecordedEvent> {
        let topic = message.topic().to_owned();
        self.pending
            .insert((topic.clone(), message.partition()), message.offset() + 1);
        match decode_record(message) {
            Ok(event) => {
                let context = topic
                    .strip_prefix(&self.config.topic_prefix)
                    .unwrap_or(&topic)
                    .to_owned();
                self.contexts.insert(event.event_id, context);
                Some(event)
            }
            Err(error) => {
                // Not a Trellis record: nothing can handle it, so skip it (and say so).
                tracing::error!(consumer = %self.name, %topic, offset = message.offset(), %error,
                    "skipping a record that is not a Trellis CloudEvent");
                None
            }
        }
    }

    async fn refresh_lag(&mut self) {
        if self
            .last_lag_check
            .is_some_and(|t| t.elapsed() < Duration::from_secs(5))
        {
            return;
        }
        self.last_lag_check = Some(Instant::now());
        let consumer = Arc::clone(&self.consumer);
        let pending = self.pending.clone();
        // Watermark queries block; they are cheap but must not stall the runtime thread.
        let lag = tokio::task::spawn_blocking(move || {
            let assignment = consumer.assignment().ok()?;
            let mut total = 0u64;
            for element in assignment.elements() {
                let (_, high) = consumer
                    .fetch_watermarks(
                        element.topic(),
                        element.partition(),
                        Duration::from_millis(500),
                    )
                    .ok()?;
                let at = pending
                    .get(&(element.topic().to_owned(), element.partition()))
                    .copied()
                    .unwrap_or(0);
                total += u64::try_from(high - at).unwrap_or(0);
            }
            Some(total)
        })
        .await
        .ok()
        .flatten();
        self.lag = lag;
    }
}

#[async_trait]
impl EventSource for KafkaSource {
    async fn next_batch(&mut self) -> Result<Vec<RecordedEvent>, SourceError> {
        self.contexts.clear();
        let consumer = Arc::clone(&self.consumer);
        let mut batch = Vec::new();
        loop {
            let first = consumer
                .recv()
                .await
                .map_err(|e| SourceError::from_error("receiving", e))?;
            if let Some(event) = self.take(&first) {
                batch.push(event);
                break;
            }
        }
        let deadline = tokio::time::Instant::now() + FILL_WINDOW;
        while batch.len() < self.batch_size {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(message)) => batch.extend(self.take(&message)),
                Ok(Err(error)) => {
                    tracing::warn!(consumer = %self.name, %error, "receive error while filling a batch");
                    break;
                }
                Err(_elapsed) => break,
            }
        }
        Ok(batch)
    }

    async fn ack(&mut self) -> Result<(), SourceError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), offset) in &self.pending {
            offsets
                .add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .map_err(|e| SourceError::from_error("building offsets", e))?;
        }
        self.consumer
            .commit(&offsets, CommitMode::Async)
            .map_err(|e| SourceError::from_error("committing offsets", e))?;
        self.refresh_lag().await;
        Ok(())
    }

    async fn dead_letter(&mut self, event: &RecordedEvent, error: &str) -> Result<(), SourceError> {
        let context = self
            .contexts
            .get(&event.event_id)
            .cloned()
            .unwrap_or_else(|| "unknown".into());
        let headers = encode_headers(&context, event)
            .insert(Header {
                key: "trellis_error",
                value: Some(error),
            })
            .insert(Header {
                key: "trellis_consumer",
                value: Some(self.name.as_str()),
            });
        let topic = self.config.dead_letter_topic(&self.name);
        let key = event.stream_id.to_string();
        let value = event.payload.to_string();
        let record = FutureRecord::to(&topic)
            .key(&key)
            .payload(&value)
            .headers(headers);
        self.dead_letters
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| SourceError::from_error("producing dead letter", e))?;
        Ok(())
    }

    async fn lag(&mut self) -> Option<u64> {
        self.lag
    }
}

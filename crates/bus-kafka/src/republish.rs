//! Republishing a range of the log to one topic for outside auditors (`trellis replay
//! --to-topic`, docs/auditing.md): each event with the usual CloudEvents headers plus
//! `trellis_replay_id`, keyed by its stream, in the order given.

use futures::future::join_all;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureProducer;
use trellis_kernel::RecordedEvent;
use uuid::Uuid;

use crate::cloudevents::send_event;
use crate::{KafkaConfig, Routing, encode_headers};

/// Why a republication stopped.
#[derive(Debug, thiserror::Error)]
pub enum RepublishError {
    /// The producer could not be created.
    #[error("creating the producer: {0}")]
    Producer(#[source] rdkafka::error::KafkaError),
    /// An event of a kind no module routes (the relay parks those; a republication stops).
    #[error(transparent)]
    Unrouted(#[from] crate::UnknownKind),
    /// The broker refused a record.
    #[error("publishing event {event_id}: {error}")]
    Send {
        /// The event.
        event_id: String,
        /// The broker's answer.
        #[source]
        error: rdkafka::error::KafkaError,
    },
}

/// A producer to republish with.
pub struct Republisher {
    producer: FutureProducer,
    routing: Routing,
    topic: String,
    replay_id: Uuid,
}

impl Republisher {
    /// A producer for `topic` on `config`'s brokers; events are tagged with `replay_id`.
    ///
    /// # Errors
    /// [`RepublishError::Producer`].
    pub fn new(
        config: &KafkaConfig,
        routing: Routing,
        topic: &str,
        replay_id: Uuid,
    ) -> Result<Self, RepublishError> {
        Ok(Self {
            producer: config
                .producer()
                .create()
                .map_err(RepublishError::Producer)?,
            routing,
            topic: topic.to_owned(),
            replay_id,
        })
    }

    /// Sends `events` and waits for every delivery report.
    ///
    /// # Errors
    /// An unrouted kind (before anything is sent), or the first refused record.
    pub async fn send(&self, events: &[RecordedEvent]) -> Result<(), RepublishError> {
        let replay = self.replay_id.to_string();
        let contexts: Vec<&str> = events
            .iter()
            .map(|e| self.routing.context_of(e.stream_id.kind()))
            .collect::<Result<_, _>>()?;
        let deliveries = events.iter().zip(contexts).map(|(event, context)| {
            let headers: OwnedHeaders = encode_headers(context, event).insert(Header {
                key: "trellis_replay_id",
                value: Some(replay.as_str()),
            });
            async move {
                send_event(&self.producer, &self.topic, event, headers)
                    .await
                    .map_err(|error| RepublishError::Send {
                        event_id: event.event_id.to_string(),
                        error,
                    })
            }
        });
        join_all(deliveries).await.into_iter().collect()
    }
}

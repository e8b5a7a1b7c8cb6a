//! Broker settings shared by producers and consumers.

use rdkafka::ClientConfig;

/// The producer's `message.max.bytes`, set explicitly rather than left to the library
/// default: the largest record (key, value and headers) the relay hands to the broker. It is
/// librdkafka's default, just under the default `message.max.bytes` of Kafka brokers and
/// `max.message.bytes` of topics (1,048,588), so a record the producer accepts is one the
/// broker accepts too. The store's per-event limit sits well below it (see
/// [`trellis_kernel::StoreLimits::DEFAULT_MAX_EVENT_BYTES`]), so in normal operation no
/// stored event is ever too large to publish; the relay parks one that is anyway.
pub const PRODUCER_MESSAGE_MAX_BYTES: usize = 1_000_000;

// The store must refuse an event long before it could be too large to publish, with room for
// the key, the CloudEvents headers and the record framing.
const _: () = assert!(
    trellis_kernel::StoreLimits::DEFAULT_MAX_EVENT_BYTES * 2 < PRODUCER_MESSAGE_MAX_BYTES,
    "the store's per-event limit must stay well below the producer's message.max.bytes"
);

/// How to reach the brokers, and the topic naming.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `host:port,…` (`KAFKA_BROKERS`).
    pub brokers: String,
    /// Topic prefix, `trellis.` by default.
    pub topic_prefix: String,
    /// Partitions per topic when the dev broker creates them.
    pub partitions: i32,
    /// Consumer session timeout. Short, so a crashed member's partitions move quickly
    /// (the mock cluster waits a full session timeout before reassigning).
    pub session_timeout_ms: u32,
    /// Longest time a broker may hold a fetch that found no data. Real Kafka answers as soon
    /// as data arrives, but librdkafka's mock cluster always waits the full time, so the
    /// default (500 ms) would be the dev broker's latency floor. Low values only cost idle
    /// fetch requests.
    pub fetch_wait_max_ms: u32,
    /// The relay producer's `message.max.bytes` ([`PRODUCER_MESSAGE_MAX_BYTES`] by default).
    /// Tests lower it to make the producer refuse a record.
    pub message_max_bytes: usize,
}

impl KafkaConfig {
    /// Settings for `brokers` with defaults elsewhere.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topic_prefix: "trellis.".into(),
            partitions: 3,
            session_timeout_ms: 6000,
            fetch_wait_max_ms: 5,
            message_max_bytes: PRODUCER_MESSAGE_MAX_BYTES,
        }
    }

    /// The topic of a context, e.g. `trellis.development`.
    pub fn topic(&self, context: &str) -> String {
        format!("{}{context}", self.topic_prefix)
    }

    /// The dead-letter topic of a consumer.
    pub fn dead_letter_topic(&self, consumer: &str) -> String {
        format!("{}dlq.{consumer}", self.topic_prefix)
    }

    /// A client config with the brokers set.
    pub fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        config
    }

    /// An idempotent, fully acknowledged producer config.
    pub fn producer(&self) -> ClientConfig {
        let mut config = self.client();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "1")
            .set("message.timeout.ms", "30000")
            .set("compression.type", "none")
            .set("message.max.bytes", self.message_max_bytes.to_string());
        config
    }
}

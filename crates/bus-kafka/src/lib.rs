//! Kafka adapter (ADR 0004, ADR 0005).
//!
//! - [`Relay`]: tails the store's `$all` in commit order and publishes each event to its
//!   context's topic, keyed by stream id, CloudEvents binary mode; the checkpoint moves only
//!   after the broker acknowledged (idempotent producer, `acks=all`). Never a dual write.
//! - [`KafkaSource`]: a consumer-group member feeding the shared consumer runtime, with
//!   manual commits and a dead-letter topic per consumer.
//! - Records the broker refuses for good are parked (`relay_parked`) rather than stalling the
//!   relay; [`is_permanent`] tells them from transient failures.
//! - [`DevCluster`]: librdkafka's mock cluster as a local multi-broker dev broker.

mod cloudevents;
mod config;
mod dev;
mod relay;
mod republish;
mod routing;
mod source;

pub use cloudevents::{CodecError, decode_record, encode_headers};
pub use config::{KafkaConfig, PRODUCER_MESSAGE_MAX_BYTES};
pub use dev::DevCluster;
pub use relay::{Relay, RelayError, RelayOptions, RelayStats, is_permanent};
pub use republish::{RepublishError, Republisher};
pub use routing::{Routing, UnknownKind};
pub use source::KafkaSource;

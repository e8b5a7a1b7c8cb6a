//! The dev broker: librdkafka's mock cluster, which speaks the Kafka protocol on real TCP
//! ports of 127.0.0.1 (ADR 0005). No Kafka or Docker is installable here; any real Kafka
//! works instead through `KAFKA_BROKERS`.

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::config::KafkaConfig;
use crate::routing::Routing;

/// A running mock cluster with Trellis's topics. Dropping it stops the brokers.
///
/// Not `Send`: keep it on the thread (or task-local future) that created it.
pub struct DevCluster {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl DevCluster {
    /// Starts `brokers` brokers and creates the SPEC topics and every routed context's
    /// topic with `config.partitions` partitions, replicated on up to three brokers.
    ///
    /// # Errors
    /// When librdkafka cannot start the cluster or create a topic.
    pub fn start(
        brokers: i32,
        config: &KafkaConfig,
        routing: &Routing,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let cluster = MockCluster::new(brokers)?;
        let mut contexts: Vec<String> = Routing::SPEC_CONTEXTS
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
        contexts.extend(routing.contexts());
        contexts.sort();
        contexts.dedup();
        for context in contexts {
            cluster.create_topic(&config.topic(&context), config.partitions, brokers.min(3))?;
        }
        Ok(Self { cluster })
    }

    /// `host:port,…` of the brokers.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// Creates one more topic.
    ///
    /// # Errors
    /// When librdkafka refuses.
    pub fn create_topic(
        &self,
        topic: &str,
        partitions: i32,
    ) -> Result<(), rdkafka::error::KafkaError> {
        self.cluster.create_topic(topic, partitions, 1)
    }

    /// Makes broker `id` (or all, with -1) refuse connections: an outage.
    ///
    /// # Errors
    /// When librdkafka refuses.
    pub fn broker_down(&self, id: i32) -> Result<(), rdkafka::error::KafkaError> {
        self.cluster.broker_down(id)
    }

    /// Ends an outage.
    ///
    /// # Errors
    /// When librdkafka refuses.
    pub fn broker_up(&self, id: i32) -> Result<(), rdkafka::error::KafkaError> {
        self.cluster.broker_up(id)
    }
}

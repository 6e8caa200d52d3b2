//! v3: the order is produced to Kafka (topic `orders`, keyed by store); processors of the
//! consumer group `coffee-processors` write PostgreSQL and the Redis projection.
//!
//! The code speaks plain Kafka through librdkafka: the Apache Kafka broker the scripts run
//! locally, Redpanda or a managed Kafka work alike, chosen by `KAFKA_BROKERS`.

mod consumer;
mod dead_letter;
mod producer;
mod rebalance;
mod topic;

pub use consumer::{GroupProtocol, Processor, ProcessorConfig, source_of};
pub use producer::V3Ingest;
pub use topic::{KafkaSettings, TopicProbe, delete_topics, ensure_topic};

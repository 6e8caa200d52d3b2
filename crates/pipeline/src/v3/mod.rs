//! v3: the order is produced to Kafka (topic `orders`, keyed by store); processors of the
//! consumer group `coffee-processors` write PostgreSQL and the Redis projection.
//!
//! The code speaks plain Kafka through librdkafka, so a Kafka or Redpanda cluster works as well
//! as the `nisshi` broker used here.

mod processor;
mod producer;
mod topic;

pub use processor::{Processor, ProcessorConfig, source_of};
pub use producer::V3Ingest;
pub use topic::{KafkaSettings, ensure_topic};

//! The three ingestion paths, from an accepted [`coffee_core::Order`] to both sinks.
//!
//! The data flow, in the order of the modules:
//! - [`ingest`]: the one trait the API calls for every path, through [`idempotency`], which
//!   answers a repeated `order_id` across all three.
//! - [`sources`]: v1's batcher writes PostgreSQL from the API process; v2 appends to a Redis
//!   Stream and v3 produces to Kafka, and their consumers drain the log into…
//! - [`commit`]: one batch committed exactly once into PostgreSQL, then projected into Redis.
//! - [`relay`]: committed deltas that did not reach Redis at once are applied from the outbox.
//! - [`aggregator`]: v1's metrics, recomputed from PostgreSQL on an interval.
//! - [`reconcile`]: compares Redis with PostgreSQL, and repairs it.
//! - [`repair`]: rebuilds a projection Redis lost, with no command.
//! - [`freshness`]: how long an accepted order took to be counted.

pub mod aggregator;
pub mod commit;
pub mod fault;
pub mod freshness;
pub mod idempotency;
pub mod ingest;
pub mod reconcile;
pub mod relay;
pub mod repair;
pub mod sources;

pub use aggregator::{AggregateMode, Aggregator, RunReport};
pub use commit::{CommitError, CommitStep, Committed, Stopped};
pub use idempotency::{Outcome, Registry, Submitted};
pub use ingest::{Ingest, IngestError, Receipt};
pub use sources::{
    v1_batcher::{BatcherConfig, V1Ingest},
    v2_stream::{V2Ingest, Worker, WorkerConfig},
    v3_kafka::{GroupProtocol, KafkaSettings, Processor, ProcessorConfig, V3Ingest},
};

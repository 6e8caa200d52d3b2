//! The three ingestion paths, from an accepted [`coffee_core::Order`] to both sinks.
//!
//! - [`v1`]: the API's batcher writes PostgreSQL; the aggregator recomputes Redis on an interval.
//! - [`v2`]: the API appends to a Redis Stream; workers write PostgreSQL and the projection.
//! - [`v3`]: the API produces to Kafka; processors write PostgreSQL and the projection.
//!
//! v2 and v3 share the [`relay`]: PostgreSQL commits orders and their metric delta together
//! (the outbox), and the relay applies each delta to Redis exactly once.

pub mod error;
pub mod fault;
pub mod freshness;
pub mod reconcile;
pub mod relay;
pub mod v1;
pub mod v2;
pub mod v3;

pub use error::IngestError;

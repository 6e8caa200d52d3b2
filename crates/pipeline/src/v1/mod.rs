//! v1: the order is written straight to PostgreSQL by a batcher in the API process; an
//! aggregator recomputes the Redis metrics from SQL on an interval.

mod aggregator;
mod batcher;

pub use aggregator::{AggregateMode, Aggregator, RunReport, SOURCE_NAME};
pub use batcher::{BatcherConfig, V1Ingest};

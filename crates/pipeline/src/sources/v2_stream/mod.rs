//! v2: the order is appended to the Redis Stream `orders:stream`; workers of the consumer group
//! `order-workers` write PostgreSQL and the Redis projection.

mod consumer;
mod dead_letter;
mod producer;

pub use consumer::{Worker, WorkerConfig};
pub use producer::{GROUP, V2Ingest, ensure_group};

/// The stream entry field holding the order (an `OrderRecord` as JSON).
pub const ORDER_FIELD: &str = "order";

//! The two sinks every ingestion path writes: PostgreSQL, the source of truth, and the Redis
//! metrics projection the dashboard reads.

pub mod postgres;
pub mod redis;

pub use postgres::{OutboxEntry, PgPool};
pub use redis::{Keys, Projection, VersionSnapshot};

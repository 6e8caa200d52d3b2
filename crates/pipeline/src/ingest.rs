//! The API's side of every path: one trait, so the order route picks a path by its
//! [`Version`](coffee_core::Version) and never names the three types.

use async_trait::async_trait;
use coffee_core::Order;

use crate::idempotency::Submitted;

/// What an acknowledgement promises the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// The order is committed in PostgreSQL (v1: `201 Created`).
    Stored,
    /// The order is durable in the path's log and will be committed (v2, v3: `202 Accepted`).
    Logged,
}

/// One ingestion path as the API sees it: take an accepted order, say when it is safe.
#[async_trait]
pub trait Ingest: Send + Sync {
    /// What a successful [`Ingest::submit`] means.
    fn receipt(&self) -> Receipt;

    /// Resolves once the order is as durable as [`Ingest::receipt`] says, or fails with a
    /// reason the client may retry on (the same `order_id` is safe: every sink is idempotent).
    /// The API calls it through [`crate::idempotency::Registry::submit`], which answers repeats.
    async fn submit(&self, order: Order) -> Result<Submitted, IngestError>;

    /// Waits for acknowledgements still in flight; called once, when the server stops.
    async fn close(&self) {}
}

/// Why an order could not be accepted. Every variant maps to a 503 with `Retry-After`: the
/// client should retry with the same `order_id`, which is safe because every sink is idempotent.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("ingest queue is full")]
    QueueFull,
    #[error("{service} is unavailable: {reason}")]
    Unavailable { service: &'static str, reason: String },
    #[error("shutting down")]
    ShuttingDown,
    #[error("an order with this order_id is being accepted right now; retry")]
    InProgress,
}

impl IngestError {
    pub fn unavailable(service: &'static str, reason: impl std::fmt::Display) -> Self {
        IngestError::Unavailable { service, reason: reason.to_string() }
    }
}

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
}

impl IngestError {
    pub fn unavailable(service: &'static str, reason: impl std::fmt::Display) -> Self {
        IngestError::Unavailable { service, reason: reason.to_string() }
    }
}

/// True when a PostgreSQL error says nothing about the data (connection lost, pool timeout):
/// such a batch is retried as it is, and no message is blamed for it.
pub fn is_transient_pg(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_none_or(|db| {
        let code = db.code().code();
        // 08: connection exception, 53: insufficient resources, 57: operator intervention,
        // 40: transaction rollback (serialization, deadlock).
        ["08", "53", "57", "40"].iter().any(|class| code.starts_with(class))
    })
}

//! What the in-process backlog bench measured: one processor catching up on a backlog.

use serde::Serialize;

/// Printed by `coffee-lab bench backlog` as one JSON line.
#[derive(Debug, Clone, Serialize)]
pub struct BacklogReport {
    pub records: u64,
    /// v3 rows in PostgreSQL after the catch-up (must be `records`).
    pub rows: i64,
    /// The produced revenue, which PostgreSQL's rows and Redis's total both equal.
    pub revenue_cents: i64,
    /// Per-drink, per-store and per-hour entries found equal in Redis and PostgreSQL.
    pub breakdowns_checked: usize,
    pub produce_s: f64,
    /// From starting the processor until Redis counted every record.
    pub catch_up_s: f64,
    pub records_per_s: f64,
    pub window_ms: u64,
    pub fetch_wait_ms: u64,
    /// Peak resident memory of this process during the catch-up (the producer's buffers
    /// included), MiB.
    pub peak_rss_mb_incl_producer: f64,
    pub brokers: String,
}

//! What the v1 aggregator bench measured at each table size, and where its full recompute
//! crosses each interval it must fit in.

use serde::Serialize;

/// One table size.
#[derive(Debug, Clone, Serialize)]
pub struct SizeResult {
    pub rows: u64,
    /// Table plus indexes.
    pub table_mib: f64,
    /// Time to grow the table to this size (insert, index rebuild, VACUUM ANALYZE).
    pub grow_s: f64,
    pub full_ms: Vec<f64>,
    pub full_median_ms: f64,
    /// Orders the full recompute counted (must be `rows`).
    pub full_counted: i64,
    pub incremental_ms: f64,
    /// Orders the incremental run counted (must be the increment's rows).
    pub incremental_counted: i64,
    /// Set when another session's open transaction kept the runs from seeing every row.
    pub note: Option<String>,
}

/// Where the full recompute crosses one interval.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IntervalVerdict {
    pub interval_s: f64,
    pub source: String,
    /// First measured size whose full-recompute median exceeds the interval.
    pub first_size_over: Option<u64>,
    /// Table size at which the full recompute takes as long as the interval: interpolated
    /// between measured sizes, or extrapolated (linear in rows) beyond the largest.
    pub crossover_rows: Option<f64>,
    pub extrapolated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct AggregatorReport {
    pub sizes: Vec<SizeResult>,
    pub intervals: Vec<IntervalVerdict>,
    pub full_runs: usize,
    pub increment_rows: u64,
    /// Why the ladder stopped early, if it did.
    pub note: Option<String>,
    /// How the table was built and the aggregator run, for SCALE.md.
    pub method: String,
    pub duration_s: f64,
}

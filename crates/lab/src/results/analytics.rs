//! What the analytics bench measured: per table size, the warehouse sink's copy, the on-disk
//! size of each store and the four history queries on PostgreSQL and on ClickHouse; and what
//! those figures say about themselves (where a store stops being interactive).

use serde::Serialize;

use crate::machine::Machine;
use crate::results::aggregator::IntervalVerdict;

/// A query slower than this is no longer interactive (the interactive line, and the aggregator's
/// 1 s interval).
pub const INTERACTIVE_MS: f64 = 1_000.0;

/// The two stores that answer the history queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Store {
    Postgres,
    ClickHouse,
}

impl Store {
    pub const BOTH: [Store; 2] = [Store::Postgres, Store::ClickHouse];

    pub fn name(self) -> &'static str {
        match self {
            Store::Postgres => "PostgreSQL",
            Store::ClickHouse => "ClickHouse",
        }
    }
}

impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The timed runs of one query on one store (the warm-up run excluded).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Timing {
    pub runs_ms: Vec<f64>,
    pub median_ms: f64,
    /// Nearest rank: with fewer than 100 runs, the slowest one.
    pub p99_ms: f64,
    /// The orders the answer covers (its range and filters) per second, at the median time.
    pub rows_per_s: f64,
}

/// One history query at one table size, on both stores.
#[derive(Debug, Clone, Serialize)]
pub struct QueryResult {
    /// Stable key, e.g. `revenue_per_store_per_day`.
    pub key: String,
    /// What a café owner asks, e.g. "revenue per store per day, last 30 days".
    pub title: String,
    /// The `HistoryQuery` as `/api/history` parameters.
    pub params: String,
    /// Over the whole history (not a recent window).
    pub whole_range: bool,
    /// Buckets in the answer (group keys included).
    pub buckets: usize,
    /// Orders the answer counts: the rows the query must aggregate.
    pub orders: u64,
    pub postgres: Timing,
    pub clickhouse: Timing,
    /// The two stores gave the same answer (the bench fails otherwise).
    pub answers_equal: bool,
}

impl QueryResult {
    pub fn timing(&self, store: Store) -> &Timing {
        match store {
            Store::Postgres => &self.postgres,
            Store::ClickHouse => &self.clickhouse,
        }
    }
}

/// The warehouse sink copying the whole table from empty.
#[derive(Debug, Clone, Serialize)]
pub struct SinkRun {
    pub rows: u64,
    pub seconds: f64,
    pub rows_per_s: f64,
    /// Rounds the sink took (one xid window each).
    pub rounds: u64,
    /// CPU seconds over the catch-up: the bench's own process (the sink runs in it: PostgreSQL
    /// reads, encoding, the HTTP inserts, nothing else), and every `postgres` and
    /// `clickhouse-server` process on the machine (whoever else uses them counts too).
    pub cpu_s_sink: f64,
    pub cpu_s_postgres: f64,
    pub cpu_s_clickhouse: f64,
}

/// The rate at which an operator asks what the sink costs.
pub const SINK_COST_RATE: f64 = 5_000.0;

impl SinkRun {
    /// CPU µs per order copied, of the sink's process and of both stores' servers.
    pub fn cpu_us_per_order(&self) -> f64 {
        (self.cpu_s_sink + self.cpu_s_postgres + self.cpu_s_clickhouse) * 1e6 / self.rows.max(1) as f64
    }

    /// Cores the copy would keep busy at `rate` orders/s at this cost per order.
    pub fn cores_at(&self, rate: f64) -> f64 {
        self.cpu_us_per_order() * rate / 1e6
    }
}

/// On-disk size of each store at one table size.
#[derive(Debug, Clone, Serialize)]
pub struct StorageSize {
    /// `pg_relation_size('orders')`: the heap.
    pub pg_table_bytes: u64,
    /// `pg_indexes_size('orders')`.
    pub pg_indexes_bytes: u64,
    /// `pg_total_relation_size('orders')`: heap, indexes, TOAST, free-space and visibility maps.
    pub pg_total_bytes: u64,
    /// Active parts of the ClickHouse table, before and after `OPTIMIZE TABLE … FINAL`.
    pub ch_parts_loaded: u64,
    pub ch_parts: u64,
    /// `system.parts` of the active parts after the OPTIMIZE: everything on disk (columns,
    /// marks, primary index, checksums), and the column data compressed and uncompressed.
    pub ch_bytes_on_disk: u64,
    pub ch_compressed_bytes: u64,
    pub ch_uncompressed_bytes: u64,
    pub optimize_s: f64,
}

impl StorageSize {
    /// PostgreSQL's table plus indexes over ClickHouse's bytes on disk.
    pub fn ratio_vs_postgres(&self) -> f64 {
        self.pg_total_bytes as f64 / self.ch_bytes_on_disk.max(1) as f64
    }

    /// ClickHouse's own compression: column data uncompressed over compressed.
    pub fn ch_compression(&self) -> f64 {
        self.ch_uncompressed_bytes as f64 / self.ch_compressed_bytes.max(1) as f64
    }

    pub fn pg_bytes_per_row(&self, rows: u64) -> f64 {
        self.pg_total_bytes as f64 / rows.max(1) as f64
    }

    pub fn ch_bytes_per_row(&self, rows: u64) -> f64 {
        self.ch_bytes_on_disk as f64 / rows.max(1) as f64
    }
}

/// Everything measured at one table size.
#[derive(Debug, Clone, Serialize)]
pub struct SizeRun {
    pub rows: u64,
    /// Generating the orders in PostgreSQL (insert, REINDEX, VACUUM ANALYZE).
    pub generate_s: f64,
    pub sink: SinkRun,
    pub storage: StorageSize,
    pub queries: Vec<QueryResult>,
}

/// Where one query on one store stops being interactive, and what a billion orders would take.
#[derive(Debug, Clone, Serialize)]
pub struct Crossing {
    pub key: String,
    pub store: Store,
    /// Against [`INTERACTIVE_MS`]: the first measured size over it, and the size at which the
    /// median would reach it (interpolated, or extrapolated linearly beyond the largest size).
    pub interactive: IntervalVerdict,
    /// The median at 1,000,000,000 orders (the papers' "1B+ rows"), extrapolated linearly from
    /// the two largest sizes; None if the times do not grow.
    pub at_billion_ms: Option<f64>,
}

/// The papers' "1B+ rows".
pub const BILLION: u64 = 1_000_000_000;

#[derive(Debug, Clone, Serialize)]
pub struct AnalyticsReport {
    pub started_at: String,
    pub command: String,
    pub quick: bool,
    pub machine: Machine,
    pub postgres_version: String,
    pub clickhouse_version: String,
    /// Timed runs per query and store (after one warm-up).
    pub runs: u64,
    pub timezone: String,
    /// The history the orders are spread over: `days` days ending at `history_end`.
    pub days: u32,
    pub history_end: String,
    pub sizes: Vec<SizeRun>,
    /// Per query and store, in query order, PostgreSQL first.
    pub crossings: Vec<Crossing>,
    /// How the tables were built and the queries run, for ANALYTICS.md.
    pub method: Vec<String>,
    pub duration_s: f64,
    /// The machine's 1-minute load average at the start and the end (others' work shares the
    /// cores).
    pub load_average: [String; 2],
}

impl AnalyticsReport {
    /// The query keys, in the order they were run.
    pub fn query_keys(&self) -> Vec<(&str, &str)> {
        self.sizes.first().map_or_else(Vec::new, |s| s.queries.iter().map(|q| (q.key.as_str(), q.title.as_str())).collect())
    }

    /// `(rows, timing)` of `key` on `store` at every size.
    pub fn series(&self, key: &str, store: Store) -> Vec<(u64, &Timing)> {
        self.sizes.iter().filter_map(|s| Some((s.rows, s.queries.iter().find(|q| q.key == key)?.timing(store)))).collect()
    }

    pub fn crossing(&self, key: &str, store: Store) -> Option<&Crossing> {
        self.crossings.iter().find(|c| c.key == key && c.store == store)
    }

    /// The slowest median of `store` over every query at the largest size: (rows, key, ms).
    pub fn slowest_at_largest(&self, store: Store) -> Option<(u64, &str, f64)> {
        let last = self.sizes.last()?;
        last.queries
            .iter()
            .map(|q| (q.key.as_str(), q.timing(store).median_ms))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(k, ms)| (last.rows, k, ms))
    }

    /// Every query at every size got the same answer from both stores.
    pub fn all_answers_equal(&self) -> bool {
        self.sizes.iter().all(|s| s.queries.iter().all(|q| q.answers_equal))
    }
}

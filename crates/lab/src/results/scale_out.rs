//! What the v3 processor's scale-out bench measured: one run per instance count.

use std::collections::BTreeMap;

use serde::Serialize;

/// One instance count.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleOutRun {
    pub instances: usize,
    pub records: u64,
    /// Wall time from spawning the instances until Redis counted every record.
    pub seconds: f64,
    /// Wall time from spawning the instances until Redis first counted a record (process
    /// start, PostgreSQL pool, group join, first window).
    pub first_record_seconds: f64,
    /// `records / seconds`.
    pub records_per_s: f64,
    /// Records counted after the first poll that saw any, over the time since that poll.
    pub records_per_s_after_first: f64,
    /// CPU seconds (user + system) of each instance process over the drain, and their sum.
    pub cpu_s_per_instance: Vec<f64>,
    pub cpu_s_total: f64,
    pub cpu_us_per_record: f64,
    /// Resident memory of each instance when the drain ended, and its peak (VmHWM), MiB.
    pub rss_mib_per_instance: Vec<f64>,
    pub peak_rss_mib_per_instance: Vec<f64>,
    /// CPU seconds of the services over the drain: `postgres` (every backend, and exited
    /// ones through the postmaster's reaped-children time), `redis-server`, `java` (the broker).
    pub cpu_s_services: BTreeMap<String, f64>,
    /// Busy CPU seconds of the whole machine over the drain (all cores, from /proc/stat): what
    /// is left after the instances and the services is everything else that ran (the bench's
    /// own polling, and any other work on the machine, which would taint the figures).
    pub cpu_s_machine: f64,
    /// Checked after the instances stopped: v3 rows in PostgreSQL, their revenue, and the
    /// Redis projection's total count and revenue. All four match the produced backlog.
    pub pg_rows: i64,
    pub pg_revenue_cents: i64,
    pub redis_orders: i64,
    pub redis_revenue_cents: i64,
    /// Partitions whose Redis fence equals PostgreSQL's outbox seq (all of them, checked).
    pub fenced_partitions: usize,
    /// The partitions each instance held when the drain ended (from its log).
    pub partitions_per_instance: Vec<Vec<i32>>,
    /// Every instance exited 0 after SIGTERM.
    pub graceful_exit: bool,
    /// The run's scratch names (all removed after the run).
    pub database: String,
    pub namespace: String,
    pub group: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScaleOutReport {
    pub records: u64,
    pub partitions: i32,
    pub runs: Vec<ScaleOutRun>,
    /// Producing the backlog, acknowledged (`acks=all`, idempotent).
    pub produce_seconds: f64,
    pub machine_cores: usize,
    /// The scratch topic (deleted at the end, with its `.dead` topic).
    pub topic: String,
}

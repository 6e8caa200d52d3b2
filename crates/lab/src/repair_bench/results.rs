//! What the repair bench measured, as data: docs/repair-results.json is [`RepairResults`]
//! serialized, and the markdown table ([`super::doc`]) is rendered from it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::verify::{Drained, Losses};
use crate::ApiVersion;
use crate::config::RedisLoss;
use crate::machine::Machine;
use crate::results::load::LatencyMs;
use crate::soak::audit::Drift;

#[derive(Debug, Clone, Serialize)]
pub struct RepairResults {
    /// The command that produced the results.
    pub command: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub machine: Machine,
    /// `redis-server --version`'s first line.
    pub redis_version: String,
    pub config: RunConfig,
    /// Every trial, in the order run.
    pub trials: Vec<Trial>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    pub warmup_s: f64,
    pub after_s: f64,
    pub down_s: f64,
    pub poll_ms: f64,
    pub recovery_cap_s: f64,
    /// `coffee-rt up --aggregate-every`: v1's aggregator interval.
    pub aggregate_every_ms: f64,
    pub connections_per_path: usize,
    /// v2 orders acknowledged before t0 plus this may have died with the stream.
    pub boundary_grace_s: f64,
}

/// One rate and one fault, in a world of its own.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// Orders/s over all three paths, a third each.
    pub offered_rate: f64,
    /// Acknowledged orders/s over the whole run, all paths.
    pub achieved_rate: f64,
    pub fault: RedisLoss,
    /// `/proc/loadavg` (1, 5, 15 min) when the trial started: how busy the shared machine was.
    pub load_average: [f64; 3],
    /// Kill only: from the SIGKILL to the empty Redis answering PING (t0).
    pub redis_down_ms: Option<f64>,
    /// PostgreSQL's orders per path at t0: what each projection must count to have recovered.
    pub counts_at_t0: BTreeMap<ApiVersion, i64>,
    /// From t0 to Redis's total reaching the count at t0, seconds; `null`: not recovered
    /// within the cap.
    pub recovery_s: BTreeMap<ApiVersion, Option<f64>>,
    /// The watch's first reading, seconds after t0, and its Redis totals: below the counts
    /// at t0, or the loss met nothing.
    pub first_reading_s: Option<f64>,
    pub redis_totals_first: BTreeMap<ApiVersion, i64>,
    /// The Redis totals at the watch's last reading.
    pub redis_totals_last: BTreeMap<ApiVersion, i64>,
    /// `coffee_rt_projection_rebuilds_total` and `_rebuild_seconds_sum` of `up` at the end
    /// (v2 and v3 rebuild from a snapshot; v1's aggregator recomputes instead).
    pub rebuilds: BTreeMap<ApiVersion, Rebuilds>,
    pub drain: Drained,
    /// Values on which Redis and the recomputation from PostgreSQL differ after the drain.
    pub drift: usize,
    /// The first few of them.
    pub drift_examples: Vec<Drift>,
    pub paths: BTreeMap<ApiVersion, PathResult>,
    /// Latency of every acknowledged order, all paths, from its intended send time.
    pub latency_ms: LatencyMs,
    /// The same for the orders answered before the loss began (the warm-up), and after: what
    /// the loss and the rebuild cost, set apart from what the shared machine costs anyway.
    pub latency_before_loss_ms: LatencyMs,
    pub latency_after_loss_ms: LatencyMs,
}

impl Trial {
    /// Every path recovered within the cap.
    pub fn recovered(&self) -> bool {
        self.recovery_s.values().all(Option::is_some)
    }

    /// Acknowledged orders lost beyond what a Redis without AOF may lose (v2's stream).
    pub fn lost(&self) -> u64 {
        self.paths.values().map(|p| p.losses.lost).sum()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Rebuilds {
    pub count: f64,
    pub seconds_sum: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PathResult {
    pub offered_rate: f64,
    /// Requests sent or timed out before they could be.
    pub requests: u64,
    /// Acknowledged per second over the run.
    pub achieved_rate: f64,
    pub latency_ms: LatencyMs,
    /// Requests sent more than 1 ms after their intended time.
    pub late_sends: u64,
    /// Failures by status or transport error (503s while Redis is away are expected on v2).
    pub errors: BTreeMap<String, u64>,
    pub losses: Losses,
    /// Rows PostgreSQL holds after the drain.
    pub postgres_rows: i64,
}

/// Rounds to 3 decimals, as the lab's other results do.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `/proc/loadavg`'s three averages (zeros when unreadable).
pub fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text.split_whitespace().map(|v| v.parse().unwrap_or(0.0));
    [it.next().unwrap_or(0.0), it.next().unwrap_or(0.0), it.next().unwrap_or(0.0)]
}

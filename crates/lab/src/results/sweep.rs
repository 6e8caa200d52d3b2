//! What a sweep measured: its plan, each path's steps and where it broke, the ceilings, and
//! the benches it ran after the paths. Written to SCALE.md and `scale-results.json`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::aggregator::AggregatorReport;
use super::breaks::{BreakCriteria, BreakReason};
use super::ceilings::{Calibration, CeilingResult};
use super::load::{ConnectionModel, LatencyMs};
use super::scale_out::ScaleOutReport;
use super::secs;
use crate::ApiVersion;
use crate::machine::Machine;
use crate::procs::ProcUsage;

/// The concrete plan a sweep's flags stand for.
#[derive(Debug, Clone, Serialize)]
pub struct SweepPlan {
    pub rates: Vec<f64>,
    #[serde(serialize_with = "secs")]
    pub step_duration: Duration,
    #[serde(serialize_with = "secs")]
    pub drain_timeout: Duration,
    #[serde(serialize_with = "secs")]
    pub budget: Duration,
    #[serde(serialize_with = "secs")]
    pub warmup: Duration,
    pub model: ConnectionModel,
    pub ceiling: CeilingPlan,
    /// Table sizes of the aggregator bench (empty: not run).
    pub aggregator_sizes: Vec<u64>,
    /// Part of the budget kept for the aggregator bench, which runs after the paths.
    #[serde(serialize_with = "secs")]
    pub aggregator_reserve: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct CeilingPlan {
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    pub http_rates: Vec<f64>,
    #[serde(serialize_with = "secs")]
    pub http_step: Duration,
}

/// Everything recorded for one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub version: ApiVersion,
    pub offered_rate: f64,
    pub achieved_rate: f64,
    pub latency_ms: LatencyMs,
    pub errors: u64,
    pub errors_by_status: BTreeMap<String, u64>,
    pub send_lag_ms_p99: f64,
    /// Requests sent more than 1 ms after their intended time.
    pub late_sends: u64,
    pub connection_model: ConnectionModel,
    pub accepted: u64,
    /// Orders the server counted (freshness histogram) by the end of the drain.
    pub counted: Option<u64>,
    pub freshness_p50_ms: Option<f64>,
    pub freshness_p99_ms: Option<f64>,
    /// Backlog growth over the step (items/s), when a backlog probe covers this path.
    pub backlog_slope_per_s: Option<f64>,
    pub backlog_last: Option<f64>,
    /// CPU and RSS per watched process group during the measured part of the load.
    pub procs: BTreeMap<String, ProcUsage>,
    /// CPU time of the path's processes (the load generator apart) per order accepted, µs.
    pub cpu_us_per_order: Option<f64>,
    /// Peak memory of the path's processes, MiB (the broker's JVM included for v3): their
    /// proportional set size where the kernel gives it (shared pages counted once), else RSS.
    pub path_rss_mib: Option<f64>,
    /// The offered rate is above half the generator's own ceiling: the generator's share of the
    /// two cores is then large enough to bend the figures, and they are flagged.
    pub generator_bound: bool,
    /// p99 (ms) of a first attempt that broke on latency alone and was run again once: on a
    /// shared machine one stall of a neighbour can break a step the path holds.
    pub retried_after_p99_ms: Option<f64>,
    pub breaks: Vec<BreakReason>,
}

impl StepRecord {
    pub fn held(&self) -> bool {
        self.breaks.is_empty()
    }

    /// The step broke on its p99 alone: everything else held.
    pub fn only_latency_broke(&self) -> bool {
        !self.breaks.is_empty() && self.breaks.iter().all(|b| matches!(b, BreakReason::Latency { .. }))
    }
}

/// What oha measured at one rate.
#[derive(Debug, Clone, Serialize)]
pub struct OhaRun {
    pub version: ApiVersion,
    pub offered_rate: f64,
    pub connections: usize,
    pub achieved_rate: f64,
    pub success_rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// One path's steps and where it broke.
#[derive(Debug, Clone, Serialize)]
pub struct PathResult {
    pub version: ApiVersion,
    pub criteria: BreakCriteria,
    pub steps: Vec<StepRecord>,
    /// Highest achieved rate of a step that held.
    pub max_sustained: Option<f64>,
    /// Offered rate of the step that broke it; `None` if it held through the ladder.
    pub broke_at: Option<f64>,
    /// Why stepping stopped early without a break (budget), if it did.
    pub note: Option<String>,
    /// The same path with independent clients instead of a pool, at a few rates.
    pub clients_steps: Vec<StepRecord>,
    /// oha at the highest held rate, or why it could not run.
    pub oha: Option<Result<OhaRun, String>>,
}

impl PathResult {
    /// The step of the ladder at exactly `rate` offered, if the path reached it.
    pub fn at(&self, rate: f64) -> Option<&StepRecord> {
        self.steps.iter().find(|s| s.offered_rate == rate)
    }

    /// The highest offered rate of the ladder that held.
    pub fn max_held_offered(&self) -> Option<f64> {
        self.steps.iter().filter(|s| s.held()).map(|s| s.offered_rate).reduce(f64::max)
    }
}

/// The aggregator bench, or why it could not run.
#[derive(Debug, Clone, Serialize)]
pub struct AggregatorOutcome {
    pub report: Option<AggregatorReport>,
    pub error: Option<String>,
}

/// The whole run, as written to SCALE.md and `scale-results.json`.
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    pub command: String,
    pub started_at: String,
    pub duration_s: f64,
    pub quick: bool,
    pub url: String,
    pub machine: Machine,
    pub plan: SweepPlan,
    pub backlog_probe: String,
    pub paths: Vec<PathResult>,
    pub ceilings: Vec<CeilingResult>,
    /// The generator's own ceiling and CPU per request; `None` with `--no-ceilings`.
    pub generator: Option<Result<Calibration, String>>,
    /// The v3 processor draining a backlog with 1, 2 and 4 instances; `None` when skipped.
    pub scale_out: Option<Result<ScaleOutReport, String>>,
    /// The v1 aggregator against table size; `None` with `--no-aggregator`.
    pub aggregator: Option<AggregatorOutcome>,
}

impl SweepReport {
    /// The generator's own ceiling (requests/s), when it was calibrated.
    pub fn generator_ceiling(&self) -> Option<f64> {
        self.generator.as_ref()?.as_ref().ok().map(|g| g.ceiling.per_second)
    }

    /// The ceiling named `name` (requests, rows, entries or messages per second), if measured.
    pub fn ceiling(&self, name: &str) -> Option<f64> {
        self.ceilings.iter().find(|c| c.name == name)?.ceiling.as_ref().map(|c| c.per_second)
    }

    /// The path `version`, if it was swept.
    pub fn path(&self, version: ApiVersion) -> Option<&PathResult> {
        self.paths.iter().find(|p| p.version == version)
    }
}

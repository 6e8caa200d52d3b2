//! One step of a sweep: offer one rate to one path, watch the processes and the backlog
//! while it runs, then judge it with the break detector.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::backlog::BacklogProbe;
use super::breaks::{self, BreakCriteria, BreakReason, StepObservation};
use crate::ApiVersion;
use crate::freshness::DrainPolicy;
use crate::load::{LoadArgs, run_load_with_drain};
use crate::procs::{ProcSampler, ProcUsage};
use crate::report::LatencyMs;

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
    pub accepted: u64,
    /// Orders the server counted (freshness histogram) by the end of the drain.
    pub counted: Option<u64>,
    pub freshness_p50_ms: Option<f64>,
    pub freshness_p99_ms: Option<f64>,
    /// Backlog growth over the step (items/s), when a backlog probe covers this path.
    pub backlog_slope_per_s: Option<f64>,
    pub backlog_last: Option<f64>,
    /// CPU and RSS per watched process group during the load.
    pub procs: BTreeMap<String, ProcUsage>,
    pub breaks: Vec<BreakReason>,
}

impl StepRecord {
    pub fn held(&self) -> bool {
        self.breaks.is_empty()
    }
}

/// What a step needs besides the rate.
pub struct StepSetup<'a> {
    pub url: &'a str,
    pub duration: Duration,
    pub drain_timeout: Duration,
    pub criteria: BreakCriteria,
    pub probe: Arc<dyn BacklogProbe>,
    pub processes: &'a [&'a str],
    /// Whether an earlier step found the server exporting the freshness histogram; once it
    /// is known not to, later steps do not wait for it to appear.
    pub freshness_exported: Option<bool>,
}

pub async fn run_step(version: ApiVersion, rate: f64, setup: &StepSetup<'_>) -> anyhow::Result<StepRecord> {
    let mut args = LoadArgs::new(version, rate, setup.duration, setup.url);
    args.drain_timeout = setup.drain_timeout;
    args.json = true;

    let watch_until = Instant::now() + setup.duration;
    let sampler = ProcSampler::new(setup.processes)?;
    let watcher = tokio::spawn(watch(sampler, setup.probe.clone(), version, watch_until));
    let mut drain = DrainPolicy { max_wait: setup.drain_timeout, ..DrainPolicy::default() };
    drain.absent_wait = match setup.freshness_exported {
        Some(false) => Duration::ZERO,
        _ => drain.absent_wait.min(setup.drain_timeout),
    };
    let run = run_load_with_drain(&args, drain).await?;
    let (sampler, backlog) = watcher.await?;

    let r = &run.report;
    let obs = StepObservation {
        offered_rate: rate,
        achieved_rate: r.achieved_rate,
        p99_ms: r.latency_ms.p99,
        errors: r.errors,
        backlog: backlog.clone(),
        accepted_counted: run.freshness.map(|f| (r.ok, f.counted)),
        freshness_p99_ms: r.freshness_ms.map(|f| f.p99),
    };
    Ok(StepRecord {
        version,
        offered_rate: rate,
        achieved_rate: r.achieved_rate,
        latency_ms: r.latency_ms,
        errors: r.errors,
        errors_by_status: r.errors_by_status.clone(),
        send_lag_ms_p99: r.send_lag_ms_p99,
        accepted: r.ok,
        counted: run.freshness.map(|f| f.counted),
        freshness_p50_ms: r.freshness_ms.map(|f| f.p50),
        freshness_p99_ms: r.freshness_ms.map(|f| f.p99),
        backlog_slope_per_s: breaks::slope(&backlog).map(|s| s.round()),
        backlog_last: backlog.last().map(|b| b.1),
        procs: sampler.usage(),
        breaks: breaks::detect(&obs, &setup.criteria),
    })
}

/// Sample processes and the backlog about once a second until `until`.
async fn watch(
    mut sampler: ProcSampler,
    probe: Arc<dyn BacklogProbe>,
    version: ApiVersion,
    until: Instant,
) -> (ProcSampler, Vec<(f64, f64)>) {
    let start = Instant::now();
    let mut backlog = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        if let Ok(Some(b)) = probe.backlog(version).await {
            backlog.push((start.elapsed().as_secs_f64(), b));
        }
        if Instant::now() >= until {
            break;
        }
        tick.tick().await;
        sampler.sample();
    }
    (sampler, backlog)
}

//! One step of a sweep: offer one rate to one path, watch the processes and the backlog
//! while it runs, then judge it with the break detector.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::backlog_probe::BacklogProbe;
use crate::ApiVersion;
use crate::config::{LoadArgs, ModelKind};
use crate::load::freshness::DrainPolicy;
use crate::load::run_load_with_drain;
use crate::procs::{ProcSampler, ProcUsage};
use crate::results::breaks::{self, BreakCriteria, StepObservation};
use crate::results::load::ConnectionModel;
use crate::results::sweep::StepRecord;

/// The processes an order on `version` costs: coffee-rt and the services the path writes to
/// (the broker's JVM for v3). The load generator is apart, and so are services the path does
/// not use (the broker idles during v1 and v2 steps).
pub fn path_processes(version: ApiVersion) -> &'static [&'static str] {
    match version {
        ApiVersion::V1 | ApiVersion::V2 => &["coffee-rt", "postgres", "redis-server"],
        ApiVersion::V3 => &["coffee-rt", "postgres", "redis-server", "java"],
    }
}

/// What a step needs besides the rate.
#[derive(Clone)]
pub struct StepSetup<'a> {
    pub url: &'a str,
    pub duration: Duration,
    pub drain_timeout: Duration,
    pub criteria: BreakCriteria,
    pub probe: Arc<dyn BacklogProbe>,
    pub processes: &'static [&'static str],
    /// Offered before each step's measured part and left out of every figure.
    pub warmup: Duration,
    pub model: ConnectionModel,
    /// The generator's own ceiling (requests/s), when calibrated.
    pub generator_ceiling: Option<f64>,
    /// Whether an earlier step found the server exporting the freshness histogram; once it
    /// is known not to, later steps do not wait for it to appear.
    pub freshness_exported: Option<bool>,
}

pub async fn run_step(version: ApiVersion, rate: f64, setup: &StepSetup<'_>) -> anyhow::Result<StepRecord> {
    let mut args = LoadArgs::new(version, rate, setup.duration, setup.url);
    args.drain_timeout = setup.drain_timeout;
    args.json = true;
    args.warmup = setup.warmup;
    (args.model, args.connections) = match setup.model {
        ConnectionModel::Pooled(n) => (ModelKind::Pooled, n),
        ConnectionModel::Clients(n) => (ModelKind::Clients, n),
    };

    let watch_from = Instant::now() + setup.warmup;
    let names = setup.processes.to_vec();
    let watcher = tokio::spawn(watch(names, setup.probe.clone(), version, watch_from, setup.duration));
    let mut drain = DrainPolicy { max_wait: setup.drain_timeout, ..DrainPolicy::default() };
    drain.absent_wait = match setup.freshness_exported {
        Some(false) => Duration::ZERO,
        _ => drain.absent_wait.min(setup.drain_timeout),
    };
    let run = run_load_with_drain(&args, drain).await?;
    let (procs, backlog) = watcher.await??;

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
        late_sends: r.late_sends,
        connection_model: r.connection_model,
        accepted: r.ok,
        counted: run.freshness.map(|f| f.counted),
        freshness_p50_ms: r.freshness_ms.map(|f| f.p50),
        freshness_p99_ms: r.freshness_ms.map(|f| f.p99),
        backlog_slope_per_s: breaks::slope(&backlog).map(|s| s.round()),
        backlog_last: backlog.last().map(|b| b.1),
        cpu_us_per_order: path_cpu_us_per_order(version, &procs, r.achieved_rate * setup.duration.as_secs_f64()),
        path_rss_mib: path_sum(version, &procs, |u| u.pss_mib.unwrap_or(u.rss_mib)).map(|m| m.round()),
        generator_bound: setup.generator_ceiling.is_some_and(|c| rate > c / 2.0),
        retried_after_p99_ms: None,
        procs,
        breaks: breaks::detect(&obs, &setup.criteria),
    })
}

fn path_sum(version: ApiVersion, procs: &BTreeMap<String, ProcUsage>, f: impl Fn(&ProcUsage) -> f64) -> Option<f64> {
    let found: Vec<f64> = path_processes(version).iter().filter_map(|n| procs.get(*n)).map(f).collect();
    (!found.is_empty()).then(|| found.iter().sum())
}

fn path_cpu_us_per_order(version: ApiVersion, procs: &BTreeMap<String, ProcUsage>, orders: f64) -> Option<f64> {
    let cpu_s = path_sum(version, procs, |u| u.cpu_s)?;
    (orders >= 1.0).then(|| (cpu_s * 1e6 / orders).round())
}

/// From `from` (the end of the warm-up) for `duration`, sample the processes and the backlog
/// about once a second.
async fn watch(
    names: Vec<&'static str>,
    probe: Arc<dyn BacklogProbe>,
    version: ApiVersion,
    from: Instant,
    duration: Duration,
) -> anyhow::Result<(BTreeMap<String, ProcUsage>, Vec<(f64, f64)>)> {
    tokio::time::sleep_until(from).await;
    let mut sampler = ProcSampler::new(&names)?;
    let until = from + duration;
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
    Ok((sampler.usage(), backlog))
}

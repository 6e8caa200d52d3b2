//! `coffee-lab load`: offer a fixed rate of orders to one ingestion path for a fixed time,
//! open loop, and report what the server achieved, its latency and its freshness.

pub mod client;
pub mod engine;
pub mod freshness;
pub mod progress;
pub mod schedule;

use std::time::Duration;

use crate::ApiVersion;
use crate::config::{Command, LoadArgs, ModelKind};
use crate::results::load::{ConnectionModel, LatencyMs, LoadReport, round3};
use client::HttpClient;
use engine::{LoadPlan, RunOutcome};
use freshness::{DrainPolicy, FreshnessProbe, FreshnessResult};
use progress::Progress;

impl LoadArgs {
    pub fn connection_model(&self) -> ConnectionModel {
        match self.model {
            ModelKind::Pooled => ConnectionModel::Pooled(self.connections),
            ModelKind::Clients => ConnectionModel::Clients(self.connections),
        }
    }

    /// Arguments with the command line's defaults and `--json`, for programmatic use (the
    /// sweep, tests): the defaults are parsed from [`crate::Cli`], never restated.
    pub fn new(version: ApiVersion, rate: f64, duration: Duration, url: impl Into<String>) -> Self {
        let rate = format!("--rate={rate}");
        let line = ["coffee-lab", "load", "--version", version.as_str(), &rate, "--json"];
        let Command::Load(mut args) = <crate::Cli as clap::Parser>::try_parse_from(line).expect("a load command line").command else {
            unreachable!("`coffee-lab load` parses as a load")
        };
        (args.duration, args.url) = (duration, url.into());
        args
    }
}

/// A run with the detail the sweep needs beyond the printed report.
#[derive(Debug, Clone)]
pub struct LoadRun {
    pub report: LoadReport,
    /// `None` when `/metrics` could not be read or exports no freshness histogram.
    pub freshness: Option<FreshnessResult>,
}

/// Run the load and return its report (printing nothing; see [`load_command`]).
pub async fn run_load(args: LoadArgs) -> anyhow::Result<LoadReport> {
    Ok(run_load_detailed(&args).await?.report)
}

/// `coffee-lab load`: run, then print the table, or one JSON line with `--json`.
pub async fn load_command(args: LoadArgs) -> anyhow::Result<()> {
    let json = args.json;
    let report = run_load(args).await?;
    if json {
        println!("{}", report.to_json_line());
    } else {
        println!("{}", crate::report::tables::load_table(&report));
    }
    Ok(())
}

/// Run the load, then wait for the pipeline to drain and read the run's freshness.
pub async fn run_load_detailed(args: &LoadArgs) -> anyhow::Result<LoadRun> {
    let drain = DrainPolicy {
        max_wait: args.drain_timeout,
        absent_wait: args.drain_timeout.min(DrainPolicy::default().absent_wait),
        ..DrainPolicy::default()
    };
    run_load_with_drain(args, drain).await
}

/// [`run_load_detailed`] with an explicit drain policy (the sweep shortens the wait for a
/// freshness metric it already knows the server does not export).
pub async fn run_load_with_drain(args: &LoadArgs, drain: DrainPolicy) -> anyhow::Result<LoadRun> {
    anyhow::ensure!(args.rate > 0.0 && args.rate.is_finite(), "--rate must be > 0");
    anyhow::ensure!(!args.duration.is_zero(), "--duration must be > 0");
    let target_text = args.version.order_url(&args.url);
    let client = HttpClient::new();
    let metrics_url = args.metrics_url.as_deref().unwrap_or(&args.url);
    let probe = FreshnessProbe::new(client.clone(), metrics_url, args.version)?;
    // The baseline is read before the run, so every order the run sent, warm-up included, must
    // be counted by the end of the drain; with a warm-up, a second baseline when the measured
    // part begins gives the percentiles (orders of the warm-up still in the pipeline then, a
    // few dozen at most, end up in them).
    let read_before = |probe: FreshnessProbe| async move {
        match probe.snapshot().await {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::warn!("freshness unavailable, cannot read {}/metrics: {e:#}", probe.base());
                None
            }
        }
    };
    let before = read_before(probe.clone()).await;

    let plan = LoadPlan {
        target: target_text.parse()?,
        rate: args.rate,
        duration: args.duration,
        model: args.connection_model(),
        timeout: args.timeout,
        warmup: args.warmup,
    };
    let live = engine::live_for(&plan);
    let late_before = (!args.warmup.is_zero()).then(|| {
        let (live, probe) = (live.clone(), probe.clone());
        tokio::spawn(async move {
            live.measuring.notified().await;
            read_before(probe).await
        })
    });
    let progress = Progress::start(live.clone(), &format!("load {}", args.version), args.json);
    let outcome = engine::run(&plan, live).await?;
    progress.finish();
    let measured_from = match late_before {
        Some(task) => task.await?,
        None => before.clone(),
    };

    let freshness = match (before, measured_from) {
        (Some(before), Some(from)) => {
            match probe.measure_since(before.as_ref(), from.as_ref(), outcome.ok + outcome.warm_ok, drain).await {
                // Counted as the measured part's share: all of the run minus the warm-up's orders.
                Ok(f) => f.map(|f| FreshnessResult { counted: f.counted.saturating_sub(outcome.warm_ok), ..f }),
                Err(e) => {
                    tracing::warn!("freshness unavailable: {e:#}");
                    None
                }
            }
        }
        _ => None,
    };
    let report = build_report(args.version.as_str(), &target_text, args.rate, &outcome, freshness.as_ref());
    Ok(LoadRun { report, freshness })
}

/// The report of a finished run.
pub fn build_report(version: &str, target: &str, rate: f64, outcome: &RunOutcome, freshness: Option<&FreshnessResult>) -> LoadReport {
    let elapsed = outcome.elapsed.as_secs_f64();
    LoadReport {
        version: version.to_string(),
        target: target.to_string(),
        offered_rate: rate,
        achieved_rate: round3(outcome.achieved_rate()),
        duration_s: round3(elapsed),
        scheduled: outcome.scheduled,
        sent: outcome.sent,
        ok: outcome.ok,
        latency_ms: LatencyMs::from_micros(&outcome.latency),
        errors: outcome.error_count(),
        errors_by_status: outcome.errors.clone(),
        late_sends: outcome.late_sends,
        connection_model: outcome.model,
        send_lag_ms_p99: if outcome.send_lag.is_empty() { 0.0 } else { round3(outcome.send_lag.value_at_quantile(0.99) as f64 / 1000.0) },
        freshness_ms: freshness.and_then(|f| f.ms),
        worst_ms_per_second: outcome.worst_per_second.iter().map(|us| round3(*us as f64 / 1000.0)).collect(),
    }
}

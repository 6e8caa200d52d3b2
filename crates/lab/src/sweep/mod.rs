//! `coffee-lab bench sweep`: step the offered rate on each path until it breaks, measure the
//! raw ceilings of its parts in the same run, and write `docs/SCALE.md` with SVG plots.
//!
//! The order of a sweep: the ceilings and the generator's calibration, then each path's ladder
//! (with its retry of a step that broke on p99 alone, the independent clients and the oha
//! cross-check), then the processor's scale-out and the aggregator bench in what is left of the
//! budget; [`crate::report::write_sweep`] writes the files.

pub mod backlog_probe;
pub mod plan;
pub mod step;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::ApiVersion;
use crate::ceilings::{self, CeilingOpts};
use crate::config::{BenchCommand, Command, ScaleOutArgs, SweepArgs};
use crate::machine::Machine;
use crate::procs::DEFAULT_PROCESSES;
use crate::results::ceilings::{Calibration, CeilingResult};
use crate::results::load::ConnectionModel;
use crate::results::scale_out::ScaleOutReport;
use crate::results::sweep::{AggregatorOutcome, CeilingPlan, PathResult, StepRecord, SweepPlan, SweepReport};
use crate::{aggregator_bench, scale_out};
use backlog_probe::BacklogProbe;
use step::{StepSetup, run_step};

/// `coffee-lab bench sweep` with the backlog probe its flags describe (gauges on /metrics).
pub async fn sweep_command(args: SweepArgs) -> anyhow::Result<()> {
    let probe = args.backlog_probe()?;
    let report = run_sweep(&args, probe).await?;
    eprintln!("wrote {}", args.out.join("SCALE.md").display());
    for p in &report.paths {
        eprintln!(
            "{}: max sustained {} , broke at {}",
            p.version,
            p.max_sustained.map_or("none".into(), |r| format!("{r:.0}/s")),
            p.broke_at.map_or("— (held)".into(), |r| format!("{r:.0}/s")),
        );
    }
    Ok(())
}

/// Run the sweep and write `SCALE.md`, `scale-results.json` and the plots into `args.out`.
pub async fn run_sweep(args: &SweepArgs, probe: Arc<dyn BacklogProbe>) -> anyhow::Result<SweepReport> {
    let started = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let plan = args.plan();
    anyhow::ensure!(!plan.rates.is_empty(), "no rates to step through");
    std::fs::create_dir_all(&args.out)?;

    let (ceilings, generator) = if args.no_ceilings { (Vec::new(), None) } else { calibrate(args, &plan).await };
    let generator_ceiling = generator.as_ref().and_then(|g| g.as_ref().ok()).map(|g| g.ceiling.per_second);
    let ladder = Ladder { args, plan: &plan, started, probe: probe.clone(), generator_ceiling };
    let mut paths = Vec::new();
    let mut freshness_exported = None;
    for &version in &args.versions {
        paths.push(ladder.sweep_path(version, &mut freshness_exported).await?);
    }
    let scale_out = if args.no_scale_out || args.quick { None } else { Some(scale_out_phase(args).await) };
    let aggregator = if plan.aggregator_sizes.is_empty() { None } else { Some(aggregator_phase(args, &plan, started).await) };

    let report = SweepReport {
        // A wrapper script names itself, so the report says how to reproduce it in one line.
        command: args.report_command.clone().unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" ")),
        started_at,
        duration_s: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        quick: args.quick,
        url: args.url.clone(),
        machine: Machine::read(),
        plan,
        backlog_probe: probe.describe(),
        paths,
        ceilings,
        generator,
        scale_out,
        aggregator,
    };
    crate::report::write_sweep(&report, &args.out)?;
    Ok(report)
}

/// The raw ceilings and the generator's own ceiling (which is also listed among them).
async fn calibrate(args: &SweepArgs, plan: &SweepPlan) -> (Vec<CeilingResult>, Option<Result<Calibration, String>>) {
    let mut ceilings = measure_ceilings(args, &plan.ceiling).await;
    let c = &plan.ceiling;
    let r =
        ceilings::http::validation_ceiling(&args.validate_url(), &c.http_rates, c.http_step, plan.warmup, plan.model, args.slo_p99_ms())
            .await;
    match &r {
        Ok(cal) => eprintln!(
            "generator ceiling: {:.0} requests/s ({}), generator CPU {} µs/request",
            cal.ceiling.per_second,
            plan.model,
            cal.generator_cpu_us_per_request().map_or("n/a".into(), |c| format!("{c:.1}"))
        ),
        Err(e) => eprintln!("generator ceiling: {e:#}"),
    }
    if let Ok(g) = &r {
        ceilings.push(CeilingResult { name: g.ceiling.name.clone(), ceiling: Some(g.ceiling.clone()), error: None });
    }
    if !args.quick {
        // The ceilings leave work behind (PostgreSQL's checkpoint of the insert ceiling's rows,
        // Kafka's log flush): let it finish before the first step is measured.
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    (ceilings, Some(r.map_err(|e| format!("{e:#}"))))
}

/// What every path's ladder shares.
struct Ladder<'a> {
    args: &'a SweepArgs,
    plan: &'a SweepPlan,
    started: Instant,
    probe: Arc<dyn BacklogProbe>,
    generator_ceiling: Option<f64>,
}

impl Ladder<'_> {
    /// Worst case of one step: the warm-up, the load, the longest drain, the settle pause.
    fn step_cost(&self) -> Duration {
        self.plan.warmup + self.plan.step_duration + self.plan.drain_timeout + Duration::from_secs(2)
    }

    /// Whether one more step fits in the budget: the aggregator bench runs after the paths, in
    /// the part of the budget kept for it.
    fn fits(&self) -> bool {
        self.started.elapsed() + self.step_cost() <= self.plan.budget.saturating_sub(self.plan.aggregator_reserve)
    }

    /// One path: its ladder until a step breaks, then the independent clients and oha at the
    /// highest rate it held. `freshness_exported` carries what the earlier paths learnt.
    async fn sweep_path(&self, version: ApiVersion, freshness_exported: &mut Option<bool>) -> anyhow::Result<PathResult> {
        let (args, plan) = (self.args, self.plan);
        let mut setup = StepSetup {
            url: &args.url,
            duration: plan.step_duration,
            drain_timeout: plan.drain_timeout,
            criteria: args.criteria(version),
            probe: self.probe.clone(),
            processes: &DEFAULT_PROCESSES,
            warmup: plan.warmup,
            model: plan.model,
            generator_ceiling: self.generator_ceiling,
            freshness_exported: *freshness_exported,
        };
        let mut result = PathResult {
            version,
            criteria: setup.criteria,
            steps: Vec::new(),
            max_sustained: None,
            broke_at: None,
            note: None,
            clients_steps: Vec::new(),
            oha: None,
        };
        for &rate in &plan.rates {
            if !self.fits() {
                result.note = Some(format!("stopped before {rate:.0}/s: the {}s budget would be exceeded", plan.budget.as_secs()));
                break;
            }
            let mut step = run_step(version, rate, &setup).await?;
            eprintln!("{}", step_line(&step));
            if step.only_latency_broke() {
                // One stall on a shared machine can break a step the path holds: run it again
                // once, and keep the second run with the first one's p99 beside it.
                tokio::time::sleep(Duration::from_secs(1)).await;
                let first_p99 = step.latency_ms.p99;
                step = run_step(version, rate, &setup).await?;
                step.retried_after_p99_ms = Some(first_p99);
                eprintln!("{} (retry)", step_line(&step));
            }
            if step.accepted > 0 {
                // Exported for one path means exported; absent after accepted orders means not.
                let seen = step.counted.is_some();
                *freshness_exported = Some(freshness_exported.unwrap_or(false) || seen);
                setup.freshness_exported = *freshness_exported;
            }
            let held = step.held();
            if held {
                result.max_sustained = Some(result.max_sustained.unwrap_or(0.0).max(step.achieved_rate));
            } else {
                result.broke_at = Some(rate);
            }
            result.steps.push(step);
            if !held {
                break;
            }
            // Let connections close and the pipeline settle before the next rate.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let top = result.max_held_offered();
        if args.clients > 0 && !args.quick {
            let clients = StepSetup { model: ConnectionModel::Clients(args.clients), ..setup.clone() };
            let mut rates = vec![1_000.0];
            rates.extend(top.filter(|t| *t > 1_000.0));
            for rate in rates {
                if !self.fits() {
                    break;
                }
                let step = run_step(version, rate, &clients).await?;
                eprintln!("{}", step_line(&step));
                result.clients_steps.push(step);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        if let Some(rate) = top.filter(|_| !args.no_oha && !args.quick) {
            let r = crate::oha::cross_check(&args.oha, &args.url, version, rate, plan.step_duration, plan.warmup, args.connections).await;
            match &r {
                Ok(o) => eprintln!("{version} oha {rate:.0}/s → {:.0}/s p50 {:.2} ms p99 {:.2} ms", o.achieved_rate, o.p50_ms, o.p99_ms),
                Err(e) => eprintln!("{version} oha: {e:#}"),
            }
            result.oha = Some(r.map_err(|e| format!("{e:#}")));
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok(result)
    }
}

/// The processor's scale-out, or why it failed (not fatal to the sweep).
async fn scale_out_phase(args: &SweepArgs) -> Result<ScaleOutReport, String> {
    let r = match scale_out_args(args) {
        Ok(so) => scale_out::run_scale_out(&so, &|line| eprintln!("{line}")).await,
        Err(e) => Err(e),
    };
    if let Err(e) = &r {
        eprintln!("scale-out: {e:#}");
    }
    r.map_err(|e| format!("{e:#}"))
}

/// The aggregator bench, until the end of the budget, or why it failed (not fatal either).
async fn aggregator_phase(args: &SweepArgs, plan: &SweepPlan, started: Instant) -> AggregatorOutcome {
    let deadline = started + plan.budget;
    let services = &args.services;
    let r = aggregator_bench::run_aggregator_bench(
        &services.database_url,
        &services.redis_url,
        &plan.aggregator_sizes,
        Some(deadline),
        &|line| eprintln!("{line}"),
    )
    .await;
    match r {
        Ok(report) => AggregatorOutcome { report: Some(report), error: None },
        Err(e) => {
            eprintln!("aggregator bench failed: {e:#}");
            AggregatorOutcome { report: None, error: Some(format!("{e:#}")) }
        }
    }
}

/// The four raw ceilings; a failure is recorded, not fatal, so one missing service does not
/// cost the whole sweep (the ceiling tests are where a missing service fails loudly).
async fn measure_ceilings(args: &SweepArgs, plan: &CeilingPlan) -> Vec<CeilingResult> {
    let opts = CeilingOpts { duration: plan.duration, ..CeilingOpts::default() };
    let kafka_opts = CeilingOpts { batch: 10_000, ..opts };
    let out = vec![
        CeilingResult::of("postgres_insert", ceilings::postgres::insert_ceiling(&args.services.database_url, opts).await),
        CeilingResult::of("redis_xadd", ceilings::redis::xadd_ceiling(&args.services.redis_url, opts).await),
        CeilingResult::of("kafka_produce", ceilings::kafka::produce_ceiling(&args.services.kafka_brokers, kafka_opts).await),
    ];
    for c in &out {
        match (&c.ceiling, &c.error) {
            (Some(c), _) => eprintln!("ceiling {}: {:.0} {}", c.name, c.per_second, c.unit),
            (None, Some(e)) => eprintln!("ceiling {}: {e}", c.name),
            _ => {}
        }
    }
    out
}

/// The scale-out bench as the sweep runs it: its own defaults, the sweep's record count,
/// services and `coffee-rt` binary.
fn scale_out_args(args: &SweepArgs) -> anyhow::Result<ScaleOutArgs> {
    let records = format!("--records={}", args.scale_out_records);
    let line = ["coffee-lab", "bench", "scale-out", &records];
    let Command::Bench(BenchCommand::ScaleOut(mut so)) = <crate::Cli as clap::Parser>::try_parse_from(line)?.command else {
        unreachable!("`coffee-lab bench scale-out` parses as a scale-out")
    };
    so.services = args.services.clone();
    so.coffee_rt = args.coffee_rt.clone();
    Ok(so)
}

fn step_line(s: &StepRecord) -> String {
    format!(
        "{} {:>7.0}/s → {:>8.1}/s  p50 {:>8.2} ms  p99 {:>8.2} ms  errors {:>5}  freshness p99 {}  {}",
        s.version,
        s.offered_rate,
        s.achieved_rate,
        s.latency_ms.p50,
        s.latency_ms.p99,
        s.errors,
        s.freshness_p99_ms.map_or("n/a".into(), |f| format!("{f:.0} ms")),
        if s.held() {
            "held".to_string()
        } else {
            format!("BROKE: {}", s.breaks.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
        }
    )
}

//! `coffee-rt bench sweep`: step the offered rate on each path until it breaks, measure the
//! raw ceilings of its parts in the same run, and write `docs/SCALE.md` with SVG plots.

pub mod backlog;
pub mod breaks;
pub mod machine;
pub mod markdown;
pub mod scaleout;
pub mod step;
pub mod verdicts;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::ApiVersion;
use crate::aggregator::{self, AggregatorArgs, AggregatorReport};
use crate::ceilings::http::Calibration;
use crate::ceilings::{self, Ceiling, CeilingOpts};
use crate::load::engine::ConnectionModel;
use crate::oha::OhaRun;
use crate::procs::DEFAULT_PROCESSES;
use backlog::{BacklogProbe, MetricsGaugeProbe};
use breaks::{BreakCriteria, BreakReason};
use machine::Machine;
use scaleout::{ScaleOutArgs, ScaleOutReport};
use step::{StepRecord, StepSetup, run_step};

/// `coffee-rt bench ...`
#[derive(Debug, Clone, clap::Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum BenchCommand {
    /// Step the offered rate per path until it breaks; write docs/SCALE.md and SVG plots.
    Sweep(SweepArgs),
    /// The v1 aggregator's own breaking point: full-recompute time against table size
    /// (10k → 10M rows in a scratch database), compared with its interval.
    Aggregator(AggregatorArgs),
    /// The v3 processor alone draining a backlog (1M orders, 8 partitions) with 1, 2 and 4
    /// instances: records/s and CPU per instance.
    ScaleOut(ScaleOutArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct SweepArgs {
    /// Paths to sweep, comma separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "v1,v2,v3")]
    pub versions: Vec<ApiVersion>,
    /// Two small steps per path with short durations, and the aggregator up to 100k rows
    /// (about a minute in all).
    #[arg(long)]
    pub quick: bool,
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8005")]
    pub url: String,
    /// Where SCALE.md and the plots go.
    #[arg(long, default_value = "docs")]
    pub out: PathBuf,
    /// Offered rates to step through (overrides the default ladder), comma separated.
    #[arg(long, value_delimiter = ',')]
    pub rates: Option<Vec<f64>>,
    /// Length of each step (default 10s, 3s with --quick).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub step_duration: Option<Duration>,
    /// p99 latency SLO of an order POST: a step over it breaks the path.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10ms")]
    pub slo_p99: Duration,
    /// Connections of the generator's pool (the connection model of the ladder).
    #[arg(long, default_value_t = crate::load::DEFAULT_CONNECTIONS)]
    pub connections: usize,
    /// Independent clients (one connection each, like POS terminals) for the second connection
    /// model, run at 1,000/s and at each path's highest held rate; 0 skips it.
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Offered before each step and left out of its figures (default 2s, 1s with --quick).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub warmup: Option<Duration>,
    /// The oha binary for the cross-check of each path's highest held rate.
    #[arg(long, default_value = "oha")]
    pub oha: String,
    /// Skip the cross-check with oha (it is skipped with --quick too).
    #[arg(long)]
    pub no_oha: bool,
    /// Skip the processor's scale-out bench (it is skipped with --quick too).
    #[arg(long)]
    pub no_scale_out: bool,
    /// Records of the scale-out bench's backlog.
    #[arg(long, default_value_t = 1_000_000)]
    pub scale_out_records: u64,
    /// Freshness p99 SLO of the streaming paths (v2, v3); v1's freshness is its aggregator
    /// interval by design and is judged by its drain only.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub freshness_slo: Duration,
    /// Backlog gauge per path on /metrics, e.g. `v2=coffee_v2_consumer_lag` (repeatable;
    /// replaces the defaults v2=coffee_v2_consumer_lag, v3=coffee_v3_consumer_lag).
    #[arg(long = "backlog-metric", value_parser = backlog::parse_gauge_flag)]
    pub backlog_metrics: Vec<(ApiVersion, String)>,
    #[command(flatten)]
    pub services: Services,
    /// Full URL of a validation-only order route for the HTTP ceiling (default:
    /// `{url}/api/validate`, the server's own).
    #[arg(long)]
    pub validate_url: Option<String>,
    /// Skip the raw ceilings.
    #[arg(long)]
    pub no_ceilings: bool,
    /// Skip the v1 aggregator's table-size bench (run after the paths, in a scratch database).
    #[arg(long)]
    pub no_aggregator: bool,
    /// Largest table for the aggregator bench (default 10M, 100k with --quick).
    #[arg(long)]
    pub aggregator_max_rows: Option<u64>,
    /// Stop stepping when the whole sweep would run past this (default 19m, 170s with --quick).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub budget: Option<Duration>,
}

/// The services the benches use directly (the ceilings, the aggregator bench, the scale-out),
/// each in scratch state of its own: a database, a namespace, a topic, created and removed.
#[derive(Debug, Clone, clap::Args)]
pub struct Services {
    /// PostgreSQL admin URL (scratch databases are created and dropped).
    #[arg(long, env = "COFFEE_LAB_PG_URL", default_value = "postgres://coffee:coffee@127.0.0.1:5432/postgres")]
    pub pg_url: String,
    /// Redis URL (scratch keys and namespaces, removed after).
    #[arg(long, env = "COFFEE_LAB_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Kafka bootstrap servers (scratch topics, deleted after).
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
}

/// The concrete plan a [`SweepArgs`] stands for.
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

impl SweepArgs {
    pub fn plan(&self) -> SweepPlan {
        let (rates, step, warmup, drain, budget, ceiling) = if self.quick {
            (
                vec![50.0, 200.0],
                Duration::from_secs(3),
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(170),
                CeilingPlan {
                    duration: Duration::from_secs(2),
                    http_rates: vec![1_000.0, 2_000.0, 5_000.0],
                    http_step: Duration::from_secs(1),
                },
            )
        } else {
            (
                vec![500.0, 1_000.0, 2_000.0, 5_000.0, 10_000.0, 15_000.0, 20_000.0, 25_000.0, 30_000.0, 40_000.0],
                Duration::from_secs(10),
                Duration::from_secs(2),
                Duration::from_secs(15),
                Duration::from_secs(19 * 60),
                CeilingPlan {
                    duration: Duration::from_secs(10),
                    http_rates: vec![10_000.0, 20_000.0, 25_000.0, 30_000.0, 35_000.0, 40_000.0, 50_000.0, 60_000.0, 80_000.0],
                    http_step: Duration::from_secs(4),
                },
            )
        };
        let aggregator_sizes = if self.no_aggregator { Vec::new() } else { aggregator::plan_sizes(self.quick, self.aggregator_max_rows) };
        SweepPlan {
            rates: self.rates.clone().unwrap_or(rates),
            step_duration: self.step_duration.unwrap_or(step),
            warmup: self.warmup.unwrap_or(warmup),
            model: ConnectionModel::Pooled(self.connections),
            drain_timeout: drain,
            budget: self.budget.unwrap_or(budget),
            ceiling,
            aggregator_reserve: aggregator::estimate(&aggregator_sizes),
            aggregator_sizes,
        }
    }

    /// The validation-only route the HTTP ceiling is measured against.
    pub fn validate_url(&self) -> String {
        self.validate_url.clone().unwrap_or_else(|| format!("{}/api/validate", self.url.trim_end_matches('/')))
    }

    /// Break criteria for one path.
    pub fn criteria(&self, version: ApiVersion) -> BreakCriteria {
        BreakCriteria {
            slo_p99_ms: self.slo_p99.as_secs_f64() * 1000.0,
            freshness_slo_ms: (version != ApiVersion::V1).then_some(self.freshness_slo.as_secs_f64() * 1000.0),
            ..BreakCriteria::default()
        }
    }

    /// The backlog probe the flags describe.
    pub fn backlog_probe(&self) -> anyhow::Result<Arc<dyn BacklogProbe>> {
        let gauges: BTreeMap<ApiVersion, String> = if self.backlog_metrics.is_empty() {
            MetricsGaugeProbe::default_gauges()
        } else {
            self.backlog_metrics.iter().cloned().collect()
        };
        Ok(Arc::new(MetricsGaugeProbe::new(&self.url, gauges)?))
    }
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

/// A ceiling, or why it could not be measured.
#[derive(Debug, Clone, Serialize)]
pub struct CeilingResult {
    pub name: String,
    pub ceiling: Option<Ceiling>,
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

/// The aggregator bench, or why it could not run.
#[derive(Debug, Clone, Serialize)]
pub struct AggregatorOutcome {
    pub report: Option<AggregatorReport>,
    pub error: Option<String>,
}

/// `coffee-rt bench ...` with the default backlog probe (gauges on /metrics).
pub async fn run_bench(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Sweep(args) => {
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
        BenchCommand::Aggregator(args) => aggregator::aggregator_command(args).await,
        BenchCommand::ScaleOut(args) => scaleout::scale_out_command(args).await,
    }
}

/// Run the sweep and write `SCALE.md`, `scale-results.json` and the plots into `args.out`.
pub async fn run_sweep(args: &SweepArgs, probe: Arc<dyn BacklogProbe>) -> anyhow::Result<SweepReport> {
    let started = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let plan = args.plan();
    anyhow::ensure!(!plan.rates.is_empty(), "no rates to step through");
    std::fs::create_dir_all(&args.out)?;

    let ceilings = if args.no_ceilings { Vec::new() } else { measure_ceilings(args, &plan.ceiling).await };
    let generator = if args.no_ceilings {
        None
    } else {
        let c = &plan.ceiling;
        let r = ceilings::http::validation_ceiling(&args.validate_url(), &c.http_rates, c.http_step, plan.warmup, plan.model, slo_ms(args))
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
        Some(r.map_err(|e| format!("{e:#}")))
    };
    let mut ceilings = ceilings;
    if let Some(Ok(g)) = &generator {
        ceilings.push(CeilingResult { name: g.ceiling.name.clone(), ceiling: Some(g.ceiling.clone()), error: None });
    }
    let generator_ceiling = generator.as_ref().and_then(|g| g.as_ref().ok()).map(|g| g.ceiling.per_second);
    if !args.no_ceilings && !args.quick {
        // The ceilings leave work behind (PostgreSQL's checkpoint of the insert ceiling's rows,
        // Kafka's log flush): let it finish before the first step is measured.
        tokio::time::sleep(Duration::from_secs(10)).await;
    }

    let mut paths = Vec::new();
    let mut freshness_exported = None;
    for &version in &args.versions {
        let mut setup = StepSetup {
            url: &args.url,
            duration: plan.step_duration,
            drain_timeout: plan.drain_timeout,
            criteria: args.criteria(version),
            probe: probe.clone(),
            processes: &DEFAULT_PROCESSES,
            warmup: plan.warmup,
            model: plan.model,
            generator_ceiling,
            freshness_exported,
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
        // Worst case of one step: the warm-up, the load, the longest drain, the settle pause.
        let step_cost = plan.warmup + plan.step_duration + plan.drain_timeout + Duration::from_secs(2);
        // The aggregator bench runs after the paths, in the part of the budget kept for it.
        let steps_budget = plan.budget.saturating_sub(plan.aggregator_reserve);
        for &rate in &plan.rates {
            if started.elapsed() + step_cost > steps_budget {
                result.note = Some(format!("stopped before {rate:.0}/s: the {}s budget would be exceeded", plan.budget.as_secs()));
                break;
            }
            let mut step = run_step(version, rate, &setup).await?;
            eprintln!("{}", step_line(&step));
            if only_latency_broke(&step) {
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
                freshness_exported = Some(freshness_exported.unwrap_or(false) || seen);
                setup.freshness_exported = freshness_exported;
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
                if started.elapsed() + step_cost > steps_budget {
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
        paths.push(result);
    }

    let scale_out = if args.no_scale_out || args.quick {
        None
    } else {
        let r = match scale_out_args(args) {
            Ok(so) => scaleout::run_scale_out(&so, &|line| eprintln!("{line}")).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &r {
            eprintln!("scale-out: {e:#}");
        }
        Some(r.map_err(|e| format!("{e:#}")))
    };

    let aggregator = if plan.aggregator_sizes.is_empty() {
        None
    } else {
        let deadline = started + plan.budget;
        let r = aggregator::run_aggregator_bench(
            &args.services.pg_url,
            &args.services.redis_url,
            &plan.aggregator_sizes,
            Some(deadline),
            &|line| eprintln!("{line}"),
        )
        .await;
        Some(match r {
            Ok(report) => AggregatorOutcome { report: Some(report), error: None },
            Err(e) => {
                eprintln!("aggregator bench failed: {e:#}");
                AggregatorOutcome { report: None, error: Some(format!("{e:#}")) }
            }
        })
    };

    let report = SweepReport {
        // A wrapper script names itself, so the report says how to reproduce it in one line.
        command: std::env::var("COFFEE_LAB_COMMAND").unwrap_or_else(|_| std::env::args().collect::<Vec<_>>().join(" ")),
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
    write_outputs(&report, &args.out)?;
    Ok(report)
}

/// The four raw ceilings; a failure is recorded, not fatal, so one missing service does not
/// cost the whole sweep (the ceiling tests are where a missing service fails loudly).
async fn measure_ceilings(args: &SweepArgs, plan: &CeilingPlan) -> Vec<CeilingResult> {
    let opts = CeilingOpts { duration: plan.duration, ..CeilingOpts::default() };
    let kafka_opts = CeilingOpts { batch: 10_000, ..opts };
    let out = vec![
        ceiling_result("postgres_insert", ceilings::postgres::insert_ceiling(&args.services.pg_url, opts).await),
        ceiling_result("redis_xadd", ceilings::redis::xadd_ceiling(&args.services.redis_url, opts).await),
        ceiling_result("kafka_produce", ceilings::kafka::produce_ceiling(&args.services.kafka_brokers, kafka_opts).await),
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

/// The scale-out bench as the sweep runs it (its own defaults, the sweep's record count and
/// services).
fn scale_out_args(args: &SweepArgs) -> anyhow::Result<ScaleOutArgs> {
    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        args: ScaleOutArgs,
    }
    let records = args.scale_out_records.to_string();
    let mut so = <Flags as clap::Parser>::try_parse_from(["scale-out", "--records", &records])?.args;
    so.services = args.services.clone();
    Ok(so)
}

fn slo_ms(args: &SweepArgs) -> f64 {
    args.slo_p99.as_secs_f64() * 1000.0
}

/// The step broke on its p99 alone: everything else held.
fn only_latency_broke(s: &StepRecord) -> bool {
    !s.breaks.is_empty() && s.breaks.iter().all(|b| matches!(b, BreakReason::Latency { .. }))
}

fn ceiling_result(name: &str, r: anyhow::Result<Ceiling>) -> CeilingResult {
    match r {
        Ok(c) => CeilingResult { name: name.into(), ceiling: Some(c), error: None },
        Err(e) => CeilingResult { name: name.into(), ceiling: None, error: Some(format!("{e:#}")) },
    }
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

fn write_outputs(report: &SweepReport, out: &std::path::Path) -> anyhow::Result<()> {
    std::fs::write(out.join("scale-results.json"), serde_json::to_string_pretty(report)? + "\n")?;
    crate::plot::latency_vs_rate(report, &out.join("scale-latency.svg"))?;
    crate::plot::freshness_vs_rate(report, &out.join("scale-freshness.svg"))?;
    if let Some(agg) = report.aggregator.as_ref().and_then(|a| a.report.as_ref()) {
        crate::plot::aggregator_vs_rows(agg, &out.join(AGGREGATOR_SVG))?;
    }
    let md_path = out.join("SCALE.md");
    let previous = std::fs::read_to_string(&md_path).ok();
    std::fs::write(&md_path, markdown::render(report, previous.as_deref()))?;
    Ok(())
}

/// The aggregator plot's file name.
pub const AGGREGATOR_SVG: &str = "scale-aggregator.svg";

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

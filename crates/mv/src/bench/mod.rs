//! `mv bench`: generate the paper-scale data set, run each strategy in its
//! own child process (so its RSS is its own), print and document results.

mod eager_run;
mod lazy_run;
pub mod pace;
mod prepare;
pub mod report;
pub mod rss;
mod state;

use crate::dataset::DataSet;
use crate::sources::SourceArgs;
use anyhow::{Context, Result, bail};
pub use report::StrategyResult;
use std::path::PathBuf;

const CHILD_ENV: &str = "COFFEE_MV_BENCH_CHILD";
const TOPICS_ENV: &str = "COFFEE_MV_BENCH_TOPICS";
const RESULT_PREFIX: &str = "MVBENCH_RESULT ";

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Eager hierarchical aggregation.
    A,
    /// Hybrid lazy with WebSocket push.
    B,
}

impl Strategy {
    pub fn label(self) -> &'static str {
        match self {
            Strategy::A => "A-eager",
            Strategy::B => "B-lazy",
        }
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// 0.01, 0.1 or 1 (1 = 5,000 accounts × 5,000 instruments, 25 M
    /// holdings, 50 M orders). Other values are accepted for smoke tests.
    #[arg(long, default_value_t = 0.01)]
    pub scale: f64,
    /// Print one JSON line per strategy.
    #[arg(long)]
    pub json: bool,
    #[arg(long, default_value_t = 6)]
    pub seed: u64,
    /// Seconds per paced run (paper rate, then 10×).
    #[arg(long, default_value_t = 10.0)]
    pub duration_s: f64,
    /// Seconds of the back-to-back saturation run.
    #[arg(long, default_value_t = 3.0)]
    pub saturation_s: f64,
    /// Database the bench (re)creates at 1 % and 10 %. It is dropped after.
    #[arg(long, env = "MV_BENCH_DATABASE_URL", default_value = "postgres://coffee:coffee@127.0.0.1/mv_bench")]
    pub database_url: String,
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Go through PostgreSQL even at full scale.
    #[arg(long)]
    pub via_postgres: bool,
    /// Intraday position changes published for the rebuild to replay.
    #[arg(long, default_value_t = 20_000)]
    pub position_events: u64,
    /// Strategy B: WebSocket clients, each watching this many accounts.
    #[arg(long, default_value_t = 10)]
    pub ws_clients: usize,
    #[arg(long, default_value_t = 5)]
    pub accounts_per_client: usize,
    /// Report to (re)write; results for other scales already in it are kept.
    #[arg(long, default_value = "docs/MARKET_VALUE.md")]
    pub doc: PathBuf,
    #[arg(long)]
    pub no_doc: bool,
    #[arg(long, value_delimiter = ',', default_value = "a,b")]
    pub strategies: Vec<Strategy>,
    /// Keep the bench database afterwards.
    #[arg(long)]
    pub keep_db: bool,
}

impl BenchArgs {
    pub fn dataset(&self) -> DataSet {
        DataSet::at_scale(self.seed, self.scale)
    }

    /// PostgreSQL below full scale (as the issue asks), memory at full scale.
    pub fn uses_postgres(&self) -> bool {
        self.via_postgres || self.scale < 1.0
    }

    fn sources(&self, topics: &(String, String)) -> SourceArgs {
        SourceArgs {
            database_url: self.database_url.clone(),
            brokers: self.brokers.clone(),
            price_topic: topics.0.clone(),
            position_topic: topics.1.clone(),
            partitions: 4,
        }
    }
}

/// Entry point for both the parent and (re-executed) child processes.
pub async fn run(args: BenchArgs) -> Result<()> {
    if let Ok(which) = std::env::var(CHILD_ENV) {
        let topics = std::env::var(TOPICS_ENV).context("child without topics")?;
        let (p, q) = topics.split_once(',').context("topics env")?;
        let src = args.sources(&(p.to_string(), q.to_string()));
        let r = match which.as_str() {
            "A" => eager_run::run(&args, &src).await?,
            "B" => lazy_run::run(&args, &src).await?,
            other => bail!("unknown child strategy {other}"),
        };
        println!("{RESULT_PREFIX}{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    if !(args.scale > 0.0 && args.scale <= 1.0) {
        bail!("--scale must be in (0, 1]; the issue's steps are 0.01, 0.1 and 1");
    }
    let results = run_parent(&args).await?;
    for r in &results {
        if args.json {
            println!(
                "{}",
                serde_json::to_string(&serde_json::json!({
                    "strategy": r.strategy, "scale": r.scale, "rss_mb": r.rss_mb,
                    "update_latency_ms": {"p50": r.update_latency_ms.p50, "p99": r.update_latency_ms.p99},
                    "updates_per_s": r.updates_per_s, "output_msgs_per_s": r.output_msgs_per_s,
                    "rebuild_s": r.rebuild_s, "detail": r,
                }))?
            );
        } else {
            println!(
                "{} scale {}: rss {:.0} MB (state {:.0} MB), p50 {} ms p99 {} ms @10x, {:.0} upd/s max, {:.0} msgs/s @10x, rebuild {:.2} s",
                r.strategy,
                r.scale,
                r.rss_mb,
                r.state_mb,
                r.update_latency_ms.p50,
                r.update_latency_ms.p99,
                r.updates_per_s,
                r.output_msgs_per_s,
                r.rebuild_s
            );
        }
    }
    if !args.no_doc {
        report::write_doc(&args.doc, &results)?;
        eprintln!("wrote {}", args.doc.display());
    }
    Ok(())
}

async fn run_parent(args: &BenchArgs) -> Result<Vec<StrategyResult>> {
    let ds = args.dataset();
    let suffix = unique();
    let topics = (format!("mv.bench.prices.{suffix}"), format!("mv.bench.positions.{suffix}"));
    let src = args.sources(&topics);
    prepare::run(args, &ds, &src).await?;
    let mut out = Vec::new();
    let result = async {
        for s in &args.strategies {
            out.push(spawn_child(*s, &topics).await?);
        }
        anyhow::Ok(())
    }
    .await;
    prepare::cleanup(args, &src).await;
    result?;
    Ok(out)
}

/// Same as the bench, but every strategy runs inside this process (RSS is
/// then not isolated). For tests, which cannot re-execute themselves.
pub async fn run_in_process(args: &BenchArgs) -> Result<Vec<StrategyResult>> {
    let ds = args.dataset();
    let topics = (format!("mv.bench.prices.{}", unique()), format!("mv.bench.positions.{}", unique()));
    let src = args.sources(&topics);
    prepare::run(args, &ds, &src).await?;
    let mut out = Vec::new();
    let result = async {
        for s in &args.strategies {
            out.push(match s {
                Strategy::A => eager_run::run(args, &src).await?,
                Strategy::B => lazy_run::run(args, &src).await?,
            });
        }
        anyhow::Ok(())
    }
    .await;
    prepare::cleanup(args, &src).await;
    result?;
    Ok(out)
}

fn unique() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}

/// Re-executes this very binary with the same arguments, marked as child.
async fn spawn_child(s: Strategy, topics: &(String, String)) -> Result<StrategyResult> {
    let exe = std::env::current_exe()?;
    tracing::info!(strategy = s.label(), "starting child process");
    let out = tokio::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(
            CHILD_ENV,
            match s {
                Strategy::A => "A",
                Strategy::B => "B",
            },
        )
        .env(TOPICS_ENV, format!("{},{}", topics.0, topics.1))
        .stderr(std::process::Stdio::inherit())
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("{} child failed ({}): {stdout}", s.label(), out.status);
    }
    let line = stdout.lines().find_map(|l| l.strip_prefix(RESULT_PREFIX)).context("child printed no result")?;
    Ok(serde_json::from_str(line)?)
}

/// The command as typed, with the program shown as `coffee-rt`.
pub fn command_line() -> String {
    let rest: Vec<String> = std::env::args().skip(1).collect();
    format!("coffee-rt {}", rest.join(" "))
}

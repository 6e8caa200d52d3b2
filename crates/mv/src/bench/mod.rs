//! `coffee-mv bench`: generate the paper-scale data set, run each strategy in its
//! own child process (so its RSS is its own), print and document results.

mod child;
mod eager_run;
mod lazy_run;
pub mod pace;
mod prepare;
pub mod report;
pub mod result;
pub mod rss;
mod state;

pub use crate::config::{BenchArgs, Strategy};
use crate::config::{Services, SourceArgs};
use crate::dataset::DataSet;
use anyhow::{Result, anyhow, bail};
use coffee_store::postgres::ScratchDatabase;
pub use result::{RateRun, StrategyResult};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Names of the bench's scratch databases; a leftover one is recognisable.
const SCRATCH_PREFIX: &str = "coffee_mv_bench_";

/// What one bench run works on: fresh topics and (below full scale) a
/// scratch database. Handed to each child process.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Scratch {
    pub price_topic: String,
    pub position_topic: String,
    /// The scratch database's URL; the configured one when the run does not use PostgreSQL.
    pub database_url: String,
}

impl BenchArgs {
    pub fn dataset(&self) -> DataSet {
        DataSet::at_scale(self.seed, self.scale)
    }

    /// PostgreSQL below full scale, memory at full scale (a full-scale COPY
    /// takes minutes; `--via-postgres` measures it anyway).
    pub fn uses_postgres(&self) -> bool {
        self.via_postgres || self.scale < 1.0
    }

    fn sources(&self, scratch: &Scratch) -> SourceArgs {
        SourceArgs {
            services: Services { database_url: scratch.database_url.clone(), brokers: self.services.brokers.clone() },
            price_topic: scratch.price_topic.clone(),
            position_topic: scratch.position_topic.clone(),
            partitions: 4,
        }
    }
}

/// Entry point for both the parent and (re-executed) child processes.
/// `shutdown` ends the run early; the topics and scratch database are
/// removed all the same.
pub async fn run(args: BenchArgs, shutdown: CancellationToken) -> Result<()> {
    if let Some(job) = child::job_from_env()? {
        let src = args.sources(&job.scratch);
        return tokio::select! {
            r = child::run(&args, &src, job.strategy) => r,
            _ = shutdown.cancelled() => Err(anyhow!("interrupted")),
        };
    }
    if !(args.scale > 0.0 && args.scale <= 1.0) {
        bail!("--scale must be in (0, 1]; the paper's steps are 0.01, 0.1 and 1");
    }
    let results = run_all(&args, Isolation::ChildProcesses, &shutdown).await?;
    for r in &results {
        println!("{}", if args.json { report::json_line(r)? } else { report::summary_line(r) });
    }
    if !args.no_doc {
        report::write_doc(&args.doc, &results)?;
        eprintln!("wrote {}", args.doc.display());
    }
    Ok(())
}

/// Same as the bench, but every strategy runs inside this process (RSS is
/// then not isolated). For tests, which cannot re-execute themselves.
pub async fn run_in_process(args: &BenchArgs) -> Result<Vec<StrategyResult>> {
    run_all(args, Isolation::InProcess, &CancellationToken::new()).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Isolation {
    ChildProcesses,
    InProcess,
}

async fn run_all(args: &BenchArgs, how: Isolation, shutdown: &CancellationToken) -> Result<Vec<StrategyResult>> {
    let ds = args.dataset();
    let db = match args.uses_postgres() {
        true => Some(ScratchDatabase::create(&args.services.database_url, SCRATCH_PREFIX).await?),
        false => None,
    };
    let suffix = unique();
    let scratch = Scratch {
        price_topic: format!("mv.bench.prices.{suffix}"),
        position_topic: format!("mv.bench.positions.{suffix}"),
        database_url: db.as_ref().map_or_else(|| args.services.database_url.clone(), ScratchDatabase::url),
    };
    let src = args.sources(&scratch);
    let work = async {
        prepare::run(args, &ds, &src).await?;
        let mut out = Vec::new();
        for &s in &args.strategies {
            out.push(match how {
                Isolation::ChildProcesses => child::spawn(s, &scratch).await?,
                Isolation::InProcess => child::run_strategy(args, &src, s).await?,
            });
        }
        anyhow::Ok(out)
    };
    let result = tokio::select! {
        r = work => r,
        _ = shutdown.cancelled() => Err(anyhow!("interrupted")),
    };
    prepare::cleanup(args, &src, db.as_ref()).await;
    result
}

fn unique() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}

/// The command as typed, for the report.
pub fn command_line() -> String {
    let rest: Vec<String> = std::env::args().skip(1).collect();
    format!("coffee-mv {}", rest.join(" "))
}

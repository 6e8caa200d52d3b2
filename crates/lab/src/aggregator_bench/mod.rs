//! `coffee-lab bench aggregator`: the v1 aggregator's own breaking point.
//!
//! v1 counts an order only when the aggregator next runs, and a *full* recompute scans every
//! v1 row, so its cost grows with the table while its interval stays fixed. This bench grows
//! an `orders` table (the real schema, from the migrations) in a scratch database through
//! 10 k, 100 k, 1 M and 10 M rows ([`ladder`]), of a generated order history ([`history`]),
//! and at each size times the real [`coffee_pipeline::Aggregator`] ([`measure`]): a full
//! recompute (median of 3) and an incremental run after 1,000 new rows. [`verdict`] says where
//! the full recompute stops fitting in the aggregator's interval (1 s in `coffee-rt up`,
//! 10–60 s in the design papers).
//!
//! The scratch database and the Redis namespace are removed afterwards, whatever happens.

pub mod history;
pub mod ladder;
pub mod measure;
pub mod verdict;

use anyhow::Context;
use coffee_store::postgres::ScratchDatabase;
use tokio::time::Instant;

use crate::config::AggregatorArgs;
use crate::report::tables::{aggregator_table, aggregator_verdict_lines};
use crate::results::aggregator::AggregatorReport;

/// Full recomputes per size; the median is reported.
pub const FULL_RUNS: usize = 3;
/// Rows added before the incremental run, in [`INCREMENT_TXNS`] transactions (like the v1
/// batcher's batches: the incremental window is by transaction id).
pub const INCREMENT_ROWS: u64 = 1_000;
pub const INCREMENT_TXNS: u64 = 10;

/// Scratch databases are named with this prefix, this process's id and a random part.
pub const SCRATCH_DB_PREFIX: &str = "coffee_lab_agg_";
/// Scratch Redis namespaces are `coffee-lab:agg:<pid>_<random>:`.
pub const SCRATCH_NS_PREFIX: &str = "coffee-lab:agg:";

/// `coffee-lab bench aggregator`.
pub async fn aggregator_command(args: AggregatorArgs) -> anyhow::Result<()> {
    let sizes = args.sizes();
    let report =
        run_aggregator_bench(&args.services.database_url, &args.services.redis_url, &sizes, None, &|line| eprintln!("{line}")).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", aggregator_table(&report));
        for line in aggregator_verdict_lines(&report) {
            println!("{line}");
        }
        if let Some(n) = &report.note {
            println!("{n}");
        }
    }
    Ok(())
}

/// Grow a scratch `orders` table on the PostgreSQL server of `server_url` through `sizes` and
/// time the aggregator at each. Stops before a size that would run past `deadline` (noted in
/// the report). `progress` gets a line per phase.
pub async fn run_aggregator_bench(
    server_url: &str,
    redis_url: &str,
    sizes: &[u64],
    deadline: Option<Instant>,
    progress: &(dyn Fn(String) + Sync),
) -> anyhow::Result<AggregatorReport> {
    anyhow::ensure!(!sizes.is_empty(), "no table sizes to measure");
    anyhow::ensure!(sizes.windows(2).all(|w| w[0] < w[1]), "table sizes must grow: {sizes:?}");
    let db = ScratchDatabase::create(server_url, &format!("{SCRATCH_DB_PREFIX}{}_", std::process::id()))
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {server_url} (or create a scratch database there)"))?;
    let namespace = format!("{SCRATCH_NS_PREFIX}{}:", crate::scratch::suffix());
    let result = measure::measure(&db.url(), redis_url, &namespace, sizes, deadline, progress).await;
    let dropped = db.drop_now().await;
    let cleaned = crate::scratch::delete_redis_keys(redis_url, &namespace).await;
    let report = result?;
    dropped?;
    cleaned.with_context(|| format!("delete Redis keys {namespace}*"))?;
    Ok(report)
}

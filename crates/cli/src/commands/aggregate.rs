use std::time::Duration;

use coffee_pipeline::v1::{AggregateMode, Aggregator};
use coffee_server::Settings;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub settings: Settings,
    /// Run once and exit.
    #[arg(long, conflicts_with = "every")]
    pub once: bool,
    /// Run on this interval until stopped (e.g. `2s`, `1m`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub every: Option<Duration>,
    /// Recompute everything and overwrite (instead of adding what committed since the last run).
    #[arg(long)]
    pub full: bool,
    #[command(flatten)]
    pub metrics: super::MetricsArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (pool, projection) = super::sinks(&args.settings).await?;
    let aggregator = Aggregator::new(pool, projection);
    let mode = if args.full { AggregateMode::Full } else { AggregateMode::Incremental };
    match args.every {
        Some(every) if !args.once => {
            let shutdown = crate::shutdown::on_signal();
            args.metrics.start(shutdown.clone()).await?;
            aggregator.run_every(every, mode, shutdown.cancelled_owned()).await;
        }
        _ => {
            let r = aggregator.run_once(mode).await?;
            println!(
                "{}",
                serde_json::json!({"mode": format!("{:?}", r.mode).to_lowercase(), "orders_counted": r.orders_counted, "took_ms": r.took.as_secs_f64() * 1e3})
            );
        }
    }
    Ok(())
}

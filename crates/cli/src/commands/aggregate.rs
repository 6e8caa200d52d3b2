use coffee_pipeline::{AggregateMode, Aggregator};

use crate::config::AggregateArgs;

pub async fn run(args: AggregateArgs) -> anyhow::Result<()> {
    let (pool, projection) = super::sinks(&args.services).await?;
    let readiness = super::sinks_readiness(&pool, &projection);
    let aggregator = Aggregator::new(pool, projection);
    let mode = if args.full { AggregateMode::Full } else { AggregateMode::Incremental };
    match args.every {
        Some(every) if !args.once => {
            let shutdown = crate::shutdown::on_signal();
            args.metrics.start(readiness, shutdown.clone()).await?;
            aggregator.run_every(*every, mode, shutdown.cancelled_owned()).await;
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

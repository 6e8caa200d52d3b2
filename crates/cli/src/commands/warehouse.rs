//! `warehouse`: the sink that copies every committed order from PostgreSQL into ClickHouse.

use anyhow::Context;
use coffee_warehouse::{clickhouse::ClickHouse, sink::Sink};

use crate::config::WarehouseArgs;

pub async fn run(args: WarehouseArgs) -> anyhow::Result<()> {
    let shutdown = crate::shutdown::on_signal();
    let config = args.warehouse.config().context("the warehouse sink needs ClickHouse: set CLICKHOUSE_URL or --clickhouse-url")?;
    let pool = coffee_store::postgres::connect(&args.services.database_url, args.services.pg_pool).await?;
    coffee_store::postgres::migrate(&pool).await?;
    let clickhouse = ClickHouse::new(&config)?;
    if args.once {
        let done = Sink::new(pool, clickhouse, args.sink.config()).catch_up().await?;
        println!(
            "{}",
            serde_json::json!({"rows": done.rows, "rounds": done.rounds, "took_s": done.took.as_secs_f64(), "rows_per_s": done.rows_per_second()})
        );
        return Ok(());
    }
    if let Some(addr) = args.metrics.metrics_listen {
        let handle = coffee_server::telemetry::prometheus();
        let render = move || handle.render();
        let bound =
            coffee_warehouse::sink::serve(addr, render, pool.clone(), clickhouse.clone(), shutdown.clone().cancelled_owned()).await?;
        println!("metrics: http://{bound}/metrics");
    }
    println!("warehouse sink: {} database {}", clickhouse.url(), config.database);
    Sink::new(pool, clickhouse, args.sink.config()).run(shutdown.cancelled_owned()).await;
    Ok(())
}

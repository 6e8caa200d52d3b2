//! `up`: every role in one process, sharing one shutdown.

use std::sync::Arc;

use coffee_core::Version;
use coffee_pipeline::{AggregateMode, Aggregator, Processor, Worker, relay};
use coffee_server::Application;
use coffee_warehouse::{clickhouse::ClickHouse, sink::Sink};

use crate::config::{UpArgs, server_config};

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let shutdown = crate::shutdown::on_signal();
    let config = server_config(&args.services, &args.kafka, &args.http, &args.warehouse)?;
    let processor_config = args.processor.config()?;
    let app = Application::build(&config).await?;
    let state = app.state().clone();
    for version in [Version::V2, Version::V3] {
        relay::check_projection(&state.pool, &state.projection, version).await?;
    }
    println!("coffee-rt is up: http://{}:{}/", config.listen.ip(), app.port());

    let worker =
        Worker::new(args.worker.config("up"), state.pool.clone(), state.projection.clone(), Arc::clone(&state.catalog), &config.redis_url);
    let worker = tokio::spawn(worker.run(shutdown.clone().cancelled_owned()));
    let aggregator = Aggregator::new(state.pool.clone(), state.projection.clone());
    let every = *args.aggregate_every;
    let agg_shutdown = shutdown.clone();
    let aggregator =
        tokio::spawn(async move { aggregator.run_every(every, AggregateMode::Incremental, agg_shutdown.cancelled_owned()).await });
    let processor = Processor::new(
        processor_config,
        config.kafka.clone(),
        &config.database_url,
        state.pool.clone(),
        state.projection.clone(),
        Arc::clone(&state.catalog),
    );
    let processor = tokio::spawn(processor.run(shutdown.clone().cancelled_owned()));
    // The warehouse sink, when there is a warehouse.
    let sink = match &config.warehouse {
        Some(warehouse) => {
            let sink = Sink::new(state.pool.clone(), ClickHouse::new(warehouse)?, args.sink.config());
            println!("warehouse sink: {} database {}", sink.clickhouse().url(), warehouse.database);
            Some(tokio::spawn(sink.run(shutdown.clone().cancelled_owned())))
        }
        None => None,
    };
    drop(state);

    let served = app.run_until(shutdown.clone().cancelled_owned()).await;
    shutdown.cancel();
    worker.await??;
    processor.await??;
    aggregator.await?;
    if let Some(sink) = sink {
        sink.await?;
    }
    served
}

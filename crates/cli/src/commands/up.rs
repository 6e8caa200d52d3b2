//! `up`: every role in one process, sharing one shutdown.

use std::{sync::Arc, time::Duration};

use coffee_core::Version;
use coffee_pipeline::{
    relay,
    v1::{AggregateMode, Aggregator},
    v2::Worker,
};
use coffee_server::{Application, Settings};

use super::{processor::ProcessorArgs, worker::WorkerArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub settings: Settings,
    #[command(flatten)]
    pub worker: WorkerArgs,
    #[command(flatten)]
    pub processor: ProcessorArgs,
    /// Interval of the v1 aggregator (incremental runs; the first run is a full recompute).
    #[arg(long, env = "COFFEE_RT_AGGREGATE_EVERY", default_value = "1s", value_parser = humantime::parse_duration)]
    pub aggregate_every: Duration,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let shutdown = crate::shutdown::on_signal();
    let app = Application::build(&args.settings).await?;
    let state = app.state().clone();
    for version in [Version::V2, Version::V3] {
        relay::check_projection(&state.pool, &state.projection, version).await?;
    }
    println!("coffee-rt is up: http://{}:{}/", args.settings.listen.ip(), app.port());

    let worker = Worker::new(
        args.worker.config("up"),
        state.pool.clone(),
        state.projection.clone(),
        Arc::clone(&state.catalog),
        &args.settings.redis_url,
    );
    let worker = tokio::spawn(worker.run(shutdown.clone().cancelled_owned()));
    let aggregator = Aggregator::new(state.pool.clone(), state.projection.clone());
    let every = args.aggregate_every;
    let agg_shutdown = shutdown.clone();
    let aggregator =
        tokio::spawn(async move { aggregator.run_every(every, AggregateMode::Incremental, agg_shutdown.cancelled_owned()).await });
    let processor = args.processor.build(&args.settings, state.pool.clone(), state.projection.clone(), Arc::clone(&state.catalog))?;
    let processor = tokio::spawn(processor.run(shutdown.clone().cancelled_owned()));
    drop(state);

    let served = app.run_until(shutdown.clone().cancelled_owned()).await;
    shutdown.cancel();
    worker.await??;
    processor.await??;
    aggregator.await?;
    served
}

use coffee_pipeline::Worker;

use crate::config::WorkerArgs;

pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let shutdown = crate::shutdown::on_signal();
    let (pool, projection) = super::sinks(&args.services).await?;
    args.metrics.start(super::sinks_readiness(&pool, &projection), shutdown.clone()).await?;
    coffee_pipeline::relay::check_projection(&pool, &projection, coffee_core::Version::V2).await?;
    let catalog = args.services.load_catalog()?;
    let worker = Worker::new(args.worker.config("worker"), pool, projection, catalog, &args.services.redis_url);
    worker.run(shutdown.cancelled_owned()).await
}

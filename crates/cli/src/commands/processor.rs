use coffee_pipeline::Processor;

use crate::config::ProcessorArgs;

pub async fn run(args: ProcessorArgs) -> anyhow::Result<()> {
    let shutdown = crate::shutdown::on_signal();
    let config = args.processor.config()?;
    args.metrics.start(shutdown.clone()).await?;
    let (pool, projection) = super::sinks(&args.services).await?;
    coffee_pipeline::relay::check_projection(&pool, &projection, coffee_core::Version::V3).await?;
    let catalog = args.services.load_catalog()?;
    let processor = Processor::new(config, (&args.kafka).into(), &args.services.database_url, pool, projection, catalog);
    processor.run(shutdown.cancelled_owned()).await
}

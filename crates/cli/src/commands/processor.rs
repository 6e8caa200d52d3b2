use coffee_pipeline::{Processor, sources::v3_kafka::TopicProbe};
use coffee_server::telemetry::Readiness;

use crate::config::ProcessorArgs;

pub async fn run(args: ProcessorArgs) -> anyhow::Result<()> {
    let shutdown = crate::shutdown::on_signal();
    let config = args.processor.config()?;
    let (pool, projection) = super::sinks(&args.services).await?;
    let kafka: coffee_pipeline::KafkaSettings = (&args.kafka).into();
    let readiness = Readiness { kafka: Some((TopicProbe::new(&kafka)?, true)), ..super::sinks_readiness(&pool, &projection) };
    args.metrics.start(readiness, shutdown.clone()).await?;
    coffee_pipeline::relay::check_projection(&pool, &projection, coffee_core::Version::V3).await?;
    let catalog = args.services.load_catalog()?;
    let processor = Processor::new(config, kafka, &args.services.database_url, pool, projection, catalog);
    processor.run(shutdown.cancelled_owned()).await
}

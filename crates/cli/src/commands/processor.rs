use std::{sync::Arc, time::Duration};

use coffee_pipeline::v3::{GroupProtocol, Processor, ProcessorConfig};
use coffee_server::Settings;

#[derive(clap::Args, Clone)]
pub struct ProcessorArgs {
    /// Pre-aggregation window per partition (at most 1 s): one PostgreSQL transaction and one
    /// Redis script call per window per partition.
    #[arg(long, env = "COFFEE_RT_V3_WINDOW", default_value = "50ms", value_parser = humantime::parse_duration)]
    pub window: Duration,
    /// Records after which a partition's window is flushed early.
    #[arg(long, env = "COFFEE_RT_V3_MAX_BATCH", default_value_t = 5000)]
    pub max_batch: usize,
    /// Consumer-group session timeout.
    #[arg(long, env = "COFFEE_RT_V3_SESSION_TIMEOUT", default_value = "6s", value_parser = humantime::parse_duration)]
    pub session_timeout: Duration,
    /// The broker's long-poll time (`fetch.wait.max.ms`): how long an idle fetch waits for a
    /// record. Kafka answers as soon as one arrives, so it costs no latency under load; it
    /// bounds idle polling (docs/PERFORMANCE.md has the measurements).
    #[arg(long, env = "COFFEE_RT_V3_FETCH_WAIT", default_value = "20ms", value_parser = humantime::parse_duration)]
    pub fetch_wait: Duration,
    /// The broker holds a fetch until this many bytes are there or `--fetch-wait` passed
    /// (`fetch.min.bytes`): fewer, fuller fetches under load, for at most `--fetch-wait` of latency.
    #[arg(long, env = "COFFEE_RT_V3_FETCH_MIN_BYTES", default_value_t = 16384)]
    pub fetch_min_bytes: usize,
    /// Consumer-group protocol: `classic`, or `consumer` (KIP-848, Kafka 4.0+: incremental
    /// rebalances; the session timeout is then the broker's).
    #[arg(long, env = "COFFEE_RT_V3_GROUP_PROTOCOL", value_enum, default_value = "consumer")]
    pub group_protocol: GroupProtocol,
}

impl ProcessorArgs {
    pub fn build(
        &self,
        settings: &Settings,
        pool: coffee_store::PgPool,
        projection: coffee_store::Projection,
        catalog: Arc<coffee_core::Catalog>,
    ) -> anyhow::Result<Processor> {
        anyhow::ensure!(self.window <= Duration::from_secs(1), "--window must be at most 1s");
        let config = ProcessorConfig {
            window: self.window,
            max_batch: self.max_batch,
            session_timeout: self.session_timeout,
            fetch_wait: self.fetch_wait,
            fetch_min_bytes: self.fetch_min_bytes,
            group_protocol: self.group_protocol,
            ..Default::default()
        };
        Ok(Processor::new(config, settings.kafka.clone(), &settings.database_url, pool, projection, catalog))
    }
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub settings: Settings,
    #[command(flatten)]
    pub processor: ProcessorArgs,
    #[command(flatten)]
    pub metrics: super::MetricsArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let shutdown = crate::shutdown::on_signal();
    args.metrics.start(shutdown.clone()).await?;
    let (pool, projection) = super::sinks(&args.settings).await?;
    coffee_pipeline::relay::check_projection(&pool, &projection, coffee_core::Version::V3).await?;
    let catalog = Arc::new(args.settings.load_catalog()?);
    args.processor.build(&args.settings, pool, projection, catalog)?.run(shutdown.cancelled_owned()).await
}

use std::{sync::Arc, time::Duration};

use coffee_pipeline::v2::{Worker, WorkerConfig};
use coffee_server::Settings;

#[derive(clap::Args, Clone)]
pub struct WorkerArgs {
    /// Consumer name in the group; keep it stable across restarts so the worker finds its own
    /// pending entries. Defaults to `worker-<hostname>`.
    #[arg(long, env = "COFFEE_RT_CONSUMER")]
    pub consumer: Option<String>,
    /// Largest batch per PostgreSQL transaction.
    #[arg(long, env = "COFFEE_RT_V2_BATCH", default_value_t = 1000)]
    pub batch: usize,
    /// How long a batch may keep filling after its first entry (the time cap).
    #[arg(long, env = "COFFEE_RT_V2_LINGER", default_value = "5ms", value_parser = humantime::parse_duration)]
    pub linger: Duration,
    /// Idle time after which another consumer's pending entries are claimed (XAUTOCLAIM).
    #[arg(long, env = "COFFEE_RT_V2_CLAIM_IDLE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub claim_idle: Duration,
    /// Deliveries after which an entry goes to the dead-letter stream.
    #[arg(long, env = "COFFEE_RT_V2_MAX_DELIVERIES", default_value_t = 5)]
    pub max_deliveries: usize,
}

impl WorkerArgs {
    pub fn config(&self, default_prefix: &str) -> WorkerConfig {
        let consumer = self.consumer.clone().unwrap_or_else(|| format!("{default_prefix}-{}", hostname()));
        let mut c = WorkerConfig::new(consumer);
        c.max_batch = self.batch;
        c.linger = self.linger;
        c.claim_min_idle = self.claim_idle;
        c.max_deliveries = self.max_deliveries;
        c
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_owned()).unwrap_or_else(|_| "localhost".into())
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub settings: Settings,
    #[command(flatten)]
    pub worker: WorkerArgs,
    #[command(flatten)]
    pub metrics: super::MetricsArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let shutdown = crate::shutdown::on_signal();
    args.metrics.start(shutdown.clone()).await?;
    let (pool, projection) = super::sinks(&args.settings).await?;
    coffee_pipeline::relay::check_projection(&pool, &projection, coffee_core::Version::V2).await?;
    let catalog = Arc::new(args.settings.load_catalog()?);
    let worker = Worker::new(args.worker.config("worker"), pool, projection, catalog, &args.settings.redis_url);
    worker.run(shutdown.cancelled_owned()).await
}

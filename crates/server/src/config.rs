use std::{net::SocketAddr, path::PathBuf};

use clap::Args;
use coffee_core::Catalog;
use coffee_pipeline::v3::KafkaSettings;

/// Where the services are and how the process behaves. Every flag has an environment variable
/// and a default that works on a machine with local PostgreSQL and Redis.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address the HTTP server listens on.
    #[arg(long, env = "COFFEE_RT_LISTEN", default_value = "127.0.0.1:8005")]
    pub listen: SocketAddr,

    /// PostgreSQL URL; the database is created if it is missing.
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://coffee:coffee@127.0.0.1:5432/coffee_rt")]
    pub database_url: String,

    /// Redis URL.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379/0")]
    pub redis_url: String,

    /// Prefix for every Redis key and channel (lets several deployments or tests share a Redis).
    #[arg(long, env = "COFFEE_RT_NAMESPACE", default_value = "")]
    pub namespace: String,

    /// TOML file with `drinks = [...]` and `stores = [...]`; the seeds' catalog when absent.
    #[arg(long, env = "COFFEE_RT_CATALOG")]
    pub catalog: Option<PathBuf>,

    /// PostgreSQL connections per process.
    #[arg(long, env = "COFFEE_RT_PG_POOL", default_value_t = 16)]
    pub pg_pool: usize,

    /// v1: orders waiting for the batcher before the API answers 503.
    #[arg(long, env = "COFFEE_RT_V1_QUEUE", default_value_t = 20_000)]
    pub v1_queue: usize,

    /// v2: approximate cap of `orders:stream` (XADD MAXLEN ~). Far above any backlog.
    #[arg(long, env = "COFFEE_RT_V2_MAXLEN", default_value_t = 5_000_000)]
    pub v2_maxlen: usize,

    /// Order requests in flight at once (all versions); past it the API answers 503.
    #[arg(long, env = "COFFEE_RT_MAX_IN_FLIGHT", default_value_t = 20_000)]
    pub max_in_flight: usize,

    #[command(flatten)]
    pub kafka: KafkaSettings,
}

impl Settings {
    pub fn load_catalog(&self) -> anyhow::Result<Catalog> {
        Ok(match &self.catalog {
            Some(path) => Catalog::load(path)?,
            None => Catalog::default(),
        })
    }
}

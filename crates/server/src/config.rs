use std::{net::SocketAddr, sync::Arc};

use coffee_core::Catalog;
use coffee_pipeline::KafkaSettings;
use coffee_warehouse::ClickHouseConfig;

/// What the HTTP server needs. The binary's `config` module builds it from flags and
/// environment variables; tests build it directly. The defaults are the ones a new user gets.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub database_url: String,
    pub redis_url: String,
    /// Prefix for every Redis key and channel (lets several deployments or tests share a Redis).
    pub namespace: String,
    pub catalog: Arc<Catalog>,
    /// PostgreSQL connections of this process.
    pub pg_pool: usize,
    /// v1: orders waiting for the batcher before the API answers 503.
    pub v1_queue: usize,
    /// v2: approximate cap of `orders:stream` (XADD MAXLEN ~). Far above any backlog.
    pub v2_maxlen: usize,
    /// Order requests in flight at once (all versions); past it the API answers 503.
    pub max_in_flight: usize,
    pub kafka: KafkaSettings,
    /// The café's time zone: history buckets (days, weeks) are its days and weeks.
    pub timezone: chrono_tz::Tz,
    /// The ClickHouse the history is read from; PostgreSQL answers when there is none.
    pub warehouse: Option<ClickHouseConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8005)),
            database_url: "postgres://coffee:coffee@127.0.0.1:5432/coffee_rt".into(),
            redis_url: "redis://127.0.0.1:6379/0".into(),
            namespace: String::new(),
            catalog: Arc::new(Catalog::default()),
            pg_pool: 16,
            v1_queue: 20_000,
            v2_maxlen: 5_000_000,
            max_in_flight: 20_000,
            kafka: KafkaSettings::default(),
            timezone: chrono_tz::UTC,
            warehouse: None,
        }
    }
}

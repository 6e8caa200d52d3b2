pub mod aggregate;
pub mod migrate;
pub mod processor;
pub mod reconcile;
pub mod serve;
pub mod up;
pub mod worker;

/// Connects the two sinks the background roles share.
pub async fn sinks(settings: &coffee_server::Settings) -> anyhow::Result<(coffee_store::PgPool, coffee_store::Projection)> {
    let pool = coffee_store::postgres::connect(&settings.database_url, settings.pg_pool).await?;
    coffee_store::postgres::migrate(&pool).await?;
    let redis = coffee_store::redis::connect(&settings.redis_url).await?;
    Ok((pool, coffee_store::Projection::new(redis, &settings.namespace)))
}

/// The metrics listener of a role without an API.
#[derive(clap::Args, Clone)]
pub struct MetricsArgs {
    /// Serve this process's Prometheus metrics (`GET /metrics`) on this address, e.g.
    /// `127.0.0.1:9105`. Off by default: only this process knows its batch sizes, flush
    /// latency, lag and the freshness of the orders it counts.
    #[arg(long, env = "COFFEE_RT_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl MetricsArgs {
    /// Starts the listener if one was asked for; it stops with `shutdown`.
    pub async fn start(&self, shutdown: tokio_util::sync::CancellationToken) -> anyhow::Result<()> {
        if let Some(addr) = self.metrics_listen {
            let bound = coffee_server::telemetry::serve_metrics(addr, shutdown.cancelled_owned()).await?;
            println!("metrics: http://{bound}/metrics");
        }
        Ok(())
    }
}

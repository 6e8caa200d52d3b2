//! One module per role; each takes its arguments from [`crate::config`].

pub mod aggregate;
pub mod migrate;
pub mod processor;
pub mod reconcile;
pub mod serve;
pub mod up;
pub mod warehouse;
pub mod worker;

use coffee_server::telemetry::Readiness;

use crate::config::{Metrics, Services};

/// Connects the two sinks the background roles share, migrating the database first.
pub async fn sinks(services: &Services) -> anyhow::Result<(coffee_store::PgPool, coffee_store::Projection)> {
    let pool = coffee_store::postgres::connect(&services.database_url, services.pg_pool).await?;
    coffee_store::postgres::migrate(&pool).await?;
    let redis = coffee_store::redis::connect(&services.redis_url).await?;
    Ok((pool, coffee_store::Projection::new(redis, &services.namespace)))
}

impl Metrics {
    /// Starts the listener (`/metrics`, `/livez`, `/readyz` checking `readiness`) if one was
    /// asked for; it stops with `shutdown`.
    pub async fn start(&self, readiness: Readiness, shutdown: tokio_util::sync::CancellationToken) -> anyhow::Result<()> {
        if let Some(addr) = self.metrics_listen {
            let bound = coffee_server::telemetry::serve_metrics(addr, readiness, shutdown.cancelled_owned()).await?;
            println!("metrics: http://{bound}/metrics");
        }
        Ok(())
    }
}

/// Readiness of a role that writes both sinks.
pub fn sinks_readiness(pool: &coffee_store::PgPool, projection: &coffee_store::Projection) -> Readiness {
    Readiness { postgres: Some(pool.clone()), redis: Some(projection.connection()), kafka: None, projection: Some(projection.clone()) }
}

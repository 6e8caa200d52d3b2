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

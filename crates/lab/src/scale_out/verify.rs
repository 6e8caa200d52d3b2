//! After a run: exactly once checked on the final state, then the run's scratch state removed.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use coffee_pipeline::KafkaSettings;
use coffee_pipeline::sources::v3_kafka::source_of;
use coffee_store::postgres::ScratchDatabase;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use tokio_postgres::NoTls;

use super::Backlog;
use crate::config::ScaleOutArgs;

/// The final state, once checked.
pub(super) struct Verified {
    pub(super) pg_rows: i64,
    pub(super) pg_revenue: i64,
    pub(super) redis_orders: i64,
    pub(super) redis_revenue: i64,
    pub(super) fenced: usize,
}

/// Exactly once, checked on the final state (every instance stopped): PostgreSQL has one row
/// per record (the order id is the primary key and every produced id is distinct, so `records`
/// rows are every record once), Redis counts `records` orders and their revenue, and each
/// partition's Redis fence equals its outbox seq in PostgreSQL (every committed delta applied,
/// none twice).
pub(super) async fn verify(args: &ScaleOutArgs, backlog: &Backlog, database_url: &str, namespace: &str) -> anyhow::Result<Verified> {
    let (client, conn) = tokio_postgres::connect(database_url, NoTls).await.context("connecting to the run's database")?;
    let task = tokio::spawn(conn);
    let row = client.query_one("SELECT count(*), COALESCE(sum(price_cents), 0)::bigint FROM orders WHERE version = 'v3'", &[]).await?;
    let (pg_rows, pg_revenue): (i64, i64) = (row.get(0), row.get(1));
    let positions: BTreeMap<String, i64> = client
        .query("SELECT source, seq FROM sink_positions WHERE source LIKE 'v3:%'", &[])
        .await?
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
        .collect();
    task.abort();
    let mut redis = coffee_store::redis::connect(&args.services.redis_url).await?;
    let metric = |m: &str| format!("{namespace}v3:metrics:{m}");
    let (orders, revenue, fences): (Option<i64>, Option<i64>, BTreeMap<String, i64>) =
        redis::pipe().get(metric("total_orders")).get(metric("total_revenue")).hgetall(metric("fence")).query_async(&mut redis).await?;
    let (redis_orders, redis_revenue) = (orders.unwrap_or(0), revenue.unwrap_or(0));
    let records = backlog.records as i64;
    anyhow::ensure!(
        pg_rows == records && redis_orders == records && pg_revenue == backlog.revenue_cents && redis_revenue == backlog.revenue_cents,
        "not exactly once: {records} records ({} cents) produced; PostgreSQL {pg_rows} rows ({pg_revenue} cents); Redis {redis_orders} orders ({redis_revenue} cents)",
        backlog.revenue_cents
    );
    let mut fenced = 0;
    for p in 0..backlog.kafka.partitions {
        let source = source_of(&backlog.kafka.topic, p);
        let seq = positions.get(&source).copied().unwrap_or(0);
        let fence = fences.get(&source).copied().unwrap_or(0);
        anyhow::ensure!(fence == seq, "partition {p}: Redis fence {fence} but PostgreSQL outbox seq {seq}");
        fenced += 1;
    }
    Ok(Verified { pg_rows, pg_revenue, redis_orders, redis_revenue, fenced })
}

/// Drops the run's database, deletes its Redis keys and its consumer group; tries each step
/// and reports every failure.
pub(super) async fn cleanup_run(args: &ScaleOutArgs, kafka: &KafkaSettings, db: &ScratchDatabase, name: &str) -> anyhow::Result<()> {
    let mut errors = Vec::new();
    if let Err(e) = db.drop_now().await {
        errors.push(format!("dropping database {}: {e:#}", db.name()));
    }
    if let Err(e) = crate::scratch::delete_redis_keys(&args.services.redis_url, &format!("{name}:")).await {
        errors.push(format!("deleting Redis keys {name}:*: {e:#}"));
    }
    if let Err(e) = delete_group(kafka, name).await {
        errors.push(format!("deleting consumer group {name}: {e:#}"));
    }
    anyhow::ensure!(errors.is_empty(), "cleanup: {}", errors.join("; "));
    Ok(())
}

/// Deletes the group; retries while the broker still sees a leaving member.
async fn delete_group(kafka: &KafkaSettings, group: &str) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create()?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(5))).request_timeout(Some(Duration::from_secs(5)));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let results = admin.delete_groups(&[group], &opts).await?;
        match results.into_iter().next() {
            None | Some(Ok(_)) | Some(Err((_, RDKafkaErrorCode::GroupIdNotFound))) => return Ok(()),
            Some(Err((_, code))) if attempt < 20 && code == RDKafkaErrorCode::NonEmptyGroup => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Some(Err((_, code))) => anyhow::bail!("{code}"),
        }
    }
}

/// A connection to the server's maintenance database: fails early when PostgreSQL is away.
pub(super) async fn admin_client(server_url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let admin = coffee_store::postgres::with_dbname(server_url, "postgres")?;
    let (client, conn) = tokio_postgres::connect(&admin, NoTls).await.with_context(|| format!("connecting to PostgreSQL at {admin}"))?;
    tokio::spawn(conn);
    Ok(client)
}

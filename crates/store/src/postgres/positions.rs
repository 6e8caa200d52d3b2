//! `sink_positions`: how far each writer (a v2 consumer, a v3 partition) has committed.
//!
//! A row holds the writer's last outbox `seq` and, for a log-based source, the last log offset
//! it consumed, both moved in the same transaction as its orders (see [`super::commit_batch`]).

use std::{collections::HashMap, str::FromStr, time::Duration};

use anyhow::Context;
use deadpool_postgres::GenericClient;
use tokio_postgres::{Config, NoTls};

/// Where a source stands: its last outbox seq and last committed log offset.
pub async fn position<C: GenericClient>(client: &C, source: &str) -> Result<(i64, Option<i64>), tokio_postgres::Error> {
    let row = client.query_opt("SELECT seq, log_offset FROM sink_positions WHERE source = $1", &[&source]).await?;
    Ok(row.map(|r| (r.get(0), r.get(1))).unwrap_or((0, None)))
}

/// The last consumed log offset of each of `sources` that has one.
pub async fn log_offsets(client: &tokio_postgres::Client, sources: &[String]) -> Result<HashMap<String, i64>, tokio_postgres::Error> {
    let rows = client
        .query("SELECT source, log_offset FROM sink_positions WHERE source = ANY($1) AND log_offset IS NOT NULL", &[&sources])
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// [`log_offsets`] on a connection of its own, for a caller outside any pool's runtime: Kafka's
/// rebalance callback runs synchronously inside the consumer's poll, so it cannot await the
/// pool; it runs this on a thread of its own instead.
pub async fn log_offsets_once(url: &str, sources: &[String]) -> anyhow::Result<HashMap<String, i64>> {
    let mut config = Config::from_str(url).context("parsing DATABASE_URL")?;
    config.connect_timeout(Duration::from_secs(2));
    let (client, conn) = config.connect(NoTls).await.context("connecting to PostgreSQL")?;
    let task = tokio::spawn(conn);
    let offsets = log_offsets(&client, sources).await;
    drop(client);
    let _ = task.await;
    Ok(offsets?)
}

//! PostgreSQL ceiling: batched inserts, rows/s, through the server's own insert
//! (`coffee_store::postgres::insert_orders`: one `INSERT … SELECT FROM UNNEST($arrays)` per
//! batch, one transaction each) into the real `orders` table (the migrations, indexes
//! included), in a scratch database created for the measurement and dropped after it, whatever
//! happens.

use anyhow::Context;
use coffee_core::{Catalog, Version};
use coffee_store::postgres::{self, ScratchDatabase};
use tokio::time::Instant;

use super::CeilingOpts;
use crate::order::{self, OrderMix};
use crate::results::ceilings::Ceiling;

/// Scratch databases of this ceiling: this prefix, this process's id, a random part.
pub const SCRATCH_PREFIX: &str = "coffee_lab_scratch_";

/// Measure batched inserts on the PostgreSQL server of `server_url` (any database on it; the
/// scratch database is created from the server's `postgres` database).
pub async fn insert_ceiling(server_url: &str, opts: CeilingOpts) -> anyhow::Result<Ceiling> {
    let db = ScratchDatabase::create(server_url, &format!("{SCRATCH_PREFIX}{}_", std::process::id()))
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {server_url} (or create a scratch database there)"))?;
    let result = measure(&db.url(), opts).await;
    let dropped = db.drop_now().await;
    let ceiling = result?;
    dropped?;
    Ok(ceiling)
}

async fn measure(url: &str, opts: CeilingOpts) -> anyhow::Result<Ceiling> {
    let concurrency = opts.concurrency.max(1);
    let pool = postgres::connect(url, concurrency).await.context("connecting to the scratch database")?;
    postgres::migrate(&pool).await.context("migrating the scratch database")?;
    // Open every connection before the clock starts; the tasks take them back from the pool.
    let mut opened = Vec::new();
    for _ in 0..concurrency {
        opened.push(pool.get().await.context("a scratch connection")?);
    }
    drop(opened);
    let start = Instant::now();
    let deadline = start + opts.duration;
    let batch = opts.batch.max(1);
    let tasks: Vec<_> = (0..concurrency).map(|_| tokio::spawn(insert_until(pool.clone(), batch, deadline))).collect();
    let mut rows = 0;
    for t in tasks {
        rows += t.await??;
    }
    let elapsed = start.elapsed();
    Ok(Ceiling::new(
        "postgres_insert",
        "rows/s",
        rows,
        elapsed,
        format!(
            "INSERT … UNNEST (the server's insert_orders), {} rows per statement, {} connections, the orders table of the migrations with its indexes",
            opts.batch, opts.concurrency
        ),
    ))
}

async fn insert_until(pool: postgres::PgPool, batch: usize, deadline: Instant) -> anyhow::Result<u64> {
    let client = pool.get().await?;
    let (mix, catalog) = (OrderMix::default(), Catalog::default());
    let mut rng = order::rng();
    let mut rows = 0u64;
    while Instant::now() < deadline {
        let orders: Vec<coffee_core::Order> = (0..batch).map(|_| mix.next_order(&mut rng).accepted(&catalog)).collect();
        rows += postgres::insert_orders(&client, Version::V2, &orders).await?.len() as u64;
    }
    Ok(rows)
}

/// The scratch databases of this ceiling that exist now (none should outlive its measurement).
pub async fn scratch_databases(server_url: &str) -> anyhow::Result<Vec<String>> {
    let admin = postgres::with_dbname(server_url, "postgres")?;
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let rows = client.query("SELECT datname::text FROM pg_database WHERE starts_with(datname, $1)", &[&SCRATCH_PREFIX]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

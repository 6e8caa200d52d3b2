//! PostgreSQL ceiling: batched INSERT rows/s (one `INSERT … SELECT FROM UNNEST($arrays)` per
//! batch, one transaction each) into a scratch copy of the `orders` table, in a scratch
//! database created for the measurement and dropped after it, whatever happens.

use anyhow::Context;
use rand::SeedableRng;
use tokio::time::Instant;
use tokio_postgres::{Client, Config, NoTls};

use super::{Ceiling, CeilingOpts, scratch_suffix};
use crate::order::OrderMix;

/// Same columns, constraints and indexes as the server's `orders` table, so the ceiling
/// includes the index maintenance a real insert pays.
const SCHEMA: &str = "
CREATE TABLE orders (
    order_id    uuid        PRIMARY KEY,
    version     text        NOT NULL CHECK (version IN ('v1', 'v2', 'v3')),
    drink       text        NOT NULL,
    store       text        NOT NULL,
    price_cents bigint      NOT NULL CHECK (price_cents > 0 AND price_cents <= 100000),
    ordered_at  timestamptz NOT NULL,
    accepted_at timestamptz NOT NULL,
    txid        xid8        NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX orders_version_txid ON orders (version, txid);
CREATE INDEX orders_version_accepted ON orders (version, accepted_at DESC);
";

const INSERT: &str = "
INSERT INTO orders (order_id, version, drink, store, price_cents, ordered_at, accepted_at)
SELECT id, 'v2', d, s, c, ts, now()
FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::int8[], $5::timestamptz[]) AS t(id, d, s, c, ts)";

/// Measure batched inserts. `admin_url` is a libpq-style URL of a database the user may
/// `CREATE DATABASE` from, e.g. `postgres://coffee:coffee@127.0.0.1:5432/postgres`.
pub async fn insert_ceiling(admin_url: &str, opts: CeilingOpts) -> anyhow::Result<Ceiling> {
    let admin_cfg: Config = admin_url.parse().with_context(|| format!("bad PostgreSQL URL {admin_url}"))?;
    let admin = connect(&admin_cfg).await.with_context(|| format!("cannot connect to PostgreSQL at {admin_url}"))?;
    let db = format!("coffee_lab_scratch_{}", scratch_suffix());
    admin.batch_execute(&format!("CREATE DATABASE {db}")).await.context("CREATE DATABASE")?;
    let result = measure(&admin_cfg, &db, opts).await;
    let dropped = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
    let ceiling = result?;
    dropped.with_context(|| format!("DROP DATABASE {db}"))?;
    Ok(ceiling)
}

async fn connect(cfg: &Config) -> anyhow::Result<Client> {
    let (client, conn) = cfg.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

async fn measure(admin_cfg: &Config, db: &str, opts: CeilingOpts) -> anyhow::Result<Ceiling> {
    let mut cfg = admin_cfg.clone();
    cfg.dbname(db);
    connect(&cfg).await?.batch_execute(SCHEMA).await.context("create scratch orders table")?;

    let start = Instant::now();
    let deadline = start + opts.duration;
    let mut tasks = Vec::new();
    for _ in 0..opts.concurrency.max(1) {
        let client = connect(&cfg).await?;
        let batch = opts.batch.max(1);
        tasks.push(tokio::spawn(async move { insert_until(client, batch, deadline).await }));
    }
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
            "INSERT … UNNEST, {} rows per statement, {} connections, orders-shaped table with its indexes",
            opts.batch, opts.concurrency
        ),
    ))
}

async fn insert_until(client: Client, batch: usize, deadline: Instant) -> anyhow::Result<u64> {
    let stmt = client.prepare(INSERT).await?;
    let mix = OrderMix::default();
    let mut rng = rand::rngs::SmallRng::from_rng(&mut rand::rng());
    let mut rows = 0u64;
    while Instant::now() < deadline {
        let (mut ids, mut drinks, mut stores, mut cents, mut ts) = (
            Vec::with_capacity(batch),
            Vec::with_capacity(batch),
            Vec::with_capacity(batch),
            Vec::with_capacity(batch),
            Vec::with_capacity(batch),
        );
        let now = chrono::Utc::now();
        for _ in 0..batch {
            let o = mix.next_order(&mut rng);
            ids.push(o.order_id);
            drinks.push(o.drink);
            stores.push(o.store);
            cents.push((o.price * 100.0).round() as i64);
            ts.push(now);
        }
        let n = client.execute(&stmt, &[&ids, &drinks, &stores, &cents, &ts]).await?;
        rows += n;
    }
    Ok(rows)
}

/// The scratch databases that exist now (none should outlive its measurement).
pub async fn scratch_databases(admin_url: &str) -> anyhow::Result<Vec<String>> {
    let client = connect(&admin_url.parse()?).await?;
    let rows = client.query("SELECT datname FROM pg_database WHERE datname LIKE 'coffee_lab_scratch_%'", &[]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

//! Redis ceiling: XADD entries/s, pipelined, into a scratch stream key deleted afterwards.
//! Entries carry the same fields as an order, so the server pays the same per-entry cost.

use anyhow::Context;
use tokio::time::Instant;

use super::CeilingOpts;
use crate::order::{self, OrderMix};
use crate::results::ceilings::Ceiling;

/// Approximate cap on the scratch stream (`MAXLEN ~`), so a long measurement cannot fill
/// the memory of a Redis that keeps nothing on disk; trimming whole nodes is cheap.
const MAXLEN: usize = 200_000;

/// Measure pipelined XADDs against `url`, e.g. `redis://127.0.0.1:6379`.
pub async fn xadd_ceiling(url: &str, opts: CeilingOpts) -> anyhow::Result<Ceiling> {
    let client = redis::Client::open(url).with_context(|| format!("bad Redis URL {url}"))?;
    let mut conn = client.get_multiplexed_async_connection().await.with_context(|| format!("cannot connect to Redis at {url}"))?;
    let key = format!("coffee-lab:scratch:{}", crate::scratch::suffix());
    let start = Instant::now();
    let deadline = start + opts.duration;
    let mut tasks = Vec::new();
    for _ in 0..opts.concurrency.max(1) {
        // One connection per task: a multiplexed connection would serialize them anyway.
        let conn = client.get_multiplexed_async_connection().await?;
        let (key, batch) = (key.clone(), opts.batch.max(1));
        tasks.push(tokio::spawn(async move { xadd_until(conn, key, batch, deadline).await }));
    }
    let mut entries = 0;
    let mut failure = None;
    for t in tasks {
        match t.await? {
            Ok(n) => entries += n,
            Err(e) => failure = Some(e),
        }
    }
    let elapsed = start.elapsed();
    let _: () = redis::cmd("DEL").arg(&key).query_async(&mut conn).await.context("DEL scratch stream")?;
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(Ceiling::new(
        "redis_xadd",
        "entries/s",
        entries,
        elapsed,
        format!("XADD MAXLEN ~ {MAXLEN}, {} per pipeline, {} connections", opts.batch, opts.concurrency),
    ))
}

async fn xadd_until(mut conn: redis::aio::MultiplexedConnection, key: String, batch: usize, deadline: Instant) -> anyhow::Result<u64> {
    let mix = OrderMix::default();
    let mut rng = order::rng();
    let mut entries = 0u64;
    while Instant::now() < deadline {
        let mut pipe = redis::pipe();
        for _ in 0..batch {
            let o = mix.next_order(&mut rng);
            pipe.cmd("XADD")
                .arg(&key)
                .arg("MAXLEN")
                .arg("~")
                .arg(MAXLEN)
                .arg("*")
                .arg("order_id")
                .arg(o.order_id.to_string())
                .arg("drink")
                .arg(o.drink)
                .arg("store")
                .arg(o.store)
                .arg("price_cents")
                .arg((o.price * 100.0).round() as i64)
                .arg("timestamp")
                .arg(&o.timestamp)
                .ignore();
        }
        let _: () = pipe.query_async(&mut conn).await?;
        entries += batch as u64;
    }
    Ok(entries)
}

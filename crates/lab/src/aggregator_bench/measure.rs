//! One run of the bench: grow the table size by size and time the real aggregator at each.

use std::time::Duration;

use anyhow::Context;
use coffee_pipeline::{AggregateMode, Aggregator};
use coffee_store::Projection;
use tokio::time::Instant;

use super::history::{SPACING_MS, add_increment, grow};
use super::ladder::projected_cost;
use super::verdict::{median, verdicts};
use super::{FULL_RUNS, INCREMENT_ROWS, INCREMENT_TXNS};
use crate::report::format::rows_label;
use crate::results::aggregator::{AggregatorReport, SizeResult};

/// Measures `sizes` in the (migrated, empty) database of `url`, with the projection under
/// `namespace`.
pub async fn measure(
    url: &str,
    redis_url: &str,
    namespace: &str,
    sizes: &[u64],
    deadline: Option<Instant>,
    progress: &(dyn Fn(String) + Sync),
) -> anyhow::Result<AggregatorReport> {
    let started = Instant::now();
    let pool = coffee_store::postgres::connect(url, 2).await.context("scratch pool")?;
    coffee_store::postgres::migrate(&pool).await.context("migrate the scratch database")?;
    let redis = coffee_store::redis::connect(redis_url).await.with_context(|| format!("cannot connect to Redis at {redis_url}"))?;
    let pooled = pool.get().await?;
    let loader: &tokio_postgres::Client = &pooled;
    let parallel: String = loader.query_one("SHOW max_parallel_workers_per_gather", &[]).await?.get(0);
    loader.batch_execute("SET maintenance_work_mem = '256MB'").await?;

    // Row i is ordered at base + i·10 ms; the history ends about now.
    let total_rows = sizes.last().copied().unwrap_or(0) + INCREMENT_ROWS * sizes.len() as u64;
    let base = chrono::Utc::now() - chrono::Duration::milliseconds((total_rows * SPACING_MS) as i64);
    let mut next = 0u64;
    let mut results: Vec<SizeResult> = Vec::new();
    let mut note = None;
    for &size in sizes {
        if let (Some(deadline), Some(prev)) = (deadline, results.last()) {
            let cost = projected_cost(prev, size);
            if Instant::now() + cost > deadline {
                note =
                    Some(format!("stopped before {}: about {:.0} s more would run past the budget", rows_label(size), cost.as_secs_f64()));
                progress(format!("aggregator: {}", note.as_deref().unwrap_or_default()));
                break;
            }
        }
        anyhow::ensure!(size >= next, "size {size} is below the rows already in the table ({next})");
        progress(format!("aggregator: growing the table to {} rows", rows_label(size)));
        let t = Instant::now();
        grow(loader, next, size, base).await?;
        next = size;
        // A full run counts the rows below its snapshot's xmin: wait until that covers them all.
        let last_txid: String = loader.query_one("SELECT max(txid)::text FROM orders WHERE version = 'v1'", &[]).await?.get(0);
        let grow_s = t.elapsed().as_secs_f64();
        let mut held_back = Vec::new();
        if !wait_for_xmin_past(loader, &last_txid, XMIN_WAIT).await? {
            held_back.push("full");
        }
        let table_bytes: i64 = loader.query_one("SELECT pg_total_relation_size('orders')", &[]).await?.get(0);

        // A namespace per size: the first full run finds no fence, like a fresh deployment.
        let projection = Projection::new(redis.clone(), &format!("{namespace}{size}:"));
        let aggregator = Aggregator::new(pool.clone(), projection);
        let mut full_ms = Vec::new();
        let mut full_counted = 0;
        for _ in 0..FULL_RUNS {
            let r = aggregator.run_once(AggregateMode::Full).await?;
            anyhow::ensure!(r.mode == AggregateMode::Full, "asked for a full run");
            full_ms.push(ms(r.took));
            full_counted = r.orders_counted;
        }

        let last_txid = add_increment(loader, next, base).await?;
        next += INCREMENT_ROWS;
        if !wait_for_xmin_past(loader, &last_txid, XMIN_WAIT / 2).await? {
            held_back.push("incremental");
        }
        let r = aggregator.run_once(AggregateMode::Incremental).await?;
        anyhow::ensure!(r.mode == AggregateMode::Incremental, "the incremental run fell back to {:?}", r.mode);
        let s = SizeResult {
            rows: size,
            table_mib: round1(table_bytes as f64 / (1024.0 * 1024.0)),
            grow_s: round1(grow_s),
            full_median_ms: median(&full_ms),
            full_ms,
            full_counted,
            incremental_ms: ms(r.took),
            incremental_counted: r.orders_counted,
            note: (!held_back.is_empty()).then(|| {
                format!(
                    "{}: the snapshot xmin was held back by a transaction outside the bench \
                     past the wait before the {} run(s), which then counted only the rows below it",
                    rows_label(size),
                    held_back.join(" and "),
                )
            }),
        };
        progress(format!(
            "aggregator: {:>5} rows ({:.0} MiB, grown in {:.1} s): full recompute {:.1} ms (median of {}), incremental +{} rows {:.1} ms (counted {})",
            rows_label(s.rows),
            s.table_mib,
            s.grow_s,
            s.full_median_ms,
            FULL_RUNS,
            INCREMENT_ROWS,
            s.incremental_ms,
            s.incremental_counted
        ));
        results.push(s);
    }
    drop(pooled);
    Ok(AggregatorReport {
        intervals: verdicts(&results),
        sizes: results,
        full_runs: FULL_RUNS,
        increment_rows: INCREMENT_ROWS,
        note,
        method: format!(
            "the real schema (migrations) in a scratch database; v1 rows generated in SQL \
             (generate_series) with the load generator's mix — latte/cappuccino/americano \
             45/30/25 %, downtown/uptown/central/southend 35/30/20/15 %, menu prices in 5-cent \
             steps, time-ordered ids — {SPACING_MS} ms apart (a steady 100 orders/s ending now); \
             large growth steps drop the indexes and rebuild them, then VACUUM ANALYZE; \
             `Aggregator::run_once(Full)` {FULL_RUNS}× on a fresh projection (median reported), \
             then {INCREMENT_ROWS} rows in {INCREMENT_TXNS} transactions and \
             `run_once(Incremental)`; timings include the Redis write; \
             max_parallel_workers_per_gather = {parallel}"
        ),
        duration_s: round1(started.elapsed().as_secs_f64()),
    })
}

/// How long to wait for the snapshot xmin to pass the rows just written.
const XMIN_WAIT: Duration = Duration::from_secs(120);

/// An aggregator run counts the rows below its snapshot's xmin, which is cluster-wide: wait
/// until it has passed `txid`, so one run counts all of them even if some other database's
/// transaction was open meanwhile. False if it did not within `within` (a long transaction
/// elsewhere holds it back).
async fn wait_for_xmin_past(client: &tokio_postgres::Client, txid: &str, within: Duration) -> anyhow::Result<bool> {
    let deadline = Instant::now() + within;
    loop {
        let past: bool = client.query_one("SELECT pg_snapshot_xmin(pg_current_snapshot()) > $1::text::xid8", &[&txid]).await?.get(0);
        if past {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

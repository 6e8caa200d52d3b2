//! `coffee-rt bench aggregator`: the v1 aggregator's own breaking point.
//!
//! v1 counts an order only when the aggregator next runs, and a *full* recompute scans every
//! v1 row, so its cost grows with the table while its interval stays fixed. This bench grows
//! an `orders` table (the real schema, from the migrations) in a scratch database through
//! 10 k, 100 k, 1 M and 10 M rows, and at each size times the real
//! [`coffee_pipeline::v1::Aggregator`]: a full recompute (median of 3) and an incremental run
//! after 1,000 new rows. The table of results says where the full recompute stops fitting in
//! the aggregator's interval (1 s in `coffee-rt up`, 10–60 s in the seeds).
//!
//! The scratch database and the Redis namespace are removed afterwards, whatever happens.

use std::time::Duration;

use anyhow::Context;
use coffee_pipeline::v1::{AggregateMode, Aggregator};
use coffee_store::Projection;
use serde::Serialize;
use tokio::time::Instant;
use tokio_postgres::{Client, Config, NoTls};

use crate::ceilings::scratch_suffix;

/// The table sizes, smallest first.
pub const LADDER: [u64; 4] = [10_000, 100_000, 1_000_000, 10_000_000];
/// Largest size with `--quick`.
pub const QUICK_MAX_ROWS: u64 = 100_000;
/// Full recomputes per size; the median is reported.
pub const FULL_RUNS: usize = 3;
/// Rows added before the incremental run, in [`INCREMENT_TXNS`] transactions (like the v1
/// batcher's batches: the incremental window is by transaction id).
pub const INCREMENT_ROWS: u64 = 1_000;
pub const INCREMENT_TXNS: u64 = 10;
/// Generated orders are 10 ms apart: the history of a steady 100 orders/s (the seeds' v1
/// guess), so 10 M rows are about 28 hours of it, ending now.
pub const SPACING_MS: u64 = 10;
/// Rows per INSERT statement while growing the table.
const CHUNK: u64 = 1_000_000;
/// Growth steps adding at least this many rows drop the indexes and rebuild them after.
const REBUILD_FROM: u64 = 50_000;

/// The intervals a full recompute is compared with: seconds and where the number comes from.
pub const INTERVALS: [(f64, &str); 3] = [(1.0, "`coffee-rt up` default"), (10.0, "seeds, shortest"), (60.0, "seeds, longest")];

/// `coffee-rt bench aggregator`
#[derive(Debug, Clone, clap::Args)]
pub struct AggregatorArgs {
    /// Grow the table only up to 100k rows.
    #[arg(long)]
    pub quick: bool,
    /// Largest table size (default 10M, 100k with --quick); a size off the 10k/100k/1M/10M
    /// ladder is added as the last step.
    #[arg(long)]
    pub max_rows: Option<u64>,
    /// PostgreSQL admin URL (a scratch database is created and dropped).
    #[arg(long, env = "COFFEE_LAB_PG_URL", default_value = "postgres://coffee:coffee@127.0.0.1:5432/postgres")]
    pub pg_url: String,
    /// Redis URL for the aggregator's projection (a scratch namespace, removed after).
    #[arg(long, env = "COFFEE_LAB_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Print one JSON line instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl AggregatorArgs {
    pub fn sizes(&self) -> Vec<u64> {
        plan_sizes(self.quick, self.max_rows)
    }
}

/// The table sizes to measure: the ladder up to the cap, plus the cap itself when it is not on
/// the ladder.
pub fn plan_sizes(quick: bool, max_rows: Option<u64>) -> Vec<u64> {
    let cap = max_rows.unwrap_or(if quick { QUICK_MAX_ROWS } else { *LADDER.last().expect("ladder") });
    let mut sizes: Vec<u64> = LADDER.iter().copied().filter(|&s| s <= cap).collect();
    if cap > 0 && sizes.last() != Some(&cap) {
        sizes.push(cap);
    }
    sizes
}

/// A rough cost of measuring `sizes` on a 2-core machine, for the sweep's budget: growing costs
/// ~10 µs a row (insert plus index rebuild, rebuilt over the whole table), each full recompute
/// ~3 µs a row.
pub fn estimate(sizes: &[u64]) -> Duration {
    let mut secs = 0.0;
    let mut prev = 0u64;
    for &s in sizes {
        let added = s.saturating_sub(prev) as f64;
        let rebuild = if added >= REBUILD_FROM as f64 { s as f64 * 3e-6 } else { 0.0 };
        secs += added * 7e-6 + rebuild + s as f64 * 3e-6 * (FULL_RUNS as f64 + 0.5) + 1.0;
        prev = s;
    }
    Duration::from_secs_f64(secs.ceil())
}

/// One table size.
#[derive(Debug, Clone, Serialize)]
pub struct SizeResult {
    pub rows: u64,
    /// Table plus indexes.
    pub table_mib: f64,
    /// Time to grow the table to this size (insert, index rebuild, VACUUM ANALYZE).
    pub grow_s: f64,
    pub full_ms: Vec<f64>,
    pub full_median_ms: f64,
    /// Orders the full recompute counted (must be `rows`).
    pub full_counted: i64,
    pub incremental_ms: f64,
    /// Orders the incremental run counted (must be [`INCREMENT_ROWS`]).
    pub incremental_counted: i64,
    /// Set when another session's open transaction kept the runs from seeing every row.
    pub note: Option<String>,
}

/// Where the full recompute crosses one interval.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IntervalVerdict {
    pub interval_s: f64,
    pub source: String,
    /// First measured size whose full-recompute median exceeds the interval.
    pub first_size_over: Option<u64>,
    /// Table size at which the full recompute takes as long as the interval: interpolated
    /// between measured sizes, or extrapolated (linear in rows) beyond the largest.
    pub crossover_rows: Option<f64>,
    pub extrapolated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct AggregatorReport {
    pub sizes: Vec<SizeResult>,
    pub intervals: Vec<IntervalVerdict>,
    pub full_runs: usize,
    pub increment_rows: u64,
    /// Why the ladder stopped early, if it did.
    pub note: Option<String>,
    /// How the table was built and the aggregator run, for SCALE.md.
    pub method: String,
    pub duration_s: f64,
}

/// The median of `xs` (mean of the middle two for an even count); `NaN` for none.
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Where a full recompute, measured as `points` (rows, ms) sorted by rows, crosses
/// `interval_s`.
pub fn verdict(points: &[(u64, f64)], interval_s: f64, source: &str) -> IntervalVerdict {
    let t = interval_s * 1000.0;
    let first_size_over = points.iter().find(|p| p.1 > t).map(|p| p.0);
    let (mut crossover_rows, mut extrapolated) = (None, false);
    if let Some(i) = points.iter().position(|p| p.1 > t) {
        if i > 0 {
            let ((r0, m0), (r1, m1)) = (points[i - 1], points[i]);
            crossover_rows = Some(r0 as f64 + (t - m0) * (r1 - r0) as f64 / (m1 - m0));
        }
    } else if let Some(&(rn, mn)) = points.last() {
        // Beyond the largest size: the slope of the last two sizes, or through the origin.
        let slope = match points.len() {
            1 => mn / rn as f64,
            n => (mn - points[n - 2].1) / (rn - points[n - 2].0) as f64,
        };
        if slope > 0.0 {
            crossover_rows = Some(rn as f64 + (t - mn) / slope);
            extrapolated = true;
        }
    }
    IntervalVerdict { interval_s, source: source.to_string(), first_size_over, crossover_rows, extrapolated }
}

/// The verdicts of [`INTERVALS`] for measured sizes.
pub fn verdicts(sizes: &[SizeResult]) -> Vec<IntervalVerdict> {
    let points: Vec<(u64, f64)> = sizes.iter().map(|s| (s.rows, s.full_median_ms)).collect();
    INTERVALS.iter().map(|(s, src)| verdict(&points, *s, src)).collect()
}

/// `coffee-rt bench aggregator`.
pub async fn aggregator_command(args: AggregatorArgs) -> anyhow::Result<()> {
    let report = run_aggregator_bench(&args.pg_url, &args.redis_url, &args.sizes(), None, &|line| eprintln!("{line}")).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", crate::sweep::markdown::aggregator_table(&report));
        for line in crate::sweep::markdown::aggregator_verdict_lines(&report) {
            println!("{line}");
        }
        if let Some(n) = &report.note {
            println!("{n}");
        }
    }
    Ok(())
}

/// Grow a scratch `orders` table through `sizes` and time the aggregator at each. Stops before
/// a size that would run past `deadline` (noted in the report). `progress` gets a line per
/// phase.
pub async fn run_aggregator_bench(
    admin_url: &str,
    redis_url: &str,
    sizes: &[u64],
    deadline: Option<Instant>,
    progress: &(dyn Fn(String) + Sync),
) -> anyhow::Result<AggregatorReport> {
    anyhow::ensure!(!sizes.is_empty(), "no table sizes to measure");
    anyhow::ensure!(sizes.windows(2).all(|w| w[0] < w[1]), "table sizes must grow: {sizes:?}");
    let admin_cfg: Config = admin_url.parse().with_context(|| format!("bad PostgreSQL URL {admin_url}"))?;
    let admin = connect(&admin_cfg).await.with_context(|| format!("cannot connect to PostgreSQL at {admin_url}"))?;
    let suffix = scratch_suffix();
    let db = format!("{SCRATCH_DB_PREFIX}{suffix}");
    let namespace = format!("{SCRATCH_NS_PREFIX}{suffix}:");
    admin.batch_execute(&format!("CREATE DATABASE {db}")).await.context("CREATE DATABASE")?;
    let result = measure(&with_dbname(admin_url, &db), redis_url, &namespace, sizes, deadline, progress).await;
    let dropped = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
    let cleaned = delete_namespace(redis_url, &namespace).await;
    let report = result?;
    dropped.with_context(|| format!("DROP DATABASE {db}"))?;
    cleaned.with_context(|| format!("delete Redis keys {namespace}*"))?;
    Ok(report)
}

/// Scratch databases are named with this prefix and a random suffix.
pub const SCRATCH_DB_PREFIX: &str = "coffee_lab_agg_";
/// Scratch Redis namespaces are `coffee-lab:agg:<suffix>:`.
pub const SCRATCH_NS_PREFIX: &str = "coffee-lab:agg:";

async fn measure(
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

/// What growing to `size` and measuring it will take, scaled from the previous size.
fn projected_cost(prev: &SizeResult, size: u64) -> Duration {
    let ratio = size as f64 / prev.rows.max(1) as f64;
    let secs = prev.grow_s * ratio + prev.full_median_ms / 1000.0 * ratio * (FULL_RUNS as f64 + 0.5);
    Duration::from_secs_f64(secs.max(0.0))
}

/// The generator: rows `$1..=$2` of the history that starts at `$3`, as v1 orders.
pub const GENERATE_SQL: &str = "
INSERT INTO orders (order_id, version, drink, store, price_cents, ordered_at, accepted_at)
SELECT (lpad(to_hex((extract(epoch FROM ts) * 1000)::int8), 12, '0') || '7' || substr(h, 1, 3)
        || '8' || substr(h, 4, 15))::uuid,
       'v1',
       drink,
       CASE WHEN rs < 0.35 THEN 'downtown' WHEN rs < 0.65 THEN 'uptown'
            WHEN rs < 0.85 THEN 'central' ELSE 'southend' END,
       CASE drink WHEN 'latte' THEN 450 + 5 * floor(rp * 46)::int
                  WHEN 'cappuccino' THEN 425 + 5 * floor(rp * 31)::int
                  ELSE 350 + 5 * floor(rp * 21)::int END,
       ts,
       ts + ra * interval '50 ms'
FROM (SELECT md5(i::text) AS h, random() AS rs, random() AS rp, random() AS ra,
             CASE WHEN rd < 0.45 THEN 'latte' WHEN rd < 0.75 THEN 'cappuccino'
                  ELSE 'americano' END AS drink,
             $3::timestamptz + i * interval '10 ms' AS ts
      FROM (SELECT i, random() AS rd FROM generate_series($1::int8, $2::int8) AS g(i)
            OFFSET 0) a
      OFFSET 0) b";

/// Insert rows `from..to` of the history starting at `base`; returns the rows inserted.
pub async fn generate(client: &tokio_postgres::Client, from: u64, to: u64, base: chrono::DateTime<chrono::Utc>) -> anyhow::Result<u64> {
    if to <= from {
        return Ok(0);
    }
    let (from, last) = (from as i64, to as i64 - 1);
    client.execute(GENERATE_SQL, &[&from, &last, &base]).await.context("generate orders")
}

/// Grow the table from `from` rows to `to` rows. Large steps drop the primary key and indexes
/// first and rebuild them after (what a bulk load does; the result is the same table).
async fn grow(client: &tokio_postgres::Client, from: u64, to: u64, base: chrono::DateTime<chrono::Utc>) -> anyhow::Result<()> {
    let rebuild = to - from >= REBUILD_FROM;
    let mut recreate = Vec::new();
    if rebuild {
        for r in client
            .query(
                "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint
                 WHERE conrelid = 'orders'::regclass AND contype = 'p'",
                &[],
            )
            .await?
        {
            let (name, def): (String, String) = (r.get(0), r.get(1));
            client.batch_execute(&format!("ALTER TABLE orders DROP CONSTRAINT \"{name}\"")).await?;
            recreate.push(format!("ALTER TABLE orders ADD CONSTRAINT \"{name}\" {def}"));
        }
        for r in client
            .query(
                "SELECT indexname::text, indexdef FROM pg_indexes
                 WHERE schemaname = current_schema() AND tablename = 'orders'",
                &[],
            )
            .await?
        {
            let (name, def): (String, String) = (r.get(0), r.get(1));
            client.batch_execute(&format!("DROP INDEX \"{name}\"")).await?;
            recreate.push(def);
        }
    }
    let mut i = from;
    while i < to {
        let end = (i + CHUNK).min(to);
        generate(client, i, end, base).await?;
        i = end;
    }
    for sql in recreate {
        client.batch_execute(&sql).await.with_context(|| format!("rebuild: {sql}"))?;
    }
    client.batch_execute("VACUUM (ANALYZE) orders").await?;
    Ok(())
}

/// Add [`INCREMENT_ROWS`] rows in [`INCREMENT_TXNS`] transactions; returns the last
/// transaction's id.
async fn add_increment(client: &tokio_postgres::Client, from: u64, base: chrono::DateTime<chrono::Utc>) -> anyhow::Result<String> {
    let per = INCREMENT_ROWS / INCREMENT_TXNS;
    for k in 0..INCREMENT_TXNS {
        let start = from + k * per;
        let end = if k + 1 == INCREMENT_TXNS { from + INCREMENT_ROWS } else { start + per };
        let n = generate(client, start, end, base).await?;
        anyhow::ensure!(n == end - start, "inserted {n} of {} rows", end - start);
    }
    let last: String = client.query_one("SELECT max(txid)::text FROM orders WHERE version = 'v1'", &[]).await?.get(0);
    Ok(last)
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

async fn connect(cfg: &Config) -> anyhow::Result<Client> {
    let (client, conn) = cfg.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

async fn delete_namespace(redis_url: &str, namespace: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(redis_url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{namespace}*")).query_async(&mut conn).await?;
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL").arg(keys).query_async(&mut conn).await?;
    }
    Ok(())
}

/// `url` with its database name replaced by `db` (libpq URLs: `postgres://…/name?params`).
pub fn with_dbname(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// 10k, 100k, 1M, 10M, 2.5M.
pub fn rows_label(rows: u64) -> String {
    let (v, unit) = if rows >= 1_000_000 {
        (rows as f64 / 1e6, "M")
    } else if rows >= 1_000 {
        (rows as f64 / 1e3, "k")
    } else {
        (rows as f64, "")
    };
    if v.fract() == 0.0 { format!("{v:.0}{unit}") } else { format!("{v:.1}{unit}") }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_ladder_and_the_cap() {
        assert_eq!(plan_sizes(false, None), vec![10_000, 100_000, 1_000_000, 10_000_000]);
        assert_eq!(plan_sizes(true, None), vec![10_000, 100_000]);
        assert_eq!(plan_sizes(false, Some(3_000_000)), vec![10_000, 100_000, 1_000_000, 3_000_000]);
        assert_eq!(plan_sizes(true, Some(1_000_000)), vec![10_000, 100_000, 1_000_000]);
        assert_eq!(plan_sizes(false, Some(5_000)), vec![5_000]);
        assert!(estimate(&plan_sizes(false, None)) < Duration::from_secs(400));
        assert!(estimate(&plan_sizes(true, None)) < Duration::from_secs(10));
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn crossover_is_interpolated_inside_and_extrapolated_beyond() {
        let pts = [(10_000, 20.0), (100_000, 200.0), (1_000_000, 2_000.0)];
        // 1 s lies between 100k (0.2 s) and 1M (2 s).
        let v = verdict(&pts, 1.0, "x");
        assert_eq!(v.first_size_over, Some(1_000_000));
        assert!(!v.extrapolated);
        assert!((v.crossover_rows.unwrap() - 500_000.0).abs() < 1.0);
        // 10 s lies beyond 1M: the last slope (2 ms per 1,000 rows) gives 5M.
        let v = verdict(&pts, 10.0, "x");
        assert_eq!(v.first_size_over, None);
        assert!(v.extrapolated);
        assert!((v.crossover_rows.unwrap() - 5_000_000.0).abs() < 1.0);
        // Over at the smallest size: no crossover below it is claimed.
        let v = verdict(&pts, 0.01, "x");
        assert_eq!(v.first_size_over, Some(10_000));
        assert_eq!(v.crossover_rows, None);
        // One point: through the origin.
        let v = verdict(&[(100_000, 100.0)], 1.0, "x");
        assert!((v.crossover_rows.unwrap() - 1_000_000.0).abs() < 1.0);
        // Flat or falling times never cross.
        let v = verdict(&[(10_000, 50.0), (100_000, 40.0)], 1.0, "x");
        assert_eq!(v.crossover_rows, None);
    }

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(with_dbname("postgres://coffee:coffee@127.0.0.1:5432/postgres", "x"), "postgres://coffee:coffee@127.0.0.1:5432/x");
        assert_eq!(with_dbname("postgres://u:p@h/db?sslmode=disable", "x"), "postgres://u:p@h/x?sslmode=disable");
        assert_eq!(with_dbname("postgres://h:5432", "x"), "postgres://h:5432/x");
    }

    #[test]
    fn row_labels() {
        assert_eq!(rows_label(10_000), "10k");
        assert_eq!(rows_label(10_000_000), "10M");
        assert_eq!(rows_label(2_500_000), "2.5M");
        assert_eq!(rows_label(500), "500");
    }
}

//! `coffee-lab bench analytics`: the lab's answer for analytics — the history queries on
//! PostgreSQL and on ClickHouse against table size.
//!
//! For each size (1M and 10M orders by default, [`plan`]), on fresh scratch databases in both
//! stores:
//! 1. the orders are generated in PostgreSQL (the real migrations; the aggregator bench's
//!    generator, spread evenly over a year ending at today's local midnight: [`orders`]);
//! 2. the real warehouse sink ([`coffee_warehouse::sink::Sink::catch_up`]) copies them into
//!    ClickHouse, timed: its ingest rate;
//! 3. both stores' on-disk size is measured, ClickHouse's after `OPTIMIZE TABLE … FINAL`
//!    ([`storage`]);
//! 4. the four history queries ([`queries`]: the history module's `HistoryQuery` values run
//!    through `PgHistory` and `ClickHouseHistory`) are timed on both stores, alternating, after
//!    a warm-up run each; every answer is compared, and a difference fails the bench.
//!
//! [`verdict`] says where each store stops being interactive; the report renders it all
//! (`docs/ANALYTICS.md`, its plots) and the command prints one JSON line. The scratch databases
//! are dropped after each size, whatever happens.

pub mod orders;
pub mod plan;
pub mod queries;
pub mod storage;
pub mod timing;
pub mod verdict;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use coffee_store::postgres::{ScratchDatabase, snapshot_xmin, with_dbname};
use coffee_warehouse::ClickHouseConfig;
use coffee_warehouse::clickhouse::{ClickHouse, quote, quote_ident};
use coffee_warehouse::history::zone::day_start;
use coffee_warehouse::history::{ClickHouseHistory, PgHistory};
use coffee_warehouse::sink::{Sink, SinkConfig};
use tokio::time::Instant;

use crate::config::AnalyticsArgs;
use crate::machine::Machine;
use crate::procs;
use crate::report::format::rows_label;
use crate::results::analytics::{AnalyticsReport, SinkRun, SizeRun};

/// Scratch PostgreSQL databases are `coffee_lab_analytics_<pid>_<random>`, ClickHouse
/// databases `coffee_lab_analytics_<pid>_<random>` too.
pub const SCRATCH_PREFIX: &str = "coffee_lab_analytics_";

/// The stores' server processes, by `comm` (15 bytes at most: `clickhouse-server` is cut).
const SERVICES: [&str; 2] = ["postgres", "clickhouse-serv"];

/// Longest wait for the snapshot xmin to pass the generated orders.
const XMIN_WAIT: Duration = Duration::from_secs(120);

/// Requests to ClickHouse may take this long (an OPTIMIZE FINAL of a large table).
const CLICKHOUSE_TIMEOUT: Duration = Duration::from_secs(1800);

/// `coffee-lab bench analytics`: run, write ANALYTICS.md and its plots, print one JSON line.
pub async fn analytics_command(args: AnalyticsArgs) -> anyhow::Result<()> {
    let report = run_analytics_bench(&args, &|line| eprintln!("{line}")).await?;
    crate::report::analytics_md::write(&report, &args.out).with_context(|| format!("writing the report into {}", args.out.display()))?;
    eprintln!("analytics: wrote {}", args.out.join(crate::report::analytics_md::ANALYTICS_MD).display());
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// The whole bench; `progress` gets a line per phase.
pub async fn run_analytics_bench(args: &AnalyticsArgs, progress: &(dyn Fn(String) + Sync)) -> anyhow::Result<AnalyticsReport> {
    let started = Instant::now();
    let started_at = Utc::now();
    let load_at_start = load_average();
    let sizes = args.plan_sizes();
    let runs = args.plan_runs();
    anyhow::ensure!(!sizes.is_empty(), "no table sizes to measure");
    anyhow::ensure!(sizes.windows(2).all(|w| w[0] < w[1]), "table sizes must grow: {sizes:?}");
    let server_url = &args.services.database_url;

    let admin = admin_client(server_url).await?;
    let postgres_version: String = admin.query_one("SHOW server_version", &[]).await?.get(0);
    let pg_settings = settings(&admin).await?;
    let pg_dir: Option<String> = admin.query_one("SHOW data_directory", &[]).await.ok().map(|r| r.get(0));
    drop(admin);

    let probe = clickhouse(&args.clickhouse_url, "default")?;
    probe
        .ping()
        .await
        .with_context(|| format!("ClickHouse does not answer at {} (scripts/tools/clickhouse.sh starts one)", args.clickhouse_url))?;
    let clickhouse_version = probe.version().await?.to_string();
    let ch_dir = clickhouse_data_dir(&probe).await;

    // Disk: PostgreSQL's data directory when this user may see it, else the root filesystem;
    // ClickHouse's when it is on this machine.
    let mut free = Vec::new();
    for dir in [pg_dir.or_else(|| Some("/".into())), ch_dir].into_iter().flatten() {
        if let Some(bytes) = plan::free_bytes(Path::new(&dir)) {
            free.push((dir, bytes));
        }
    }
    plan::check_disk(&sizes, &free)?;
    let watched: Vec<PathBuf> = free.iter().map(|(dir, _)| PathBuf::from(dir)).collect();

    let tz = args.timezone;
    let end_date = Utc::now().with_timezone(&tz).date_naive();
    let end = day_start(end_date, tz).to_utc();
    let start = day_start(end_date - chrono::Duration::days(args.days.into()), tz).to_utc();

    let mut results = Vec::new();
    for &rows in &sizes {
        progress(format!("analytics: {} orders", rows_label(rows)));
        results.push(run_size(server_url, &args.clickhouse_url, rows, runs, (start, end), tz, &watched, progress).await?);
    }

    let crossings = verdict::crossings(&results);
    Ok(AnalyticsReport {
        started_at: started_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        command: args.report_command.clone().unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" ")),
        quick: args.quick,
        machine: Machine::read(),
        postgres_version: format!("PostgreSQL {postgres_version}"),
        clickhouse_version: format!("ClickHouse {clickhouse_version}"),
        runs,
        timezone: tz.name().to_string(),
        days: args.days,
        history_end: end.with_timezone(&tz).to_rfc3339(),
        method: method(&pg_settings, runs, args.days, tz),
        sizes: results,
        crossings,
        duration_s: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        load_average: [load_at_start, load_average()],
    })
}

/// One size on fresh scratch databases, dropped after, also when the free disk of a `watched`
/// directory runs low meanwhile (others share it): the run stops before the disk fills up.
#[allow(clippy::too_many_arguments)]
async fn run_size(
    server_url: &str,
    clickhouse_url: &str,
    rows: u64,
    runs: u64,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    tz: Tz,
    watched: &[PathBuf],
    progress: &(dyn Fn(String) + Sync),
) -> anyhow::Result<SizeRun> {
    let pg = ScratchDatabase::create(server_url, &format!("{SCRATCH_PREFIX}{}_", std::process::id()))
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {server_url} (or create a scratch database there)"))?;
    let ch = clickhouse(clickhouse_url, &format!("{SCRATCH_PREFIX}{}", crate::scratch::suffix()))?;
    let url = pg.url();
    let result = tokio::select! {
        r = measure_size(&url, &ch, rows, runs, start, end, tz, progress) => r,
        e = plan::watch_disk(watched) => Err(e),
    };
    let dropped_pg = pg.drop_now().await;
    let dropped_ch = ch.execute(&format!("DROP DATABASE IF EXISTS {}", quote_ident(ch.database()))).await;
    let run = result?;
    dropped_pg?;
    dropped_ch.with_context(|| format!("dropping ClickHouse database {}", ch.database()))?;
    Ok(run)
}

#[allow(clippy::too_many_arguments)]
async fn measure_size(
    url: &str,
    ch: &ClickHouse,
    rows: u64,
    runs: u64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    tz: Tz,
    progress: &(dyn Fn(String) + Sync),
) -> anyhow::Result<SizeRun> {
    let pool = coffee_store::postgres::connect(url, 4).await.context("scratch pool")?;
    coffee_store::postgres::migrate(&pool).await.context("migrate the scratch database")?;
    let client = pool.get().await?;
    client.batch_execute("SET maintenance_work_mem = '256MB'").await?;

    let t = Instant::now();
    orders::generate(&client, rows, start, end).await?;
    let generate_s = t.elapsed().as_secs_f64();
    progress(format!("analytics: {} orders generated in PostgreSQL in {generate_s:.1} s", rows_label(rows)));

    // The sink copies what lies below the snapshot xmin: let it cover the orders first (a
    // transaction of someone else's, anywhere on the server, holds it back).
    let last_txid: u64 = client.query_one("SELECT max(txid)::text FROM orders", &[]).await?.get::<_, String>(0).parse()?;
    let deadline = Instant::now() + XMIN_WAIT;
    while snapshot_xmin(&client).await? <= last_txid {
        anyhow::ensure!(
            Instant::now() < deadline,
            "a transaction outside the bench has held the snapshot xmin below the generated orders for {} s",
            XMIN_WAIT.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sink = Sink::new(pool.clone(), ch.clone(), SinkConfig::default());
    let own_cpu = || procs::cpu_times(std::process::id()).map_or(0.0, |t| t.cpu_s);
    let (own0, services0) = (own_cpu(), procs::cpu_s_by_name(&SERVICES));
    let caught = sink.catch_up().await.context("the warehouse sink")?;
    let (own1, services1) = (own_cpu(), procs::cpu_s_by_name(&SERVICES));
    anyhow::ensure!(caught.rows == rows, "the sink copied {} of {rows} orders", caught.rows);
    let used = |name: &str| {
        let d = services1.get(name).copied().unwrap_or(0.0) - services0.get(name).copied().unwrap_or(0.0);
        (d.max(0.0) * 100.0).round() / 100.0
    };
    let sink_run = SinkRun {
        rows: caught.rows,
        seconds: (caught.took.as_secs_f64() * 100.0).round() / 100.0,
        rows_per_s: caught.rows_per_second().round(),
        rounds: caught.rounds.into(),
        cpu_s_sink: ((own1 - own0).max(0.0) * 100.0).round() / 100.0,
        cpu_s_postgres: used(SERVICES[0]),
        cpu_s_clickhouse: used(SERVICES[1]),
    };
    progress(format!(
        "analytics: the sink copied {} orders in {:.1} s: {:.0} rows/s, {:.1} µs CPU per order (sink {:.1} s, PostgreSQL {:.1} s, ClickHouse {:.1} s)",
        rows_label(rows),
        sink_run.seconds,
        sink_run.rows_per_s,
        sink_run.cpu_us_per_order(),
        sink_run.cpu_s_sink,
        sink_run.cpu_s_postgres,
        sink_run.cpu_s_clickhouse,
    ));

    let storage = storage::measure(&client, ch, rows).await?;
    progress(format!(
        "analytics: on disk PostgreSQL {:.1} MiB, ClickHouse {:.1} MiB ({:.1} : 1; OPTIMIZE FINAL {:.1} s)",
        storage.pg_total_bytes as f64 / 1048576.0,
        storage.ch_bytes_on_disk as f64 / 1048576.0,
        storage.ratio_vs_postgres(),
        storage.optimize_s
    ));
    drop(client);

    let pg_history = PgHistory::new(pool.clone(), tz);
    let ch_history = ClickHouseHistory::new(ch.clone(), tz);
    let mut results = Vec::new();
    for q in queries::queries(start, end, tz) {
        let r = queries::measure(&pg_history, &ch_history, &q, runs).await?;
        progress(format!(
            "analytics: {:>4} {:<62} PostgreSQL {:>9.2} ms (p99 {:>9.2})  ClickHouse {:>8.2} ms (p99 {:>8.2})  {} buckets, equal",
            rows_label(rows),
            r.title,
            r.postgres.median_ms,
            r.postgres.p99_ms,
            r.clickhouse.median_ms,
            r.clickhouse.p99_ms,
            r.buckets
        ));
        results.push(r);
    }
    Ok(SizeRun { rows, generate_s: (generate_s * 10.0).round() / 10.0, sink: sink_run, storage, queries: results })
}

/// The 1-minute load average (`/proc/loadavg`), or `?`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").ok().and_then(|t| t.split_whitespace().next().map(str::to_owned)).unwrap_or_else(|| "?".into())
}

fn clickhouse(url: &str, database: &str) -> anyhow::Result<ClickHouse> {
    let config = ClickHouseConfig { url: url.to_string(), database: database.to_string() };
    ClickHouse::with_timeout(&config, CLICKHOUSE_TIMEOUT).with_context(|| format!("ClickHouse at {url}"))
}

/// A connection to the server's maintenance database (`postgres`), where the scratch databases
/// are made: `server_url`'s own database need not exist.
async fn admin_client(server_url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let url = with_dbname(server_url, "postgres")?;
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {server_url}"))?;
    tokio::spawn(conn);
    Ok(client)
}

/// The server settings that decide a scan's speed, for the method.
async fn settings(client: &tokio_postgres::Client) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for name in ["max_parallel_workers_per_gather", "shared_buffers", "work_mem", "jit"] {
        let v: String = client.query_one(&format!("SHOW {name}"), &[]).await?.get(0);
        out.push((name.to_string(), v));
    }
    Ok(out)
}

/// ClickHouse's data directory, when it is on this machine: the nearest existing parent of a
/// system table's metadata file.
async fn clickhouse_data_dir(ch: &ClickHouse) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Row {
        metadata_path: String,
    }
    let sql = format!("SELECT metadata_path FROM system.tables WHERE database = {} AND metadata_path != '' LIMIT 1", quote("system"));
    let rows: Vec<Row> = ch.query_json(&sql).await.ok()?;
    let mut path = PathBuf::from(&rows.first()?.metadata_path);
    while !path.is_dir() {
        path = path.parent()?.to_path_buf();
    }
    (path != Path::new("/")).then(|| path.display().to_string())
}

/// How the tables were built and the queries run.
fn method(pg_settings: &[(String, String)], runs: u64, days: u32, tz: Tz) -> Vec<String> {
    let settings: Vec<String> = pg_settings.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    vec![
        format!(
            "**Orders.** For each size, fresh scratch databases in both stores. PostgreSQL: the real schema (migrations, so `orders` has its primary key and the indexes of the aggregator and the sink); v1 orders generated in SQL by the aggregator bench's generator (generate_series; the load generator's mix: latte/cappuccino/americano 45/30/25 %, downtown/uptown/central/southend 35/30/20/15 %, menu prices in 5-cent steps, time-ordered ids), spread evenly over the {days} days before today's midnight in {tz}, 1M orders per INSERT; then REINDEX and VACUUM ANALYZE."
        ),
        "**The sink.** The warehouse role's own code (`Sink::catch_up`, default configuration: pages of 20,000 orders by (txid, order_id), no hot window) copies every order into an empty ClickHouse table (`ReplacingMergeTree`, partitioned by month, ordered by store and time); the rate is orders over the wall time of the whole catch-up. CPU: the bench's own process (the sink runs in it, nothing else does meanwhile) and every `postgres` and `clickhouse-server` process, from /proc, over the catch-up.".into(),
        "**Sizes.** PostgreSQL's `orders` with its indexes; ClickHouse's active parts after `OPTIMIZE TABLE … FINAL`, which merges each month into one part (the merged parts must hold exactly the table's rows).".into(),
        format!(
            "**Queries.** The history module's queries (`PgHistory` and `ClickHouseHistory`, `FROM orders FINAL` on ClickHouse), as `/api/history` runs them: buckets in {tz}, answers assembled by the same code. Per query one warm-up run on each store, then {runs} timed runs on each, the two stores alternating; every answer is compared with the warm-up's, and the two stores' warm-up answers with each other."
        ),
        format!("**PostgreSQL** settings as found: {}. ClickHouse as configured by scripts/tools/clickhouse.sh (max_threads: its default, the cores).", settings.join(", ")),
    ]
}

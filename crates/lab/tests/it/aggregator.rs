//! The aggregator bench against real PostgreSQL and Redis: it grows the table, times the real
//! aggregator, stops at the budget and leaves nothing behind.

use std::time::Duration;

use clap::Parser;
use coffee_lab::aggregator_bench::{INCREMENT_ROWS, SCRATCH_DB_PREFIX, SCRATCH_NS_PREFIX, history, run_aggregator_bench};
use coffee_lab::config::BenchCommand;
use coffee_lab::{Cli, Command};
use coffee_store::postgres::ScratchDatabase;
use tokio::time::Instant;

use crate::common::{PG, REDIS};

async fn admin() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(PG, tokio_postgres::NoTls).await.expect("PostgreSQL must be running");
    tokio::spawn(conn);
    client
}

/// Scratch databases and namespaces of this process's runs (the suffix starts with the pid).
async fn leftovers() -> (Vec<String>, Vec<String>) {
    let pid = std::process::id();
    let dbs = admin()
        .await
        .query("SELECT datname::text FROM pg_database WHERE datname LIKE $1", &[&format!("{SCRATCH_DB_PREFIX}{pid}_%")])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut c = redis::Client::open(REDIS).unwrap().get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{SCRATCH_NS_PREFIX}{pid}_*")).query_async(&mut c).await.unwrap();
    (dbs, keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grows_the_table_times_the_real_aggregator_and_cleans_up() {
    let _shared = crate::common::EXCLUSIVE.read().await;
    // 60k rows crosses the bulk-load threshold: indexes dropped and rebuilt.
    let lines = std::sync::Mutex::new(Vec::new());
    let report = run_aggregator_bench(PG, REDIS, &[2_000, 60_000], None, &|l| lines.lock().unwrap().push(l))
        .await
        .expect("bench runs (needs PostgreSQL and Redis)");
    assert_eq!(report.sizes.len(), 2);
    for s in &report.sizes {
        assert_eq!(s.full_ms.len(), 3);
        assert_eq!(s.full_counted, s.rows as i64, "full recompute counts the table");
        assert_eq!(s.incremental_counted, INCREMENT_ROWS as i64);
        assert!(s.full_median_ms > 0.0 && s.incremental_ms > 0.0);
        assert!(s.table_mib > 0.0);
    }
    assert!(report.sizes[1].table_mib > report.sizes[0].table_mib);
    assert_eq!(report.intervals.len(), 3);
    assert!(report.note.is_none());
    assert!(lines.lock().unwrap().len() >= 4);
    let (dbs, keys) = leftovers().await;
    assert!(dbs.is_empty() && keys.is_empty(), "left behind: {dbs:?} {keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_size_that_would_run_past_the_deadline_is_skipped() {
    let _shared = crate::common::EXCLUSIVE.read().await;
    let deadline = Instant::now() + Duration::from_secs(2);
    let report = run_aggregator_bench(PG, REDIS, &[1_000, 50_000_000], Some(deadline), &|_| {}).await.unwrap();
    assert_eq!(report.sizes.len(), 1, "the first size is always measured");
    assert!(report.note.as_deref().unwrap().contains("stopped before 50M"), "{:?}", report.note);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_orders_follow_the_load_generators_mix() {
    let _shared = crate::common::EXCLUSIVE.read().await;
    let db = ScratchDatabase::create(PG, "coffee_lab_gen_").await.expect("PostgreSQL must be running");
    let url = db.url();
    let result = async {
        let pool = coffee_store::postgres::connect(&url, 1).await?;
        coffee_store::postgres::migrate(&pool).await?;
        let client = pool.get().await?;
        let base = chrono::Utc::now() - chrono::Duration::hours(1);
        let n = history::generate(&client, 0, 40_000, base).await?;
        anyhow::ensure!(n == 40_000, "{n} rows");
        let share = |rows: &[tokio_postgres::Row], key: &str| -> f64 {
            rows.iter()
                .find(|r| r.get::<_, String>(0) == key)
                .map_or(0.0, |r| r.get::<_, i64>(1) as f64 / 40_000.0)
        };
        let drinks = client.query("SELECT drink, count(*) FROM orders GROUP BY 1", &[]).await?;
        for (d, w) in [("latte", 0.45), ("cappuccino", 0.30), ("americano", 0.25)] {
            let s = share(&drinks, d);
            anyhow::ensure!((s - w).abs() < 0.02, "{d}: {s}");
        }
        let stores = client.query("SELECT store, count(*) FROM orders GROUP BY 1", &[]).await?;
        for (st, w) in [("downtown", 0.35), ("uptown", 0.30), ("central", 0.20), ("southend", 0.15)] {
            let s = share(&stores, st);
            anyhow::ensure!((s - w).abs() < 0.02, "{st}: {s}");
        }
        // Menu prices in 5-cent steps, each drink inside its range and reaching both ends.
        let prices = client
            .query(
                "SELECT drink, min(price_cents), max(price_cents), bool_and(price_cents % 5 = 0),
                        bool_and(version = 'v1'), bool_and(accepted_at >= ordered_at)
                 FROM orders GROUP BY 1",
                &[],
            )
            .await?;
        for r in &prices {
            let d: String = r.get(0);
            let range = match d.as_str() {
                "latte" => (450, 675),
                "cappuccino" => (425, 575),
                _ => (350, 450),
            };
            anyhow::ensure!((r.get::<_, i64>(1), r.get::<_, i64>(2)) == range, "{d} prices");
            anyhow::ensure!(r.get::<_, bool>(3) && r.get::<_, bool>(4) && r.get::<_, bool>(5), "{d}");
        }
        // 10 ms apart: 40,000 rows span 400 s; ids are time-ordered like UUIDv7.
        let r = client
            .query_one(
                "SELECT extract(epoch FROM max(ordered_at) - min(ordered_at))::float8,
                        count(*) FILTER (WHERE substr(order_id::text, 15, 1) = '7')
                 FROM orders",
                &[],
            )
            .await?;
        anyhow::ensure!((r.get::<_, f64>(0) - 399.99).abs() < 0.01, "span {}", r.get::<_, f64>(0));
        anyhow::ensure!(r.get::<_, i64>(1) == 40_000, "version nibble");
        let ordered: bool = client
            .query_one(
                "SELECT bool_and(ok) FROM (SELECT order_id > lag(order_id) OVER (ORDER BY ordered_at) AS ok FROM orders) t WHERE ok IS NOT NULL",
                &[],
            )
            .await?
            .get(0);
        anyhow::ensure!(ordered, "ids follow time");
        Ok(())
    }
    .await;
    db.drop_now().await.unwrap();
    result.unwrap();
}

fn bench(args: &[&str]) -> coffee_lab::config::AggregatorArgs {
    let cli = Cli::try_parse_from(["coffee-lab", "bench", "aggregator"].iter().chain(args)).unwrap();
    let Command::Bench(BenchCommand::Aggregator(a)) = cli.command else { panic!("parsed as aggregator") };
    a
}

#[test]
fn bench_aggregator_parses() {
    let a = bench(&["--quick", "--max-rows", "50000", "--json"]);
    assert!(a.quick && a.json);
    assert_eq!(a.sizes(), vec![10_000, 50_000]);
    assert_eq!(bench(&[]).sizes(), vec![10_000, 100_000, 1_000_000, 10_000_000]);
}

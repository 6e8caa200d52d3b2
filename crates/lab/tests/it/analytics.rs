//! `coffee-lab bench analytics --quick` end to end, against the real PostgreSQL and ClickHouse:
//! it writes the report and its plots, both stores give the same answer to every query, and no
//! scratch database is left behind in either.

use std::process::{Command, Stdio};

use coffee_lab::analytics_bench::SCRATCH_PREFIX;
use coffee_warehouse::ClickHouseConfig;
use coffee_warehouse::clickhouse::{ClickHouse, quote};

use crate::common::{self, PG};

fn clickhouse_url() -> String {
    std::env::var("CLICKHOUSE_URL").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "http://127.0.0.1:8123".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_bench_reports_equal_answers_from_both_stores() {
    let _shared = common::EXCLUSIVE.read().await;
    let out_dir = std::env::temp_dir().join(format!("coffee-lab-analytics-{}", coffee_lab::scratch::suffix()));
    let ch_url = clickhouse_url();
    let (status, pid, stdout) = {
        let (dir, url) = (out_dir.clone(), ch_url.clone());
        tokio::task::spawn_blocking(move || {
            let child = Command::new(common::coffee_lab())
                .args(["bench", "analytics", "--quick", "--database-url", PG, "--clickhouse-url", &url, "--timezone", "Europe/Paris"])
                .arg("--out")
                .arg(&dir)
                .env("COFFEE_RT_LAB_COMMAND", "coffee-lab bench analytics --quick")
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("coffee-lab runs");
            let pid = child.id();
            let out = child.wait_with_output().expect("coffee-lab ends");
            (out.status, pid, String::from_utf8_lossy(&out.stdout).into_owned())
        })
        .await
        .unwrap()
    };
    let md = std::fs::read_to_string(out_dir.join("ANALYTICS.md"));
    let svgs: Vec<bool> = ["analytics-postgres.svg", "analytics-clickhouse.svg"].iter().map(|f| out_dir.join(f).is_file()).collect();
    let _ = std::fs::remove_dir_all(&out_dir);
    assert!(status.success(), "the bench failed ({status}):\n{stdout}");

    // One JSON line: one size of 20k orders, four queries, each answered alike by both stores.
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one JSON line on stdout:\n{stdout}");
    let r: serde_json::Value = serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(r["quick"], true);
    assert_eq!(r["timezone"], "Europe/Paris");
    let sizes = r["sizes"].as_array().expect("sizes");
    assert_eq!(sizes.len(), 1);
    let s = &sizes[0];
    assert_eq!(s["rows"], 20_000);
    assert_eq!(s["sink"]["rows"], 20_000, "the sink copied every order");
    assert!(s["sink"]["rows_per_s"].as_f64().unwrap() > 0.0);
    assert!(s["storage"]["pg_total_bytes"].as_u64().unwrap() > s["storage"]["ch_bytes_on_disk"].as_u64().unwrap());
    let queries = s["queries"].as_array().expect("queries");
    assert_eq!(queries.len(), 4);
    for q in queries {
        assert_eq!(q["answers_equal"], true, "{}", q["title"]);
        assert!(q["orders"].as_u64().unwrap() > 0 && q["buckets"].as_u64().unwrap() > 0, "{q}");
        for store in ["postgres", "clickhouse"] {
            assert_eq!(q[store]["runs_ms"].as_array().unwrap().len(), 3, "{store}: --quick times 3 runs");
            assert!(q[store]["median_ms"].as_f64().unwrap() > 0.0);
        }
    }
    // The whole-range queries count every order.
    for q in queries.iter().filter(|q| q["whole_range"] == true && q["params"].as_str().is_some_and(|p| !p.contains("store="))) {
        assert_eq!(q["orders"], 20_000, "{}", q["title"]);
    }
    assert_eq!(r["crossings"].as_array().unwrap().len(), 8, "four queries × two stores");

    // The report and its plots.
    let md = md.expect("ANALYTICS.md written");
    assert!(svgs.iter().all(|&x| x), "both plots written: {svgs:?}");
    assert!(md.contains("coffee-lab bench analytics --quick"), "the command to reproduce it");
    assert!(md.contains("## Where PostgreSQL stops being interactive") && md.contains("## The papers' claims, measured"));
    assert!(md.contains("10:1 compression") && md.contains("sub-second"));
    assert_eq!(md.matches("| yes ").count(), 4, "answers equal for every query:\n{md}");
    assert!(!md.contains("**no**"));

    // Nothing left behind by the child process.
    let prefix = format!("{SCRATCH_PREFIX}{pid}_");
    let (admin, conn) = tokio_postgres::connect(PG, tokio_postgres::NoTls).await.expect("PostgreSQL");
    tokio::spawn(conn);
    let dbs = admin.query("SELECT datname::text FROM pg_database WHERE datname LIKE $1", &[&format!("{prefix}%")]).await.unwrap();
    assert!(dbs.is_empty(), "PostgreSQL scratch databases left behind: {}", dbs.len());
    let ch = ClickHouse::new(&ClickHouseConfig { url: ch_url, database: "default".into() }).unwrap();
    #[derive(serde::Deserialize)]
    struct Name {
        name: String,
    }
    let left: Vec<Name> =
        ch.query_json(&format!("SELECT name FROM system.databases WHERE startsWith(name, {})", quote(&prefix))).await.unwrap();
    assert!(left.is_empty(), "ClickHouse scratch databases left behind: {:?}", left.iter().map(|n| &n.name).collect::<Vec<_>>());
}

#[test]
fn bench_analytics_parses() {
    use clap::Parser;
    use coffee_lab::config::BenchCommand;
    use coffee_lab::{Cli, Command};
    let parse = |args: &[&str]| {
        let cli = Cli::try_parse_from(["coffee-lab", "bench", "analytics"].iter().chain(args)).unwrap();
        let Command::Bench(BenchCommand::Analytics(a)) = cli.command else { panic!("parsed as analytics") };
        a
    };
    let a = parse(&[]);
    assert_eq!((a.plan_sizes(), a.plan_runs()), (vec![1_000_000, 10_000_000], 10));
    let a = parse(&["--quick"]);
    assert_eq!((a.plan_sizes(), a.plan_runs()), (vec![20_000], 3));
    let a = parse(&["--sizes", "1M,10M,100M", "--runs", "5", "--timezone", "Europe/Paris"]);
    assert_eq!((a.plan_sizes(), a.plan_runs()), (vec![1_000_000, 10_000_000, 100_000_000], 5));
    assert_eq!(a.timezone, chrono_tz::Europe::Paris);
    assert!(Cli::try_parse_from(["coffee-lab", "bench", "analytics", "--sizes", "lots"]).is_err());
    assert!(Cli::try_parse_from(["coffee-lab", "bench", "analytics", "--days", "500"]).is_err());
}

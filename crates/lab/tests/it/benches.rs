//! The benches of single parts through the `coffee-lab` binary, small: the dashboard's
//! WebSocket clients against `coffee-rt serve` + `worker`, and one processor catching up on a
//! backlog. Each must measure every sample and leave nothing behind.

use std::process::{Command, Stdio};

use crate::common::{self, PG, REDIS};

/// `coffee-lab bench <args>` on the test services; its stdout.
fn bench(args: &[&str]) -> String {
    let brokers = common::brokers();
    let out = Command::new(common::coffee_lab())
        .arg("bench")
        .args(args)
        .args(["--database-url", PG, "--redis-url", REDIS, "--brokers", &brokers])
        .stderr(Stdio::inherit())
        .output()
        .expect("coffee-lab runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "bench {args:?} failed ({}):\n{stdout}", out.status);
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_client_sees_every_order() {
    let _shared = common::EXCLUSIVE.read().await;
    common::coffee_rt();
    let out = tokio::task::spawn_blocking(|| bench(&["ws", "--clients", "20", "--orders", "3"])).await.unwrap();
    assert!(out.contains("clients connected   20 "), "{out}");
    assert!(out.contains("latency samples     60 (missed 0)"), "every client saw every order:\n{out}");
    let rss = out.lines().find(|l| l.starts_with("server RSS")).expect("an RSS line");
    assert!(!rss.contains("n/a"), "the server's RSS is read from /proc: {rss}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_processor_catches_up_on_a_small_backlog() {
    let _shared = common::EXCLUSIVE.read().await;
    let out = tokio::task::spawn_blocking(|| bench(&["backlog", "--records", "5000", "--partitions", "2"])).await.unwrap();
    let line = out.lines().last().expect("a JSON line");
    let r: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(r["records"], 5000);
    assert_eq!(r["rows"], 5000, "every record is a v3 row: {r}");
    assert!(r["records_per_s"].as_f64().unwrap() > 0.0 && r["peak_rss_mb_incl_producer"].as_f64().unwrap() > 1.0, "{r}");

    // Nothing of the bench is left: its databases, namespaces and topics carry this prefix.
    let (client, conn) = tokio_postgres::connect(PG, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let left: i64 =
        client.query_one("SELECT count(*) FROM pg_database WHERE starts_with(datname, 'coffee_lab_backlog_')", &[]).await.unwrap().get(0);
    assert_eq!(left, 0, "a backlog database was left behind");
}

//! `coffee-lab bench durability`, tiny: one backlog trial per mode against private Redis
//! servers and the real `coffee-rt serve` + `worker`. Without an AOF the kill must lose the
//! acknowledged orders (so the kill met work in flight); with `appendfsync always` it must
//! lose none. The results file and the document's section have their whole shape, and the
//! bench leaves no database behind.

use std::process::Stdio;

use crate::common::{self, PG};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_aof_the_kill_loses_acknowledged_orders_and_with_always_none() {
    let _shared = common::EXCLUSIVE.read().await;
    let coffee_rt = common::coffee_rt();
    let dir = std::env::temp_dir().join(format!("coffee-lab-durability-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (out, doc) = (dir.join("results.json"), dir.join("RELIABILITY.md"));
    std::fs::write(&doc, "# Reliability\n\nintro\n\n## Overload\n\nsomeone else's section\n").unwrap();

    let child = tokio::process::Command::new(common::coffee_lab())
        .args(["bench", "durability", "--modes", "none,always", "--scenarios", "backlog", "--trials", "1", "--rate", "200"])
        .args(["--before-kill", "1s", "--after-restart", "1s", "--cost-rate", "300", "--cost-duration", "1s", "--ladder", "300"])
        .args(["--step-duration", "1s"])
        .args(["--raw-duration", "1s", "--raw-clients", "2", "--database-url", PG, "--brokers", &common::brokers()])
        .arg("--coffee-rt")
        .arg(&coffee_rt)
        .arg("--out")
        .arg(&out)
        .arg("--doc")
        .arg(&doc)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("coffee-lab runs");
    let pid = child.id().unwrap();
    let run = child.wait_with_output().await.unwrap();
    assert!(run.status.success(), "bench durability failed ({}):\n{}", run.status, String::from_utf8_lossy(&run.stdout));

    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let trials = r["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2, "{r:#}");
    let trial = |mode: &str| trials.iter().find(|t| t["mode"] == mode).unwrap_or_else(|| panic!("a {mode} trial: {r:#}"));
    let (none, always) = (trial("none"), trial("always"));
    for t in [none, always] {
        assert_eq!(t["scenario"], "backlog");
        assert!(t["acked_before_kill"].as_u64().unwrap() > 50, "orders were acknowledged before the kill: {t}");
        assert!(t["redis_down_ms"].as_f64().unwrap() > 0.0, "{t}");
    }
    assert!(none["lost"].as_u64().unwrap() > 0, "no AOF: the kill lost acknowledged orders, so it met work in flight: {none}");
    assert!(none["loss_window_ms"].as_f64().unwrap() > 0.0, "{none}");
    assert_eq!(always["lost"], 0, "appendfsync always lost nothing: {always}");
    assert_eq!(
        always["stored"].as_u64().unwrap(),
        always["acked"].as_u64().unwrap() + always["unacked_stored"].as_u64().unwrap(),
        "{always}"
    );

    assert_eq!(r["summary"].as_array().unwrap().len(), 2, "{r:#}");
    let cost = &r["cost"];
    let modes: Vec<&str> = cost["modes"].as_array().unwrap().iter().map(|m| m["mode"].as_str().unwrap()).collect();
    assert_eq!(modes, ["everysec", "always"], "{cost:#}");
    for m in cost["modes"].as_array().unwrap() {
        assert_eq!(m["runs"].as_array().unwrap().len(), 3, "three alternating runs per mode: {m}");
        assert!(m["redis_cpu_us_per_order_median"].as_f64().unwrap() > 0.0, "redis-server's CPU from /proc: {m}");
        assert_eq!(m["ladder"][0]["offered"], 300.0, "{m}");
        assert!(m["closed_loop"]["orders_per_s"].as_f64().unwrap() > 0.0, "{m}");
    }
    assert!(cost["p99_ratio"].as_f64().unwrap() > 0.0, "{cost:#}");
    let raw: Vec<&str> = r["raw"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(raw.len(), 4, "{raw:?}");
    assert!(r["raw"][0]["ops"].as_u64().unwrap() > 0 && r["raw"][0]["supported"] == true, "{:#}", r["raw"]);
    assert!(!r["recommendation"].as_str().unwrap().is_empty());

    let text = std::fs::read_to_string(&doc).unwrap();
    assert!(text.starts_with("# Reliability\n\nintro\n\n## v2 durability by Redis persistence mode\n"), "{text}");
    assert!(text.contains("| none | backlog | 1 |") && text.contains("| always | backlog | 1 |"), "{text}");
    assert!(
        text.contains("<!-- other sections follow -->\n\n## Overload\n\nsomeone else's section\n"),
        "the other section is kept: {text}"
    );

    let (client, conn) = tokio_postgres::connect(PG, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let prefix = format!("coffee_lab_durability_{pid}_");
    let left: i64 = client.query_one("SELECT count(*) FROM pg_database WHERE starts_with(datname, $1)", &[&prefix]).await.unwrap().get(0);
    assert_eq!(left, 0, "a durability database was left behind");
    std::fs::remove_dir_all(&dir).unwrap();
}

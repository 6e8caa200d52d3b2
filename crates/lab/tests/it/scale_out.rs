//! The processor scale-out bench, small, through the `coffee-lab` binary: 20,000 records on 8
//! partitions drained by 1 and then 2 `coffee-rt processor` child processes. Each run must end
//! with every record in PostgreSQL once and counted once in Redis, and nothing of the bench may
//! be left behind.

use std::time::Duration;

use rdkafka::{
    ClientConfig,
    consumer::{BaseConsumer, Consumer},
};
use serde_json::Value;

use crate::common::{self, PG, REDIS};

const RECORDS: u64 = 20_000;

/// Runs `coffee-lab bench scale-out` with `args`; its last stdout line is the report as JSON.
fn scale_out(args: &[&str]) -> Value {
    let out = std::process::Command::new(common::coffee_lab())
        .args(["bench", "scale-out"])
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("coffee-lab runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the bench runs (PostgreSQL, Redis and Kafka must be up): {}\n{stdout}", out.status);
    eprintln!("{stdout}");
    serde_json::from_str(stdout.lines().last().expect("a JSON line")).expect("the last line is the report")
}

#[tokio::test(flavor = "multi_thread")]
async fn one_and_two_processors_drain_twenty_thousand_records_exactly_once() {
    let _shared = common::EXCLUSIVE.read().await;
    // The bench finds coffee-rt beside coffee-lab by itself; here it is checked to be built.
    common::coffee_rt();
    let records = RECORDS.to_string();
    let brokers = common::brokers();
    let report = tokio::task::spawn_blocking(move || {
        scale_out(&[
            "--records",
            &records,
            "--partitions",
            "8",
            "--instances",
            "1,2",
            "--database-url",
            PG,
            "--redis-url",
            REDIS,
            "--brokers",
            &brokers,
            "--drain-timeout",
            "120s",
        ])
    })
    .await
    .unwrap();

    assert_eq!(report["records"], RECORDS);
    assert_eq!(report["partitions"], 8);
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.iter().map(|r| r["instances"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2]);
    for r in runs {
        let n = r["instances"].as_u64().unwrap() as usize;
        let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
        let list = |k: &str| r[k].as_array().unwrap_or_else(|| panic!("{k} in {r}")).clone();
        assert_eq!(r["records"], RECORDS);
        assert_eq!(r["pg_rows"], RECORDS, "n={n}: every record is one row in PostgreSQL");
        assert_eq!(r["redis_orders"], RECORDS, "n={n}: Redis counts every record once");
        assert_eq!(r["redis_revenue_cents"], r["pg_revenue_cents"], "n={n}: Redis revenue matches PostgreSQL's");
        assert_eq!(r["fenced_partitions"], 8, "n={n}: every partition's Redis fence is at its outbox seq");
        assert_eq!(r["graceful_exit"], true, "n={n}: the instances stop cleanly on SIGTERM");
        assert_eq!(list("cpu_s_per_instance").len(), n);
        assert_eq!(list("rss_mib_per_instance").len(), n);
        assert_eq!(list("partitions_per_instance").len(), n);
        assert!(list("cpu_s_per_instance").iter().all(|c| c.as_f64().unwrap() > 0.0), "n={n}: CPU read from /proc: {r}");
        assert!(list("rss_mib_per_instance").iter().all(|m| m.as_f64().unwrap() > 1.0), "n={n}: RSS read from /proc: {r}");
        assert!(f("seconds") > 0.0 && f("first_record_seconds") <= f("seconds"));
        assert!((f("records_per_s") - RECORDS as f64 / f("seconds")).abs() < 1e-6);
    }

    // Cleanup: the databases, the Redis namespaces, the consumer groups and the topics are gone.
    let (client, conn) = tokio_postgres::connect(PG, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let databases: Vec<String> = runs.iter().map(|r| r["database"].as_str().unwrap().to_string()).collect();
    let left: i64 = client.query_one("SELECT count(*) FROM pg_database WHERE datname = ANY($1)", &[&databases]).await.unwrap().get(0);
    assert_eq!(left, 0, "the scratch databases {databases:?} were dropped");

    let mut redis = coffee_store::redis::connect(REDIS).await.unwrap();
    for r in runs {
        let ns = r["namespace"].as_str().unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{ns}*")).query_async(&mut redis).await.unwrap();
        assert!(keys.is_empty(), "the namespace {ns} was emptied: {keys:?}");
    }

    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", common::brokers()).create().unwrap();
    let topic = report["topic"].as_str().unwrap();
    let topics = [topic.to_string(), format!("{topic}.dead")];
    let gone = common::wait_until(Duration::from_secs(20), || {
        let consumer = &consumer;
        let topics = &topics;
        async move {
            let md = consumer.fetch_metadata(None, Duration::from_secs(5)).unwrap();
            md.topics().iter().all(|t| !topics.contains(&t.name().to_owned()))
        }
    })
    .await;
    assert!(gone, "the topics {topics:?} were deleted");
    for r in runs {
        let group = r["group"].as_str().unwrap();
        let groups = consumer.fetch_group_list(Some(group), Duration::from_secs(5)).unwrap();
        let live: Vec<String> = groups
            .groups()
            .iter()
            .filter(|g| g.state() != "Dead" && !g.state().is_empty())
            .map(|g| format!("{} {}", g.name(), g.state()))
            .collect();
        assert!(live.is_empty(), "the consumer group {group} was deleted: {live:?}");
    }
}

//! The processor scale-out bench, small: 20,000 records on 8 partitions drained by 1 and then 2
//! `coffee-rt processor` child processes. Each run must end with every record in PostgreSQL
//! once and counted once in Redis, and nothing of the bench may be left behind.

use std::time::Duration;

use clap::Parser;
use coffee_lab::sweep::scaleout::{ScaleOutArgs, run_scale_out, scale_out_table};
use rdkafka::{
    ClientConfig,
    consumer::{BaseConsumer, Consumer},
};

use crate::support::*;

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    args: ScaleOutArgs,
}

const RECORDS: u64 = 20_000;

#[tokio::test(flavor = "multi_thread")]
async fn one_and_two_processors_drain_twenty_thousand_records_exactly_once() {
    let args = Wrapper::parse_from([
        "test",
        "--bin",
        env!("CARGO_BIN_EXE_coffee-rt"),
        "--records",
        &RECORDS.to_string(),
        "--partitions",
        "8",
        "--instances",
        "1,2",
        "--pg-url",
        PG_ADMIN,
        "--redis-url",
        REDIS,
        "--kafka-brokers",
        &brokers(),
        "--drain-timeout",
        "120s",
    ])
    .args;
    let report = run_scale_out(&args, &|line| eprintln!("{line}")).await.expect("the bench runs (PostgreSQL, Redis and Kafka must be up)");
    eprintln!("{}\n{}", scale_out_table(&report), serde_json::to_string(&report).unwrap());

    assert_eq!(report.records, RECORDS);
    assert_eq!(report.partitions, 8);
    assert_eq!(report.runs.iter().map(|r| r.instances).collect::<Vec<_>>(), [1, 2]);
    for r in &report.runs {
        let n = r.instances;
        assert_eq!(r.records, RECORDS);
        assert_eq!(r.pg_rows, RECORDS as i64, "n={n}: every record is one row in PostgreSQL");
        assert_eq!(r.redis_orders, RECORDS as i64, "n={n}: Redis counts every record once");
        assert_eq!(r.redis_revenue_cents, r.pg_revenue_cents, "n={n}: Redis revenue matches PostgreSQL's");
        assert_eq!(r.fenced_partitions, 8, "n={n}: every partition's Redis fence is at its outbox seq");
        assert!(r.graceful_exit, "n={n}: the instances stop cleanly on SIGTERM");
        assert_eq!(r.cpu_s_per_instance.len(), n);
        assert_eq!(r.rss_mib_per_instance.len(), n);
        assert_eq!(r.partitions_per_instance.len(), n);
        assert!(r.cpu_s_per_instance.iter().all(|c| *c > 0.0), "n={n}: CPU read from /proc: {:?}", r.cpu_s_per_instance);
        assert!(r.rss_mib_per_instance.iter().all(|m| *m > 1.0), "n={n}: RSS read from /proc: {:?}", r.rss_mib_per_instance);
        assert!(r.seconds > 0.0 && r.first_record_seconds <= r.seconds);
        assert!((r.records_per_s - RECORDS as f64 / r.seconds).abs() < 1e-6);
    }

    // Cleanup: the databases, the Redis namespaces, the consumer groups and the topics are gone.
    let (client, conn) = tokio_postgres::connect(PG_ADMIN, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let databases: Vec<String> = report.runs.iter().map(|r| r.database.clone()).collect();
    let left: i64 = client.query_one("SELECT count(*) FROM pg_database WHERE datname = ANY($1)", &[&databases]).await.unwrap().get(0);
    assert_eq!(left, 0, "the scratch databases {databases:?} were dropped");

    let mut redis = coffee_store::redis::connect(REDIS).await.unwrap();
    for r in &report.runs {
        let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{}*", r.namespace)).query_async(&mut redis).await.unwrap();
        assert!(keys.is_empty(), "the namespace {} was emptied: {keys:?}", r.namespace);
    }

    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers()).create().unwrap();
    let topics = [report.topic.clone(), format!("{}.dead", report.topic)];
    let gone = wait_until(Duration::from_secs(20), || {
        let consumer = &consumer;
        let topics = &topics;
        async move {
            let md = consumer.fetch_metadata(None, Duration::from_secs(5)).unwrap();
            md.topics().iter().all(|t| !topics.contains(&t.name().to_owned()))
        }
    })
    .await;
    assert!(gone, "the topics {topics:?} were deleted");
    for r in &report.runs {
        let groups = consumer.fetch_group_list(Some(&r.group), Duration::from_secs(5)).unwrap();
        let live: Vec<String> = groups
            .groups()
            .iter()
            .filter(|g| g.state() != "Dead" && !g.state().is_empty())
            .map(|g| format!("{} {}", g.name(), g.state()))
            .collect();
        assert!(live.is_empty(), "the consumer group {} was deleted: {live:?}", r.group);
    }
}

//! v3 under faults: processors killed mid-stream, two processors at once, a broker restart,
//! malformed records.

use std::{collections::BTreeSet, process::Stdio, time::Duration};

use coffee_core::Version;
use rand::RngExt;
use rdkafka::{
    ClientConfig, Message,
    consumer::{Consumer, StreamConsumer},
    producer::{FutureProducer, FutureRecord},
    util::Timeout,
};
use tokio::process::Child;

use crate::{services::KafkaBroker, support::*};

/// Waits until every acknowledged order is stored and Redis counts exactly what PostgreSQL holds.
/// (A request the API answered 503 may still have reached the broker: the client retries such
/// an order with the same id, so it may count once, but never twice.)
async fn settle(env: &TestEnv, acked: &[String], within: Duration) {
    let done = wait_until(within, || async {
        stored(env, acked).await == acked.len() as i64 && env.total_orders(Version::V3).await == env.rows(Version::V3).await
    })
    .await;
    assert!(
        done,
        "{} of {} acknowledged stored; {} counted, {} rows",
        stored(env, acked).await,
        acked.len(),
        env.total_orders(Version::V3).await,
        env.rows(Version::V3).await
    );
    assert_no_drift(env, Version::V3).await;
}

fn processor(env: &TestEnv, log: Option<&std::path::Path>) -> Child {
    let mut cmd = env.command(&["processor"]);
    if let Some(path) = log {
        cmd.stderr(Stdio::from(std::fs::File::create(path).unwrap()));
    }
    cmd.spawn().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_three_times_during_twenty_thousand_orders() {
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    let posting = post_many(&app, "v3", 20_000, 64);
    let chaos = async {
        let mut child = processor(&env, None);
        for _ in 0..3 {
            let ms = rand::rng().random_range(1500..4000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            child.start_kill().unwrap(); // SIGKILL
            child.wait().await.unwrap();
            child = processor(&env, None);
        }
        child
    };
    let (acked, mut child) = tokio::join!(posting, chaos);
    assert!(acked.len() >= 19_000, "the broker acknowledged most orders ({})", acked.len());
    settle(&env, &acked, Duration::from_secs(120)).await;
    child.start_kill().unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_right_after_the_postgres_commit_counts_once() {
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    let acked = post_many(&app, "v3", 3000, 64).await;
    assert!(acked.len() >= 2900, "{}", acked.len());
    let mut cmd = env.command(&["processor"]);
    cmd.env("COFFEE_RT_CRASH_AFTER_COMMIT", "2");
    let status = cmd.status().await.unwrap();
    assert!(!status.success(), "the fault fired");
    let mut child = processor(&env, None);
    settle(&env, &acked, Duration::from_secs(60)).await;
    child.start_kill().unwrap();
    app.stop().await;
}

/// The partitions a processor's log says it holds last.
fn last_assignment(log: &std::path::Path) -> BTreeSet<i32> {
    let text = std::fs::read_to_string(log).unwrap();
    let mut held = BTreeSet::new();
    for line in text.lines() {
        let Some(start) = line.find("partitions=[") else { continue };
        let list = &line[start + 12..];
        let list = &list[..list.find(']').unwrap()];
        let ps: BTreeSet<i32> = list.split(',').filter_map(|p| p.trim().parse().ok()).collect();
        if line.contains("assigned") {
            // Eager rebalances revoke everything before assigning; cooperative ones add.
            held.extend(ps);
        } else if line.contains("revoked") {
            held.retain(|p| !ps.contains(p));
        }
    }
    held
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processors_split_the_partitions_and_count_exactly() {
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    let dir = std::env::temp_dir().join(&env.id);
    std::fs::create_dir_all(&dir).unwrap();
    let (log_a, log_b) = (dir.join("a.log"), dir.join("b.log"));
    let mut a = processor(&env, Some(&log_a));
    let mut b = processor(&env, Some(&log_b));
    let split = wait_until(Duration::from_secs(40), || async {
        let (x, y) = (last_assignment(&log_a), last_assignment(&log_b));
        !x.is_empty() && !y.is_empty() && x.is_disjoint(&y) && x.union(&y).count() == 4
    })
    .await;
    assert!(split, "partitions split: {:?} / {:?}", last_assignment(&log_a), last_assignment(&log_b));
    let acked = post_many(&app, "v3", 5000, 64).await;
    assert!(acked.len() >= 4800, "{}", acked.len());
    settle(&env, &acked, Duration::from_secs(60)).await;
    a.start_kill().unwrap();
    b.start_kill().unwrap();
    app.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_record_lands_in_the_dead_letter_topic() {
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    coffee_pipeline::sources::v3_kafka::ensure_topic(&env.config.kafka, &env.topic, 4).await.unwrap();
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", brokers()).create().unwrap();
    producer
        .send(FutureRecord::to(&env.topic).key("uptown").payload("{definitely not an order"), Timeout::After(Duration::from_secs(5)))
        .await
        .unwrap();
    post_many(&app, "v3", 20, 4).await;
    let (stop, task) = start_processor(&env, env.pool().await, env.projection().await);
    assert!(wait_until(Duration::from_secs(30), || async { env.total_orders(Version::V3).await == 20 }).await, "the processor keeps going");

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", format!("dlq-reader-{}", env.id))
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    consumer.subscribe(&[&env.config.kafka.dead_letter_topic()]).unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await.expect("a dead letter").unwrap();
    assert_eq!(msg.payload(), Some(&b"{definitely not an order"[..]));
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    app.stop().await;
}

/// SIGKILL of the broker in the middle of a stream, restarted on the same log directory after
/// 3 s: while it is down v3 answers 503 with `Retry-After` within the producer's timeout, and
/// once it is back every order is acknowledged (clients retry with the same id), stored once
/// and counted once.
#[tokio::test(flavor = "multi_thread")]
async fn a_broker_killed_mid_stream_loses_and_doubles_no_acknowledged_order() {
    let mut env = TestEnv::new();
    let mut broker = KafkaBroker::start(&env.id).await;
    env.config.kafka.brokers = broker.address();
    let app = env.spawn_app().await;
    let mut processor = processor(&env, None);
    let first = post_all(&app, "v3", 100, 8).await;
    assert!(wait_until(Duration::from_secs(60), || async { stored(&env, &first).await == 100 }).await, "the processor runs");
    let posting = post_all_within(&app, "v3", 4000, 32, Duration::from_secs(60));
    let outage = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let stored_before = env.rows(Version::V3).await;
        broker.kill().await;
        // While it is down, v3 answers 503 quickly and acknowledges nothing.
        let started = std::time::Instant::now();
        let (status, body) = app.post("v3", &order(0)).await;
        let waited = started.elapsed();
        let (_, ready) = app.get("/readyz").await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        broker.run().await;
        (stored_before, status, body, waited, ready)
    };
    let (acked, (stored_before, status, body, waited, ready)) = tokio::join!(posting, outage);
    assert!(stored_before > 100, "orders were flowing when the broker died");
    assert_eq!(status, 503, "{body}");
    assert!(waited < Duration::from_millis(2500), "503 took {waited:?}");
    assert!(ready["kafka"].as_str().unwrap().starts_with("error"), "{ready}");
    assert_eq!(acked.len(), 4000);
    assert!(stored_before < 4100, "the broker died before the stream ended ({stored_before} stored)");
    let acked: Vec<String> = first.into_iter().chain(acked).collect();
    settle(&env, &acked, Duration::from_secs(90)).await;
    // Nothing beyond the acknowledged orders but the one refused while the broker was down
    // (a 503 may still have reached the log; its client would retry it with the same id).
    let rows = env.rows(Version::V3).await;
    assert!(rows == 4100 || rows == 4101, "{rows} rows for 4100 acknowledged orders");
    processor.start_kill().unwrap();
    app.stop().await;
}

//! v3 under faults: processors killed mid-stream, two processors at once, a broker restart,
//! malformed records.

use std::{
    collections::BTreeSet,
    os::unix::process::ExitStatusExt,
    process::Stdio,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use coffee_core::Version;
use rand::RngExt;
use rdkafka::{
    ClientConfig, Message,
    consumer::{BaseConsumer, Consumer, StreamConsumer},
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
    truth::wait_projection_matches(env, Version::V3, Duration::from_secs(10)).await;
    assert_no_drift(env, Version::V3).await;
}

fn processor(env: &TestEnv, log: Option<&std::path::Path>) -> Child {
    let mut cmd = env.command(&["processor"]);
    if let Some(path) = log {
        cmd.stderr(Stdio::from(std::fs::File::create(path).unwrap()));
    }
    cmd.spawn().unwrap()
}

/// Where the v3 log stands against PostgreSQL: records in the topic (the sum of its partitions'
/// high watermarks; the topic is the test's own, so it starts at 0), and records whose offsets
/// `sink_positions` has committed.
struct LogPosition {
    in_log: i64,
    committed: i64,
}

async fn log_position(env: &TestEnv) -> LogPosition {
    let (kafka, partitions) = (env.kafka().clone(), env.kafka().partitions);
    let in_log = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &kafka.brokers).create().unwrap();
        (0..partitions).map(|p| consumer.fetch_watermarks(&kafka.topic, p, Duration::from_secs(10)).map_or(0, |(_, high)| high)).sum()
    })
    .await
    .unwrap();
    let pool = env.pool().await;
    let client = pool.get().await.unwrap();
    let committed: i64 = client
        .query_one(
            "SELECT COALESCE(sum(log_offset + 1), 0)::int8 FROM sink_positions WHERE source LIKE $1 AND log_offset IS NOT NULL",
            &[&format!("v3:{}:%", env.topic)],
        )
        .await
        .unwrap()
        .get(0);
    LogPosition { in_log, committed }
}

/// Three SIGKILLs of the processor while orders flow. Each kill must meet work in flight:
/// records in the log before the kill that the killed processor never committed; and between
/// two kills the processor must have committed something. A kill that finds the processor
/// caught up (or still joining the group) is retried, six tries at most. The API is not
/// faulted, so every order is acknowledged (503s retried with the same id), stored once, and
/// counted once.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_three_times_during_twenty_thousand_orders() {
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    let enough = AtomicBool::new(false);
    // The API is not faulted; a 503 only says the shared broker took longer than the
    // producer's 1.2 s timeout to confirm, and the client retries it with the same id.
    let posting = truth::post_acked_until(&app, "v3", 20_000, &enough, 64);
    let chaos = async {
        let (mut hits, mut attempts, mut last_committed) = (Vec::new(), 0, 0);
        let mut child = processor(&env, None);
        while hits.len() < 3 {
            attempts += 1;
            assert!(attempts <= 6, "no kill met uncommitted records in {attempts} attempts ({hits:?})");
            let moved = wait_until(Duration::from_secs(60), || async { log_position(&env).await.committed > last_committed }).await;
            assert!(moved, "the processor committed between two kills ({:?} committed)", log_position(&env).await.committed);
            let ms = rand::rng().random_range(200..1500);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            let before = log_position(&env).await;
            child.start_kill().unwrap(); // SIGKILL
            child.wait().await.unwrap();
            let after = log_position(&env).await;
            if before.in_log > after.committed {
                hits.push((before.in_log, after.committed));
            }
            last_committed = after.committed;
            child = processor(&env, None);
        }
        enough.store(true, Ordering::Relaxed);
        (child, hits)
    };
    let ((acked, retried), (mut child, hits)) = tokio::join!(posting, chaos);
    eprintln!("kills (records in the log, committed): {hits:?}; {} orders, {retried} 503s retried", acked.len());
    assert!(acked.len() >= 20_000);
    let ids: Vec<String> = acked.iter().map(|o| o["order_id"].as_str().unwrap().to_owned()).collect();
    settle(&env, &ids, Duration::from_secs(120)).await;
    assert_eq!(truth::rows(&env, Version::V3).await, truth::sum_of(&acked), "PostgreSQL holds the acknowledged orders, once");
    truth::assert_acked_stored(&env, Version::V3, &acked).await;
    child.start_kill().unwrap();
    app.stop().await;
}

/// The crash hook (`COFFEE_RT_CRASH_AFTER_COMMIT`, crates/pipeline/src/fault.rs) aborts the
/// processor right after its 2nd PostgreSQL commit: the test checks it died there (SIGABRT and
/// the hook's message), that PostgreSQL holds exactly those two commits with the second's
/// delta still unapplied in the outbox, and that a new processor counts every order once.
#[tokio::test(flavor = "multi_thread")]
async fn crash_right_after_the_postgres_commit_counts_once() {
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    let acked = post_all(&app, "v3", 3000, 64).await;
    assert_eq!(acked.len(), 3000);
    let mut cmd = env.command(&["processor"]);
    cmd.env("COFFEE_RT_CRASH_AFTER_COMMIT", "2").stderr(Stdio::piped());
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output()).await.expect("the processor crashes within 90 s").unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(6), "aborted by the hook (SIGABRT), not {:?}: {stderr}", out.status);
    assert!(stderr.contains("fault injection: aborting after commit 2"), "the hook fired: {stderr}");

    let pool = env.pool().await;
    let client = pool.get().await.unwrap();
    let prefix = format!("v3:{}:%", env.topic);
    let seqs: i64 =
        client.query_one("SELECT COALESCE(sum(seq), 0)::int8 FROM sink_positions WHERE source LIKE $1", &[&prefix]).await.unwrap().get(0);
    assert_eq!(seqs, 2, "exactly two batches committed");
    let outbox: i64 = client.query_one("SELECT count(*) FROM metrics_outbox WHERE source LIKE $1", &[&prefix]).await.unwrap().get(0);
    assert!(outbox >= 1, "the crashed batch's delta is in the outbox");
    let rows = truth::rows(&env, Version::V3).await;
    assert!(rows.count > 0 && rows.count < 3000, "crashed mid-backlog ({rows})");
    let counted = truth::from_redis(&env, Version::V3).await.unwrap().total;
    assert!(counted.count < rows.count, "Redis never heard of the crashed batch: {counted} counted, {rows} stored");

    let mut child = processor(&env, None);
    settle(&env, &acked, Duration::from_secs(60)).await;
    assert_eq!(truth::rows(&env, Version::V3).await.count, 3000);
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

//! v3 under faults: processors killed mid-stream, two processors at once, a broker restart,
//! malformed records.

use std::{collections::BTreeSet, process::Stdio, time::Duration};

use coffee_core::Version;
use rand::Rng;
use rdkafka::{
    ClientConfig, Message,
    consumer::{Consumer, StreamConsumer},
    producer::{FutureProducer, FutureRecord},
    util::Timeout,
};
use tokio::process::Child;

use crate::{support::*, v3_path::start_processor};

async fn count_acked(env: &TestEnv, acked: &[String]) -> i64 {
    let pool = env.pool().await;
    let ids: Vec<uuid::Uuid> = acked.iter().map(|s| s.parse().unwrap()).collect();
    pool.get().await.unwrap().query_one("SELECT count(*) FROM orders WHERE order_id = ANY($1)", &[&ids]).await.unwrap().get(0)
}

/// Waits until every acknowledged order is stored and Redis counts exactly what PostgreSQL holds.
/// (A request the API answered 503 may still have reached the broker: the client retries such
/// an order with the same id, so it may count once, but never twice.)
async fn settle(env: &TestEnv, acked: &[String], within: Duration) {
    let done = wait_until(within, || async {
        count_acked(env, acked).await == acked.len() as i64 && env.total_orders(Version::V3).await == env.rows(Version::V3).await
    })
    .await;
    assert!(done, "{} of {} acknowledged stored; {} counted, {} rows", count_acked(env, acked).await, acked.len(), env.total_orders(Version::V3).await, env.rows(Version::V3).await);
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
            held = ps;
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
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_record_lands_in_the_dead_letter_topic() {
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    coffee_pipeline::v3::ensure_topic(&env.settings.kafka, &env.topic, 4).await.unwrap();
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", brokers()).create().unwrap();
    producer.send(FutureRecord::to(&env.topic).key("uptown").payload("{definitely not an order"), Timeout::After(Duration::from_secs(5))).await.unwrap();
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
    consumer.subscribe(&[&env.settings.kafka.dead_letter_topic()]).unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await.expect("a dead letter").unwrap();
    assert_eq!(msg.payload(), Some(&b"{definitely not an order"[..]));
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    app.stop().await;
}

/// A private broker with PostgreSQL storage on a free port, so restarting it disturbs no one.
struct Broker {
    child: Option<Child>,
    port: u16,
    storage: String,
}

impl Broker {
    async fn start(id: &str) -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let db = format!("nisshi_{id}");
        let (client, conn) = tokio_postgres::connect(PG_ADMIN, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client.batch_execute(&format!("CREATE DATABASE \"{db}\"")).await.unwrap();
        let storage = format!("postgres://postgres@127.0.0.1/{db}?sslmode=disable");
        let mut b = Broker { child: None, port, storage };
        b.run().await;
        b
    }

    async fn run(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = tokio::process::Command::new("nisshi")
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", &self.storage, "--group-initial-rebalance-delay", "0s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the nisshi broker is installed (scripts/test installs it)");
        self.child = Some(child);
        let port = self.port;
        assert!(wait_until(Duration::from_secs(30), || async move { tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() }).await, "broker listens");
    }

    async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.start_kill().unwrap();
            c.wait().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_restart_loses_no_acknowledged_order() {
    let mut env = TestEnv::new();
    let mut broker = Broker::start(&env.id).await;
    env.settings.kafka.brokers = format!("127.0.0.1:{}", broker.port);
    let app = env.spawn_app().await;
    let mut processor = processor(&env, None);
    let mut acked = post_many(&app, "v3", 1500, 32).await;
    assert!(acked.len() >= 1400, "{}", acked.len());

    broker.kill().await;
    // While it is down, v3 answers 503 quickly and acknowledges nothing.
    let started = std::time::Instant::now();
    let (status, _) = app.post("v3", &order(0)).await;
    assert_eq!(status, 503);
    assert!(started.elapsed() < Duration::from_millis(2500), "took {:?}", started.elapsed());
    let (_, ready) = app.get("/readyz").await;
    assert!(ready["kafka"].as_str().unwrap().starts_with("error"), "{ready}");

    broker.run().await;
    assert!(wait_until(Duration::from_secs(30), || async { app.post("v3", &order(1)).await.0 == 202 }).await, "v3 recovers");
    acked.extend(post_many(&app, "v3", 1500, 32).await);
    settle(&env, &acked, Duration::from_secs(90)).await;
    processor.start_kill().unwrap();
    app.stop().await;
    broker.kill().await;
    let (client, conn) = tokio_postgres::connect(PG_ADMIN, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS \"nisshi_{}\" WITH (FORCE)", env.id)).await;
}

//! Test harness: an isolated environment per test, the app in-process or as child processes,
//! and a TCP proxy that can cut PostgreSQL off without stopping the shared server.

use std::{
    future::Future,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use clap::Parser;
use coffee_core::Version;
use coffee_server::{Application, Settings};
use coffee_store::{PgPool, Projection};
use serde_json::{Value, json};
use tokio::{
    net::{TcpListener, TcpStream},
    process::{Child, Command},
    sync::oneshot,
    task::JoinHandle,
};
use uuid::Uuid;

pub const PG_ADMIN: &str = "postgres://coffee:coffee@127.0.0.1:5432/postgres";
pub const REDIS: &str = "redis://127.0.0.1:6379/0";

pub fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    settings: Settings,
}

/// One test's private world: database, Redis namespace, Kafka topic.
pub struct TestEnv {
    pub id: String,
    pub database_url: String,
    pub redis_url: String,
    pub namespace: String,
    pub topic: String,
    pub settings: Settings,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        Self::with_database_port(5432)
    }

    /// As `new`, but the app reaches PostgreSQL through `port` (a [`Proxy`]).
    pub fn with_database_port(port: u16) -> TestEnv {
        Self::with_services(port, REDIS)
    }

    /// As `new`, but on the PostgreSQL at `pg_port` and the Redis at `redis_url` (private
    /// servers a test may kill, see `services`).
    pub fn with_services(port: u16, redis_url: &str) -> TestEnv {
        let id = format!("t{}", &Uuid::new_v4().simple().to_string()[..12]);
        let database_url = format!("postgres://coffee:coffee@127.0.0.1:{port}/coffee_{id}");
        let namespace = format!("{id}:");
        let topic = format!("orders_{id}");
        let settings = Wrapper::parse_from([
            "test",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &database_url,
            "--redis-url",
            redis_url,
            "--namespace",
            &namespace,
            "--topic",
            &topic,
            "--brokers",
            &brokers(),
            "--group",
            &format!("processors_{id}"),
            "--pg-pool",
            "8",
        ])
        .settings;
        TestEnv { id, database_url, redis_url: redis_url.to_owned(), namespace, topic, settings }
    }

    /// Environment variables that point a child `coffee-rt` at this world.
    pub fn envs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DATABASE_URL", self.database_url.clone()),
            ("REDIS_URL", self.redis_url.clone()),
            ("COFFEE_RT_NAMESPACE", self.namespace.clone()),
            ("KAFKA_TOPIC", self.topic.clone()),
            ("KAFKA_GROUP", self.settings.kafka.group.clone()),
            ("KAFKA_BROKERS", self.settings.kafka.brokers.clone()),
            ("COFFEE_RT_LOG", "info,librdkafka=off,rdkafka=off".into()),
        ]
    }

    pub async fn pool(&self) -> PgPool {
        let pool = coffee_store::postgres::connect(&self.database_url, 4).await.expect("PostgreSQL must be running");
        coffee_store::postgres::migrate(&pool).await.expect("migrations");
        pool
    }

    pub async fn projection(&self) -> Projection {
        let conn = coffee_store::redis::connect(&self.redis_url).await.expect("Redis must be running");
        Projection::new(conn, &self.namespace)
    }

    pub async fn redis(&self) -> redis::aio::ConnectionManager {
        coffee_store::redis::connect(&self.redis_url).await.expect("Redis must be running")
    }

    /// Rows of `version` in PostgreSQL.
    pub async fn rows(&self, version: Version) -> i64 {
        let pool = self.pool().await;
        let client = pool.get().await.unwrap();
        client.query_one("SELECT count(*) FROM orders WHERE version = $1", &[&version.as_str()]).await.unwrap().get(0)
    }

    pub async fn total_orders(&self, version: Version) -> i64 {
        self.projection().await.read_all(version).await.unwrap().total.count
    }

    /// Starts the HTTP app in this process.
    pub async fn spawn_app(&self) -> TestApp {
        let app = Application::build(&self.settings).await.expect("app builds");
        let port = app.port();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        TestApp { address: format!("http://127.0.0.1:{port}"), client: reqwest::Client::new(), stop: Some(stop), task }
    }

    /// Runs `coffee-rt <args>` as a child process in this world.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_coffee-rt"));
        cmd.args(args).envs(self.envs()).stdout(Stdio::null()).stderr(Stdio::inherit()).kill_on_drop(true);
        cmd
    }

    pub fn spawn(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Child {
        let mut cmd = self.command(args);
        cmd.envs(extra_env.iter().copied());
        cmd.spawn().expect("coffee-rt binary runs")
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let db = format!("coffee_{}", self.id);
        let ns = self.namespace.clone();
        let redis_url = self.redis_url.clone();
        let topics = [self.topic.clone(), self.settings.kafka.dead_letter_topic()];
        let kafka = self.settings.kafka.clone();
        // Best-effort cleanup on a thread of its own (Drop may run inside a runtime).
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                if let Ok((client, conn)) = tokio_postgres::connect(PG_ADMIN, tokio_postgres::NoTls).await {
                    tokio::spawn(conn);
                    let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)")).await;
                }
                let _ = coffee_pipeline::v3::delete_topics(&kafka, &topics).await;
                if let Ok(client) = redis::Client::open(redis_url.as_str())
                    && let Ok(mut c) = client.get_multiplexed_async_connection().await
                {
                    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{ns}*")).query_async(&mut c).await.unwrap_or_default();
                    if !keys.is_empty() {
                        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query_async(&mut c).await;
                    }
                }
            });
        })
        .join();
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl TestApp {
    pub async fn post_raw(&self, version: &str, content_type: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let res = self
            .client
            .post(format!("{}/api/{version}/order", self.address))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        let retry_after = res.headers().get("retry-after").is_some();
        let mut body: Value = res.json().await.unwrap_or(Value::Null);
        if status == 503 {
            assert!(retry_after, "503 without Retry-After");
        }
        if let Value::Object(m) = &mut body {
            m.insert("_status".into(), json!(status));
        }
        (status, body)
    }

    pub async fn post(&self, version: &str, order: &Value) -> (u16, Value) {
        self.post_raw(version, "application/json", order.to_string()).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = self.client.get(format!("{}{path}", self.address)).send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// A valid order with a fresh id.
pub fn order(i: usize) -> Value {
    let drinks = ["cappuccino", "americano", "latte"];
    let stores = ["uptown", "downtown", "central", "southend"];
    json!({
        "order_id": Uuid::now_v7().to_string(),
        "drink": drinks[i % 3],
        "store": stores[i % 4],
        // The literal a client would write (3.29), not a float sum (3.0 + 0.29 = 3.2899999999999996).
        "price": format!("{}.{:02}", 3 + (i % 300) / 100, i % 100).parse::<f64>().unwrap(),
        "timestamp": format!("2025-01-15T{:02}:{:02}:00Z", 8 + i % 10, i % 60),
    })
}

/// Posts `n` orders with `concurrency` in flight; returns the ids acknowledged with a 2xx.
pub async fn post_many(app: &TestApp, version: &str, n: usize, concurrency: usize) -> Vec<String> {
    use futures::StreamExt;
    futures::stream::iter(0..n)
        .map(|i| async move {
            let o = order(i);
            let (status, _) = app.post(version, &o).await;
            ((200..300).contains(&status)).then(|| o["order_id"].as_str().unwrap().to_owned())
        })
        .buffer_unordered(concurrency)
        .filter_map(|x| async move { x })
        .collect()
        .await
}

/// Posts `n` orders like a well-behaved client: a 503 is retried with the same body (same
/// `order_id`) until it is acknowledged. Returns the ids, all of them acknowledged.
pub async fn post_all(app: &TestApp, version: &str, n: usize, concurrency: usize) -> Vec<String> {
    post_all_within(app, version, n, concurrency, Duration::from_secs(6)).await
}

/// As `post_all`, retrying each order for up to `patience` (an outage the test causes).
pub async fn post_all_within(app: &TestApp, version: &str, n: usize, concurrency: usize, patience: Duration) -> Vec<String> {
    use futures::StreamExt;
    futures::stream::iter(0..n)
        .map(|i| async move {
            let o = order(i);
            let deadline = tokio::time::Instant::now() + patience;
            loop {
                let (status, body) = app.post(version, &o).await;
                match status {
                    200..=299 => return o["order_id"].as_str().unwrap().to_owned(),
                    503 if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
                    503 => panic!("{version}: order {} never acknowledged within {patience:?}", o["order_id"]),
                    other => panic!("{version} answered {other}: {body}"),
                }
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

/// How many of the `acked` order ids PostgreSQL holds.
pub async fn stored(env: &TestEnv, acked: &[String]) -> i64 {
    let pool = env.pool().await;
    let ids: Vec<Uuid> = acked.iter().map(|s| s.parse().unwrap()).collect();
    pool.get().await.unwrap().query_one("SELECT count(*) FROM orders WHERE order_id = ANY($1)", &[&ids]).await.unwrap().get(0)
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts that Redis agrees with a recomputation from PostgreSQL, to the cent.
pub async fn assert_no_drift(env: &TestEnv, version: Version) {
    let report = coffee_pipeline::reconcile::reconcile(&env.pool().await, &env.projection().await, version, false).await.unwrap();
    assert!(report.drift.is_empty(), "{version} drift: {:?}", report.drift);
}

/// A TCP proxy to PostgreSQL that a test can cut: `set_up(false)` drops every connection and
/// refuses new ones, as a crashed database would look to the app.
pub struct Proxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Proxy {
    pub async fn start(target: &'static str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let (tx, _) = tokio::sync::watch::channel(0u64);
        let generation = Arc::new(tx);
        let (up2, gen2) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut = gen2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy { port, up, generation }
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            self.generation.send_modify(|g| *g += 1);
        }
    }
}

//! One isolated coffee-rt per test, and the clients tests talk to it with.

use std::{path::Path, sync::Arc, time::Duration};

use clap::Parser;
use coffee_pipeline::{
    v1::{AggregateMode, Aggregator},
    v2::{Worker, WorkerConfig},
};
use coffee_server::{Application, Settings};
use futures::{SinkExt, StreamExt};
use rand::Rng;
use serde_json::Value;
use tokio::{net::TcpStream, task::JoinHandle, time::Instant};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
}

pub struct TestApp {
    pub base: String,
    pub port: u16,
    pub http: reqwest::Client,
    stop: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    roles: Vec<JoinHandle<()>>,
    settings: Settings,
    /// Runs when the TestApp is dropped (after the server stopped, or on a panic).
    cleanup: Option<Cleanup>,
}

impl TestApp {
    /// Starts the API, the v2 worker and the v1 aggregator (every 200 ms).
    pub async fn spawn(catalog: Option<&Path>) -> TestApp {
        let id: String = rand::rng().sample_iter(rand::distr::Alphanumeric).take(10).map(|c| (c as char).to_ascii_lowercase()).collect();
        let mut settings = Cli::parse_from(["it"]).settings;
        settings.listen = "127.0.0.1:0".parse().unwrap();
        let admin_url = "postgres://coffee:coffee@127.0.0.1:5432";
        let db = format!("coffee_test_{id}");
        settings.database_url = format!("{admin_url}/{db}");
        settings.namespace = format!("t{id}:");
        settings.kafka.topic = format!("coffee-test-{id}");
        settings.kafka.partitions = 1;
        settings.pg_pool = 6;
        settings.catalog = catalog.map(Path::to_path_buf);
        let cleanup = Cleanup {
            admin_url: format!("{admin_url}/postgres"),
            db,
            redis_url: settings.redis_url.clone(),
            namespace: settings.namespace.clone(),
            kafka: settings.kafka.clone(),
        };
        TestApp::start(settings, cleanup, &id).await
    }

    /// Stops this server but keeps its database and namespace for [`Stopped::start_again`].
    pub async fn stop_only(mut self) -> Stopped {
        let cleanup = self.cleanup.take().expect("cleanup");
        let mut settings = self.settings.clone();
        settings.listen = format!("127.0.0.1:{}", self.port).parse().unwrap();
        let id = settings.namespace.trim_start_matches('t').trim_end_matches(':').to_owned();
        self.stop().await;
        Stopped { settings, cleanup, id }
    }

    async fn start(settings: Settings, cleanup: Cleanup, id: &str) -> TestApp {
        let app = Application::build(&settings)
            .await
            .expect("coffee-rt needs PostgreSQL on 127.0.0.1:5432 and Redis (REDIS_URL or 127.0.0.1:6379); start them with scripts/test");
        let state = app.state().clone();
        let port = app.port();
        let stop = CancellationToken::new();

        let worker = Worker::new(
            WorkerConfig::new(format!("it-{id}")),
            state.pool.clone(),
            state.projection.clone(),
            Arc::clone(&state.catalog),
            &settings.redis_url,
        );
        let worker_stop = stop.clone();
        let worker = tokio::spawn(async move { worker.run(worker_stop.cancelled_owned()).await.expect("v2 worker") });
        let aggregator = Aggregator::new(state.pool.clone(), state.projection.clone());
        let agg_stop = stop.clone();
        let aggregator = tokio::spawn(async move {
            aggregator.run_every(Duration::from_millis(200), AggregateMode::Incremental, agg_stop.cancelled_owned()).await
        });
        drop(state);
        let server = tokio::spawn(app.run_until(stop.clone().cancelled_owned()));
        TestApp {
            base: format!("http://127.0.0.1:{port}"),
            port,
            http: reqwest::Client::new(),
            settings,
            stop,
            server: Some(server),
            roles: vec![worker, aggregator],
            cleanup: Some(cleanup),
        }
    }

    /// Posts one order and insists it is accepted.
    pub async fn order(&self, version: &str, drink: &str, store: &str, cents: i64) {
        let body = serde_json::json!({
            "drink": drink, "store": store, "price": cents as f64 / 100.0,
            "timestamp": chrono::Utc::now().to_rfc3339(),
        });
        let res = self.http.post(format!("{}/api/{version}/order", self.base)).json(&body).send().await.expect("POST order");
        let status = res.status();
        assert!(status.is_success(), "POST /api/{version}/order: {status} {}", res.text().await.unwrap_or_default());
    }

    pub async fn ws(&self) -> WsClient {
        let (socket, _) =
            tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws/dashboard", self.port)).await.expect("WebSocket connects");
        WsClient { socket }
    }

    /// Stops the server and its roles the way `up` does, and waits for them.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(15), server).await.expect("server stops within 15 s").unwrap().unwrap();
        }
        for role in self.roles.drain(..) {
            tokio::time::timeout(Duration::from_secs(15), role).await.expect("role stops").unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A stopped [`TestApp`] whose data is kept.
pub struct Stopped {
    settings: Settings,
    cleanup: Cleanup,
    id: String,
}

impl Stopped {
    /// A new server on the same port, database and namespace.
    pub async fn start_again(self) -> TestApp {
        TestApp::start(self.settings, self.cleanup, &self.id).await
    }
}

/// Drops the test's database and Redis keys, also when the test panics.
struct Cleanup {
    admin_url: String,
    db: String,
    redis_url: String,
    namespace: String,
    kafka: coffee_pipeline::v3::KafkaSettings,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (admin_url, db, redis_url, ns) = (self.admin_url.clone(), self.db.clone(), self.redis_url.clone(), self.namespace.clone());
        let kafka = self.kafka.clone();
        // Drop runs inside the test's runtime: do the async work on a thread of its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let _ = coffee_pipeline::v3::delete_topics(&kafka, &[kafka.topic.clone(), kafka.dead_letter_topic()]).await;
                if let Ok((client, conn)) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await {
                    tokio::spawn(conn);
                    let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)")).await;
                }
                if let Ok(client) = redis::Client::open(redis_url.as_str())
                    && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                {
                    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{ns}*")).query_async(&mut conn).await.unwrap_or_default();
                    if !keys.is_empty() {
                        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await;
                    }
                }
            });
        });
        let _ = done.join();
    }
}

pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// A text frame, parsed, or what else arrived.
#[derive(Debug)]
pub enum Frame {
    Snapshot(Value),
    Heartbeat,
    Closed(Option<u16>),
}

impl WsClient {
    /// The next frame, or None after `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Frame> {
        let deadline = Instant::now() + within;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.socket.next()).await.ok()?;
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).expect("frames are JSON");
                    return Some(match v["type"].as_str() {
                        Some("snapshot") => Frame::Snapshot(v),
                        Some("heartbeat") => Frame::Heartbeat,
                        other => panic!("unexpected frame type {other:?}"),
                    });
                }
                Some(Ok(Message::Close(c))) => return Some(Frame::Closed(c.map(|c| u16::from(c.code)))),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Some(Frame::Closed(None)),
            }
        }
    }

    /// The next snapshot (heartbeats skipped), or None after `within`.
    pub async fn next_snapshot(&mut self, within: Duration) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            match self.next(deadline.saturating_duration_since(Instant::now())).await? {
                Frame::Snapshot(v) => return Some(v),
                Frame::Heartbeat => {}
                Frame::Closed(code) => panic!("socket closed ({code:?})"),
            }
        }
    }

    /// Waits for a snapshot whose `version` total is `n`.
    pub async fn until_total(&mut self, version: &str, n: i64, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self.next_snapshot(left).await.unwrap_or_else(|| panic!("no snapshot with {version} total {n} within {within:?}"));
            if total(&v, version) == n {
                return v;
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.send(Message::Close(None)).await;
    }
}

pub fn total(snapshot: &Value, version: &str) -> i64 {
    snapshot["versions"][version]["total_orders"].as_i64().expect("total_orders")
}

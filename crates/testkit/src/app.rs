use std::{sync::Arc, time::Duration};

use coffee_pipeline::{AggregateMode, Aggregator, Worker, WorkerConfig};
use coffee_server::Application;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::TestEnv;

/// The real server of a [`TestEnv`], in this process, on port 0 (or a port given).
pub struct TestApp {
    /// e.g. `http://127.0.0.1:40123`
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    stop: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    roles: Vec<JoinHandle<()>>,
    /// The world, when the app owns it ([`TestApp::up`]).
    env: Option<TestEnv>,
}

/// Which roles run beside the API.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Roles {
    ApiOnly,
    /// The v2 worker and the v1 aggregator (every 200 ms), like `up` without the v3 processor.
    Background,
}

impl TestEnv {
    /// Starts the HTTP API alone.
    pub async fn spawn_app(&self) -> TestApp {
        start(self, Roles::ApiOnly, self.config.listen.port()).await
    }

    /// Starts the API with the v2 worker and the v1 aggregator (every 200 ms).
    pub async fn spawn_up(&self) -> TestApp {
        start(self, Roles::Background, self.config.listen.port()).await
    }
}

impl TestApp {
    /// A world of its own running the API, the v2 worker and the v1 aggregator; the app owns
    /// the world and removes it when dropped.
    pub async fn up(env: TestEnv) -> TestApp {
        let port = env.config.listen.port();
        let mut app = start(&env, Roles::Background, port).await;
        app.env = Some(env);
        app
    }

    /// The world of an app started by [`TestApp::up`].
    pub fn env(&self) -> &TestEnv {
        self.env.as_ref().expect("an app started by TestApp::up")
    }

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

    /// Posts one order of `drink` at `store` for `cents`, timestamped now, and insists it is accepted.
    pub async fn order(&self, version: &str, drink: &str, store: &str, cents: i64) {
        let body = json!({
            "drink": drink, "store": store, "price": cents as f64 / 100.0,
            "timestamp": chrono::Utc::now().to_rfc3339(),
        });
        let (status, reply) = self.post(version, &body).await;
        assert!((200..300).contains(&status), "POST /api/{version}/order: {status} {reply}");
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = self.client.get(format!("{}{path}", self.address)).send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Stops the server and its roles the way `up` does, and waits for them (15 s at most).
    pub async fn stop(mut self) {
        self.shut_down().await;
    }

    /// Stops this server but keeps its world for [`Stopped::start_again`] on the same port.
    pub async fn stop_only(mut self) -> Stopped {
        let roles = if self.roles.is_empty() { Roles::ApiOnly } else { Roles::Background };
        self.shut_down().await;
        Stopped { env: self.env.take().expect("an app started by TestApp::up"), port: self.port, roles }
    }

    async fn shut_down(&mut self) {
        self.stop.cancel();
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(15), server)
                .await
                .expect("server stops within 15 s")
                .unwrap()
                .expect("server stops cleanly");
        }
        for role in self.roles.drain(..) {
            tokio::time::timeout(Duration::from_secs(15), role).await.expect("role stops within 15 s").unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A stopped [`TestApp`] whose world is kept.
pub struct Stopped {
    env: TestEnv,
    port: u16,
    roles: Roles,
}

impl Stopped {
    /// A new server on the same port, database and namespace.
    pub async fn start_again(self) -> TestApp {
        let mut app = start(&self.env, self.roles, self.port).await;
        app.env = Some(self.env);
        app
    }
}

async fn start(env: &TestEnv, roles: Roles, port: u16) -> TestApp {
    let mut config = env.config.clone();
    config.listen.set_port(port);
    let app = Application::build(&config)
        .await
        .expect("coffee-rt needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (scripts/test starts them)");
    let port = app.port();
    let stop = CancellationToken::new();
    let mut handles = Vec::new();
    if roles == Roles::Background {
        let state = app.state().clone();
        let worker = Worker::new(
            WorkerConfig::new(format!("it-{}", env.id)),
            state.pool.clone(),
            state.projection.clone(),
            Arc::clone(&state.catalog),
            &config.redis_url,
        );
        let worker_stop = stop.clone();
        handles.push(tokio::spawn(async move { worker.run(worker_stop.cancelled_owned()).await.expect("v2 worker") }));
        let aggregator = Aggregator::new(state.pool.clone(), state.projection.clone());
        let agg_stop = stop.clone();
        handles.push(tokio::spawn(async move {
            aggregator.run_every(Duration::from_millis(200), AggregateMode::Incremental, agg_stop.cancelled_owned()).await
        }));
    }
    let server = tokio::spawn(app.run_until(stop.clone().cancelled_owned()));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::new(),
        stop,
        server: Some(server),
        roles: handles,
        env: None,
    }
}

//! One trial's world: a private Redis in the mode under test (`coffee-sandbox`: the shared
//! Redis serves other people's tests and is never killed), a scratch database on the shared
//! PostgreSQL, a scratch topic on the shared broker (`serve` creates its v3 topic at start),
//! and the real `coffee-rt serve` and `coffee-rt worker` pointed at them by environment.
//! [`World::remove`] takes it all down; the Redis goes with the value.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use coffee_pipeline::KafkaSettings;
use coffee_pipeline::sources::v3_kafka::delete_topics;
use coffee_sandbox::{Persistence, RedisServer};
use coffee_store::postgres::{self, ScratchDatabase};
use tokio::time::Instant;

use crate::children::{self, Child};
use crate::load::client::HttpClient;

/// The namespace inside the private Redis (nothing else lives there).
pub const NAMESPACE: &str = "durability:";
/// How long `serve` may take to answer `/readyz`.
const READY_WITHIN: Duration = Duration::from_secs(60);

pub struct World {
    pub redis: RedisServer,
    pub url: String,
    db: ScratchDatabase,
    kafka: KafkaSettings,
    bin: PathBuf,
    env: Vec<(&'static str, String)>,
    serve: Option<Child>,
    worker: Option<Child>,
    logs: PathBuf,
}

impl World {
    /// Starts Redis, creates and migrates the database, and starts `serve` (ready) and, when
    /// `worker`, the worker.
    pub async fn start(bin: &Path, database_url: &str, brokers: &str, persistence: Persistence, worker: bool) -> anyhow::Result<World> {
        let redis = RedisServer::start(persistence).await.context("starting the private Redis")?;
        let db = ScratchDatabase::create(database_url, &format!("coffee_lab_durability_{}_", std::process::id())).await?;
        let suffix = crate::scratch::suffix();
        let kafka =
            KafkaSettings { brokers: brokers.to_owned(), topic: format!("coffee-lab-durability-{suffix}"), ..KafkaSettings::default() };
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let env = vec![
            ("DATABASE_URL", db.url()),
            ("REDIS_URL", redis.url()),
            ("COFFEE_RT_NAMESPACE", NAMESPACE.to_owned()),
            ("COFFEE_RT_LISTEN", format!("127.0.0.1:{port}")),
            ("KAFKA_BROKERS", kafka.brokers.clone()),
            ("COFFEE_RT_KAFKA_TOPIC", kafka.topic.clone()),
            ("COFFEE_RT_CONSUMER", "durability-worker".to_owned()),
            ("COFFEE_RT_LOG", "warn".to_owned()),
        ];
        let logs = std::env::temp_dir().join(format!("coffee-lab-durability-{suffix}"));
        std::fs::create_dir_all(&logs)?;
        let mut world =
            World { redis, url: format!("http://127.0.0.1:{port}"), db, kafka, bin: bin.to_owned(), env, serve: None, worker: None, logs };
        if let Err(e) = world.spawn(worker).await {
            world.remove(false).await;
            return Err(e);
        }
        Ok(world)
    }

    async fn spawn(&mut self, worker: bool) -> anyhow::Result<()> {
        let pool = postgres::connect(&self.db.url(), 1).await.context("connecting to the scratch database")?;
        postgres::migrate(&pool).await.context("migrating the scratch database")?;
        drop(pool);
        self.serve = Some(self.child("serve")?);
        let client = HttpClient::new();
        let ready: http::Uri = format!("{}/readyz", self.url).parse()?;
        let deadline = Instant::now() + READY_WITHIN;
        while client.get_text(ready.clone()).await.is_err() {
            self.ensure_running()?;
            anyhow::ensure!(Instant::now() < deadline, "{} did not get ready within {READY_WITHIN:?}", self.url);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if worker {
            self.start_worker()?;
        }
        Ok(())
    }

    fn child(&self, role: &str) -> anyhow::Result<Child> {
        let mut cmd = children::command(&self.bin, role);
        cmd.envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        children::spawn(cmd, self.logs.join(format!("{role}.log")))
    }

    /// Starts the v2 worker (the backlog scenario starts it only once Redis is back).
    pub fn start_worker(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.worker.is_none(), "the worker is running already");
        self.worker = Some(self.child("worker")?);
        Ok(())
    }

    /// The scratch database's URL, for counting what it holds.
    pub fn database_url(&self) -> String {
        self.db.url()
    }

    /// The pids of `serve` and the worker (when running), for their CPU.
    pub fn coffee_rt_pids(&self) -> Vec<u32> {
        self.serve.iter().chain(self.worker.iter()).map(|c| c.pid).collect()
    }

    /// Fails when `serve` or the worker exited: a crash is a finding, not a loss to count.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        for c in self.serve.iter_mut().chain(self.worker.iter_mut()) {
            c.ensure_running()?;
        }
        Ok(())
    }

    /// Stops both roles, drops the database and the topic, kills Redis. The logs are kept
    /// when something failed (`keep_logs`), named in the warning.
    pub async fn remove(mut self, keep_logs: bool) {
        let mut roles: Vec<Child> = self.serve.take().into_iter().chain(self.worker.take()).collect();
        let graceful = children::stop(&mut roles).await;
        let dropped = self.db.drop_now().await;
        let deleted = delete_topics(&self.kafka, std::slice::from_ref(&self.kafka.topic)).await;
        if let Err(e) = dropped.and(deleted) {
            tracing::warn!("the durability bench's scratch state was not removed: {e:#}");
        }
        if graceful && !keep_logs {
            let _ = std::fs::remove_dir_all(&self.logs);
        } else {
            tracing::warn!("coffee-rt logs of the trial kept in {}", self.logs.display());
        }
    }
}

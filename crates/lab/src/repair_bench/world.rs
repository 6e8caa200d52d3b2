//! One trial's world: a private Redis that keeps nothing on disk (`coffee-sandbox`: the shared
//! Redis serves other people's tests and is never killed nor flushed), a scratch database on
//! the shared PostgreSQL, a scratch topic and group on the shared broker, and one real
//! `coffee-rt up` (API, v2 worker, v3 processor, v1 aggregator: every writer whose repair is
//! measured) pointed at them by environment. [`World::remove`] takes it all down; the Redis
//! goes with the value.

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
pub const NAMESPACE: &str = "repair:";
/// How long `up` may take to answer `/readyz`.
const READY_WITHIN: Duration = Duration::from_secs(60);

pub struct World {
    pub redis: RedisServer,
    /// `up`'s base URL.
    pub url: String,
    db: ScratchDatabase,
    kafka: KafkaSettings,
    up: Option<Child>,
    logs: PathBuf,
}

impl World {
    /// Starts Redis, creates and migrates the database, and starts `up` (ready).
    pub async fn start(bin: &Path, database_url: &str, brokers: &str, aggregate_every: Duration) -> anyhow::Result<World> {
        let redis = RedisServer::start(Persistence::None).await.context("starting the private Redis")?;
        let db = ScratchDatabase::create(database_url, &format!("coffee_lab_repair_{}_", std::process::id())).await?;
        let suffix = crate::scratch::suffix();
        let kafka = KafkaSettings {
            brokers: brokers.to_owned(),
            topic: format!("coffee-lab-repair-{suffix}"),
            group: format!("coffee-lab-repair-{suffix}"),
            ..KafkaSettings::default()
        };
        let logs = std::env::temp_dir().join(format!("coffee-lab-repair-{suffix}"));
        std::fs::create_dir_all(&logs)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut world = World { redis, url: format!("http://127.0.0.1:{port}"), db, kafka, up: None, logs };
        if let Err(e) = world.spawn(bin, port, aggregate_every).await {
            world.remove(true).await;
            return Err(e);
        }
        Ok(world)
    }

    async fn spawn(&mut self, bin: &Path, port: u16, aggregate_every: Duration) -> anyhow::Result<()> {
        let pool = postgres::connect(&self.db.url(), 1).await.context("connecting to the scratch database")?;
        postgres::migrate(&pool).await.context("migrating the scratch database")?;
        drop(pool);
        let mut cmd = children::command(bin, "up");
        cmd.env("DATABASE_URL", self.db.url())
            .env("REDIS_URL", self.redis.url())
            .env("COFFEE_RT_NAMESPACE", NAMESPACE)
            .env("COFFEE_RT_LISTEN", format!("127.0.0.1:{port}"))
            .env("KAFKA_BROKERS", &self.kafka.brokers)
            .env("COFFEE_RT_KAFKA_TOPIC", &self.kafka.topic)
            .env("COFFEE_RT_KAFKA_GROUP", &self.kafka.group)
            .env("COFFEE_RT_CONSUMER", "repair-bench")
            .env("COFFEE_RT_AGGREGATE_EVERY", humantime::format_duration(aggregate_every).to_string())
            .env("COFFEE_RT_LOG", "warn,librdkafka=off,rdkafka=off")
            // No warehouse sink: the lab's environment may name a ClickHouse for other benches.
            .env_remove("CLICKHOUSE_URL");
        self.up = Some(children::spawn(cmd, self.logs.join("up.log"))?);
        let client = HttpClient::new();
        let ready: http::Uri = format!("{}/readyz", self.url).parse()?;
        let deadline = Instant::now() + READY_WITHIN;
        while client.get_text(ready.clone()).await.is_err() {
            self.ensure_running()?;
            anyhow::ensure!(Instant::now() < deadline, "coffee-rt up at {} did not get ready within {READY_WITHIN:?}", self.url);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// The scratch database's URL, for counting what it holds.
    pub fn database_url(&self) -> String {
        self.db.url()
    }

    /// `up`'s pid.
    pub fn pid(&self) -> Option<u32> {
        self.up.as_ref().map(|c| c.pid)
    }

    /// Fails when `up` exited: a crash through the loss is a finding, not a figure.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        match self.up.as_mut() {
            Some(c) => c.ensure_running(),
            None => anyhow::bail!("coffee-rt up is not running"),
        }
    }

    /// Stops `up`, drops the database and the topics, kills Redis. The logs are kept when
    /// something failed (`keep_logs`) or `up` did not exit cleanly, named in the warning.
    pub async fn remove(mut self, keep_logs: bool) {
        let mut roles: Vec<Child> = self.up.take().into_iter().collect();
        let graceful = children::stop(&mut roles).await;
        let dropped = self.db.drop_now().await;
        let topics = [self.kafka.topic.clone(), self.kafka.dead_letter_topic()];
        let deleted = delete_topics(&self.kafka, &topics).await;
        if let Err(e) = dropped.and(deleted) {
            tracing::warn!("the repair bench's scratch state was not removed: {e:#}");
        }
        if graceful && !keep_logs {
            let _ = std::fs::remove_dir_all(&self.logs);
        } else {
            tracing::warn!("coffee-rt up's log of the trial kept in {}", self.logs.display());
        }
    }
}

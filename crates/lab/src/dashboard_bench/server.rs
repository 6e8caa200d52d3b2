//! The server the bench measures when it is given none: `coffee-rt serve` (the API, the
//! dashboard hub and its WebSockets) and `coffee-rt worker` (which counts the v2 orders, so
//! that their frames reach the clients), as two child processes on a scratch database and
//! Redis namespace (and a scratch topic: `serve` creates its v3 topic, although the bench posts
//! v2 orders only). The RSS reported is then that of `serve` alone: the process holding the
//! sockets, not the clients', which run in the lab.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use coffee_pipeline::KafkaSettings;
use coffee_pipeline::sources::v3_kafka::delete_topics;
use coffee_store::postgres::{self, ScratchDatabase};
use tokio::time::Instant;

use crate::children::{self, Child};
use crate::config::Services;
use crate::load::client::HttpClient;

/// How long the server may take to answer `/readyz`.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// The started server: its URL, its processes and its scratch state.
pub struct Server {
    pub url: String,
    /// `serve`, then `worker`.
    children: Vec<Child>,
    db: ScratchDatabase,
    namespace: String,
    redis_url: String,
    kafka: KafkaSettings,
}

impl Server {
    /// The pid of the process that holds the WebSockets.
    pub fn pid(&self) -> u32 {
        self.children[0].pid
    }

    /// Starts `serve` on a free port and `worker`, and waits until the server is ready.
    pub async fn start(bin: &Path, services: &Services) -> anyhow::Result<Server> {
        let db = ScratchDatabase::create(&services.database_url, &format!("coffee_lab_ws_{}_", std::process::id())).await?;
        let suffix = crate::scratch::suffix();
        let namespace = format!("coffee-lab:ws:{suffix}:");
        let kafka =
            KafkaSettings { brokers: services.kafka_brokers.clone(), topic: format!("coffee-lab-ws-{suffix}"), ..KafkaSettings::default() };
        let mut server = Server { url: String::new(), children: Vec::new(), db, namespace, redis_url: services.redis_url.clone(), kafka };
        if let Err(e) = server.spawn(bin).await {
            server.stop().await;
            return Err(e);
        }
        Ok(server)
    }

    async fn spawn(&mut self, bin: &Path) -> anyhow::Result<()> {
        let pool = postgres::connect(&self.db.url(), 1).await.context("connecting to the scratch database")?;
        postgres::migrate(&pool).await.context("migrating the scratch database")?;
        drop(pool);
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        self.url = format!("http://127.0.0.1:{port}");
        for role in ["serve", "worker"] {
            let mut cmd = children::command(bin, role);
            cmd.env("DATABASE_URL", self.db.url())
                .env("REDIS_URL", &self.redis_url)
                .env("COFFEE_RT_NAMESPACE", &self.namespace)
                .env("COFFEE_RT_LISTEN", format!("127.0.0.1:{port}"))
                .env("KAFKA_BROKERS", &self.kafka.brokers)
                .env("COFFEE_RT_KAFKA_TOPIC", &self.kafka.topic)
                .env("COFFEE_RT_LOG", "warn");
            let log = std::env::temp_dir().join(format!("coffee-lab-ws-{}-{role}.log", std::process::id()));
            self.children.push(children::spawn(cmd, log)?);
        }
        let client = HttpClient::new();
        let ready: http::Uri = format!("{}/readyz", self.url).parse()?;
        let deadline = Instant::now() + READY_WITHIN;
        while client.get_text(ready.clone()).await.is_err() {
            for c in &mut self.children {
                c.ensure_running()?;
            }
            anyhow::ensure!(Instant::now() < deadline, "{} did not get ready within {READY_WITHIN:?}", self.url);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Stops both processes and removes the database, the namespace and the topic.
    pub async fn stop(mut self) -> bool {
        let graceful = children::stop(&mut self.children).await;
        let dropped = self.db.drop_now().await;
        let cleaned = crate::scratch::delete_redis_keys(&self.redis_url, &self.namespace).await;
        let deleted = delete_topics(&self.kafka, std::slice::from_ref(&self.kafka.topic)).await;
        if let Err(e) = dropped.and(cleaned).and(deleted) {
            tracing::warn!("the dashboard bench's scratch state was not removed: {e:#}");
        }
        if graceful {
            for c in &self.children {
                let _ = std::fs::remove_file(&c.log);
            }
        }
        graceful
    }
}

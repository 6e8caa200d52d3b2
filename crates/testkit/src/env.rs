use std::{path::Path, process::Stdio, sync::Arc};

use coffee_core::{Catalog, Version};
use coffee_pipeline::{KafkaSettings, sources::v3_kafka};
use coffee_server::ServerConfig;
use coffee_store::{PgPool, Projection, postgres::ScratchDatabase};
use tokio::process::{Child, Command};
use uuid::Uuid;

/// The shared PostgreSQL server's maintenance database, as the scripts set it up.
pub const PG_ADMIN: &str = "postgres://coffee:coffee@127.0.0.1:5432/postgres";
pub const REDIS: &str = "redis://127.0.0.1:6379/0";

/// The broker the tests use: `KAFKA_BROKERS`, or the local one the scripts start.
pub fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| KafkaSettings::default().brokers)
}

/// One test's private world: database, Redis namespace, Kafka topic and group. Dropping it
/// removes all of them.
pub struct TestEnv {
    pub id: String,
    pub database_url: String,
    pub redis_url: String,
    pub namespace: String,
    pub topic: String,
    /// What [`TestEnv::spawn_app`] starts the server with; a test may change it first.
    pub config: ServerConfig,
    /// The database on the shared server, whatever port the app reaches it through.
    database: ScratchDatabase,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        Self::with_database_port(5432)
    }

    /// As `new`, but the app reaches PostgreSQL through `port` (a [`crate::Proxy`]).
    pub fn with_database_port(port: u16) -> TestEnv {
        Self::with_services(port, REDIS)
    }

    /// As `new`, but on the PostgreSQL at `port` and the Redis at `redis_url` (private servers
    /// a test may kill).
    pub fn with_services(port: u16, redis_url: &str) -> TestEnv {
        let id = format!("t{}", &Uuid::new_v4().simple().to_string()[..12]);
        let database_url = format!("postgres://coffee:coffee@127.0.0.1:{port}/coffee_{id}");
        let namespace = format!("{id}:");
        let topic = format!("orders_{id}");
        let config = ServerConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            database_url: database_url.clone(),
            redis_url: redis_url.to_owned(),
            namespace: namespace.clone(),
            pg_pool: 8,
            kafka: KafkaSettings { brokers: brokers(), topic: topic.clone(), group: format!("processors_{id}"), ..Default::default() },
            ..Default::default()
        };
        let database = ScratchDatabase::adopt(&coffee_store::postgres::with_dbname(PG_ADMIN, &format!("coffee_{id}")).expect("URL"));
        TestEnv { id, database_url, redis_url: redis_url.to_owned(), namespace, topic, config, database }
    }

    /// Uses the catalog in the TOML file at `path` instead of the built-in one.
    pub fn with_catalog(mut self, path: &Path) -> TestEnv {
        self.config.catalog = Arc::new(Catalog::load(path).expect("test catalog loads"));
        self
    }

    pub fn kafka(&self) -> &KafkaSettings {
        &self.config.kafka
    }

    /// Environment variables that point a child `coffee-rt` at this world.
    pub fn envs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DATABASE_URL", self.database_url.clone()),
            ("REDIS_URL", self.redis_url.clone()),
            ("COFFEE_RT_NAMESPACE", self.namespace.clone()),
            ("COFFEE_RT_KAFKA_TOPIC", self.topic.clone()),
            ("COFFEE_RT_KAFKA_GROUP", self.config.kafka.group.clone()),
            ("KAFKA_BROKERS", self.config.kafka.brokers.clone()),
            ("COFFEE_RT_LOG", "info,librdkafka=off,rdkafka=off".into()),
        ]
    }

    pub async fn pool(&self) -> PgPool {
        let pool = coffee_store::postgres::connect(&self.database_url, 4).await.expect("PostgreSQL must be running");
        coffee_store::postgres::migrate(&pool).await.expect("migrations");
        pool
    }

    pub async fn projection(&self) -> Projection {
        Projection::new(self.redis().await, &self.namespace)
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

    /// The total count of `version` in the Redis projection.
    pub async fn total_orders(&self, version: Version) -> i64 {
        self.projection().await.read_all(version).await.unwrap().total.count
    }

    /// Runs `coffee-rt <args>` as a child process in this world.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(crate::bin::path("coffee-rt"));
        // The scripts export the shared warehouse's URL; a test's `up` must not fill it. A test
        // that wants a sink passes its own CLICKHOUSE_URL and database in `extra_env`.
        cmd.env_remove("CLICKHOUSE_URL");
        cmd.args(args).envs(self.envs()).stdout(Stdio::null()).stderr(Stdio::inherit()).kill_on_drop(true);
        cmd
    }

    pub fn spawn(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Child {
        let mut cmd = self.command(args);
        cmd.envs(extra_env.iter().copied());
        cmd.spawn().expect("coffee-rt binary runs")
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        TestEnv::new()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let database = self.database.clone();
        let (ns, redis_url, kafka) = (self.namespace.clone(), self.redis_url.clone(), self.config.kafka.clone());
        // Drop may run inside the test's runtime: the async work runs on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let _ = database.drop_now().await;
                let _ = v3_kafka::delete_topics(&kafka, &[kafka.topic.clone(), kafka.dead_letter_topic()]).await;
                let _ = delete_namespace(&redis_url, &ns).await;
            });
        })
        .join();
    }
}

/// Deletes every key of a namespace.
pub(crate) async fn delete_namespace(redis_url: &str, namespace: &str) -> redis::RedisResult<()> {
    let mut conn = coffee_store::redis::connect(redis_url).await?;
    coffee_store::redis::delete_prefix(&mut conn, namespace).await.map(drop)
}

//! Every flag and environment variable of `coffee-rt`, declared here and nowhere else.
//!
//! Each role's arguments are a few shared groups ([`Services`], [`Kafka`], [`Http`], …) flattened
//! together, and each group turns into the plain configuration type of the crate that runs it
//! (`ServerConfig`, `WorkerConfig`, `ProcessorConfig`, `KafkaSettings`). Defaults are taken from
//! those types, so a default is written once. Environment variables are `COFFEE_RT_*`, plus the
//! ecosystem's `DATABASE_URL`, `REDIS_URL` and `KAFKA_BROKERS`. `docs/CONFIGURATION.md` is
//! generated from these definitions, and a test fails when it is out of date.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use clap::{Args, Parser, Subcommand};
use coffee_core::{Catalog, OrderWindow, Version};
use coffee_pipeline::{GroupProtocol, KafkaSettings, ProcessorConfig, WorkerConfig};
use coffee_server::{ServerConfig, Token};
use coffee_warehouse::{ClickHouseConfig, sink::SinkConfig};
use humantime::Duration;

/// `0.1.0 (<git revision>)`.
pub const LONG_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("COFFEE_RT_REVISION"), ")");

#[derive(Parser)]
#[command(name = "coffee-rt", version = LONG_VERSION, about = "Real-time café order analytics over three ingestion paths")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub log: Log,
}

/// How the process logs (to stderr).
#[derive(Debug, Clone, Args)]
pub struct Log {
    /// Log filter in `tracing-subscriber`'s `EnvFilter` syntax. `coffee_rt::http=debug` adds a
    /// span and an event per HTTP request (method, route, version, status, latency, order id).
    #[arg(long = "log", env = "COFFEE_RT_LOG", global = true, default_value = "info,librdkafka=off,rdkafka=off")]
    pub filter: String,
    /// `text` for people, `json` for one JSON object per line (log collectors).
    #[arg(long = "log-format", env = "COFFEE_RT_LOG_FORMAT", global = true, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Export trace spans over OTLP/HTTP to this collector, e.g. `http://127.0.0.1:4318/v1/traces`
    /// (a build with the `otlp` feature; off when unset).
    #[arg(long = "otlp-endpoint", env = "COFFEE_RT_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once at startup: boxing `up`'s arguments would save nothing")]
pub enum Command {
    /// Everything in one process: HTTP API and dashboard, v2 worker, v1 aggregator, v3 processor.
    Up(UpArgs),
    /// The HTTP API and dashboard only.
    Serve(ServeArgs),
    /// A v2 stream worker (consumer group `order-workers`). Run as many as you like.
    Worker(WorkerArgs),
    /// A v3 stream processor (consumer group `coffee-processors`). Run as many as there are partitions.
    Processor(ProcessorArgs),
    /// The v1 aggregator: recompute metrics from PostgreSQL into Redis.
    Aggregate(AggregateArgs),
    /// Run the database migrations.
    Migrate(MigrateArgs),
    /// Compare the Redis metrics with PostgreSQL and print the drift; `--fix` repairs Redis.
    Reconcile(ReconcileArgs),
    /// The warehouse sink: copy every committed order from PostgreSQL into ClickHouse (`CLICKHOUSE_URL`).
    Warehouse(WarehouseArgs),
}

/// The two sinks and how this process uses them: every role has these.
#[derive(Debug, Clone, Args)]
pub struct Services {
    /// PostgreSQL URL; the database is created if it is missing.
    #[arg(long, env = "DATABASE_URL", default_value_t = ServerConfig::default().database_url)]
    pub database_url: String,

    /// Redis URL.
    #[arg(long, env = "REDIS_URL", default_value_t = ServerConfig::default().redis_url)]
    pub redis_url: String,

    /// Prefix for every Redis key and channel (lets several deployments or tests share a Redis).
    #[arg(long, env = "COFFEE_RT_NAMESPACE", default_value_t = ServerConfig::default().namespace)]
    pub namespace: String,

    /// TOML file with `drinks = [...]` and `stores = [...]`; the built-in café's catalog when absent.
    #[arg(long, env = "COFFEE_RT_CATALOG")]
    pub catalog: Option<PathBuf>,

    /// PostgreSQL connections of this process.
    #[arg(long, env = "COFFEE_RT_PG_POOL", default_value_t = ServerConfig::default().pg_pool)]
    pub pg_pool: usize,
}

impl Services {
    pub fn load_catalog(&self) -> anyhow::Result<Arc<Catalog>> {
        Ok(Arc::new(match &self.catalog {
            Some(path) => Catalog::load(path)?,
            None => Catalog::default(),
        }))
    }
}

/// Where the broker is and which topic carries v3 orders.
#[derive(Debug, Clone, Args)]
pub struct Kafka {
    /// Kafka bootstrap servers (Apache Kafka, Redpanda or a managed Kafka).
    #[arg(long, env = "KAFKA_BROKERS", default_value_t = KafkaSettings::default().brokers)]
    pub brokers: String,

    /// Topic of v3 orders; created with `--partitions` partitions when missing.
    #[arg(long, env = "COFFEE_RT_KAFKA_TOPIC", default_value_t = KafkaSettings::default().topic)]
    pub topic: String,

    /// Consumer group of the v3 processors.
    #[arg(long, env = "COFFEE_RT_KAFKA_GROUP", default_value_t = KafkaSettings::default().group)]
    pub group: String,

    /// Partitions of a topic this process creates: the most processors that can share the work.
    #[arg(long, env = "COFFEE_RT_KAFKA_PARTITIONS", default_value_t = KafkaSettings::default().partitions,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,

    /// Replicas of each partition of a topic this process creates: 1 on a single broker, 3 on
    /// a production cluster (with the brokers' `min.insync.replicas=2`, so `acks=all` means two copies).
    #[arg(long, env = "COFFEE_RT_KAFKA_REPLICATION_FACTOR", default_value_t = KafkaSettings::default().replication_factor,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub replication_factor: i32,

    /// How long the v3 producer holds a record to batch it with others (`linger.ms`): the
    /// floor under every v3 acknowledgement at low rates, and fewer, fuller requests at high
    /// ones. 1 ms measured best overall (docs/PERFORMANCE.md).
    #[arg(long = "producer-linger", env = "COFFEE_RT_V3_LINGER", default_value_t = KafkaSettings::default().producer_linger.into())]
    pub producer_linger: Duration,
}

impl From<&Kafka> for KafkaSettings {
    fn from(k: &Kafka) -> Self {
        KafkaSettings {
            brokers: k.brokers.clone(),
            topic: k.topic.clone(),
            group: k.group.clone(),
            partitions: k.partitions,
            replication_factor: k.replication_factor,
            producer_linger: *k.producer_linger,
        }
    }
}

/// The HTTP API.
#[derive(Debug, Clone, Args)]
pub struct Http {
    /// Address the HTTP server listens on.
    #[arg(long, env = "COFFEE_RT_LISTEN", default_value_t = ServerConfig::default().listen)]
    pub listen: SocketAddr,

    /// v1: orders waiting for the batcher before the API answers 503.
    #[arg(long, env = "COFFEE_RT_V1_QUEUE", default_value_t = ServerConfig::default().v1_queue)]
    pub v1_queue: usize,

    /// v2: approximate cap of `orders:stream` (XADD MAXLEN ~). Far above any backlog.
    #[arg(long, env = "COFFEE_RT_V2_MAXLEN", default_value_t = ServerConfig::default().v2_maxlen)]
    pub v2_maxlen: usize,

    /// Order requests in flight at once (all versions); past it the API answers 503.
    #[arg(long, env = "COFFEE_RT_MAX_IN_FLIGHT", default_value_t = ServerConfig::default().max_in_flight)]
    pub max_in_flight: usize,

    /// The café's time zone (IANA name, e.g. `Europe/Paris`): history is bucketed by its days.
    #[arg(long, env = "COFFEE_RT_TIMEZONE", default_value_t = ServerConfig::default().timezone)]
    pub timezone: chrono_tz::Tz,

    /// How far ahead of this server's clock an order's `timestamp` may be; later is a 422
    /// naming `timestamp` (clients' clocks drift, but not by hours).
    #[arg(long = "order-max-future", env = "COFFEE_RT_ORDER_MAX_FUTURE",
          default_value_t = ServerConfig::default().order_window.max_future.into())]
    pub order_max_future: Duration,

    /// How old an order's `timestamp` may be; older is a 422 naming `timestamp`. Only the API
    /// checks it: the v2 worker and v3 processor store a backlog of any age.
    #[arg(long = "order-max-age", env = "COFFEE_RT_ORDER_MAX_AGE",
          default_value_t = ServerConfig::default().order_window.max_age.into())]
    pub order_max_age: Duration,

    /// TCP connections served at once; past it a connection gets one `503` (JSON, `Retry-After`)
    /// and is closed. Dashboard sockets count in `--max-ws-clients` once upgraded.
    #[arg(long, env = "COFFEE_RT_MAX_CONNECTIONS", default_value_t = ServerConfig::default().max_connections,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_connections: usize,

    /// Dashboard WebSockets at once; past it the upgrade is answered `503`.
    #[arg(long, env = "COFFEE_RT_MAX_WS_CLIENTS", default_value_t = ServerConfig::default().max_ws_clients)]
    pub max_ws_clients: usize,

    /// The longest a request may take, body included, before it is answered `503`. Keep it far
    /// above a v1 order's wait for its batch commit.
    #[arg(long, env = "COFFEE_RT_REQUEST_TIMEOUT", default_value_t = ServerConfig::default().request_timeout.into())]
    pub request_timeout: Duration,

    /// The longest a client may take to send a request's headers, and the longest an idle
    /// keep-alive connection stays open; then the connection is closed.
    #[arg(long, env = "COFFEE_RT_HEADER_TIMEOUT", default_value_t = ServerConfig::default().header_timeout.into())]
    pub header_timeout: Duration,

    /// The longest a client may take to send a request's body; then `408` and the connection is closed.
    #[arg(long, env = "COFFEE_RT_BODY_TIMEOUT", default_value_t = ServerConfig::default().body_timeout.into())]
    pub body_timeout: Duration,

    /// Origins besides the page's own that may open `/ws/dashboard`, comma-separated
    /// (e.g. `https://dashboard.example.com`).
    #[arg(long, env = "COFFEE_RT_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Bearer token of the order routes (`POST /api/{v}/order`, `/api/validate`). Required when
    /// `--listen` is not loopback. At least 16 of `A-Z a-z 0-9 - . _ ~` (`openssl rand -hex 32`).
    #[arg(long, env = "COFFEE_RT_INGEST_TOKEN", hide_env_values = true)]
    pub ingest_token: Option<Token>,

    /// A file holding the ingest token (a mounted Kubernetes Secret).
    #[arg(long, env = "COFFEE_RT_INGEST_TOKEN_FILE", conflicts_with = "ingest_token")]
    pub ingest_token_file: Option<PathBuf>,

    /// Bearer token (or the page's cookie) of the dashboard, its WebSocket, `/api/dashboard`,
    /// `/api/history` and `/metrics`. Required when `--listen` is not loopback. A browser opens
    /// the dashboard once as `/?token=<read token>`.
    #[arg(long, env = "COFFEE_RT_READ_TOKEN", hide_env_values = true)]
    pub read_token: Option<Token>,

    /// A file holding the read token (a mounted Kubernetes Secret).
    #[arg(long, env = "COFFEE_RT_READ_TOKEN_FILE", conflicts_with = "read_token")]
    pub read_token_file: Option<PathBuf>,

    /// Listen on a non-loopback address without tokens: anyone who can reach the port may post
    /// orders and read the revenue. The startup log warns.
    #[arg(long, env = "COFFEE_RT_INSECURE_NO_AUTH", value_parser = clap::builder::BoolishValueParser::new())]
    pub insecure_no_auth: bool,

    /// How long a used `order_id` is remembered in Redis, so a repeat is answered as a replay
    /// and another body under it as a conflict (409) on every path. Past it, v1 still checks
    /// PostgreSQL, and v2/v3 store the id once.
    #[arg(long, env = "COFFEE_RT_IDEMPOTENCY_TTL", default_value_t = ServerConfig::default().idempotency_ttl.into())]
    pub idempotency_ttl: Duration,
}

impl Http {
    fn token(value: &Option<Token>, file: &Option<PathBuf>) -> anyhow::Result<Option<Token>> {
        match (value, file) {
            (Some(t), _) => Ok(Some(t.clone())),
            (None, Some(path)) => Token::from_file(path).map(Some),
            (None, None) => Ok(None),
        }
    }
}

/// The warehouse (ClickHouse over HTTP). Without a URL there is none, and the history API
/// reads PostgreSQL.
#[derive(Debug, Clone, Args)]
pub struct Warehouse {
    /// ClickHouse's HTTP interface, e.g. `http://127.0.0.1:8123` (credentials in the URL).
    #[arg(long, env = "CLICKHOUSE_URL")]
    pub clickhouse_url: Option<String>,
    /// The ClickHouse database of the warehouse.
    #[arg(long, env = "COFFEE_RT_CLICKHOUSE_DATABASE", default_value = "coffee_rt")]
    pub clickhouse_database: String,
}

impl Warehouse {
    pub fn config(&self) -> Option<ClickHouseConfig> {
        let url = self.clickhouse_url.clone().filter(|u| !u.is_empty())?;
        Some(ClickHouseConfig { url, database: self.clickhouse_database.clone() })
    }
}

/// How the warehouse sink copies orders (`coffee-rt warehouse`, and `up` with a `CLICKHOUSE_URL`).
#[derive(Debug, Clone, Args)]
pub struct WarehouseSink {
    /// Orders per page: one PostgreSQL statement and one ClickHouse insert.
    #[arg(long = "warehouse-page", env = "COFFEE_RT_WAREHOUSE_PAGE", default_value_t = SinkConfig::default().page_size,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub page: usize,
    /// How often a round starts when the sink has caught up: the warehouse is this much (plus
    /// a round) behind PostgreSQL.
    #[arg(long = "warehouse-every", env = "COFFEE_RT_WAREHOUSE_EVERY", default_value_t = SinkConfig::default().every.into())]
    pub every: Duration,
    /// The hot window in days (the papers' 1–7): older orders leave ClickHouse (a TTL on
    /// ClickHouse 19.6+; on older servers whole months older than the window are dropped).
    /// Unset: ClickHouse keeps everything.
    #[arg(long = "warehouse-hot-days", env = "COFFEE_RT_WAREHOUSE_HOT_DAYS", value_parser = clap::value_parser!(u32).range(1..))]
    pub hot_days: Option<u32>,
}

impl WarehouseSink {
    pub fn config(&self) -> SinkConfig {
        SinkConfig { page_size: self.page, every: *self.every, hot_days: self.hot_days, ..SinkConfig::default() }
    }
}

/// The server's configuration from its groups.
pub fn server_config(services: &Services, kafka: &Kafka, http: &Http, warehouse: &Warehouse) -> anyhow::Result<ServerConfig> {
    Ok(ServerConfig {
        listen: http.listen,
        database_url: services.database_url.clone(),
        redis_url: services.redis_url.clone(),
        namespace: services.namespace.clone(),
        catalog: services.load_catalog()?,
        order_window: OrderWindow { max_future: *http.order_max_future, max_age: *http.order_max_age },
        pg_pool: services.pg_pool,
        v1_queue: http.v1_queue,
        v2_maxlen: http.v2_maxlen,
        max_in_flight: http.max_in_flight,
        kafka: kafka.into(),
        timezone: http.timezone,
        warehouse: warehouse.config(),
        max_connections: http.max_connections,
        max_ws_clients: http.max_ws_clients,
        request_timeout: *http.request_timeout,
        header_timeout: *http.header_timeout,
        body_timeout: *http.body_timeout,
        allowed_origins: http.allowed_origins.clone(),
        ingest_token: Http::token(&http.ingest_token, &http.ingest_token_file)?,
        read_token: Http::token(&http.read_token, &http.read_token_file)?,
        insecure_no_auth: http.insecure_no_auth,
        idempotency_ttl: *http.idempotency_ttl,
    })
}

/// A v2 stream worker.
#[derive(Debug, Clone, Args)]
pub struct V2Worker {
    /// Consumer name in the group; keep it stable across restarts so the worker finds its own
    /// pending entries. Defaults to `worker-<hostname>` (`up-<hostname>` under `up`).
    #[arg(long, env = "COFFEE_RT_CONSUMER")]
    pub consumer: Option<String>,
    /// Largest batch per PostgreSQL transaction.
    #[arg(long, env = "COFFEE_RT_V2_BATCH", default_value_t = WorkerConfig::new("").max_batch)]
    pub batch: usize,
    /// How long a batch may keep filling after its first entry (the time cap).
    #[arg(long, env = "COFFEE_RT_V2_LINGER", default_value_t = WorkerConfig::new("").linger.into())]
    pub linger: Duration,
    /// Idle time after which another consumer's pending entries are claimed (XAUTOCLAIM).
    #[arg(long, env = "COFFEE_RT_V2_CLAIM_IDLE", default_value_t = WorkerConfig::new("").claim_min_idle.into())]
    pub claim_idle: Duration,
    /// Deliveries after which an entry goes to the dead-letter stream.
    #[arg(long, env = "COFFEE_RT_V2_MAX_DELIVERIES", default_value_t = WorkerConfig::new("").max_deliveries)]
    pub max_deliveries: usize,
}

impl V2Worker {
    /// `default_prefix` names the consumer when `--consumer` is not given.
    pub fn config(&self, default_prefix: &str) -> WorkerConfig {
        let consumer = self.consumer.clone().unwrap_or_else(|| format!("{default_prefix}-{}", hostname()));
        WorkerConfig {
            max_batch: self.batch,
            linger: *self.linger,
            claim_min_idle: *self.claim_idle,
            max_deliveries: self.max_deliveries,
            ..WorkerConfig::new(consumer)
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_owned()).unwrap_or_else(|_| "localhost".into())
}

/// A v3 stream processor.
#[derive(Debug, Clone, Args)]
pub struct V3Processor {
    /// Pre-aggregation window per partition (at most 1 s): one PostgreSQL transaction and one
    /// Redis script call per window per partition.
    #[arg(long, env = "COFFEE_RT_V3_WINDOW", default_value_t = ProcessorConfig::default().window.into())]
    pub window: Duration,
    /// Records after which a partition's window is flushed early.
    #[arg(long, env = "COFFEE_RT_V3_MAX_BATCH", default_value_t = ProcessorConfig::default().max_batch)]
    pub max_batch: usize,
    /// Consumer-group session timeout (classic protocol).
    #[arg(long, env = "COFFEE_RT_V3_SESSION_TIMEOUT", default_value_t = ProcessorConfig::default().session_timeout.into())]
    pub session_timeout: Duration,
    /// The broker's long-poll time (`fetch.wait.max.ms`): how long an idle fetch waits for a
    /// record. Kafka answers as soon as one arrives, so it costs no latency under load; it
    /// bounds idle polling (docs/PERFORMANCE.md has the measurements).
    #[arg(long, env = "COFFEE_RT_V3_FETCH_WAIT", default_value_t = ProcessorConfig::default().fetch_wait.into())]
    pub fetch_wait: Duration,
    /// The broker holds a fetch until this many bytes are there or `--fetch-wait` passed
    /// (`fetch.min.bytes`): fewer, fuller fetches under load, for at most `--fetch-wait` of latency.
    #[arg(long, env = "COFFEE_RT_V3_FETCH_MIN_BYTES", default_value_t = ProcessorConfig::default().fetch_min_bytes)]
    pub fetch_min_bytes: usize,
    /// Consumer-group protocol: `classic`, or `consumer` (KIP-848, Kafka 4.0+: incremental
    /// rebalances; the session timeout is then the broker's).
    #[arg(long, env = "COFFEE_RT_V3_GROUP_PROTOCOL", default_value = "consumer", value_parser = ["classic", "consumer"])]
    pub group_protocol: String,
}

impl V3Processor {
    pub fn config(&self) -> anyhow::Result<ProcessorConfig> {
        anyhow::ensure!(*self.window <= std::time::Duration::from_secs(1), "--window must be at most 1s");
        let group_protocol: GroupProtocol = self.group_protocol.parse().map_err(anyhow::Error::msg)?;
        Ok(ProcessorConfig {
            window: *self.window,
            max_batch: self.max_batch,
            session_timeout: *self.session_timeout,
            fetch_wait: *self.fetch_wait,
            fetch_min_bytes: self.fetch_min_bytes,
            group_protocol,
            ..Default::default()
        })
    }
}

/// The Prometheus listener of a role without an API.
#[derive(Debug, Clone, Args)]
pub struct Metrics {
    /// Serve this process's Prometheus metrics (`GET /metrics`) on this address, e.g.
    /// `127.0.0.1:9105`. Off by default: only this process knows its batch sizes, flush
    /// latency, lag and the freshness of the orders it counts.
    #[arg(long, env = "COFFEE_RT_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub services: Services,
    #[command(flatten)]
    pub kafka: Kafka,
    #[command(flatten)]
    pub http: Http,
    #[command(flatten)]
    pub warehouse: Warehouse,
    #[command(flatten)]
    pub worker: V2Worker,
    #[command(flatten)]
    pub processor: V3Processor,
    #[command(flatten)]
    pub sink: WarehouseSink,
    /// Interval of the v1 aggregator (incremental runs; the first run is a full recompute).
    #[arg(long, env = "COFFEE_RT_AGGREGATE_EVERY", default_value = "1s")]
    pub aggregate_every: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub services: Services,
    #[command(flatten)]
    pub kafka: Kafka,
    #[command(flatten)]
    pub http: Http,
    #[command(flatten)]
    pub warehouse: Warehouse,
}

#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub services: Services,
    #[command(flatten)]
    pub worker: V2Worker,
    #[command(flatten)]
    pub metrics: Metrics,
}

#[derive(Debug, Clone, Args)]
pub struct ProcessorArgs {
    #[command(flatten)]
    pub services: Services,
    #[command(flatten)]
    pub kafka: Kafka,
    #[command(flatten)]
    pub processor: V3Processor,
    #[command(flatten)]
    pub metrics: Metrics,
}

#[derive(Debug, Clone, Args)]
pub struct AggregateArgs {
    #[command(flatten)]
    pub services: Services,
    /// Run once and exit.
    #[arg(long, conflicts_with = "every")]
    pub once: bool,
    /// Run on this interval until stopped (e.g. `2s`, `1m`).
    #[arg(long)]
    pub every: Option<Duration>,
    /// Recompute everything and overwrite (instead of adding what committed since the last run).
    #[arg(long)]
    pub full: bool,
    #[command(flatten)]
    pub metrics: Metrics,
}

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub services: Services,
}

#[derive(Debug, Clone, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub services: Services,
    /// Which path's metrics to check (v1, v2 or v3).
    #[arg(long)]
    pub version: Version,
    /// Overwrite Redis with the recomputation.
    #[arg(long)]
    pub fix: bool,
    /// With --fix: overwrite even when Redis is ahead of PostgreSQL (its database was reset).
    /// Stop every writer of this version first; a live writer's newest delta would be erased.
    #[arg(long, requires = "fix")]
    pub force: bool,
}

#[derive(Debug, Clone, Args)]
pub struct WarehouseArgs {
    /// Copy until ClickHouse holds every order committed before the start, print what it took
    /// as JSON (rows, rounds, seconds, rows per second) and exit.
    #[arg(long)]
    pub once: bool,
    #[command(flatten)]
    pub services: Services,
    #[command(flatten)]
    pub warehouse: Warehouse,
    #[command(flatten)]
    pub sink: WarehouseSink,
    #[command(flatten)]
    pub metrics: Metrics,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_token_file_is_read_and_a_bad_token_refused() {
        let path = std::env::temp_dir().join(format!("coffee-rt-token-{}", std::process::id()));
        std::fs::write(&path, "from-a-file-0123456789abcdef\n").unwrap();
        let args = ["coffee-rt", "serve", "--read-token-file", path.to_str().unwrap(), "--ingest-token", "inline-0123456789abcdef"];
        let Command::Serve(serve) = Cli::try_parse_from(args).unwrap().command else { unreachable!() };
        let server = server_config(&serve.services, &serve.kafka, &serve.http, &serve.warehouse).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(server.read_token.unwrap().matches("from-a-file-0123456789abcdef"));
        assert!(server.ingest_token.unwrap().matches("inline-0123456789abcdef"));
        assert!(Cli::try_parse_from(["coffee-rt", "serve", "--read-token", "short"]).is_err());
        assert!(Cli::try_parse_from(["coffee-rt", "serve", "--read-token", "x; injected=0123456789"]).is_err());
    }

    #[test]
    fn defaults_come_from_the_config_types() {
        let Command::Up(up) = Cli::try_parse_from(["coffee-rt", "up"]).unwrap().command else { unreachable!() };
        let server = server_config(&up.services, &up.kafka, &up.http, &up.warehouse).unwrap();
        let default = ServerConfig::default();
        assert_eq!((server.listen, server.pg_pool, server.max_in_flight), (default.listen, default.pg_pool, default.max_in_flight));
        assert_eq!(
            (server.max_connections, server.max_ws_clients, server.request_timeout, server.header_timeout, server.body_timeout),
            (default.max_connections, default.max_ws_clients, default.request_timeout, default.header_timeout, default.body_timeout)
        );
        assert!(server.ingest_token.is_none() && server.read_token.is_none() && !server.insecure_no_auth);
        assert_eq!(up.worker.config("up").linger, WorkerConfig::new("x").linger);
        assert_eq!(up.processor.config().unwrap().window, ProcessorConfig::default().window);
        assert_eq!(KafkaSettings::from(&up.kafka).producer_linger, KafkaSettings::default().producer_linger);
    }
}

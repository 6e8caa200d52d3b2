use std::{net::SocketAddr, sync::Arc, time::Duration};

use coffee_core::{Catalog, OrderWindow};
use coffee_pipeline::KafkaSettings;
use coffee_warehouse::ClickHouseConfig;

use crate::edge::Token;

/// What the HTTP server needs. The binary's `config` module builds it from flags and
/// environment variables; tests build it directly. The defaults are the ones a new user gets.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub database_url: String,
    pub redis_url: String,
    /// Prefix for every Redis key and channel (lets several deployments or tests share a Redis).
    pub namespace: String,
    pub catalog: Arc<Catalog>,
    /// How far an order's `timestamp` may be from this server's clock; outside it the order
    /// routes and `/api/validate` answer 422 naming `timestamp`. The workers never apply it.
    pub order_window: OrderWindow,
    /// PostgreSQL connections of this process.
    pub pg_pool: usize,
    /// v1: orders waiting for the batcher before the API answers 503.
    pub v1_queue: usize,
    /// v2: approximate cap of `orders:stream` (XADD MAXLEN ~). Far above any backlog.
    pub v2_maxlen: usize,
    /// Order requests in flight at once (all versions); past it the API answers 503.
    pub max_in_flight: usize,
    pub kafka: KafkaSettings,
    /// The café's time zone: history buckets (days, weeks) are its days and weeks.
    pub timezone: chrono_tz::Tz,
    /// The ClickHouse the history is read from; PostgreSQL answers when there is none.
    pub warehouse: Option<ClickHouseConfig>,
    /// How long a used `order_id` is remembered for answering repeats (replay or conflict)
    /// before PostgreSQL alone decides.
    pub idempotency_ttl: std::time::Duration,
    /// TCP connections served at once. Past it a connection gets one `503` and is closed
    /// (`crate::edge::connections`). Upgraded dashboard sockets count in `max_ws_clients` instead.
    /// Each served connection costs ~20 KB (hyper's buffers, its task): 4,096 bound that part of
    /// the RSS to ~80 MB, and leave room for the lab's 1,000 clients and then some.
    pub max_connections: usize,
    /// Dashboard WebSockets at once; past it the upgrade is answered `503`.
    pub max_ws_clients: usize,
    /// The longest a request may take, body included; then `503` + `Retry-After`. Far above a
    /// v1 order's wait for its batch commit (milliseconds; seconds while PostgreSQL stalls).
    pub request_timeout: Duration,
    /// The longest a client may take to send a request's headers, and the longest an idle
    /// keep-alive connection stays open; then the connection is closed.
    pub header_timeout: Duration,
    /// The longest a client may take to send a request's body; then `408` and the connection
    /// is closed. A client sending a byte a second is cut off here.
    pub body_timeout: Duration,
    /// Origins besides the page's own (same host and port as the request's `Host`) that may
    /// open `/ws/dashboard`, e.g. `https://dashboard.example.com`.
    pub allowed_origins: Vec<String>,
    /// Bearer token of `POST /api/{v}/order` and `/api/validate`; open when `None`.
    pub ingest_token: Option<Token>,
    /// Bearer token (or cookie) of the dashboard, its WebSocket, `/api/*` reads and `/metrics`.
    pub read_token: Option<Token>,
    /// Start on a non-loopback address without tokens (the log warns).
    pub insecure_no_auth: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8005)),
            database_url: "postgres://coffee:coffee@127.0.0.1:5432/coffee_rt".into(),
            redis_url: "redis://127.0.0.1:6379/0".into(),
            namespace: String::new(),
            catalog: Arc::new(Catalog::default()),
            order_window: OrderWindow::default(),
            pg_pool: 16,
            v1_queue: 20_000,
            v2_maxlen: 5_000_000,
            max_in_flight: 20_000,
            kafka: KafkaSettings::default(),
            timezone: chrono_tz::UTC,
            warehouse: None,
            idempotency_ttl: std::time::Duration::from_secs(24 * 3600),
            max_connections: 4_096,
            max_ws_clients: 2_000,
            request_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(10),
            allowed_origins: Vec::new(),
            ingest_token: None,
            read_token: None,
            insecure_no_auth: false,
        }
    }
}

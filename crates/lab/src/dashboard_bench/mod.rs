//! `coffee-lab bench ws`: the live dashboard's capacity, N WebSocket clients against one server.
//!
//! Against a running server given by its URL (and pid, for its RSS), or against `coffee-rt
//! serve` and `coffee-rt worker` started for the run ([`server`]). The server must run the v2
//! worker (as `up` does): the bench posts v2 orders one at a time, each client ([`clients`])
//! reads every frame, and the server's RSS is read before, with all clients and after.
//!
//! Push latency is measured per client and per order: from just before the order's POST is
//! sent to the moment that client has read a frame counting it. It therefore includes the
//! whole v2 path (API → stream → worker → PostgreSQL → Redis → pub/sub → hub → socket), and,
//! as the clients run on the same machine, their own JSON parsing.

pub mod clients;
pub mod server;

use std::time::Duration;

use futures::{StreamExt, stream};
use http::Uri;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::WsArgs;
use crate::load::client::HttpClient;
use crate::procs;
use crate::report::tables::dashboard_text;
use crate::results::dashboard::DashboardReport;
use clients::Client;

/// `coffee-lab bench ws`: against `--url`, or against a server started for the run.
pub async fn ws_command(args: WsArgs) -> anyhow::Result<()> {
    let cfg = |base_url: String, server_pid: Option<u32>| BenchConfig::new(base_url, server_pid, args.clients, args.orders);
    let report = match &args.url {
        Some(url) => run(cfg(url.clone(), args.pid)).await?,
        None => {
            let bin = crate::children::locate(&args.coffee_rt)?;
            let server = server::Server::start(&bin, &args.services).await?;
            let report = run(cfg(server.url.clone(), Some(server.pid()))).await;
            server.stop().await;
            report?
        }
    };
    print!("{}", dashboard_text(&report));
    Ok(())
}

/// One run of the bench.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// e.g. `http://127.0.0.1:8005`
    pub base_url: String,
    /// The server's pid, for its RSS (read from /proc); None skips RSS.
    pub server_pid: Option<u32>,
    pub clients: usize,
    /// Orders posted, one at a time, `gap` apart.
    pub orders: usize,
    /// Longer than the hub's 100 ms coalescing, so each order gets frames of its own.
    pub gap: Duration,
    /// Connections opened at once while ramping up.
    pub connect_concurrency: usize,
}

impl BenchConfig {
    /// `clients` clients and `orders` orders against `base_url`, orders 300 ms apart, 64
    /// connections opened at once.
    pub fn new(base_url: String, server_pid: Option<u32>, clients: usize, orders: usize) -> Self {
        BenchConfig { base_url, server_pid, clients, orders, gap: Duration::from_millis(300), connect_concurrency: 64 }
    }
}

/// Connects `cfg.clients` clients, posts `cfg.orders` orders `cfg.gap` apart, and measures.
pub async fn run(cfg: BenchConfig) -> anyhow::Result<DashboardReport> {
    let ws_url = format!("{}/ws/dashboard", cfg.base_url.replacen("http", "ws", 1));
    let http = HttpClient::new();
    let order_url: Uri = format!("{}/api/v2/order", cfg.base_url.trim_end_matches('/')).parse()?;
    let rss = || cfg.server_pid.and_then(procs::memory).map(|m| m.rss_mib);
    let rss_before_mib = rss();

    let stop = CancellationToken::new();
    let started = Instant::now();
    let clients: Vec<Client> = stream::iter(0..cfg.clients)
        .map(|_| Client::connect(&ws_url))
        .buffer_unordered(cfg.connect_concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let connect_time = started.elapsed();
    let base = clients.iter().map(|c| c.first_total).max().unwrap_or(0);
    let handles: Vec<_> = clients.into_iter().map(|c| tokio::spawn(c.read_until(stop.clone()))).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_connected_mib = rss();

    let mut posted = Vec::with_capacity(cfg.orders);
    for _ in 0..cfg.orders {
        let at = Instant::now();
        post_order(&http, &order_url).await?;
        posted.push(at);
        tokio::time::sleep(cfg.gap).await;
    }
    // Give the last order time to arrive everywhere.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after_mib = rss();
    stop.cancel();

    let mut latencies = Vec::with_capacity(cfg.clients * cfg.orders);
    let mut missed = 0;
    for h in handles {
        let seen = h.await?;
        for (k, at) in posted.iter().enumerate() {
            let target = base + k as i64 + 1;
            match seen.iter().find(|(total, _)| *total >= target) {
                Some((_, when)) => latencies.push(when.saturating_duration_since(*at).as_secs_f64() * 1000.0),
                None => missed += 1,
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    let q = |p: f64| latencies.get(((p * latencies.len() as f64).ceil() as usize).saturating_sub(1)).copied().unwrap_or(f64::NAN);
    Ok(DashboardReport {
        clients: cfg.clients,
        connect_time,
        orders: cfg.orders,
        samples: latencies.len(),
        missed,
        p50_ms: q(0.5),
        p99_ms: q(0.99),
        max_ms: latencies.last().copied().unwrap_or(f64::NAN),
        rss_before_mib,
        rss_connected_mib,
        rss_after_mib,
    })
}

/// Posts one v2 order; the server must accept it.
async fn post_order(http: &HttpClient, url: &Uri) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "drink": "latte", "store": "uptown", "price": 4.5,
        "timestamp": chrono::Utc::now().to_rfc3339(),
    });
    let outcome = http.post_json(url.clone(), serde_json::to_vec(&body)?.into()).await;
    anyhow::ensure!(outcome.is_success(), "POST {url} answered {outcome:?}");
    Ok(())
}

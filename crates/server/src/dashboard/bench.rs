//! Capacity bench for the dashboard: N WebSocket clients against a running server.
//!
//! It needs nothing from the `coffee-rt` binary: `examples/ws_bench.rs` starts a server in a
//! child process and calls [`run`]; `coffee-rt bench ws` can call [`run`] against any server
//! given its URL and pid. The server must run the v2 worker (as `up` does).
//!
//! Push latency is measured per client and per order: from just before the order's POST is
//! sent to the moment that client has read a frame counting it. It therefore includes the
//! whole v2 path (API → stream → worker → PostgreSQL → Redis → pub/sub → hub → socket), and,
//! as the clients run on the same machine, their own JSON parsing.

use std::{collections::HashMap, fmt, time::Duration};

use anyhow::Context;
use futures::{StreamExt, stream};
use serde::Deserialize;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

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

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            base_url: "http://127.0.0.1:8005".into(),
            server_pid: None,
            clients: 1000,
            orders: 50,
            gap: Duration::from_millis(300),
            connect_concurrency: 64,
        }
    }
}

#[derive(Debug, Clone)]
pub struct BenchReport {
    pub clients: usize,
    pub connect_time: Duration,
    pub orders: usize,
    /// Latency samples (clients × orders seen).
    pub samples: usize,
    /// (client, order) pairs never seen before the end of the run.
    pub missed: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub rss_before_kib: Option<u64>,
    pub rss_connected_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = |k: Option<u64>| k.map(|k| format!("{:.1} MiB", k as f64 / 1024.0)).unwrap_or_else(|| "n/a".into());
        writeln!(f, "clients connected   {} (in {:.2} s)", self.clients, self.connect_time.as_secs_f64())?;
        writeln!(f, "orders posted       {}", self.orders)?;
        writeln!(f, "latency samples     {} (missed {})", self.samples, self.missed)?;
        writeln!(f, "push latency        p50 {:.1} ms · p99 {:.1} ms · max {:.1} ms", self.p50_ms, self.p99_ms, self.max_ms)?;
        writeln!(
            f,
            "server RSS          before {} · {} clients connected {} · after the orders {}",
            mib(self.rss_before_kib),
            self.clients,
            mib(self.rss_connected_kib),
            mib(self.rss_after_kib)
        )
    }
}

/// The resident set size of process `pid`, from /proc.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

pub async fn run(cfg: BenchConfig) -> anyhow::Result<BenchReport> {
    let ws_url = format!("{}/ws/dashboard", cfg.base_url.replacen("http", "ws", 1));
    let http = reqwest::Client::new();
    let rss = || cfg.server_pid.and_then(rss_kib);
    let rss_before_kib = rss();

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
    let rss_connected_kib = rss();

    let mut posted = Vec::with_capacity(cfg.orders);
    for _ in 0..cfg.orders {
        let at = Instant::now();
        post_order(&http, &cfg.base_url).await?;
        posted.push(at);
        tokio::time::sleep(cfg.gap).await;
    }
    // Give the last order time to arrive everywhere.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after_kib = rss();
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
    Ok(BenchReport {
        clients: cfg.clients,
        connect_time,
        orders: cfg.orders,
        samples: latencies.len(),
        missed,
        p50_ms: q(0.5),
        p99_ms: q(0.99),
        max_ms: latencies.last().copied().unwrap_or(f64::NAN),
        rss_before_kib,
        rss_connected_kib,
        rss_after_kib,
    })
}

async fn post_order(http: &reqwest::Client, base_url: &str) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "drink": "latte", "store": "uptown", "price": 4.5,
        "timestamp": chrono::Utc::now().to_rfc3339(),
    });
    let res = http.post(format!("{base_url}/api/v2/order")).json(&body).send().await.context("posting an order")?;
    anyhow::ensure!(res.status().is_success(), "POST /api/v2/order answered {}", res.status());
    Ok(())
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Client {
    socket: Socket,
    first_total: i64,
}

/// Only what the bench reads of a frame.
#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    versions: HashMap<String, Totals>,
}

#[derive(Deserialize)]
struct Totals {
    total_orders: i64,
}

fn v2_total(text: &str) -> Option<i64> {
    let f: Frame = serde_json::from_str(text).ok()?;
    (f.kind == "snapshot").then(|| f.versions.get("v2").map(|t| t.total_orders)).flatten()
}

impl Client {
    /// Connects and reads the first snapshot (sent on connect).
    async fn connect(url: &str) -> anyhow::Result<Client> {
        let (mut socket, _) = tokio_tungstenite::connect_async(url).await.with_context(|| format!("connecting {url}"))?;
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.context("no first frame within 10 s")?;
            match msg {
                Some(Ok(Message::Text(t))) => {
                    if let Some(total) = v2_total(&t) {
                        return Ok(Client { socket, first_total: total });
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => anyhow::bail!("closed before the first frame"),
            }
        }
    }

    /// Every change of the v2 total this client saw, with when it read it.
    async fn read_until(mut self, stop: CancellationToken) -> Vec<(i64, Instant)> {
        let mut seen = Vec::new();
        let mut last = self.first_total;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                msg = self.socket.next() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        let now = Instant::now();
                        if let Some(total) = v2_total(&t).filter(|t| *t != last) {
                            last = total;
                            seen.push((total, now));
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                },
            }
        }
        let _ = self.socket.close(None).await;
        seen
    }
}

//! What the dashboard bench measured: the push latency over every (client, order) pair and the
//! server's memory before, with and after its WebSocket clients.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct DashboardReport {
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
    /// The server's resident memory, MiB, before the clients connected, with them all connected,
    /// and after the orders.
    pub rss_before_mib: Option<f64>,
    pub rss_connected_mib: Option<f64>,
    pub rss_after_mib: Option<f64>,
}

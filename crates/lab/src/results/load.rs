//! What one load run measured: latency percentiles, errors, freshness, and how the requests
//! reached the server. `coffee-lab load --json` prints a [`LoadReport`] as one line.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

/// How the generator's requests reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "model", content = "connections", rename_all = "snake_case")]
pub enum ConnectionModel {
    /// N keep-alive connections shared by every request, like a gateway or load balancer in
    /// front of the API: a due request goes out on the first connection that is free.
    Pooled(usize),
    /// N independent clients, like POS terminals: each has its own connection and every N-th
    /// request of the schedule; a client whose previous order is still pending sends late.
    Clients(usize),
}

impl ConnectionModel {
    pub fn connections(&self) -> usize {
        match *self {
            Self::Pooled(n) | Self::Clients(n) => n.max(1),
        }
    }
}

impl std::fmt::Display for ConnectionModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pooled(n) => write!(f, "pooled, {n} connections"),
            Self::Clients(n) => write!(f, "{n} independent clients"),
        }
    }
}

/// The histograms latencies are recorded in: microseconds from 1 µs to 1 hour with 3
/// significant digits (0.1 % relative error), enough to tell a 0.4 ms p50 from a 1 s stall.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds")
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencyMs {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl LatencyMs {
    /// Percentiles of a µs histogram; all zero when it is empty.
    pub fn from_micros(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| round3(us as f64 / 1000.0);
        Self {
            p50: ms(h.value_at_quantile(0.50)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

/// Freshness percentiles (API accept → counted in Redis metrics), from the server's histogram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FreshnessMs {
    pub p50: f64,
    pub p99: f64,
    /// Orders the server measured during this run (the histogram's `_count` delta).
    pub orders: u64,
}

/// The result of one `coffee-lab load` run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub version: String,
    pub target: String,
    pub offered_rate: f64,
    /// Successful responses per second, over the window in which responses came back (at
    /// least the schedule's span).
    pub achieved_rate: f64,
    pub duration_s: f64,
    pub scheduled: u64,
    pub sent: u64,
    pub ok: u64,
    /// From intended send time (open loop), successful requests only.
    pub latency_ms: LatencyMs,
    pub errors: u64,
    /// By status code (`"503"`) or failure (`"timeout"`, `"connect"`, `"io"`).
    pub errors_by_status: BTreeMap<String, u64>,
    /// How the requests reached the server (pooled connections or independent clients).
    pub connection_model: ConnectionModel,
    /// Requests sent more than 1 ms after their intended time (their connection was busy, or
    /// the generator short of CPU); the lateness is in their latency.
    pub late_sends: u64,
    /// How late requests were sent, p99; large values mean the client side set the pace.
    pub send_lag_ms_p99: f64,
    /// `null` when the server exports no freshness histogram for this version.
    pub freshness_ms: Option<FreshnessMs>,
    /// The worst latency (ms) of the requests due in each second of the run.
    #[serde(default)]
    pub worst_ms_per_second: Vec<f64>,
}

impl LoadReport {
    /// One JSON line, as `--json` prints it.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("report serializes")
    }
}

/// Three decimals: microseconds of a figure in milliseconds.
pub(crate) fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_uniform_distribution() {
        // 1..=10_000 µs, one each: p50 = 5 ms, p95 = 9.5 ms, p99 = 9.9 ms, max = 10 ms.
        let mut h = new_histogram();
        for us in 1..=10_000u64 {
            h.record(us).unwrap();
        }
        let l = LatencyMs::from_micros(&h);
        let close = |a: f64, b: f64| (a - b).abs() <= b * 0.002;
        assert!(close(l.p50, 5.0), "{l:?}");
        assert!(close(l.p95, 9.5), "{l:?}");
        assert!(close(l.p99, 9.9), "{l:?}");
        assert!(close(l.max, 10.0), "{l:?}");
    }

    #[test]
    fn percentiles_of_a_bimodal_distribution() {
        // 98 % at 1 ms, 2 % at 1 s: p95 sits in the fast mode, p99 in the slow one.
        let mut h = new_histogram();
        h.record_n(1_000, 9_800).unwrap();
        h.record_n(1_000_000, 200).unwrap();
        let l = LatencyMs::from_micros(&h);
        assert!((l.p50 - 1.0).abs() < 0.01, "{l:?}");
        assert!((l.p95 - 1.0).abs() < 0.01, "{l:?}");
        assert!((l.p99 - 1000.0).abs() < 1.0, "{l:?}");
    }

    #[test]
    fn empty_histogram_reports_zeros() {
        assert_eq!(LatencyMs::from_micros(&new_histogram()), LatencyMs::default());
    }
}

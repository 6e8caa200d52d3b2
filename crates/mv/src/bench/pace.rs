//! Open-loop pacing and latency recording.
//!
//! Update k is due at `start + k / rate`; its latency is measured from that
//! due time, not from when the driver got round to it, so falling behind
//! shows up as latency (no coordinated omission).

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

pub struct Pacer {
    start: Instant,
    interval: Duration,
    n: u64,
}

impl Pacer {
    pub fn new(rate_per_s: f64) -> Pacer {
        Pacer { start: Instant::now(), interval: Duration::from_secs_f64(1.0 / rate_per_s), n: 0 }
    }

    /// Sleeps until the next update is due and returns its due time.
    pub fn wait_next(&mut self) -> Instant {
        let due = self.start + self.interval.mul_f64(self.n as f64);
        self.n += 1;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        due
    }
}

/// Nanosecond histogram, 3 significant figures, up to 100 s.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid bounds")
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// p50/p99/max in milliseconds.
pub fn percentiles_ms(h: &Histogram<u64>) -> Percentiles {
    let ms = |v: u64| (v as f64 / 1e6 * 1000.0).round() / 1000.0;
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles { p50: ms(h.value_at_quantile(0.50)), p99: ms(h.value_at_quantile(0.99)), max: ms(h.max()) }
}

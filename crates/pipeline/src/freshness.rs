//! Freshness: the delay from the API accepting an order to the order being counted in the
//! Redis metrics, measured per order by whoever makes it visible.
//!
//! Every sample goes to two places:
//! - the Prometheus histogram [`HISTOGRAM`], for scraping and the lab's sweeps;
//! - an in-process rolling [`window`] of the last [`WINDOW_SECS`] seconds per version, which
//!   the dashboard hub reads to show live p50/p99 ([`summary`]).
//!
//! Why in-process and not a summary in Redis: the samples exist only in the process that
//! applies them, and in `coffee-rt up` (the deployment the dashboard is for) that is the
//! process serving the page, so reading memory costs nothing and adds no Redis traffic to the
//! hot path. A `serve` process split from its `worker`/`processor`/`aggregate` sees no samples
//! and the dashboard says so (a `count` of 0 per path) instead of inventing a figure; sharing
//! the window across processes would mean each applier publishing [`summary`]-like buckets to
//! Redis on a timer, which this module is shaped to allow but does not do.
//!
//! Cost on the hot path: one uncontended mutex lock and one array increment per call (a v2
//! batch of 1,000 orders is ~1,000 of them, a few tens of microseconds against a PostgreSQL
//! commit of milliseconds). Quantiles are computed only when the hub asks, at most ~10 times a
//! second, from log-spaced buckets accurate to ±5 %.

use std::{
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use chrono::{DateTime, Utc};
use coffee_core::Version;
use serde::Serialize;

pub const HISTOGRAM: &str = "coffee_rt_order_freshness_seconds";

/// How far back the rolling window reaches.
pub const WINDOW_SECS: u64 = 60;

/// Records `count` orders accepted at `accepted_at` that became visible `now`.
pub fn record(version: Version, accepted_at: DateTime<Utc>, now: DateTime<Utc>, count: u64) {
    let micros = (now - accepted_at).num_microseconds().unwrap_or(i64::MAX).max(0) as u64;
    let secs = micros as f64 / 1e6;
    let h = metrics::histogram!(HISTOGRAM, "version" => version.as_str());
    for _ in 0..count {
        h.record(secs);
    }
    window().record(version, now.timestamp().max(0) as u64, micros, count);
}

/// The window's view of one version's last [`WINDOW_SECS`] seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Orders made visible in the window (0: none, or they were applied in another process).
    pub count: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// The live summary of `version` as of the wall clock now.
pub fn summary(version: Version) -> Summary {
    window().summary(version, unix_secs())
}

/// Changes every time a sample is recorded: lets a reader skip work when nothing happened.
pub fn generation() -> u64 {
    window().generation.load(Ordering::Relaxed)
}

/// The process-wide window.
pub fn window() -> &'static Window {
    static WINDOW: OnceLock<Window> = OnceLock::new();
    WINDOW.get_or_init(Window::new)
}

fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Log-spaced buckets: bucket `i` holds delays in `[FLOOR·R^i, FLOOR·R^(i+1))` µs, with
/// R = 1.1 (so a quantile read at a bucket's geometric middle is within ±5 %) from 100 µs to
/// beyond an hour; the first bucket also holds everything below 100 µs.
const BUCKETS: usize = 200;
const FLOOR_MICROS: f64 = 100.0;
const RATIO: f64 = 1.1;

fn bucket_of(micros: u64) -> usize {
    if (micros as f64) < FLOOR_MICROS * RATIO {
        return 0;
    }
    (((micros as f64) / FLOOR_MICROS).ln() / RATIO.ln()).floor().min((BUCKETS - 1) as f64) as usize
}

/// The representative delay of bucket `i`, in milliseconds (its geometric middle).
fn bucket_ms(i: usize) -> f64 {
    FLOOR_MICROS * RATIO.powf(i as f64 + 0.5) / 1000.0
}

/// One second of samples.
#[derive(Clone)]
struct Slot {
    second: u64,
    counts: [u64; BUCKETS],
    max_micros: u64,
}

impl Slot {
    fn empty() -> Slot {
        Slot { second: 0, counts: [0; BUCKETS], max_micros: 0 }
    }
}

/// Per version, a ring of [`WINDOW_SECS`] one-second slots of bucket counts.
pub struct Window {
    rings: [Mutex<Vec<Slot>>; 3],
    generation: AtomicU64,
}

impl Window {
    fn new() -> Window {
        let ring = || Mutex::new(vec![Slot::empty(); WINDOW_SECS as usize]);
        Window { rings: [ring(), ring(), ring()], generation: AtomicU64::new(0) }
    }

    fn ring(&self, version: Version) -> &Mutex<Vec<Slot>> {
        let i = Version::ALL.iter().position(|v| *v == version).expect("a known version");
        &self.rings[i]
    }

    /// Adds `count` samples of `micros` at wall-clock second `second`.
    pub fn record(&self, version: Version, second: u64, micros: u64, count: u64) {
        if count == 0 {
            return;
        }
        let mut ring = self.ring(version).lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut ring[(second % WINDOW_SECS) as usize];
        if slot.second != second {
            *slot = Slot { second, counts: [0; BUCKETS], max_micros: 0 };
        }
        slot.counts[bucket_of(micros)] += count;
        slot.max_micros = slot.max_micros.max(micros);
        drop(ring);
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Merges the slots of the [`WINDOW_SECS`] seconds up to and including `now_second`.
    pub fn summary(&self, version: Version, now_second: u64) -> Summary {
        let mut merged = [0u64; BUCKETS];
        let mut max_micros = 0;
        {
            let ring = self.ring(version).lock().unwrap_or_else(|e| e.into_inner());
            for slot in ring.iter().filter(|s| s.second + WINDOW_SECS > now_second && s.second <= now_second) {
                for (m, c) in merged.iter_mut().zip(slot.counts.iter()) {
                    *m += c;
                }
                max_micros = max_micros.max(slot.max_micros);
            }
        }
        let count: u64 = merged.iter().sum();
        if count == 0 {
            return Summary::default();
        }
        let quantile = |q: f64| {
            let rank = ((q * count as f64).ceil() as u64).max(1);
            let mut seen = 0;
            for (i, c) in merged.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return Some(bucket_ms(i).min(max_micros as f64 / 1000.0));
                }
            }
            None
        };
        Summary { count, p50_ms: quantile(0.5), p99_ms: quantile(0.99), max_ms: Some(max_micros as f64 / 1000.0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within_5_percent(got: f64, want: f64) -> bool {
        (got - want).abs() <= want * 0.05
    }

    #[test]
    fn quantiles_are_within_five_percent() {
        let w = Window::new();
        // 1..=1000 ms, one sample each: p50 = 500 ms, p99 = 990 ms.
        for ms in 1..=1000u64 {
            w.record(Version::V2, 100, ms * 1000, 1);
        }
        let s = w.summary(Version::V2, 100);
        assert_eq!(s.count, 1000);
        assert!(within_5_percent(s.p50_ms.unwrap(), 500.0), "{s:?}");
        assert!(within_5_percent(s.p99_ms.unwrap(), 990.0), "{s:?}");
        assert_eq!(s.max_ms, Some(1000.0));
        assert_eq!(w.summary(Version::V1, 100), Summary::default());
    }

    #[test]
    fn counts_weigh_and_old_seconds_fall_out() {
        let w = Window::new();
        w.record(Version::V1, 10, 2_000_000, 99);
        w.record(Version::V1, 12, 50_000, 1);
        let s = w.summary(Version::V1, 12);
        assert_eq!(s.count, 100);
        assert!(within_5_percent(s.p50_ms.unwrap(), 2000.0));
        // 60 s after second 10 it is gone; second 12 is still in.
        assert_eq!(w.summary(Version::V1, 70).count, 1);
        assert_eq!(w.summary(Version::V1, 72).count, 0);
        // A slot reused for a new second starts empty.
        w.record(Version::V1, 70, 1_000, 1);
        assert_eq!(w.summary(Version::V1, 70).count, 2);
    }

    #[test]
    fn tiny_and_huge_delays_land_in_the_end_buckets() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(5_000_000_000_000), BUCKETS - 1);
        let w = Window::new();
        w.record(Version::V3, 5, 0, 1);
        assert_eq!(w.summary(Version::V3, 5).p50_ms, Some(0.0));
    }
}

//! Raw ceilings of the parts, measured on this machine in the same run as the sweep, so each
//! path's breaking point can be read as a fraction of what its slowest part can do at all.
//!
//! Each ceiling drives one part flat out with the cheapest correct access pattern
//! (batched/pipelined), for a fixed time, in scratch space it creates and removes.

pub mod http;
pub mod kafka;
pub mod postgres;
pub mod redis;

use std::time::Duration;

use serde::Serialize;

/// One measured ceiling.
#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    /// e.g. `postgres_insert`.
    pub name: String,
    /// Items per second (rows, entries, messages or requests).
    pub per_second: f64,
    pub unit: String,
    /// Items completed during the measurement.
    pub items: u64,
    pub seconds: f64,
    /// How it was measured (batch size, concurrency, target), for SCALE.md.
    pub method: String,
    /// True when the part was never driven to its limit (the highest step still held), so
    /// the number is only a lower bound.
    pub lower_bound: bool,
}

/// How hard and how long to push a part.
#[derive(Debug, Clone, Copy)]
pub struct CeilingOpts {
    pub duration: Duration,
    /// Rows per INSERT, entries per pipeline, or messages kept in flight per producer task.
    pub batch: usize,
    /// Concurrent connections or tasks.
    pub concurrency: usize,
}

impl Default for CeilingOpts {
    fn default() -> Self {
        Self { duration: Duration::from_secs(10), batch: 1000, concurrency: 2 }
    }
}

impl Ceiling {
    fn new(name: &str, unit: &str, items: u64, elapsed: Duration, method: String) -> Self {
        let seconds = elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        Self {
            name: name.into(),
            per_second: (items as f64 / seconds).round(),
            unit: unit.into(),
            items,
            seconds: (seconds * 1000.0).round() / 1000.0,
            method,
            lower_bound: false,
        }
    }
}

/// A short random suffix for scratch names, so concurrent runs never share scratch space.
pub(crate) fn scratch_suffix() -> String {
    format!("{}_{:08x}", std::process::id(), rand::random::<u32>())
}

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

//! The exactly-once rule for applying deltas to a projection, as a pure model.
//!
//! Each writer (a v2 worker, a v3 partition, the v1 aggregator) is a *source* that produces a
//! sequence of deltas. A delta carries the fence value it expects the projection to hold
//! (`prev`) and the value to leave behind (`next`). The projection keeps one fence per source:
//! - `fence >= next`: already applied (a replay after a crash) — skipped;
//! - `fence == prev`: applied, and the fence moves to `next`, in the same atomic step;
//! - anything else: a gap — the caller must first apply what is missing.
//!
//! The Redis Lua script (`crates/store/src/redis/scripts/project.lua`) implements exactly this.
//! The property tests of this crate are the argument that the rule is correct under any
//! batching and any replay; the store's contract test runs the same sequences through the
//! script on a real Redis and checks that it ends where this model does.

use std::collections::BTreeMap;

use crate::MetricsDelta;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Applied,
    Duplicate,
    Gap { fence: u64 },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    pub metrics: MetricsDelta,
    pub fences: BTreeMap<String, u64>,
}

impl Ledger {
    pub fn apply(&mut self, source: &str, prev: u64, next: u64, delta: &MetricsDelta) -> Applied {
        let fence = self.fences.get(source).copied().unwrap_or(0);
        if fence >= next {
            Applied::Duplicate
        } else if fence == prev {
            self.metrics.merge(delta);
            self.fences.insert(source.to_owned(), next);
            Applied::Applied
        } else {
            Applied::Gap { fence }
        }
    }
}

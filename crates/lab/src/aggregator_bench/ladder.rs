//! The table sizes the bench grows through, and what measuring them will cost (the sweep keeps
//! that much of its budget for the bench).

use std::time::Duration;

use super::FULL_RUNS;
use super::history::REBUILD_FROM;
use crate::config::AggregatorArgs;
use crate::results::aggregator::SizeResult;

/// The table sizes, smallest first.
pub const LADDER: [u64; 4] = [10_000, 100_000, 1_000_000, 10_000_000];
/// Largest size with `--quick`.
pub const QUICK_MAX_ROWS: u64 = 100_000;

impl AggregatorArgs {
    pub fn sizes(&self) -> Vec<u64> {
        plan_sizes(self.quick, self.max_rows)
    }
}

/// The table sizes to measure: the ladder up to the cap, plus the cap itself when it is not on
/// the ladder.
pub fn plan_sizes(quick: bool, max_rows: Option<u64>) -> Vec<u64> {
    let cap = max_rows.unwrap_or(if quick { QUICK_MAX_ROWS } else { *LADDER.last().expect("ladder") });
    let mut sizes: Vec<u64> = LADDER.iter().copied().filter(|&s| s <= cap).collect();
    if cap > 0 && sizes.last() != Some(&cap) {
        sizes.push(cap);
    }
    sizes
}

/// A rough cost of measuring `sizes` on a 2-core machine, for the sweep's budget: growing costs
/// ~10 µs a row (insert plus index rebuild, rebuilt over the whole table), each full recompute
/// ~3 µs a row.
pub fn estimate(sizes: &[u64]) -> Duration {
    let mut secs = 0.0;
    let mut prev = 0u64;
    for &s in sizes {
        let added = s.saturating_sub(prev) as f64;
        let rebuild = if added >= REBUILD_FROM as f64 { s as f64 * 3e-6 } else { 0.0 };
        secs += added * 7e-6 + rebuild + s as f64 * 3e-6 * (FULL_RUNS as f64 + 0.5) + 1.0;
        prev = s;
    }
    Duration::from_secs_f64(secs.ceil())
}

/// What growing to `size` and measuring it will take, scaled from the previous size.
pub fn projected_cost(prev: &SizeResult, size: u64) -> Duration {
    let ratio = size as f64 / prev.rows.max(1) as f64;
    let secs = prev.grow_s * ratio + prev.full_median_ms / 1000.0 * ratio * (FULL_RUNS as f64 + 0.5);
    Duration::from_secs_f64(secs.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_ladder_and_the_cap() {
        assert_eq!(plan_sizes(false, None), vec![10_000, 100_000, 1_000_000, 10_000_000]);
        assert_eq!(plan_sizes(true, None), vec![10_000, 100_000]);
        assert_eq!(plan_sizes(false, Some(3_000_000)), vec![10_000, 100_000, 1_000_000, 3_000_000]);
        assert_eq!(plan_sizes(true, Some(1_000_000)), vec![10_000, 100_000, 1_000_000]);
        assert_eq!(plan_sizes(false, Some(5_000)), vec![5_000]);
        assert!(estimate(&plan_sizes(false, None)) < Duration::from_secs(400));
        assert!(estimate(&plan_sizes(true, None)) < Duration::from_secs(10));
    }
}

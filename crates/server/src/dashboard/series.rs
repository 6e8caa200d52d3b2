//! Orders per second over the last five minutes, per version.
//!
//! Derived server-side by sampling each version's `total_orders` once a second and keeping the
//! differences in a ring of 300. Why not the hourly buckets already in Redis: they are keyed by
//! the order's own (client-supplied) timestamp at one-hour resolution, so they cannot say how
//! many orders became visible in a given second. The sampler costs one MGET a second per
//! process, whatever the number of clients. The ring lives in memory: after a restart the chart
//! starts empty and fills over five minutes.

use std::collections::VecDeque;

use coffee_core::Version;
use serde::Serialize;

pub const SPAN_SECS: usize = 300;

#[derive(Debug, Default)]
pub struct Rates {
    /// The last sampled totals and the second they were taken.
    last: Option<(i64, [i64; 3])>,
    /// (second, orders made visible in that second per version), oldest first.
    samples: VecDeque<(i64, [i64; 3])>,
    /// Bumped whenever the chart a client would draw changes (see [`Rates::sample`]).
    generation: u64,
}

/// The wire form: `start` is the epoch second of the first value; one value per second.
#[derive(Debug, Clone, Serialize)]
pub struct RatesFrame {
    pub start: i64,
    pub step_s: i64,
    pub v1: Vec<i64>,
    pub v2: Vec<i64>,
    pub v3: Vec<i64>,
}

impl Rates {
    /// Takes the totals read at epoch second `second`. Seconds the sampler missed (a slow
    /// Redis) get an even share of the difference, so the area under the curve stays right.
    pub fn sample(&mut self, second: i64, totals: [i64; 3]) {
        let Some((prev_second, prev)) = self.last.replace((second, totals)) else { return };
        let gap = second - prev_second;
        if gap <= 0 {
            return;
        }
        let was_moving = self.samples.back().is_some_and(|(_, r)| r.iter().any(|x| *x != 0));
        let mut moving = false;
        for i in 0..gap {
            let mut rate = [0i64; 3];
            for v in 0..3 {
                // A `replace` (reconcile) may lower a total: that is not negative traffic.
                let d = (totals[v] - prev[v]).max(0);
                rate[v] = d / gap + i64::from(i < d % gap);
            }
            moving |= rate.iter().any(|x| *x != 0);
            self.samples.push_back((prev_second + i + 1, rate));
        }
        while self.samples.len() > SPAN_SECS {
            self.samples.pop_front();
        }
        // A flat line of zeros scrolling left is not news: push the first zero after traffic
        // (so the chart drops) and nothing more until orders flow again.
        if moving || was_moving {
            self.generation += 1;
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn frame(&self) -> RatesFrame {
        let start = self.samples.front().map(|(s, _)| *s).unwrap_or(0);
        let column = |v: Version| {
            let i = Version::ALL.iter().position(|x| *x == v).expect("known");
            self.samples.iter().map(|(_, r)| r[i]).collect()
        };
        RatesFrame { start, step_s: 1, v1: column(Version::V1), v2: column(Version::V2), v3: column(Version::V3) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_per_second_and_quiet_after_one_zero() {
        let mut r = Rates::default();
        r.sample(100, [0, 0, 0]);
        assert_eq!(r.generation(), 0);
        r.sample(101, [0, 5, 0]);
        r.sample(102, [0, 5, 0]);
        let g = r.generation();
        assert_eq!(g, 2);
        r.sample(103, [0, 5, 0]);
        r.sample(104, [0, 5, 0]);
        assert_eq!(r.generation(), g, "idle seconds do not change the generation");
        let f = r.frame();
        assert_eq!((f.start, f.v2.clone()), (101, vec![5, 0, 0, 0]));
    }

    #[test]
    fn a_gap_spreads_the_difference_and_the_ring_is_bounded() {
        let mut r = Rates::default();
        r.sample(0, [0, 0, 0]);
        r.sample(3, [7, 0, 0]);
        assert_eq!(r.frame().v1, vec![3, 2, 2]);
        r.sample(1000, [7, 0, 10]);
        assert_eq!(r.frame().v1.len(), SPAN_SECS);
        assert!(r.frame().v3.iter().sum::<i64>() <= 10);
    }
}

//! Times of repeated runs, summarised.

use std::time::Duration;

use crate::aggregator_bench::verdict::median;
use crate::results::analytics::Timing;

/// The nearest-rank percentile `p` (0–100) of `xs`: the smallest value at least `p` % of the
/// values are at or below; `NaN` for none. With fewer than 100 values p99 is the largest.
pub fn percentile(xs: &[f64], p: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Milliseconds, to 0.01 ms.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

/// The summary of `runs_ms` for a query whose answer counts `orders` orders.
pub fn timing(runs_ms: Vec<f64>, orders: u64) -> Timing {
    let median_ms = median(&runs_ms);
    let p99_ms = percentile(&runs_ms, 99.0);
    let rows_per_s = if median_ms > 0.0 { (orders as f64 / (median_ms / 1000.0)).round() } else { 0.0 };
    Timing { runs_ms, median_ms, p99_ms, rows_per_s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let xs: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(percentile(&xs, 99.0), 198.0);
        assert_eq!(percentile(&xs, 50.0), 100.0);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 99.0), 3.0);
        assert_eq!(percentile(&[5.0], 0.0), 5.0);
        assert!(percentile(&[], 99.0).is_nan());
    }

    #[test]
    fn rows_per_second_at_the_median() {
        let t = timing(vec![100.0, 300.0, 200.0], 1_000_000);
        assert_eq!(t.median_ms, 200.0);
        assert_eq!(t.p99_ms, 300.0);
        assert_eq!(t.rows_per_s, 5_000_000.0);
        assert_eq!(ms(Duration::from_micros(1_234_567)), 1234.57);
    }
}

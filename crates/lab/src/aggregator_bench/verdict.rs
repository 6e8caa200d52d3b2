//! Where the full recompute stops fitting in each interval the aggregator may run at.

use crate::results::aggregator::{IntervalVerdict, SizeResult};

/// The intervals a full recompute is compared with: seconds and where the number comes from.
pub const INTERVALS: [(f64, &str); 3] = [(1.0, "`coffee-rt up` default"), (10.0, "seeds, shortest"), (60.0, "seeds, longest")];

/// The median of `xs` (mean of the middle two for an even count); `NaN` for none.
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Where a full recompute, measured as `points` (rows, ms) sorted by rows, crosses
/// `interval_s`.
pub fn verdict(points: &[(u64, f64)], interval_s: f64, source: &str) -> IntervalVerdict {
    let t = interval_s * 1000.0;
    let first_size_over = points.iter().find(|p| p.1 > t).map(|p| p.0);
    let (mut crossover_rows, mut extrapolated) = (None, false);
    if let Some(i) = points.iter().position(|p| p.1 > t) {
        if i > 0 {
            let ((r0, m0), (r1, m1)) = (points[i - 1], points[i]);
            crossover_rows = Some(r0 as f64 + (t - m0) * (r1 - r0) as f64 / (m1 - m0));
        }
    } else if let Some(&(rn, mn)) = points.last() {
        // Beyond the largest size: the slope of the last two sizes, or through the origin.
        let slope = match points.len() {
            1 => mn / rn as f64,
            n => (mn - points[n - 2].1) / (rn - points[n - 2].0) as f64,
        };
        if slope > 0.0 {
            crossover_rows = Some(rn as f64 + (t - mn) / slope);
            extrapolated = true;
        }
    }
    IntervalVerdict { interval_s, source: source.to_string(), first_size_over, crossover_rows, extrapolated }
}

/// The verdicts of [`INTERVALS`] for measured sizes.
pub fn verdicts(sizes: &[SizeResult]) -> Vec<IntervalVerdict> {
    let points: Vec<(u64, f64)> = sizes.iter().map(|s| (s.rows, s.full_median_ms)).collect();
    INTERVALS.iter().map(|(s, src)| verdict(&points, *s, src)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn crossover_is_interpolated_inside_and_extrapolated_beyond() {
        let pts = [(10_000, 20.0), (100_000, 200.0), (1_000_000, 2_000.0)];
        // 1 s lies between 100k (0.2 s) and 1M (2 s).
        let v = verdict(&pts, 1.0, "x");
        assert_eq!(v.first_size_over, Some(1_000_000));
        assert!(!v.extrapolated);
        assert!((v.crossover_rows.unwrap() - 500_000.0).abs() < 1.0);
        // 10 s lies beyond 1M: the last slope (2 ms per 1,000 rows) gives 5M.
        let v = verdict(&pts, 10.0, "x");
        assert_eq!(v.first_size_over, None);
        assert!(v.extrapolated);
        assert!((v.crossover_rows.unwrap() - 5_000_000.0).abs() < 1.0);
        // Over at the smallest size: no crossover below it is claimed.
        let v = verdict(&pts, 0.01, "x");
        assert_eq!(v.first_size_over, Some(10_000));
        assert_eq!(v.crossover_rows, None);
        // One point: through the origin.
        let v = verdict(&[(100_000, 100.0)], 1.0, "x");
        assert!((v.crossover_rows.unwrap() - 1_000_000.0).abs() < 1.0);
        // Flat or falling times never cross.
        let v = verdict(&[(10_000, 50.0), (100_000, 40.0)], 1.0, "x");
        assert_eq!(v.crossover_rows, None);
    }
}

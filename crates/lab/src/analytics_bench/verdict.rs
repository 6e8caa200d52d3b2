//! Where each query stops being interactive on each store, with the aggregator bench's rule
//! for crossing a time limit, and what the papers' billion rows would take.

use crate::aggregator_bench::verdict::verdict;
use crate::results::analytics::{BILLION, Crossing, INTERACTIVE_MS, SizeRun, Store};

/// The median at `rows`, linear in rows through the two largest sizes (through the origin with
/// one size); None when the times do not grow with the rows.
pub fn extrapolate(points: &[(u64, f64)], rows: u64) -> Option<f64> {
    let (rn, mn) = *points.last()?;
    let slope = match points.len() {
        1 => mn / rn.max(1) as f64,
        n => (mn - points[n - 2].1) / (rn as f64 - points[n - 2].0 as f64),
    };
    (slope > 0.0 && slope.is_finite()).then_some(mn + slope * (rows as f64 - rn as f64))
}

/// Per query (in the order they ran) and store, PostgreSQL first.
pub fn crossings(sizes: &[SizeRun]) -> Vec<Crossing> {
    let Some(first) = sizes.first() else { return Vec::new() };
    let mut out = Vec::new();
    for q in &first.queries {
        for store in Store::BOTH {
            let points: Vec<(u64, f64)> =
                sizes.iter().filter_map(|s| Some((s.rows, s.queries.iter().find(|x| x.key == q.key)?.timing(store).median_ms))).collect();
            out.push(Crossing {
                key: q.key.clone(),
                store,
                interactive: verdict(&points, INTERACTIVE_MS / 1000.0, "interactive"),
                at_billion_ms: extrapolate(&points, BILLION),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_beyond_the_largest_size() {
        let pts = [(1_000_000, 100.0), (10_000_000, 1_000.0)];
        assert!((extrapolate(&pts, BILLION).unwrap() - 100_000.0).abs() < 1e-6);
        assert!((extrapolate(&[(1_000_000, 5.0)], 10_000_000).unwrap() - 50.0).abs() < 1e-9);
        assert_eq!(extrapolate(&[(1_000_000, 50.0), (10_000_000, 40.0)], BILLION), None);
        assert_eq!(extrapolate(&[], BILLION), None);
    }
}

//! The plots of ANALYTICS.md: query time against table size, one plot per store, one line per
//! query (its median; the tables have the p99s), the interactive line dashed grey. Drawn by the
//! lab's one plotting routine ([`crate::report::plot`]).

use std::path::Path;

use plotters::style::RGBColor;

use crate::report::plot::{Line, draw};
use crate::results::analytics::{AnalyticsReport, INTERACTIVE_MS, Store};

const COLOURS: [RGBColor; 4] =
    [RGBColor(0x1f, 0x77, 0xb4), RGBColor(0xd6, 0x27, 0x28), RGBColor(0x2c, 0xa0, 0x2c), RGBColor(0x94, 0x67, 0xbd)];

/// `store`'s median per query against the number of orders, log–log.
pub fn query_time_vs_rows(report: &AnalyticsReport, store: Store, path: &Path) -> anyhow::Result<()> {
    let mut lines = Vec::new();
    let (mut x0, mut x1) = (f64::MAX, f64::MIN);
    for (i, (key, title)) in report.query_keys().into_iter().enumerate() {
        let series = report.series(key, store);
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<(f64, f64)> = series.iter().map(|(rows, t)| (*rows as f64, t.median_ms.max(0.01))).collect();
        for p in &points {
            (x0, x1) = (x0.min(p.0), x1.max(p.0));
        }
        lines.push(Line { label: title.to_string(), colour, dashed: false, points, broke: None, markers: true });
    }
    if x0 <= x1 {
        lines.push(Line {
            label: format!("{} s: no longer interactive", INTERACTIVE_MS / 1000.0),
            colour: RGBColor(0x88, 0x88, 0x88),
            dashed: true,
            points: vec![(x0, INTERACTIVE_MS), (x1, INTERACTIVE_MS)],
            broke: None,
            markers: false,
        });
    }
    draw(path, &format!("{store}: history query time against table size"), "orders in the table", "median query time (ms)", &lines)
}

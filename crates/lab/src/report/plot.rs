//! SVG plots for SCALE.md: latency and freshness against offered rate, one colour per path.
//!
//! plotters' SVG backend is built without its font features: it writes text as `<text>`
//! elements and estimates label sizes itself, so rendering needs no system fonts.

use std::path::Path;

use plotters::prelude::*;

use crate::ApiVersion;
use crate::results::aggregator::AggregatorReport;
use crate::results::sweep::{StepRecord, SweepReport};

const SIZE: (u32, u32) = (900, 540);

fn colour(v: ApiVersion) -> RGBColor {
    match v {
        ApiVersion::V1 => RGBColor(0x1f, 0x77, 0xb4),
        ApiVersion::V2 => RGBColor(0xd6, 0x27, 0x28),
        ApiVersion::V3 => RGBColor(0x2c, 0xa0, 0x2c),
    }
}

/// One line to draw: label, colour, dashed?, points (offered rate, value), and the point of
/// the step that broke the path (drawn as a cross).
pub(super) struct Line {
    pub(super) label: String,
    pub(super) colour: RGBColor,
    pub(super) dashed: bool,
    pub(super) points: Vec<(f64, f64)>,
    pub(super) broke: Option<(f64, f64)>,
    /// Draw a dot at each point (not for reference lines).
    pub(super) markers: bool,
}

/// p50 (dashed) and p99 (solid) latency against offered rate, log–log.
pub fn latency_vs_rate(report: &SweepReport, path: &Path) -> anyhow::Result<()> {
    let mut lines = Vec::new();
    for p in &report.paths {
        for (q, dashed) in [("p99", false), ("p50", true)] {
            let value = |s: &StepRecord| {
                if dashed { s.latency_ms.p50 } else { s.latency_ms.p99 }
            };
            let points: Vec<(f64, f64)> =
                p.steps.iter().filter(|s| s.achieved_rate > 0.0).map(|s| (s.offered_rate, value(s).max(0.01))).collect();
            let broke = p.steps.last().filter(|s| !s.held() && s.achieved_rate > 0.0).map(|s| (s.offered_rate, value(s).max(0.01)));
            lines.push(Line {
                label: format!("{} {q}", p.version),
                colour: colour(p.version),
                dashed,
                points,
                broke: broke.filter(|_| !dashed),
                markers: true,
            });
        }
    }
    draw(path, "Latency against offered rate (open loop)", RATE_AXIS, "latency (ms)", &lines)
}

/// Freshness p99 (solid) and p50 (dashed) against offered rate, log–log.
pub fn freshness_vs_rate(report: &SweepReport, path: &Path) -> anyhow::Result<()> {
    let mut lines = Vec::new();
    for p in &report.paths {
        for (q, dashed) in [("p99", false), ("p50", true)] {
            let value = |s: &StepRecord| {
                if dashed { s.freshness_p50_ms } else { s.freshness_p99_ms }
            };
            let points: Vec<(f64, f64)> = p.steps.iter().filter_map(|s| Some((s.offered_rate, value(s)?.max(0.1)))).collect();
            let broke = p.steps.last().filter(|s| !s.held()).and_then(|s| Some((s.offered_rate, value(s)?.max(0.1))));
            lines.push(Line {
                label: format!("{} {q}", p.version),
                colour: colour(p.version),
                dashed,
                points,
                broke: broke.filter(|_| !dashed),
                markers: true,
            });
        }
    }
    draw(path, "Freshness (accepted → counted) against offered rate", RATE_AXIS, "freshness (ms)", &lines)
}

const RATE_AXIS: &str = "offered rate (orders/s)";

/// The v1 aggregator: full recompute (median) and incremental run time against table size,
/// log–log, with the intervals it must fit in as dashed horizontal lines.
pub fn aggregator_vs_rows(agg: &AggregatorReport, path: &Path) -> anyhow::Result<()> {
    let full: Vec<(f64, f64)> = agg.sizes.iter().map(|s| (s.rows as f64, s.full_median_ms.max(0.01))).collect();
    let incremental: Vec<(f64, f64)> = agg.sizes.iter().map(|s| (s.rows as f64, s.incremental_ms.max(0.01))).collect();
    let (x0, x1) = full.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let mut lines = vec![
        Line {
            label: format!("full recompute (median of {})", agg.full_runs),
            colour: RGBColor(0x1f, 0x77, 0xb4),
            dashed: false,
            points: full,
            broke: None,
            markers: true,
        },
        Line {
            label: format!("incremental (+{} rows)", agg.increment_rows),
            colour: RGBColor(0xff, 0x7f, 0x0e),
            dashed: false,
            points: incremental,
            broke: None,
            markers: true,
        },
    ];
    if x0 <= x1 {
        let greys = [RGBColor(0x55, 0x55, 0x55), RGBColor(0x88, 0x88, 0x88), RGBColor(0xaa, 0xaa, 0xaa)];
        for (v, grey) in agg.intervals.iter().zip(greys.iter().cycle()) {
            let ms = v.interval_s * 1000.0;
            lines.push(Line {
                label: format!("{} s interval ({})", v.interval_s, v.source.replace('`', "")),
                colour: *grey,
                dashed: true,
                points: vec![(x0, ms), (x1, ms)],
                broke: None,
                markers: false,
            });
        }
    }
    draw(path, "v1 aggregator run time against table size", "v1 rows in the orders table", "run time (ms)", &lines)
}

pub(super) fn draw(path: &Path, title: &str, x_desc: &str, y_desc: &str, lines: &[Line]) -> anyhow::Result<()> {
    let err = |e: &dyn std::fmt::Debug| anyhow::anyhow!("plot {}: {e:?}", path.display());
    let all = lines.iter().flat_map(|l| l.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in all {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (1.0, 10.0, 1.0, 10.0);
    }
    // Pad the log ranges so end points are not on the frame.
    let (x0, x1, y0, y1) = (x0 / 1.5, x1 * 1.5, y0 / 2.0, y1 * 2.0);

    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (x0..x1).log_scale().with_key_points(ticks_1_2_5(x0, x1)),
            (y0..y1).log_scale().with_key_points(ticks_1_2_5(y0, y1)),
        )
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(0xf0, 0xf0, 0xf0))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|x| label(*x))
        .y_label_formatter(&|y| label(*y))
        .draw()
        .map_err(|e| err(&e))?;

    for l in lines.iter().filter(|l| !l.points.is_empty()) {
        let c = l.colour;
        let style = c.stroke_width(if l.dashed { 1 } else { 2 });
        let anno = if l.dashed {
            chart.draw_series(DashedLineSeries::new(l.points.clone(), 6, 4, style)).map_err(|e| err(&e))?
        } else {
            chart.draw_series(LineSeries::new(l.points.clone(), style)).map_err(|e| err(&e))?
        };
        let width = if l.dashed { 1 } else { 2 };
        anno.label(l.label.clone()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(width)));
        if l.markers {
            chart.draw_series(l.points.iter().map(|&p| Circle::new(p, 3, c.filled()))).map_err(|e| err(&e))?;
        }
        if let Some(b) = l.broke {
            chart.draw_series(std::iter::once(Cross::new(b, 7, c.stroke_width(3)))).map_err(|e| err(&e))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Ticks at 1, 2, 5 × 10ⁿ inside `lo..=hi`: plotters' own log axis labels only whole
/// decades, which leaves a sweep from 250 to 50 000 with two labels.
fn ticks_1_2_5(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    for e in lo.log10().floor() as i32..=hi.log10().ceil() as i32 {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powi(e);
            if v >= lo && v <= hi {
                out.push(v);
            }
        }
    }
    out
}

fn label(v: f64) -> String {
    if v >= 1e6 && (v / 1e6).fract() == 0.0 {
        format!("{}M", v / 1e6)
    } else if v >= 1000.0 && (v / 1000.0).fract() == 0.0 {
        format!("{}k", v / 1000.0)
    } else if v >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_and_labels() {
        assert_eq!(ticks_1_2_5(150.0, 60_000.0), vec![200.0, 500.0, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4]);
        assert_eq!(ticks_1_2_5(0.05, 0.3), vec![0.05, 0.1, 0.2]);
        assert_eq!(label(20_000.0), "20k");
        assert_eq!(label(250.0), "250");
        assert_eq!(label(10_000_000.0), "10M");
        assert_eq!(label(500_000.0), "500k");
        assert_eq!(label(0.2), "0.2");
    }
}

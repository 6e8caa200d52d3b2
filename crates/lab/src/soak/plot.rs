//! The soak's plot: RSS over time of every process, the faults marked as vertical lines, one
//! colour per kind. Two panels on linear axes, the private servers above (hundreds of MiB) and
//! the `coffee-rt` roles and the lab below (tens), so neither flattens the other. A process's
//! line breaks where it was down (no sample for more than 3 s). PostgreSQL's PSS is drawn
//! beside its RSS (dashed), as its RSS counts the shared buffers once per backend.
//!
//! Drawn with plotters' SVG backend without fonts, like `report::plot` (whose charts are
//! log–log against rate, hence not reused for a time axis).

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use super::plan::FaultKind;
use super::results::FaultRecord;
use super::sampler::Series;

const SIZE: (u32, u32) = (1000, 760);
/// Samples further apart than this are a gap in the line.
const GAP_S: f64 = 3.0;
/// The private servers' series, drawn in the upper panel.
pub const SERVERS: [&str; 3] = ["postgres", "redis", "kafka"];
/// Drawn with its PSS too (dashed): its RSS counts the shared buffers once per backend, so it
/// climbs as backends touch them although the memory used does not.
const PSS_TOO: &str = "postgres";

const PALETTE: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
    RGBColor(0x00, 0x00, 0x00),
];

fn fault_colour(kind: FaultKind) -> RGBColor {
    match kind {
        FaultKind::KillWorker => RGBColor(0xd6, 0x27, 0x28),
        FaultKind::KillProcessor => RGBColor(0xff, 0x66, 0x00),
        FaultKind::RestartRedis => RGBColor(0x99, 0x00, 0x99),
        FaultKind::RestartPostgres => RGBColor(0x33, 0x66, 0xcc),
        FaultKind::RestartBroker => RGBColor(0x00, 0x99, 0x66),
    }
}

/// The plot, to `path`; `load_end_s` is marked as a solid grey line (after it: the drain and
/// the audit).
pub fn rss_over_time(
    series: &BTreeMap<String, Series>,
    faults: &[FaultRecord],
    load_end_s: f64,
    title: &str,
    path: &Path,
) -> anyhow::Result<()> {
    let err = |e: &dyn std::fmt::Debug| anyhow::anyhow!("plot {}: {e:?}", path.display());
    let x_max = series.values().filter_map(|s| s.t_s.last()).copied().fold(1.0, f64::max);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(|e| err(&e))?;
    let (upper, lower) = root.split_vertically(SIZE.1 / 2 - 20);
    let servers: Vec<(&String, &Series)> = series.iter().filter(|(n, _)| SERVERS.contains(&n.as_str())).collect();
    let roles: Vec<(&String, &Series)> = series.iter().filter(|(n, _)| !SERVERS.contains(&n.as_str())).collect();
    for (area, lines, caption, legend_faults) in
        [(&upper, servers, "private servers", true), (&lower, roles, "coffee-rt roles and the load generator (coffee-lab)", false)]
    {
        let y_max = lines.iter().flat_map(|(_, s)| s.rss_mib.iter()).copied().fold(1.0, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(0xf0, 0xf0, 0xf0))
            .x_desc("seconds since the load started")
            .y_desc("RSS (MiB)")
            .draw()
            .map_err(|e| err(&e))?;
        let grey = RGBColor(0x60, 0x60, 0x60);
        let end =
            chart.draw_series(LineSeries::new(vec![(load_end_s, 0.0), (load_end_s, y_max)], grey.stroke_width(2))).map_err(|e| err(&e))?;
        if legend_faults {
            end.label("load stopped").legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey.stroke_width(2)));
        }
        let mut labelled: Vec<FaultKind> = Vec::new();
        for f in faults {
            let c = fault_colour(f.kind);
            let anno = chart
                .draw_series(DashedLineSeries::new(vec![(f.at_s, 0.0), (f.at_s, y_max)], 4, 4, c.stroke_width(1)))
                .map_err(|e| err(&e))?;
            if legend_faults && !labelled.contains(&f.kind) {
                labelled.push(f.kind);
                anno.label(f.kind.as_str()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(1)));
            }
        }
        for (i, (name, s)) in lines.iter().enumerate() {
            let c = PALETTE[i % PALETTE.len()];
            for (k, segment) in segments(&s.t_s, &s.rss_mib).into_iter().enumerate() {
                let anno = chart.draw_series(LineSeries::new(segment, c.stroke_width(2))).map_err(|e| err(&e))?;
                if k == 0 {
                    anno.label(name.as_str()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
                }
            }
            if name.as_str() == PSS_TOO {
                for (k, segment) in segments(&s.t_s, &s.pss_mib).into_iter().enumerate() {
                    let anno = chart.draw_series(DashedLineSeries::new(segment, 6, 3, c.stroke_width(2))).map_err(|e| err(&e))?;
                    if k == 0 {
                        anno.label(format!("{name} (PSS)"))
                            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(1)));
                    }
                }
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// The points `(t, v)` cut where samples are more than [`GAP_S`] apart.
fn segments(t_s: &[f64], values: &[f64]) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut prev: Option<f64> = None;
    for (&t, &v) in t_s.iter().zip(values) {
        if prev.is_none_or(|p| t - p > GAP_S) {
            out.push(Vec::new());
        }
        out.last_mut().expect("pushed").push((t, v));
        prev = Some(t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_breaks_where_the_process_was_down() {
        let s = Series {
            t_s: vec![0.0, 1.0, 2.0, 9.0, 10.0],
            rss_mib: vec![1.0, 2.0, 3.0, 4.0, 5.0],
            pss_mib: vec![1.0; 5],
            cpu_pct: vec![0.0; 5],
        };
        assert_eq!(segments(&s.t_s, &s.rss_mib), vec![vec![(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)], vec![(9.0, 4.0), (10.0, 5.0)]]);
        assert!(segments(&[], &[]).is_empty());
    }

    #[test]
    fn draws_an_svg_with_the_faults_and_every_process() {
        let mut series = BTreeMap::new();
        for name in ["postgres", "worker-0"] {
            series.insert(
                name.to_string(),
                Series { t_s: vec![0.0, 1.0, 2.0], rss_mib: vec![10.0, 12.0, 11.0], pss_mib: vec![9.0; 3], cpu_pct: vec![0.0; 3] },
            );
        }
        let faults = vec![FaultRecord::planned(1.5, FaultKind::RestartRedis, "redis")];
        let path = std::env::temp_dir().join(format!("soak-plot-{}.svg", crate::scratch::suffix()));
        rss_over_time(&series, &faults, 2.0, "test", &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        for text in ["postgres", "postgres (PSS)", "worker-0", "restart-redis", "load stopped", "RSS (MiB)"] {
            assert!(svg.contains(text), "{text} in the plot");
        }
    }
}

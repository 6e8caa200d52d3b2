//! The answers first: each path's highest held rate, v2 against v3, the design papers' claims.

use std::fmt::Write;

use crate::ApiVersion;
use crate::report::format::{rows_label, table};
use crate::report::verdicts::{self, ARCHITECTURE, V2_V3_COMPARISON};
use crate::results::sweep::SweepReport;

/// Each path: the highest rate it held, its p99 and CPU there, where and why it broke.
pub(super) fn summary(w: &mut String, report: &SweepReport) {
    let _ = writeln!(w, "## Summary\n");
    let mut t = table(&[
        "path",
        "highest rate held (offered/s)",
        "p99 there",
        "oha there: p50 / p99",
        "CPU µs/order at 1k / 10k",
        "broke at (offered/s)",
        "why",
    ]);
    for path in &report.paths {
        let why = path
            .steps
            .last()
            .filter(|s| !s.held())
            .map(|s| s.breaks.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
            .or_else(|| path.note.clone())
            .unwrap_or_else(|| "held through the whole ladder".into());
        let top = path.max_held_offered().and_then(|r| path.at(r));
        let cpu = |r| path.at(r).and_then(|s| s.cpu_us_per_order).map_or("—".into(), |c| format!("{c:.0}"));
        t.add_row(vec![
            path.version.to_string(),
            top.map_or("none".into(), |s| format!("{:.0}{}", s.offered_rate, if s.generator_bound { " †" } else { "" })),
            top.map_or("—".into(), |s| format!("{:.2} ms", s.latency_ms.p99)),
            match &path.oha {
                Some(Ok(o)) => format!("{:.2} / {:.2} ms ({:.0}/s)", o.p50_ms, o.p99_ms, o.achieved_rate),
                Some(Err(e)) => format!("failed: {}", e.lines().next().unwrap_or_default()),
                None => "—".into(),
            },
            format!("{} / {}", cpu(1_000.0), cpu(10_000.0)),
            path.broke_at.map_or("—".into(), |r| format!("{r:.0}")),
            why,
        ]);
    }
    let _ = writeln!(w, "{t}\n");
    if let Some(g) = report.generator_ceiling() {
        let _ = writeln!(
            w,
            "† above half the generator's own ceiling ({:.0}/s): the generator's share of the two cores bends the figure; oha's column is the cross-check.\n",
            g
        );
    }
}

/// v2 against v3 on each axis, and where v3 starts doing better.
pub(super) fn crossover(w: &mut String, report: &SweepReport) {
    let Some(axes) = verdicts::crossover(report) else { return };
    let _ = writeln!(w, "## v2 against v3, axis by axis\n");
    let _ = writeln!(
        w,
        "Each axis at every rate either path reached (lower is better on all four). _Italics_: measured at a step that broke. The last row says from which rate v3 did better than v2 at a step both held.\n"
    );
    for a in &axes {
        let _ = writeln!(w, "**{}** ({}):\n", a.name, a.unit);
        let mut t = table(&["offered/s", "v2", "v3", "v3 / v2"]);
        let fmt = |x: Option<f64>, held: bool| match x {
            Some(v) if held => format!("{v:.1}"),
            Some(v) => format!("_{v:.1}_"),
            None => "—".into(),
        };
        let held = |v: ApiVersion, r: f64| report.path(v).and_then(|p| p.at(r)).is_some_and(|s| s.held());
        for r in &a.rows {
            t.add_row(vec![
                format!("{:.0}", r.rate),
                fmt(r.v2, held(ApiVersion::V2, r.rate)),
                fmt(r.v3, held(ApiVersion::V3, r.rate)),
                match (r.v2, r.v3) {
                    (Some(x), Some(y)) if x > 0.0 => format!("{:.2}", y / x),
                    _ => "—".into(),
                },
            ]);
        }
        let _ = writeln!(w, "{t}\n");
        let _ = writeln!(
            w,
            "Crossover: {}.\n",
            a.v3_better_from.map_or("none: v3 never did better than v2 on this axis".into(), |r| format!("v3 better from **{r:.0}/s**"))
        );
    }
}

/// Each claim of the design papers against what was measured.
pub(super) fn claims(w: &mut String, report: &SweepReport) {
    let claims = verdicts::claims(report);
    if claims.is_empty() {
        return;
    }
    let _ = writeln!(w, "## The papers' claims, measured\n");
    let _ = writeln!(w, "The design papers in `../shared/seeds/`: {V2_V3_COMPARISON} and {ARCHITECTURE}. Figures from the steps above.\n");
    let mut t = table(&["paper", "claim", "measured", "verdict"]);
    for c in claims {
        t.add_row(vec![c.source.to_string(), c.claim.to_string(), c.measured, c.verdict]);
    }
    let _ = writeln!(w, "{t}\n");
}

/// One line on the v1 aggregator against its interval, with the details further down.
pub(super) fn aggregator_headline(w: &mut String, report: &SweepReport) {
    if let Some(agg) = report.aggregator.as_ref().and_then(|a| a.report.as_ref())
        && let Some(v) = agg.intervals.first()
    {
        let _ = writeln!(
            w,
            "v1 aggregator: a full recompute {} the {} s interval of `coffee-rt up` (details below).\n",
            match v.first_size_over {
                Some(r) => format!("exceeds, from {} rows,", rows_label(r)),
                None => format!("fits, up to {} rows,", rows_label(agg.sizes.last().map_or(0, |s| s.rows))),
            },
            v.interval_s
        );
    }
}

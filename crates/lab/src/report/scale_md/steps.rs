//! Every step of every path, and the two connection models side by side.

use std::collections::BTreeSet;
use std::fmt::Write;

use comfy_table::{Table, presets};

use crate::report::format::table;
use crate::results::sweep::{StepRecord, SweepReport};

/// One table per path, one row per step.
pub(super) fn steps(w: &mut String, report: &SweepReport) {
    let _ = writeln!(w, "## Steps\n");
    for path in &report.paths {
        let _ = writeln!(w, "### {}\n", path.version);
        let _ = writeln!(w, "{}\n", steps_table(&path.steps));
    }
}

/// The pooled ladder against independent clients at the same rates.
pub(super) fn connection_models(w: &mut String, report: &SweepReport) {
    if report.paths.iter().all(|p| p.clients_steps.is_empty()) {
        return;
    }
    let _ = writeln!(w, "## Pooled connections against independent clients\n");
    let _ = writeln!(
        w,
        "The ladder offers load through {} (a gateway's pool). Here the same rates come from independent clients, each with its own connection and its own share of the schedule (POS terminals): the server holds many more connections, each one mostly idle, and a client whose order is slow sends its next one late.\n",
        report.plan.model
    );
    let mut t = table(&[
        "path",
        "offered/s",
        "pooled p50 / p99 ms",
        "clients",
        "clients p50 / p99 ms",
        "clients sent late",
        "CPU µs/order pooled / clients",
    ]);
    for p in &report.paths {
        for c in &p.clients_steps {
            let pooled = p.at(c.offered_rate);
            let cpu = |s: Option<&StepRecord>| s.and_then(|s| s.cpu_us_per_order).map_or("—".into(), |c| format!("{c:.0}"));
            t.add_row(vec![
                p.version.to_string(),
                format!("{:.0}", c.offered_rate),
                pooled.map_or("—".into(), |s| format!("{:.2} / {:.2}", s.latency_ms.p50, s.latency_ms.p99)),
                c.connection_model.connections().to_string(),
                format!("{:.2} / {:.2}{}", c.latency_ms.p50, c.latency_ms.p99, if c.held() { "" } else { " (broke)" }),
                c.late_sends.to_string(),
                format!("{} / {}", cpu(pooled), cpu(Some(c))),
            ]);
        }
    }
    let _ = writeln!(w, "{t}\n");
}

/// A path's steps as a table: the figures, each watched process group's CPU and RSS, the verdict.
fn steps_table(steps: &[StepRecord]) -> Table {
    let groups: BTreeSet<&String> = steps.iter().flat_map(|s| s.procs.keys()).collect();
    let mut header: Vec<String> = [
        "offered/s",
        "achieved/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "sent late",
        "errors",
        "freshness p50/p99 ms",
        "backlog Δ/s",
        "CPU µs/order",
        "path memory MiB",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    header.extend(groups.iter().map(|g| format!("{g} CPU% / RSS MiB")));
    header.push("verdict".into());
    let mut t = Table::new();
    t.load_preset(presets::ASCII_MARKDOWN);
    t.set_header(header);
    for s in steps {
        let errors = if s.errors_by_status.is_empty() {
            "0".to_string()
        } else {
            let parts: Vec<String> = s.errors_by_status.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            format!("{} ({})", s.errors, parts.join(" "))
        };
        let fresh = match (s.freshness_p50_ms, s.freshness_p99_ms) {
            (Some(a), Some(b)) => format!("{a:.0} / {b:.0}"),
            _ => "n/a".into(),
        };
        let mut row = vec![
            format!("{:.0}{}", s.offered_rate, if s.generator_bound { " †" } else { "" }),
            format!("{:.1}", s.achieved_rate),
            format!("{:.2}", s.latency_ms.p50),
            format!("{:.2}", s.latency_ms.p95),
            match s.retried_after_p99_ms {
                Some(first) => format!("{:.2} (first run {first:.2})", s.latency_ms.p99),
                None => format!("{:.2}", s.latency_ms.p99),
            },
            format!("{:.2}", s.latency_ms.max),
            s.late_sends.to_string(),
            errors,
            fresh,
            s.backlog_slope_per_s.map_or("n/a".into(), |b| format!("{b:.0}")),
            s.cpu_us_per_order.map_or("—".into(), |c| format!("{c:.0}")),
            s.path_rss_mib.map_or("—".into(), |m| format!("{m:.0}")),
        ];
        for g in &groups {
            row.push(s.procs.get(*g).map_or("—".into(), |u| format!("{:.0} / {:.0}", u.cpu_pct, u.rss_mib)));
        }
        row.push(if s.held() {
            "held".into()
        } else {
            format!("**broke**: {}", s.breaks.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
        });
        t.add_row(row);
    }
    t
}

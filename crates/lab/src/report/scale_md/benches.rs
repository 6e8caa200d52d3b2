//! The benches the sweep runs after the paths: the processor's scale-out and the v1 aggregator.

use std::fmt::Write;

use crate::report::AGGREGATOR_SVG;
use crate::report::format::table;
use crate::report::tables::{aggregator_table, aggregator_verdict_lines};
use crate::results::sweep::SweepReport;

/// The v3 processor's scale-out: one row per instance count.
pub(super) fn scale_out(w: &mut String, report: &SweepReport) {
    let _ = writeln!(w, "## The v3 processor's scale-out\n");
    match &report.scale_out {
        None => {
            let _ = writeln!(w, "Not measured in this run.\n");
        }
        Some(Err(e)) => {
            let _ = writeln!(w, "Failed: {e}\n");
        }
        Some(Ok(so)) => {
            let _ = writeln!(
                w,
                "A backlog of {} orders on {} partitions (produced in {:.1} s, no HTTP), drained by 1, 2 and 4 `coffee-rt processor` processes of one consumer group, each run on a fresh database, namespace and group. The drain runs from starting the instances until PostgreSQL and Redis hold every order.\n",
                so.records, so.partitions, so.produce_seconds
            );
            let mut t = table(&[
                "instances",
                "drain s",
                "records/s",
                "speed-up",
                "CPU s per instance",
                "CPU µs/record (instances)",
                "RSS MiB per instance",
            ]);
            let one = so.runs.iter().find(|r| r.instances == 1).map(|r| r.records_per_s);
            for r in &so.runs {
                let list = |v: &[f64]| v.iter().map(|x| format!("{x:.1}")).collect::<Vec<_>>().join(", ");
                t.add_row(vec![
                    r.instances.to_string(),
                    format!("{:.1}", r.seconds),
                    format!("{:.0}", r.records_per_s),
                    one.map_or("—".into(), |o| format!("{:.2}×", r.records_per_s / o)),
                    list(&r.cpu_s_per_instance),
                    format!("{:.1}", r.cpu_us_per_record),
                    list(&r.rss_mib_per_instance),
                ]);
            }
            let _ = writeln!(w, "{t}\n");
        }
    }
}

/// The v1 aggregator against table size: the table, the verdicts, the plot.
pub(super) fn aggregator(w: &mut String, report: &SweepReport) {
    let _ = writeln!(w, "## The v1 aggregator against table size\n");
    match &report.aggregator {
        None => {
            let _ = writeln!(w, "Not measured in this run (`--no-aggregator`).\n");
        }
        Some(a) => match (&a.report, &a.error) {
            (Some(agg), _) => {
                let _ = writeln!(
                    w,
                    "v1 counts an order when the aggregator next runs. A full recompute scans every v1 row, so its time grows with the table while the interval stays fixed. Method: {}. Run time {:.0} s.\n",
                    agg.method, agg.duration_s
                );
                let _ = writeln!(w, "{}\n", aggregator_table(agg));
                for line in aggregator_verdict_lines(agg) {
                    let _ = writeln!(w, "{line}");
                }
                for n in agg.sizes.iter().filter_map(|s| s.note.as_ref()) {
                    let _ = writeln!(w, "\n_Note: {n}._");
                }
                if let Some(n) = &agg.note {
                    let _ = writeln!(w, "\n_{n}._");
                }
                let _ = writeln!(w, "\n![Aggregator run time against table size]({AGGREGATOR_SVG})\n");
            }
            (None, e) => {
                let _ = writeln!(w, "Failed: {}\n", e.clone().unwrap_or_else(|| "no result".into()));
            }
        },
    }
}

//! The tables and lines the benches print, and that SCALE.md shares for the aggregator.

use comfy_table::{Table, presets};

use super::format::{human_duration, join, partition_lists, percent, round_2sig, rows_label};
use crate::results::aggregator::AggregatorReport;
use crate::results::dashboard::DashboardReport;
use crate::results::load::{FreshnessMs, LoadReport};
use crate::results::scale_out::ScaleOutReport;

/// A run of `coffee-lab load` as a table, for a person at the end of it.
pub fn load_table(r: &LoadReport) -> String {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    t.set_header(vec!["metric", "value"]);
    let f = |v: f64| format!("{v:.3}");
    let errors = if r.errors_by_status.is_empty() {
        "0".to_string()
    } else {
        let parts: Vec<String> = r.errors_by_status.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        format!("{} ({})", r.errors, parts.join(", "))
    };
    let freshness = |sel: fn(&FreshnessMs) -> f64| r.freshness_ms.as_ref().map_or("n/a".into(), |x| f(sel(x)));
    let rows: Vec<(&str, String)> = vec![
        ("version", r.version.clone()),
        ("target", r.target.clone()),
        ("offered rate (req/s)", format!("{:.1}", r.offered_rate)),
        ("achieved rate (req/s)", format!("{:.1}", r.achieved_rate)),
        ("duration (s)", format!("{:.2}", r.duration_s)),
        ("sent / scheduled", format!("{} / {}", r.sent, r.scheduled)),
        ("ok", r.ok.to_string()),
        ("latency p50 (ms)", f(r.latency_ms.p50)),
        ("latency p95 (ms)", f(r.latency_ms.p95)),
        ("latency p99 (ms)", f(r.latency_ms.p99)),
        ("latency max (ms)", f(r.latency_ms.max)),
        ("errors", errors),
        ("connections", r.connection_model.to_string()),
        ("sent > 1 ms late", r.late_sends.to_string()),
        ("client send lag p99 (ms)", f(r.send_lag_ms_p99)),
        ("freshness p50 (ms)", freshness(|x| x.p50)),
        ("freshness p99 (ms)", freshness(|x| x.p99)),
    ];
    for (k, v) in rows {
        t.add_row(vec![k.to_string(), v]);
    }
    t.to_string()
}

/// The aggregator bench as a table: one row per table size.
pub fn aggregator_table(agg: &AggregatorReport) -> Table {
    let mut header: Vec<String> =
        ["rows", "table + indexes MiB", "full recompute ms (median; min–max)"].iter().map(|s| s.to_string()).collect();
    header.extend(agg.intervals.iter().map(|v| format!("full / {} s interval", v.interval_s)));
    header.push(format!("incremental ms (+{} rows)", agg.increment_rows));
    header.push("counted full / incr.".into());
    header.push("grow s".into());
    let mut t = Table::new();
    t.load_preset(presets::ASCII_MARKDOWN);
    t.set_header(header);
    for s in &agg.sizes {
        let (lo, hi) = s.full_ms.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        let mut row = vec![rows_label(s.rows), format!("{:.0}", s.table_mib), format!("{:.1}; {:.1}–{:.1}", s.full_median_ms, lo, hi)];
        for v in &agg.intervals {
            let p = 100.0 * s.full_median_ms / (v.interval_s * 1000.0);
            row.push(if p > 100.0 { format!("**{}**", percent(p)) } else { percent(p) });
        }
        row.push(format!("{:.1}", s.incremental_ms));
        row.push(format!("{} / {}", s.full_counted, s.incremental_counted));
        row.push(format!("{:.1}", s.grow_s));
        t.add_row(row);
    }
    t
}

/// One line per interval: where the full recompute stops fitting in it.
pub fn aggregator_verdict_lines(agg: &AggregatorReport) -> Vec<String> {
    let largest = agg.sizes.last().map_or(0, |s| s.rows);
    agg.intervals
        .iter()
        .map(|v| {
            let measured = match v.first_size_over {
                Some(r) => format!("exceeds it from **{}** rows (measured)", rows_label(r)),
                None => format!("stays within it up to {} rows (the largest measured)", rows_label(largest)),
            };
            let crossover = match v.crossover_rows {
                Some(r) if r > 0.0 => format!(
                    "; it takes as long as the interval at about **{}** rows ({}), which is {} of orders at 100 orders/s or {} at 1,000/s",
                    rows_label(round_2sig(r)),
                    if v.extrapolated { "extrapolated linearly from the two largest sizes" } else { "interpolated between measured sizes" },
                    human_duration(r / 100.0),
                    human_duration(r / 1000.0),
                ),
                _ => String::new(),
            };
            format!("- **{} s** interval ({}): the full recompute {measured}{crossover}.", v.interval_s, v.source)
        })
        .collect()
}

/// The scale-out bench as a small table, for the terminal.
pub fn scale_out_table(report: &ScaleOutReport) -> String {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "instances",
        "drain s",
        "first record s",
        "records/s",
        "records/s after first",
        "CPU s per instance",
        "µs CPU/record",
        "RSS MiB (peak)",
        "partitions",
        "services CPU s",
        "machine CPU s",
    ]);
    for r in &report.runs {
        let rss: Vec<String> =
            r.rss_mib_per_instance.iter().zip(&r.peak_rss_mib_per_instance).map(|(a, b)| format!("{a:.0} ({b:.0})")).collect();
        t.add_row(vec![
            r.instances.to_string(),
            format!("{:.2}", r.seconds),
            format!("{:.2}", r.first_record_seconds),
            format!("{:.0}", r.records_per_s),
            format!("{:.0}", r.records_per_s_after_first),
            join(&r.cpu_s_per_instance, 1),
            format!("{:.1}", r.cpu_us_per_record),
            rss.join(" + "),
            partition_lists(&r.partitions_per_instance),
            r.cpu_s_services.iter().map(|(k, v)| format!("{k} {v:.1}")).collect::<Vec<_>>().join(", "),
            format!("{:.1}", r.cpu_s_machine),
        ]);
    }
    format!(
        "{} records on {} partitions, produced in {:.1} s; {} cores\n{t}",
        report.records, report.partitions, report.produce_seconds, report.machine_cores
    )
}

/// The dashboard bench's result, as `coffee-lab bench ws` prints it.
pub fn dashboard_text(r: &DashboardReport) -> String {
    let mib = |m: Option<f64>| m.map_or_else(|| "n/a".into(), |m| format!("{m:.1} MiB"));
    [
        format!("clients connected   {} (in {:.2} s)", r.clients, r.connect_time.as_secs_f64()),
        format!("orders posted       {}", r.orders),
        format!("latency samples     {} (missed {})", r.samples, r.missed),
        format!("push latency        p50 {:.1} ms · p99 {:.1} ms · max {:.1} ms", r.p50_ms, r.p99_ms, r.max_ms),
        format!(
            "server RSS          before {} · {} clients connected {} · after the orders {}",
            mib(r.rss_before_mib),
            r.clients,
            mib(r.rss_connected_mib),
            mib(r.rss_after_mib)
        ),
    ]
    .iter()
    .map(|l| format!("{l}\n"))
    .collect()
}

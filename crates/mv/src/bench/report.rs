//! Bench results on stdout (a summary or a JSON line per strategy) and in
//! docs/MARKET_VALUE.md.
//!
//! The document is regenerated from all results it already holds (kept as
//! raw JSON lines inside it) plus the new ones, so running the three scales
//! one after another accumulates one table.

use super::result::StrategyResult;
use anyhow::{Context, Result};
use std::path::Path;

/// The page's fixed text around the generated tables, kept as Markdown.
const MD_HEAD: &str = include_str!("report_head.md");
const MD_METHOD: &str = include_str!("report_method.md");

const BEGIN: &str = "<!-- mv-bench-results:begin -->";
const END: &str = "<!-- mv-bench-results:end -->";

const NOTES_BEGIN: &str = "<!-- mv-notes:begin (hand-written, kept when the bench rewrites this file) -->";
const NOTES_END: &str = "<!-- mv-notes:end -->";

/// The hand-written findings between the notes markers, if any.
fn notes(doc: &str) -> String {
    doc.split_once(NOTES_BEGIN).and_then(|(_, rest)| rest.split_once(NOTES_END)).map(|(n, _)| n.trim().to_string()).unwrap_or_default()
}

fn existing(doc: &str) -> Vec<StrategyResult> {
    let Some((_, rest)) = doc.split_once(BEGIN) else {
        return vec![];
    };
    let Some((block, _)) = rest.split_once(END) else {
        return vec![];
    };
    block.lines().filter_map(|l| serde_json::from_str(l.trim()).ok()).collect()
}

/// The `--json` line: the headline figures, and everything in `detail`.
pub fn json_line(r: &StrategyResult) -> Result<String> {
    Ok(serde_json::to_string(&serde_json::json!({
        "strategy": r.strategy, "scale": r.scale, "rss_mb": r.rss_mb,
        "update_latency_ms": {"p50": r.update_latency_ms.p50, "p99": r.update_latency_ms.p99},
        "updates_per_s": r.updates_per_s, "output_msgs_per_s": r.output_msgs_per_s,
        "rebuild_s": r.rebuild_s, "detail": r,
    }))?)
}

pub fn summary_line(r: &StrategyResult) -> String {
    format!(
        "{} scale {}: rss {:.0} MB (state {:.0} MB), p50 {} ms p99 {} ms @10x, {:.0} upd/s max, {:.0} msgs/s @10x, rebuild {:.2} s",
        r.strategy,
        r.scale,
        r.rss_mb,
        r.state_mb,
        r.update_latency_ms.p50,
        r.update_latency_ms.p99,
        r.updates_per_s,
        r.output_msgs_per_s,
        r.rebuild_s
    )
}

/// `old` with `new` in place of runs of the same strategy, scale and source,
/// in table order.
fn merge(mut all: Vec<StrategyResult>, new: &[StrategyResult]) -> Vec<StrategyResult> {
    all.retain(|r| !new.iter().any(|n| n.strategy == r.strategy && n.scale == r.scale && n.source == r.source));
    all.extend(new.iter().cloned());
    all.sort_by(|a, b| a.scale.total_cmp(&b.scale).then(a.source.cmp(&b.source)).then(a.strategy.cmp(&b.strategy)));
    all
}

/// Merges `new` into the results already in `path` (replacing earlier runs
/// of the same strategy, scale and source) and rewrites it.
pub fn write_doc(path: &Path, new: &[StrategyResult]) -> Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let all = merge(existing(&old), new);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).ok();
    }
    std::fs::write(path, render(&all, &notes(&old))).with_context(|| format!("writing {}", path.display()))
}

fn f1(v: f64) -> String {
    if v >= 100.0 { format!("{v:.0}") } else { format!("{v:.2}") }
}

/// Which machine measured which rows: results accumulate over sessions.
fn machines(all: &[StrategyResult]) -> String {
    let mut seen: Vec<(&str, Vec<String>)> = Vec::new();
    for r in all {
        let row = format!("{} {}", r.scale, r.source);
        match seen.iter_mut().find(|(m, _)| *m == r.machine) {
            Some((_, rows)) if rows.contains(&row) => {}
            Some((_, rows)) => rows.push(row),
            None => seen.push((&r.machine, vec![row])),
        }
    }
    match seen.as_slice() {
        [] => String::new(),
        [(m, _)] => format!("Machine: {m}.\n\n"),
        _ => {
            let list: Vec<String> = seen.iter().map(|(m, rows)| format!("{m} ({})", rows.join(", "))).collect();
            format!("Machines: {}.\n\n", list.join("; "))
        }
    }
}

pub fn render(all: &[StrategyResult], notes: &str) -> String {
    let mut s = String::new();
    s.push_str(MD_HEAD);
    s.push_str("\n## Our measurements\n\n");
    s.push_str(&machines(all));
    s.push_str(
        "| scale | strategy | accounts | holdings | orders | source | RSS MB | state MB | peak MB | p50 ms @10× | p99 ms @10× | max upd/s | out msgs/s @10× | rebuild s (load + topic) | load avg |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in all {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} ({} + {}) | {} |\n",
            r.scale,
            r.strategy,
            r.accounts,
            r.holdings,
            r.orders,
            r.source,
            f1(r.rss_mb),
            f1(r.state_mb),
            f1(r.peak_rss_mb),
            r.update_latency_ms.p50,
            r.update_latency_ms.p99,
            f1(r.updates_per_s),
            f1(r.output_msgs_per_s),
            f1(r.rebuild_s),
            f1(r.rebuild_pg_or_gen_s),
            f1(r.rebuild_topic_s),
            r.load_avg,
        ));
    }
    s.push_str("\nPaced runs (open loop, latency from each update's due time):\n\n");
    s.push_str("| scale | strategy | rate | offered/s | achieved/s | p50 ms | p99 ms | max ms | out msgs/s |\n|---|---|---|---|---|---|---|---|---|\n");
    for r in all {
        for run in &r.runs {
            s.push_str(&format!(
                "| {} | {} | {}× | {:.1} | {:.1} | {} | {} | {} | {} |\n",
                r.scale,
                r.strategy,
                run.rate_x,
                run.offered_per_s,
                run.achieved_per_s,
                run.latency_ms.p50,
                run.latency_ms.p99,
                run.latency_ms.max,
                f1(run.output_msgs_per_s)
            ));
        }
    }
    let b: Vec<_> = all.iter().filter(|r| r.overview_get_ms.is_some()).collect();
    if !b.is_empty() {
        s.push_str("\nStrategy B on demand (`GET /api/accounts/{id}/overview`, client-side over loopback HTTP):\n\n| scale | watched accounts | p50 ms | p99 ms |\n|---|---|---|---|\n");
        for r in b {
            let g = r.overview_get_ms.unwrap_or_default();
            s.push_str(&format!("| {} | {} | {} | {} |\n", r.scale, r.watched_accounts.unwrap_or(0), g.p50, g.p99));
        }
    }
    s.push_str("\nExact commands:\n\n");
    let mut cmds: Vec<&str> = all.iter().map(|r| r.command.as_str()).collect();
    cmds.dedup();
    for c in cmds {
        s.push_str(&format!("    {c}\n"));
    }
    s.push_str("\n## Findings\n\n");
    s.push_str(NOTES_BEGIN);
    s.push_str("\n\n");
    s.push_str(notes);
    s.push_str("\n\n");
    s.push_str(NOTES_END);
    s.push('\n');
    s.push_str(MD_METHOD);
    s.push_str(
        "\n## Raw results\n\nOne JSON line per strategy and scale, as printed by `--json` (the bench merges new runs into this block).\n\n",
    );
    s.push_str(BEGIN);
    s.push_str("\n```json\n");
    for r in all {
        s.push_str(&serde_json::to_string(r).expect("serialises"));
        s.push('\n');
    }
    s.push_str("```\n");
    s.push_str(END);
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::{existing, merge, notes, render};

    /// Text edited in docs/MARKET_VALUE.md outside the notes block would be lost at the next
    /// bench run: it belongs in `report_head.md` or `report_method.md`.
    #[test]
    fn the_published_page_is_what_the_bench_writes() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/MARKET_VALUE.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let rendered = render(&merge(existing(&doc), &[]), &notes(&doc));
        let first_difference = doc.lines().zip(rendered.lines()).position(|(a, b)| a != b);
        assert!(rendered == doc, "{} differs from the bench's rendering at line {first_difference:?}", path.display());
    }
}

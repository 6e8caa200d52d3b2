//! What people read: `docs/SCALE.md`, its SVG plots, and the tables the benches print. It
//! renders [`crate::results`] and imports nothing else of the lab: the results and the runners
//! never import the report's internals, and the report never imports a runner.

pub mod analytics_md;
pub mod format;
pub mod plot;
pub mod scale_md;
pub mod tables;
pub mod verdicts;

use std::path::Path;

use crate::results::sweep::SweepReport;

/// The aggregator plot's file name.
pub const AGGREGATOR_SVG: &str = "scale-aggregator.svg";

/// Writes `scale-results.json`, the plots and `SCALE.md` (keeping the analysis of the SCALE.md
/// already there) into `out`.
pub fn write_sweep(report: &SweepReport, out: &Path) -> anyhow::Result<()> {
    std::fs::write(out.join("scale-results.json"), serde_json::to_string_pretty(report)? + "\n")?;
    plot::latency_vs_rate(report, &out.join("scale-latency.svg"))?;
    plot::freshness_vs_rate(report, &out.join("scale-freshness.svg"))?;
    if let Some(agg) = report.aggregator.as_ref().and_then(|a| a.report.as_ref()) {
        plot::aggregator_vs_rows(agg, &out.join(AGGREGATOR_SVG))?;
    }
    let md_path = out.join("SCALE.md");
    let previous = std::fs::read_to_string(&md_path).ok();
    std::fs::write(&md_path, scale_md::render(report, previous.as_deref()))?;
    Ok(())
}

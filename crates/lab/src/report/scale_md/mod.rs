//! Renders `docs/SCALE.md` from a sweep. Pure: the report in, the text out, one function per
//! section in the order they appear.
//!
//! The analysis section is written by a person from the numbers; re-running the sweep keeps
//! whatever stands between the analysis markers of the previous file.

mod benches;
mod intro;
mod limits;
mod steps;
mod summary;

use std::fmt::Write;

use crate::results::sweep::SweepReport;
pub use limits::ingest_ceiling_of;

pub const ANALYSIS_START: &str = "<!-- analysis:start -->";
pub const ANALYSIS_END: &str = "<!-- analysis:end -->";

const ANALYSIS_PLACEHOLDER: &str = "_To be written from the numbers above, by whoever ran the full sweep:_\n\n\
- _the crossover points between the paths;_\n\
- _which resource saturates first on each path (CPU of which process, a ceiling of which part);_\n\
- _how the measured numbers compare with the design papers' guesses: v1 ~100 orders/s, v2 ~500/s, \
v3 1000+/s, a v2/v3 crossover at 500–1000/s, ~200 MB (v2) against ~3 GB (v3) of memory._";

/// SCALE.md for `report`, keeping the analysis of `previous` (the file being replaced).
pub fn render(report: &SweepReport, previous: Option<&str>) -> String {
    let mut md = String::new();
    let w = &mut md;
    intro::title(w, report);
    intro::machine(w, report);
    intro::generator(w, report);
    intro::method(w, report);
    summary::summary(w, report);
    summary::crossover(w, report);
    summary::claims(w, report);
    summary::aggregator_headline(w, report);
    limits::ceilings(w, report);
    limits::against_limits(w, report);
    steps::steps(w, report);
    steps::connection_models(w, report);
    benches::scale_out(w, report);
    benches::aggregator(w, report);
    plots(w);
    analysis(w, previous);
    md
}

/// The plots, and where the raw numbers are.
fn plots(w: &mut String) {
    let _ = writeln!(w, "## Plots\n");
    let _ = writeln!(w, "![Latency against offered rate](scale-latency.svg)\n");
    let _ = writeln!(w, "![Freshness against offered rate](scale-freshness.svg)\n");
    let _ = writeln!(w, "Raw numbers: [scale-results.json](scale-results.json).\n");
}

/// The person-written analysis: kept from `previous`, or a placeholder saying what it should cover.
fn analysis(w: &mut String, previous: Option<&str>) {
    let _ = writeln!(w, "## Analysis\n");
    let analysis = previous.and_then(kept_analysis).unwrap_or(ANALYSIS_PLACEHOLDER);
    let _ = writeln!(w, "{ANALYSIS_START}\n{}\n{ANALYSIS_END}", analysis.trim());
}

/// The text between the analysis markers of an earlier SCALE.md, if it has them.
pub fn kept_analysis(previous: &str) -> Option<&str> {
    let start = previous.find(ANALYSIS_START)? + ANALYSIS_START.len();
    let end = previous[start..].find(ANALYSIS_END)? + start;
    Some(&previous[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analysis_survives_a_rerun() {
        let old = format!("# x\n\n## Analysis\n\n{ANALYSIS_START}\nv2 breaks at 5k because Redis.\n{ANALYSIS_END}\n");
        assert_eq!(kept_analysis(&old).map(str::trim), Some("v2 breaks at 5k because Redis."));
        assert_eq!(kept_analysis("no markers"), None);
        assert_eq!(kept_analysis(&format!("{ANALYSIS_START} unterminated")), None);
    }
}

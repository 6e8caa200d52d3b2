//! The sweep's answers, computed from its steps: where v3 overtakes v2 on each axis, and each
//! claim of the design papers against the number that confirms or refutes it. Pure: the
//! report in, rows out, so the rules are unit tested and SCALE.md only formats them.

use crate::ApiVersion;
use crate::results::sweep::{PathResult, StepRecord, SweepReport};

/// One axis of the v2/v3 comparison at one rate.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisRow {
    pub rate: f64,
    pub v2: Option<f64>,
    pub v3: Option<f64>,
}

/// One axis: its rows, and the lowest rate at which v3 did better than v2 (lower is better on
/// every axis but throughput), if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub name: &'static str,
    pub unit: &'static str,
    pub rows: Vec<AxisRow>,
    pub v3_better_from: Option<f64>,
}

/// The axes on which the papers compare the two paths, at every rate of the ladder where at
/// least one of them was measured. A path's figure at a rate it did not hold is shown (it is
/// what it measured) but never counts as better.
pub fn crossover(report: &SweepReport) -> Option<Vec<Axis>> {
    let v2 = report.path(ApiVersion::V2)?;
    let v3 = report.path(ApiVersion::V3)?;
    let rates: Vec<f64> = report.plan.rates.iter().copied().filter(|r| v2.at(*r).is_some() || v3.at(*r).is_some()).collect();
    let axis = |name, unit, f: fn(&StepRecord) -> Option<f64>| {
        let rows: Vec<AxisRow> =
            rates.iter().map(|&rate| AxisRow { rate, v2: v2.at(rate).and_then(f), v3: v3.at(rate).and_then(f) }).collect();
        let v3_better_from = rates
            .iter()
            .find(|&&rate| {
                let held3 = v3.at(rate).filter(|s| s.held()).and_then(f);
                match (v2.at(rate).filter(|s| s.held()).and_then(f), held3) {
                    (Some(a), Some(b)) => b < a,
                    (None, Some(_)) => true,
                    _ => false,
                }
            })
            .copied();
        Axis { name, unit, rows, v3_better_from }
    };
    Some(vec![
        axis("API latency p99", "ms", |s| Some(s.latency_ms.p99)),
        axis("freshness p99", "ms", |s| s.freshness_p99_ms),
        axis("CPU per order (path's processes)", "µs", |s| s.cpu_us_per_order),
        axis("memory (path's processes, PSS)", "MiB", |s| s.path_rss_mib),
    ])
}

/// Where the claims come from: the design papers in `../shared/seeds/`.
pub const V2_V3_COMPARISON: &str = "the v2/v3 comparison";
pub const ARCHITECTURE: &str = "the architecture";

/// A claim of the papers against a measured number.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// The paper that makes the claim ([`V2_V3_COMPARISON`] or [`ARCHITECTURE`]).
    pub source: &'static str,
    pub claim: &'static str,
    pub measured: String,
    pub verdict: String,
}

/// The step of `v` at `rate`, if the path held it.
fn held(report: &SweepReport, v: ApiVersion, rate: f64) -> Option<&StepRecord> {
    report.path(v)?.at(rate).filter(|s| s.held())
}

fn ms(x: f64) -> String {
    if x >= 100.0 { format!("{x:.0} ms") } else { format!("{x:.1} ms") }
}

/// Where a measured range sits against a claimed one (lower is better).
fn against(lo: f64, hi: f64, claim_lo: f64, claim_hi: f64) -> &'static str {
    if hi < claim_lo {
        "refuted: better than claimed"
    } else if lo > claim_hi {
        "refuted: worse than claimed"
    } else {
        "confirmed"
    }
}

/// Every claim of the papers the sweep can test, with its verdict.
pub fn claims(report: &SweepReport) -> Vec<Claim> {
    let mut out = Vec::new();
    let max_held = |v| report.path(v).and_then(PathResult::max_held_offered);
    let (m2, m3) = (max_held(ApiVersion::V2), max_held(ApiVersion::V3));
    if let (Some(m2), Some(m3)) = (m2, m3) {
        let at =
            [1_000.0, 10_000.0].into_iter().filter_map(|r| Some((r, held(report, ApiVersion::V2, r)?, held(report, ApiVersion::V3, r)?)));
        let detail: Vec<String> = at
            .map(|(r, a, b)| {
                format!(
                    "at {r:.0}/s p99 {} (v2) vs {} (v3), CPU {} vs {} µs/order",
                    ms(a.latency_ms.p99),
                    ms(b.latency_ms.p99),
                    a.cpu_us_per_order.map_or("?".into(), |c| format!("{c:.0}")),
                    b.cpu_us_per_order.map_or("?".into(), |c| format!("{c:.0}")),
                )
            })
            .collect();
        let better = crossover(report).map(|axes| axes.iter().filter_map(|a| Some((a.name, a.v3_better_from?))).collect::<Vec<_>>());
        let verdict = match (m3 > m2, better.as_deref()) {
            (true, _) => format!("confirmed: v3 held {m3:.0}/s, v2 {m2:.0}/s"),
            (false, Some([])) => "refuted: v3 is better than v2 on no axis at any rate".into(),
            (false, Some(b)) => format!(
                "refuted on throughput (v2 held as much); v3 better on {}",
                b.iter().map(|(n, r)| format!("{n} from {r:.0}/s")).collect::<Vec<_>>().join(", ")
            ),
            (false, None) => "refuted on throughput".into(),
        };
        out.push(Claim {
            source: V2_V3_COMPARISON,
            claim: "V3 outperforms V2 above ~1,000 orders/s; the crossover is at 500–1,000/s",
            measured: format!("highest rate held: v2 {m2:.0}/s, v3 {m3:.0}/s; {}", detail.join("; ")),
            verdict,
        });
    }
    if let Some(s) = held(report, ApiVersion::V2, 1_000.0)
        && let Some(cpu) = s.procs.get("coffee-rt").map(|u| u.cpu_pct)
    {
        out.push(Claim {
            source: V2_V3_COMPARISON,
            claim: "V2's single worker process becomes CPU-bound above 1,000 orders/s",
            measured: format!("at 1,000/s the whole coffee-rt process (API and worker) used {cpu:.0} % of one core"),
            verdict: if cpu > 80.0 { "confirmed".into() } else { format!("refuted: {:.0} % of a core left", 100.0 - cpu) },
        });
    }
    let rss_rate =
        [10_000.0, 1_000.0].into_iter().find(|r| held(report, ApiVersion::V2, *r).is_some() && held(report, ApiVersion::V3, *r).is_some());
    if let Some(r) = rss_rate {
        let rss = |v| held(report, v, r).and_then(|s| s.path_rss_mib);
        if let (Some(a), Some(b)) = (rss(ApiVersion::V2), rss(ApiVersion::V3)) {
            let broker = held(report, ApiVersion::V3, r).and_then(|s| s.procs.get("java")).map(|u| u.pss_mib.unwrap_or(u.rss_mib));
            let v2v = against(a, a, 100.0, 400.0);
            let v3v = against(b / 1024.0, b / 1024.0, 1.5, 6.0);
            out.push(Claim {
                source: V2_V3_COMPARISON,
                claim: "Memory: v2 ~200 MB in all, v3 ~3 GB+",
                measured: format!(
                    "at {r:.0}/s: v2 {a:.0} MiB, v3 {b:.0} MiB{} (peak proportional set size summed over the path's processes: shared pages once)",
                    broker.map_or(String::new(), |j| format!(", of which the broker's JVM {j:.0} MiB"))
                ),
                verdict: format!("v2 {v2v}; v3 {v3v} ({:.1}× v2, not {:.0}×)", b / a, 3072.0 / 200.0),
            });
        }
    }
    for (v, lo, hi) in [(ApiVersion::V2, 2.0, 5.0), (ApiVersion::V3, 5.0, 10.0)] {
        if let Some(s) = held(report, v, 1_000.0) {
            out.push(Claim {
                source: V2_V3_COMPARISON,
                claim: if v == ApiVersion::V2 { "API response time of v2: ~2–5 ms" } else { "API response time of v3: ~5–10 ms" },
                measured: format!("at 1,000/s p50 {}, p99 {}", ms(s.latency_ms.p50), ms(s.latency_ms.p99)),
                verdict: against(s.latency_ms.p50, s.latency_ms.p99, lo, hi).into(),
            });
        }
    }
    for (v, lo, hi, text) in [
        (ApiVersion::V1, 10_000.0, 60_000.0, "Dashboard latency of v1: 10–60 s (the aggregator's interval)"),
        (ApiVersion::V2, 50.0, 100.0, "Dashboard latency of v2: ~50–100 ms"),
        (ApiVersion::V3, 50.0, 100.0, "Dashboard latency of v3: ~100 ms"),
    ] {
        if let Some(s) = held(report, v, 1_000.0)
            && let (Some(p50), Some(p99)) = (s.freshness_p50_ms, s.freshness_p99_ms)
        {
            // The dashboard pushes at most every 100 ms: up to that much on top of freshness.
            out.push(Claim {
                source: ARCHITECTURE,
                claim: text,
                measured: format!("at 1,000/s freshness p50 {}, p99 {}; the push to the browser adds 0–100 ms", ms(p50), ms(p99)),
                verdict: against(p50, p99 + 100.0, lo, hi).into(),
            });
        }
    }
    if let Some(Ok(so)) = &report.scale_out {
        let rate = |n| so.runs.iter().find(|r| r.instances == n).map(|r| r.records_per_s);
        if let (Some(one), Some(two)) = (rate(1), rate(2)) {
            let four = rate(4).map_or(String::new(), |f| format!(", 4: {f:.0}/s ({:.2}×)", f / one));
            out.push(Claim {
                source: V2_V3_COMPARISON,
                claim: "V3 scales horizontally: more processor instances on more partitions",
                measured: format!(
                    "backlog of {} records on {} partitions, 1 instance: {one:.0}/s, 2: {two:.0}/s ({:.2}×){four}",
                    so.records,
                    so.partitions,
                    two / one
                ),
                verdict: if two / one >= 1.3 {
                    "confirmed".into()
                } else {
                    let busy = so.runs.iter().map(|r| r.cpu_s_machine / (r.seconds * so.machine_cores as f64)).fold(0.0, f64::max);
                    format!(
                        "not on this machine, and not for want of CPU: the busiest drain used {:.0} % of its {} cores (see the scale-out section)",
                        100.0 * busy,
                        so.machine_cores
                    )
                },
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_judged_against_the_claim() {
        assert_eq!(against(0.9, 1.8, 2.0, 5.0), "refuted: better than claimed");
        assert_eq!(against(1.5, 4.0, 2.0, 5.0), "confirmed");
        assert_eq!(against(6.0, 9.0, 2.0, 5.0), "refuted: worse than claimed");
    }
}

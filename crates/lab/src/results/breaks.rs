//! When has a path broken? A pure function of what one step measured, so every rule is
//! table-tested. A path breaks at the first step where any rule fires:
//!
//! * throughput — it achieved less than 95 % of the offered rate;
//! * latency — its p99 went over the stated SLO;
//! * errors — any request failed (including requests the client could not send);
//! * backlog — the server's backlog gauge grew during the step faster than a small share of
//!   the offered rate, or accepted orders were still not counted when the drain gave up,
//!   or freshness p99 went over its SLO (the pipeline is falling behind, even if the API
//!   still answers fast).

use std::fmt;

use serde::Serialize;

/// The thresholds, stated in SCALE.md next to the results.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BreakCriteria {
    /// Achieved / offered below this breaks (0.95).
    pub min_achieved_ratio: f64,
    /// p99 latency SLO, ms.
    pub slo_p99_ms: f64,
    /// More errors than this break (0).
    pub max_errors: u64,
    /// Backlog growth (items/s, least-squares slope over the step) above this share of the
    /// offered rate breaks; a consumer keeping up has a flat backlog.
    pub max_backlog_growth_ratio: f64,
    /// Freshness p99 SLO, ms; `None` where freshness is by design an interval (v1's aggregator).
    pub freshness_slo_ms: Option<f64>,
}

impl Default for BreakCriteria {
    fn default() -> Self {
        Self { min_achieved_ratio: 0.95, slo_p99_ms: 100.0, max_errors: 0, max_backlog_growth_ratio: 0.05, freshness_slo_ms: Some(5_000.0) }
    }
}

/// What one step measured, as far as breaking is concerned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepObservation {
    pub offered_rate: f64,
    pub achieved_rate: f64,
    pub p99_ms: f64,
    pub errors: u64,
    /// `(seconds since step start, backlog)` from the backlog probe; empty if there is none.
    pub backlog: Vec<(f64, f64)>,
    /// Orders the API accepted, and how many the server counted by the end of the drain;
    /// `None` when freshness is unavailable.
    pub accepted_counted: Option<(u64, u64)>,
    pub freshness_p99_ms: Option<f64>,
}

/// Why a step broke the path.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum BreakReason {
    Throughput { achieved: f64, offered: f64 },
    Latency { p99_ms: f64, slo_ms: f64 },
    Errors { count: u64 },
    BacklogGrowing { per_second: f64 },
    NotDrained { accepted: u64, counted: u64 },
    Freshness { p99_ms: f64, slo_ms: f64 },
}

impl fmt::Display for BreakReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakReason::Throughput { achieved, offered } => {
                write!(f, "throughput {achieved:.0}/s < 95% of {offered:.0}/s")
            }
            BreakReason::Latency { p99_ms, slo_ms } => {
                write!(f, "p99 {p99_ms:.1} ms > SLO {slo_ms:.0} ms")
            }
            BreakReason::Errors { count } => write!(f, "{count} errors"),
            BreakReason::BacklogGrowing { per_second } => {
                write!(f, "backlog growing {per_second:.0}/s")
            }
            BreakReason::NotDrained { accepted, counted } => {
                write!(f, "backlog: {counted} of {accepted} accepted orders counted after drain")
            }
            BreakReason::Freshness { p99_ms, slo_ms } => {
                write!(f, "freshness p99 {p99_ms:.0} ms > SLO {slo_ms:.0} ms")
            }
        }
    }
}

/// Every rule the step broke (empty: the path held at this rate).
pub fn detect(obs: &StepObservation, c: &BreakCriteria) -> Vec<BreakReason> {
    let mut out = Vec::new();
    if obs.achieved_rate < c.min_achieved_ratio * obs.offered_rate {
        out.push(BreakReason::Throughput { achieved: obs.achieved_rate, offered: obs.offered_rate });
    }
    if obs.p99_ms > c.slo_p99_ms {
        out.push(BreakReason::Latency { p99_ms: obs.p99_ms, slo_ms: c.slo_p99_ms });
    }
    if obs.errors > c.max_errors {
        out.push(BreakReason::Errors { count: obs.errors });
    }
    if let Some(slope) = slope(&obs.backlog) {
        // A floor of 1 item/s so a flat backlog with jitter at tiny rates is not a break.
        if slope > (c.max_backlog_growth_ratio * obs.offered_rate).max(1.0) {
            out.push(BreakReason::BacklogGrowing { per_second: slope });
        }
    }
    if let Some((accepted, counted)) = obs.accepted_counted
        && counted < accepted
    {
        out.push(BreakReason::NotDrained { accepted, counted });
    }
    if let (Some(p99), Some(slo)) = (obs.freshness_p99_ms, c.freshness_slo_ms)
        && p99 > slo
    {
        out.push(BreakReason::Freshness { p99_ms: p99, slo_ms: slo });
    }
    out
}

/// Least-squares slope of `(t, y)` points; `None` with fewer than 3 points or no time spread.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx <= f64::EPSILON {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    Some(sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> StepObservation {
        StepObservation {
            offered_rate: 1000.0,
            achieved_rate: 998.0,
            p99_ms: 12.0,
            errors: 0,
            backlog: vec![(0.0, 10.0), (1.0, 12.0), (2.0, 9.0), (3.0, 11.0)],
            accepted_counted: Some((10_000, 10_000)),
            freshness_p99_ms: Some(80.0),
        }
    }

    #[test]
    fn each_rule_fires_alone() {
        let c = BreakCriteria::default();
        type Case = (&'static str, fn(&mut StepObservation), Option<BreakReason>);
        let cases: Vec<Case> = vec![
            ("healthy", |_| {}, None),
            ("exactly 95 % holds", |o| o.achieved_rate = 950.0, None),
            ("p99 at the SLO holds", |o| o.p99_ms = 100.0, None),
            ("below 95 %", |o| o.achieved_rate = 940.0, Some(BreakReason::Throughput { achieved: 940.0, offered: 1000.0 })),
            ("p99 over SLO", |o| o.p99_ms = 100.5, Some(BreakReason::Latency { p99_ms: 100.5, slo_ms: 100.0 })),
            ("one error", |o| o.errors = 1, Some(BreakReason::Errors { count: 1 })),
            (
                "backlog growing 100/s",
                |o| o.backlog = (0..6).map(|t| (t as f64, 100.0 * t as f64)).collect(),
                Some(BreakReason::BacklogGrowing { per_second: 100.0 }),
            ),
            ("backlog growing slower than 5 % holds", |o| o.backlog = (0..6).map(|t| (t as f64, 40.0 * t as f64)).collect(), None),
            ("backlog shrinking holds", |o| o.backlog = (0..6).map(|t| (t as f64, 500.0 - 80.0 * t as f64)).collect(), None),
            (
                "not drained",
                |o| o.accepted_counted = Some((10_000, 9_000)),
                Some(BreakReason::NotDrained { accepted: 10_000, counted: 9_000 }),
            ),
            (
                "freshness over SLO",
                |o| o.freshness_p99_ms = Some(6_000.0),
                Some(BreakReason::Freshness { p99_ms: 6_000.0, slo_ms: 5_000.0 }),
            ),
            ("no probes at all holds", |o| (o.backlog, o.accepted_counted, o.freshness_p99_ms) = (vec![], None, None), None),
        ];
        for (name, change, want) in cases {
            let mut obs = healthy();
            change(&mut obs);
            let got = detect(&obs, &c);
            assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "case {name}");
        }
    }

    #[test]
    fn freshness_slo_can_be_off_for_interval_paths() {
        let c = BreakCriteria { freshness_slo_ms: None, ..BreakCriteria::default() };
        let obs = StepObservation { freshness_p99_ms: Some(60_000.0), ..healthy() };
        assert!(detect(&obs, &c).is_empty());
    }

    #[test]
    fn several_rules_can_fire_together() {
        let obs = StepObservation { achieved_rate: 500.0, p99_ms: 3_000.0, errors: 7, ..healthy() };
        let got = detect(&obs, &BreakCriteria::default());
        assert_eq!(got.len(), 3, "{got:?}");
    }

    #[test]
    fn slope_of_a_line_and_of_too_little_data() {
        let pts: Vec<(f64, f64)> = (0..10).map(|t| (t as f64 * 0.5, 3.0 + 2.0 * t as f64 * 0.5)).collect();
        assert!((slope(&pts).unwrap() - 2.0).abs() < 1e-9);
        assert_eq!(slope(&pts[..2]), None);
        assert_eq!(slope(&[(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]), None);
    }
}

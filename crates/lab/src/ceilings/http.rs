//! HTTP ceiling: requests/s through an HTTP layer that only validates (no IO), measured with
//! the lab's own open-loop generator, so the number is comparable with the paths' results.
//!
//! It steps the offered rate up and keeps the highest rate the endpoint sustained
//! (≥ 95 % achieved, no errors). The lead points it at a validation-only route of the server.

use std::time::Duration;

use anyhow::Context;

use super::Ceiling;
use crate::load::build_report;
use crate::load::client::HttpClient;
use crate::load::engine::{self, LoadPlan};

/// Step `rates` (ascending) against `url` (the full URL that accepts an order POST) for
/// `step` each; stop at the first rate that is not sustained. The ceiling is the achieved rate
/// of the last step that held, or, when even the first did not, what that step achieved
/// without errors.
pub async fn validation_ceiling(url: &str, rates: &[f64], step: Duration) -> anyhow::Result<Ceiling> {
    let target = url.parse().with_context(|| format!("bad URL {url}"))?;
    let client = HttpClient::new();
    let mut best: Option<(f64, u64, f64)> = None;
    // The first step's throughput when even it did not hold: the layer was saturated from the
    // start, so what it achieved (successful answers per second) is the measurement. Requests
    // that queued past the timeout are the saturation showing, not a reason to report nothing.
    let mut saturated: Option<(f64, u64, f64)> = None;
    let mut tried = Vec::new();
    let mut broke = false;
    for &rate in rates {
        let plan = LoadPlan {
            target: Clone::clone(&target),
            rate,
            duration: step,
            max_in_flight: 20_000,
            connections: 512,
            timeout: Duration::from_secs(5),
            workers: 0,
            warmup: Duration::ZERO,
        };
        let outcome = engine::run(&plan, client.clone(), engine::live_for(&plan)).await;
        let r = build_report("http", url, rate, &outcome, None);
        tried.push(format!("{rate:.0}→{:.0}", r.achieved_rate));
        if r.errors > 0 || r.achieved_rate < 0.95 * rate {
            broke = true;
            if best.is_none() && r.ok > 0 {
                saturated = Some((r.achieved_rate, r.ok, r.duration_s));
            }
            break;
        }
        best = Some((r.achieved_rate, r.ok, r.duration_s));
    }
    let saturated_first = best.is_none() && saturated.is_some();
    let (per_second, items, seconds) =
        best.or(saturated).with_context(|| format!("{url} did not sustain even {:.0} req/s ({})", rates[0], tried.join(", ")))?;
    Ok(Ceiling {
        name: "http_validation".into(),
        per_second: per_second.round(),
        unit: "requests/s".into(),
        items,
        seconds,
        method: format!(
            "open-loop steps of {}s, offered→achieved: {}{}",
            step.as_secs_f64(),
            tried.join(", "),
            if saturated_first { " (saturated at the first step: its achieved rate)" } else { "" }
        ),
        lower_bound: !broke,
    })
}

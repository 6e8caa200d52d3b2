//! The generator's own ceiling: requests/s through an HTTP route that only validates the order
//! (no IO), measured with the lab's own open-loop generator and the same connection model as
//! the paths, so the two are comparable. On one machine the generator and the server share the
//! cores; this is the rate beyond which the pair, not the path's storage, is the limit.
//!
//! It steps the offered rate up and keeps the highest rate held by the paths' own rule
//! (≥ 95 % achieved, no errors, p99 within the SLO), and records the CPU the generator and the
//! server spent per request at every step.

use std::time::Duration;

use anyhow::Context;

use crate::load::build_report;
use crate::load::engine::{self, LoadPlan};
use crate::procs::{ProcSampler, SELF_NAME};
use crate::results::ceilings::{Calibration, CalibrationStep, Ceiling};
use crate::results::load::ConnectionModel;

/// Step `rates` (ascending) against `url` (the full URL that accepts an order POST) for `step`
/// each, after `warmup`; stop at the first rate that is not held. The ceiling is the achieved
/// rate of the last step that held, or, when even the first did not, what that step achieved.
pub async fn validation_ceiling(
    url: &str,
    rates: &[f64],
    step: Duration,
    warmup: Duration,
    model: ConnectionModel,
    slo_p99_ms: f64,
) -> anyhow::Result<Calibration> {
    let target: http::Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
    let mut best: Option<(f64, u64, f64)> = None;
    let mut saturated: Option<(f64, u64, f64)> = None;
    let mut steps = Vec::new();
    let mut broke = false;
    for &rate in rates {
        let plan = LoadPlan { target: target.clone(), rate, duration: step, model, timeout: Duration::from_secs(5), warmup };
        let live = engine::live_for(&plan);
        let measuring = {
            let live = live.clone();
            tokio::spawn(async move {
                live.measuring.notified().await;
                ProcSampler::new(&["coffee-rt"]).ok()
            })
        };
        let outcome = engine::run(&plan, live).await?;
        let usage = measuring.await?.map(|mut s| {
            s.sample();
            s.usage()
        });
        let r = build_report("http", url, rate, &outcome, None);
        let per = |name: &str| {
            let cpu = usage.as_ref()?.get(name)?.cpu_s;
            (r.sent > 0).then(|| (cpu * 1e6 / r.sent as f64 * 10.0).round() / 10.0)
        };
        steps.push(CalibrationStep {
            offered: rate,
            achieved: r.achieved_rate,
            p50_ms: r.latency_ms.p50,
            p99_ms: r.latency_ms.p99,
            errors: r.errors,
            generator_cpu_us_per_request: per(SELF_NAME),
            server_cpu_us_per_request: per("coffee-rt"),
        });
        if r.errors > 0 || r.achieved_rate < 0.95 * rate || r.latency_ms.p99 > slo_p99_ms {
            broke = true;
            if best.is_none() && r.ok > 0 {
                saturated = Some((r.achieved_rate, r.ok, r.duration_s));
            }
            break;
        }
        best = Some((r.achieved_rate, r.ok, r.duration_s));
    }
    let saturated_first = best.is_none() && saturated.is_some();
    let tried: Vec<String> = steps.iter().map(|s| format!("{:.0}→{:.0} (p99 {:.1} ms)", s.offered, s.achieved, s.p99_ms)).collect();
    let (per_second, items, seconds) =
        best.or(saturated).with_context(|| format!("{url} did not hold even {:.0} req/s ({})", rates[0], tried.join(", ")))?;
    let ceiling = Ceiling {
        name: "http_validation".into(),
        per_second: per_second.round(),
        unit: "requests/s".into(),
        items,
        seconds,
        method: format!(
            "open-loop steps of {}s ({model}), held = ≥ 95 % achieved, no error, p99 ≤ {slo_p99_ms} ms: {}{}",
            step.as_secs_f64(),
            tried.join(", "),
            if saturated_first { " (saturated at the first step: its achieved rate)" } else { "" }
        ),
        lower_bound: !broke,
    };
    Ok(Calibration { ceiling, model, steps })
}

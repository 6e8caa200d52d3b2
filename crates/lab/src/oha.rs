//! An independent generator as a cross-check: [oha](https://github.com/hatoo/oha), open loop
//! (`-q`), with latency measured from each request's scheduled time (`--latency-correction`).
//! If the lab's generator and oha agree on a step, the figure is the server's, not an
//! artefact of one client.

use std::time::Duration;

use anyhow::Context;

use crate::ApiVersion;
use crate::results::sweep::OhaRun;

/// Run `oha` (the binary at `oha`) against `version`'s order route for `duration` at `rate`
/// with `connections`, after a warm-up of `warmup` at the same rate that no figure includes.
pub async fn cross_check(
    oha: &str,
    base_url: &str,
    version: ApiVersion,
    rate: f64,
    duration: Duration,
    warmup: Duration,
    connections: usize,
) -> anyhow::Result<OhaRun> {
    // One body for every request: the API gives each order without an id a fresh one.
    let body = format!(
        r#"{{"drink":"latte","store":"uptown","price":4.50,"timestamp":"{}"}}"#,
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let url = version.order_url(base_url);
    let run = |d: Duration, corrected: bool| {
        let mut cmd = tokio::process::Command::new(oha);
        cmd.args(["--no-tui", "-z", &format!("{}ms", d.as_millis()), "-q", &format!("{rate}"), "-c", &connections.to_string()]);
        if corrected {
            cmd.arg("--latency-correction");
        }
        cmd.args(["-m", "POST", "-H", "content-type: application/json", "-d", &body, "--output-format", "json", &url]);
        cmd.kill_on_drop(true).output()
    };
    if !warmup.is_zero() {
        run(warmup, false).await.with_context(|| format!("cannot run {oha} (install it with `cargo install oha`)"))?;
    }
    let out = run(duration, true).await.with_context(|| format!("cannot run {oha}"))?;
    anyhow::ensure!(out.status.success(), "oha failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("oha's JSON output")?;
    let num = |p: &str| v.pointer(p).and_then(serde_json::Value::as_f64).with_context(|| format!("oha's output has no {p}"));
    let ms = |x: f64| (x * 1e5).round() / 100.0;
    Ok(OhaRun {
        version,
        offered_rate: rate,
        connections,
        achieved_rate: num("/summary/requestsPerSec")?.round(),
        success_rate: num("/summary/successRate")?,
        p50_ms: ms(num("/latencyPercentiles/p50")?),
        p99_ms: ms(num("/latencyPercentiles/p99")?),
        max_ms: ms(num("/summary/slowest")?),
    })
}

//! The results as the document's section "v2 durability by Redis persistence mode", the
//! recommendation the numbers lead to, and the splice that replaces only that section of
//! docs/RELIABILITY.md (other sections, by other benches and people, follow the marker).

use std::fmt::Write;

use super::results::{Cost, DurabilityResults, LossSummary, RawLoop};

pub const HEADING: &str = "## v2 durability by Redis persistence mode";
pub const MARKER: &str = "<!-- other sections follow -->";
const TITLE: &str =
    "# Reliability\n\nWhat coffee-rt keeps through faults, measured: each section names the command that produced its figures.\n\n";

/// `always` is the default when it costs at most this much more p99 than `everysec`...
pub const MAX_P99_RATIO: f64 = 1.5;
/// ...and keeps at least this share of `everysec`'s sustained rate.
pub const MIN_SUSTAINED_RATIO: f64 = 0.9;

/// The sentence the numbers lead to, from the kill trials and the cost (and, for the
/// production advice, the raw loop's WAIT to a replica).
pub fn recommend(summary: &[LossSummary], cost: Option<&Cost>, raw: Option<&[RawLoop]>) -> String {
    // What Redis itself lost: an order still in the stream was lost by the pipeline, in any mode.
    let redis_lost = |mode: &str| summary.iter().filter(|s| s.mode == mode).map(|s| s.lost_by_redis_max).max();
    let pipeline = summary.iter().map(|s| s.lost_in_redis_max).max().unwrap_or(0);
    let pipeline_note = if pipeline > 0 {
        format!(
            " Separately, up to {pipeline} acknowledged orders in a trial were still in Redis after the drain but never reached PostgreSQL: a defect of the pipeline, whatever the mode."
        )
    } else {
        String::new()
    };
    let cheap =
        cost.map(|c| (c.p99_ratio, c.closed_loop_ratio, c.p99_ratio <= MAX_P99_RATIO && c.closed_loop_ratio >= MIN_SUSTAINED_RATIO));
    let cost_text = |(p, s, _): (f64, f64, bool)| format!("{}× everysec's p99 and {}× its closed-loop throughput", ratio(p), ratio(s));
    let wait = raw.and_then(|raw| {
        let p99 = |prefix: &str| raw.iter().find(|l| l.supported && l.name.starts_with(prefix)).map(|l| l.latency_ms.p99);
        Some(format!(
            " (in the raw loop, XADD + `WAIT 1` to a replica had a p99 of {:.2} ms against {:.2} ms for XADD alone)",
            p99("XADD + WAIT 1")?,
            p99("XADD (everysec)")?
        ))
    });
    let kept = "a kill -9 of Redis lost no acknowledged order under either AOF mode (written data survives in the page cache)";
    let sentence = match (redis_lost("always"), redis_lost("everysec"), cheap) {
        (Some(lost), _, _) if lost > 0 => {
            format!(
                "`appendfsync always` lost {lost} acknowledged orders in a trial: that is a defect to find before any default is chosen."
            )
        }
        (_, Some(lost), c) if lost > 0 => format!(
            "Default to `appendfsync always`: `everysec` lost up to {lost} acknowledged orders to a kill -9 of Redis alone, `always` none{}.",
            c.map(|c| format!(", at {}", cost_text(c))).unwrap_or_default()
        ),
        (Some(0), Some(0), Some(c)) if c.2 => format!(
            "Default to `appendfsync always`: {kept}, but `everysec` would lose up to about a second of them to a crash of the machine, and `always` costs only {} here.",
            cost_text(c)
        ),
        (Some(0), Some(0), Some(c)) => format!(
            "Keep `appendfsync everysec` as the default: {kept}, and `always` costs {} here (over the bounds of ×{MAX_P99_RATIO} p99 and ×{MIN_SUSTAINED_RATIO} throughput); a deployment that must survive the loss of the machine adds a replica and `WAIT 1` after the XADD{}, or WAITAOF on Redis 7.2+.",
            cost_text(c),
            wait.unwrap_or_default()
        ),
        _ => "No recommendation: the run did not kill-test both `everysec` and `always` and measure the cost of `always`.".to_owned(),
    };
    sentence + &pipeline_note
}

/// The whole section, heading included, marker excluded.
pub fn section(r: &DurabilityResults) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{HEADING}\n");
    let _ = writeln!(
        s,
        "v2 answers 202 once its order is in the Redis stream (XADD returned); the worker moves it to PostgreSQL later. So an acknowledged v2 order is exactly as durable as Redis until the worker has read it. Measured by `coffee-lab bench durability` on {} ({} logical CPUs, {}; {}; Redis's data dirs on {}), with:\n",
        r.started_at.get(..10).unwrap_or(&r.started_at),
        r.machine.logical_cpus,
        r.machine.cpu_model,
        r.redis_version,
        r.redis_data_fs
    );
    let _ = writeln!(s, "```\n{}\n```\n", r.command);
    let _ = writeln!(
        s,
        "Each trial: a private `redis-server` in the mode under test, a scratch database on the shared PostgreSQL, the real `coffee-rt serve` and `coffee-rt worker`; v2 orders posted open loop at {}/s for {} s, SIGKILL of Redis, Redis started again from its data dir, {} s more of posting, then the worker drains. Every order's `order_id` and the time of its 202 are recorded by the client; an acknowledged order that PostgreSQL lacks after the drain is **lost**, and the **loss window** runs from the first lost acknowledgement to the kill. `live`: the worker runs throughout, as in production. `backlog`: the worker starts only after Redis is back, so every order acknowledged before the kill is still only in Redis when it dies. Trials per row: {}; median and max over them. While Redis is down the API answers 503, and those orders are not acknowledged. The drain waits until PostgreSQL holds every acknowledged order, or until nothing more can arrive (rows unchanged for 3 s and nothing pending or unread in the consumer group): an entry delivered to the worker by the Redis that died, and replayed from its AOF, stays pending until the worker claims it (`--claim-idle`, 30 s), so it is late, not lost, and shows in the drain time. A lost order still in the stream or the dead letters after the drain was kept by Redis and dropped by the pipeline (\"still in Redis\"). A negative window: the 202 reached the client just after the kill, for an XADD Redis ran just before it.\n",
        r.config.rate, r.config.before_kill_s, r.config.after_restart_s, r.config.trials
    );
    let _ = writeln!(
        s,
        "| mode | scenario | trials | acknowledged (median) | lost: median / max | of which still in Redis (max) | loss window ms: median / max | Redis down ms (median) | drain s: median / max |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for l in &r.summary {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.0} | {} / {} | {} | {:.0} / {:.0} | {:.0} | {:.1} / {:.1}{} |",
            l.mode,
            l.scenario,
            l.trials,
            l.acked_median,
            fmt_num(l.lost_median),
            l.lost_max,
            l.lost_in_redis_max,
            l.loss_window_ms_median,
            l.loss_window_ms_max,
            l.redis_down_ms_median,
            l.drain_ms_median / 1000.0,
            l.drain_ms_max / 1000.0,
            if l.all_drained { "" } else { " (timed out)" }
        );
    }
    s.push('\n');
    if let Some(c) = &r.cost {
        cost_table(&mut s, c);
    }
    if let Some(raw) = &r.raw {
        raw_table(&mut s, raw);
    }
    let _ = writeln!(s, "What each mode promises an acknowledged v2 order:\n");
    let _ = writeln!(
        s,
        "- **No AOF** (`save \"\"`, `appendonly no`): nothing survives a restart of Redis. Every order acknowledged but not yet read by the worker is lost: in `live` the worker's few milliseconds of lag, in `backlog` all of them."
    );
    let _ = writeln!(
        s,
        "- **`appendfsync everysec`**: Redis writes each command to its AOF before it replies, and fsyncs once a second in the background. A crash of the Redis process loses nothing that was written (the kernel still has it); a crash of the machine or a power loss loses up to about a second of acknowledged orders, two when an fsync stalls (`aof_delayed_fsync`). A kill -9 cannot show that second: it needs the machine to die, which this bench does not do."
    );
    let _ = writeln!(s, "- **`appendfsync always`**: Redis fsyncs before it replies, so a 202 means the order is on this machine's disk.");
    let _ = writeln!(
        s,
        "- **In production, `WAITAOF 1 0 <ms>`** (Redis 7.2+) after the XADD gives one request `always`'s guarantee on an `everysec` server, and **`WAIT 1 <ms>`** holds the reply until a replica has the entry in memory (it survives the loss of the primary's machine, not of both). coffee-rt's producer sends neither today.\n"
    );
    let _ = writeln!(s, "**Recommendation.** {}\n", r.recommendation);
    let _ = writeln!(
        s,
        "The rule: `always` is the default when `everysec` lost acknowledged orders, or when `always` costs at most ×{MAX_P99_RATIO} `everysec`'s p99 and keeps ×{MIN_SUSTAINED_RATIO} of its closed-loop throughput (the ladder's sustained rate depends on one stall more than the throughput does on a shared machine). Raw figures: `docs/durability-results.json`.\n"
    );
    s
}

fn cost_table(s: &mut String, c: &Cost) {
    let (e, a) = (&c.modes[0], &c.modes[1]);
    let _ = writeln!(
        s,
        "What `always` costs, measured in the same run (both worlds up at once, the fixed-rate runs alternating between them; p99 and CPU are the median of {} runs of {} s at {}/s each; the sustained rate is the highest step of the ladder held, a step that breaks being tried once more):\n",
        e.runs.len(),
        c.duration_s,
        c.rate
    );
    let _ = writeln!(s, "| | {} | {} | always / everysec |", e.mode, a.mode);
    let _ = writeln!(s, "|---|---|---|---|");
    let _ = writeln!(s, "| v2 p99 at {}/s | {:.2} ms | {:.2} ms | {} |", c.rate, e.p99_ms_median, a.p99_ms_median, ratio(c.p99_ratio));
    let _ = writeln!(
        s,
        "| sustained rate (p99 ≤ {} ms, nothing shed) | {}/s | {}/s | {} |",
        c.slo_p99_ms,
        e.sustained_rate,
        a.sustained_rate,
        ratio(c.sustained_ratio)
    );
    let _ = writeln!(
        s,
        "| closed-loop throughput ({} clients, {} s) | {:.0}/s | {:.0}/s | {} |",
        e.closed_loop.clients,
        c.duration_s,
        e.closed_loop.orders_per_s,
        a.closed_loop.orders_per_s,
        ratio(c.closed_loop_ratio)
    );
    let _ = writeln!(
        s,
        "| redis-server CPU per order | {:.1} µs | {:.1} µs | {} |\n",
        e.redis_cpu_us_per_order_median,
        a.redis_cpu_us_per_order_median,
        ratio(c.redis_cpu_ratio)
    );
}

fn raw_table(s: &mut String, raw: &[RawLoop]) {
    let _ = writeln!(s, "The raw Redis loop (no coffee-rt: each client sends one XADD, and what follows it pipelined, at a time):\n");
    let _ = writeln!(s, "| loop | clients | ops/s | p50 | p99 | note |");
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for l in raw {
        if l.supported {
            let note = l.unconfirmed.map(|u| format!("{u} unconfirmed at the 1 s timeout")).unwrap_or_default();
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {:.3} ms | {:.3} ms | {note} |",
                l.name, l.clients, l.ops_per_s, l.latency_ms.p50, l.latency_ms.p99
            );
        } else {
            let _ = writeln!(
                s,
                "| {} | {} | – | – | – | not supported: {} |",
                l.name,
                l.clients,
                l.error.as_deref().unwrap_or("").replace('|', "/")
            );
        }
    }
    s.push('\n');
}

/// A ratio with two decimals; `n/a` when its denominator was 0.
fn ratio(v: f64) -> String {
    if v.is_finite() { format!("{v:.2}") } else { "n/a".to_owned() }
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.1}") }
}

/// `doc` with its durability section replaced by `section` (up to the marker), or, when it has
/// none, the section and the marker added after the title; a new document when `doc` is empty.
pub fn splice(doc: &str, section: &str) -> String {
    let block = format!("{section}{MARKER}\n");
    if let Some(start) = doc.find(HEADING) {
        let end = doc[start..].find(MARKER).map(|i| start + i + MARKER.len()).unwrap_or(doc.len());
        let rest = doc[end..].strip_prefix('\n').unwrap_or(&doc[end..]);
        return format!("{}{block}{rest}", &doc[..start]);
    }
    if doc.trim().is_empty() {
        return format!("{TITLE}{block}");
    }
    match doc.find("\n## ") {
        Some(i) => format!("{}{block}\n{}", &doc[..i + 1], &doc[i + 1..]),
        None => format!("{}\n\n{block}", doc.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(mode: &'static str, lost_max: u64) -> LossSummary {
        LossSummary {
            mode,
            scenario: "backlog",
            trials: 3,
            acked_median: 3000.0,
            lost_median: lost_max as f64,
            lost_max,
            lost_by_redis_max: lost_max,
            lost_in_redis_max: 0,
            loss_window_ms_median: 0.0,
            loss_window_ms_max: 0.0,
            redis_down_ms_median: 50.0,
            drain_ms_median: 3000.0,
            drain_ms_max: 3000.0,
            all_drained: true,
        }
    }

    fn cost(p99_ratio: f64, sustained_ratio: f64) -> Cost {
        Cost {
            rate: 1000.0,
            duration_s: 10.0,
            slo_p99_ms: 10.0,
            modes: vec![],
            p99_ratio,
            sustained_ratio: f64::NAN,
            closed_loop_ratio: sustained_ratio,
            redis_cpu_ratio: 1.0,
        }
    }

    #[test]
    fn the_numbers_choose_the_default() {
        let both_kept = [summary("none", 3000), summary("everysec", 0), summary("always", 0)];
        assert!(recommend(&both_kept, Some(&cost(1.2, 1.0)), None).starts_with("Default to `appendfsync always`: a kill -9"));
        assert!(recommend(&both_kept, Some(&cost(2.0, 1.0)), None).starts_with("Keep `appendfsync everysec`"));
        assert!(recommend(&both_kept, Some(&cost(1.0, 0.5)), None).starts_with("Keep `appendfsync everysec`"));
        let everysec_lost = [summary("everysec", 7), summary("always", 0)];
        assert!(recommend(&everysec_lost, Some(&cost(3.0, 0.5)), None).contains("`everysec` lost up to 7"));
        assert!(recommend(&[summary("always", 1)], None, None).contains("defect"));
        let in_stream = LossSummary { lost_by_redis_max: 0, lost_in_redis_max: 21, ..summary("everysec", 21) };
        let r = recommend(&[in_stream, summary("always", 0)], Some(&cost(2.0, 1.0)), None);
        assert!(
            r.starts_with("Keep `appendfsync everysec`") && r.contains("up to 21 acknowledged orders in a trial were still in Redis"),
            "{r}"
        );
        assert!(recommend(&[summary("none", 5)], None, None).starts_with("No recommendation"));
        assert!(recommend(&[summary("everysec", 0)], Some(&cost(1.0, 1.0)), None).starts_with("No recommendation"), "always untested");
    }

    #[test]
    fn splice_replaces_only_its_own_section() {
        let fresh = splice("", "## v2 durability by Redis persistence mode\n\nold\n");
        assert!(fresh.starts_with("# Reliability\n") && fresh.ends_with(&format!("old\n{MARKER}\n")), "{fresh}");

        let doc = format!("# Reliability\n\nintro\n\n{HEADING}\n\nold figures\n{MARKER}\n\n## Self-repair\n\ntheirs\n");
        let new = splice(&doc, &format!("{HEADING}\n\nnew figures\n"));
        assert_eq!(new, format!("# Reliability\n\nintro\n\n{HEADING}\n\nnew figures\n{MARKER}\n\n## Self-repair\n\ntheirs\n"));
        assert_eq!(splice(&new, &format!("{HEADING}\n\nnew figures\n")), new, "idempotent");

        let theirs_only = "# Reliability\n\nintro\n\n## Overload\n\nx\n";
        let added = splice(theirs_only, &format!("{HEADING}\n\nmine\n"));
        assert_eq!(added, format!("# Reliability\n\nintro\n\n{HEADING}\n\nmine\n{MARKER}\n\n## Overload\n\nx\n"));
    }
}

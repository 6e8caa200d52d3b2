//! The results as markdown: the section docs/RELIABILITY.md carries ("Time to correct metrics
//! after Redis loses everything"), a method paragraph, the table and the command. Pure.

use std::fmt::Write as _;

use super::results::{RepairResults, Trial};
use crate::ApiVersion;
use crate::config::RedisLoss;

pub const HEADING: &str = "## Time to correct metrics after Redis loses everything";

/// The whole section.
pub fn section(r: &RepairResults) -> String {
    let c = &r.config;
    let mut out = format!("{HEADING}\n\n");
    let _ = writeln!(
        out,
        "Each trial: `coffee-rt up` (API, v2 worker, v3 processor, v1 aggregator every {:.0} ms) on a private Redis without AOF, \
         a scratch database on the shared PostgreSQL and a scratch topic on the shared Kafka; open-loop load, a third of the \
         rate on each path ({} connections per path), for {:.0} s. Then Redis loses everything: `kill` is SIGKILL, {:.0} s down, \
         and a restart with its data dir wiped on the same port (t0 = it answers PING); `flushall` is FLUSHALL on the running \
         Redis (t0 = FLUSHALL answered). At t0 the lab reads each path's order count in PostgreSQL, C_v, and then Redis's \
         `total_orders` every {:.0} ms: a path has recovered when it is ≥ C_v (capped at {:.0} s). The load goes on {:.0} s \
         after t0, stops, the pipelines drain, and Redis is compared with the lab's own recomputation from PostgreSQL \
         (count, revenue cents, per drink, per store, per hour): *drift* is the number of values that differ. Every order \
         acknowledged with a 2xx must be in PostgreSQL; v2's acknowledged before t0 + {:.0} s and missing were still in the \
         Redis stream that was lost (no AOF keeps nothing), counted apart.",
        c.aggregate_every_ms, c.connections_per_path, c.warmup_s, c.down_s, c.poll_ms, c.recovery_cap_s, c.after_s, c.boundary_grace_s
    );
    out.push('\n');
    out.push_str(&table(&r.trials));
    let _ = writeln!(
        out,
        "\nMachine: {} ({} logical CPUs, {} GiB), shared with other work; the load average is the 1-minute one at the trial's start. {}.",
        r.machine.cpu_model, r.machine.logical_cpus, r.machine.memory_gib, r.redis_version
    );
    let _ = writeln!(out, "\nCommand: `{}` (results: docs/repair-results.json).", r.command);
    out
}

/// One row per trial.
pub fn table(trials: &[Trial]) -> String {
    let mut out = String::from(
        "| offered/s | achieved/s | fault | v1 recovery s | v2 recovery s | v3 recovery s | drift | lost v1 / v3 | v2 lost with the Redis stream (no AOF) | p99 ms before / after the loss | errors | load avg |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for t in trials {
        let recovery = |v: ApiVersion| match t.recovery_s.get(&v).copied().flatten() {
            Some(s) => format!("{s:.2}"),
            None => "not recovered".to_owned(),
        };
        let lost = |v: ApiVersion| t.paths.get(&v).map_or(0, |p| p.losses.lost);
        let v2 = t.paths.get(&ApiVersion::V2);
        let _ = writeln!(
            out,
            "| {:.0} | {:.0} | {} | {} | {} | {} | {} | {} / {} | {}{} | {:.1} / {:.1} | {} | {:.1} |",
            t.offered_rate,
            t.achieved_rate,
            fault_name(t.fault),
            recovery(ApiVersion::V1),
            recovery(ApiVersion::V2),
            recovery(ApiVersion::V3),
            t.drift,
            lost(ApiVersion::V1),
            lost(ApiVersion::V3),
            v2.map_or(0, |p| p.losses.lost_with_stream),
            match v2.map_or(0, |p| p.losses.lost) {
                0 => String::new(),
                n => format!(" (+{n} lost after t0)"),
            },
            t.latency_before_loss_ms.p99,
            t.latency_after_loss_ms.p99,
            errors(t),
            t.load_average[0],
        );
    }
    out
}

pub fn fault_name(f: RedisLoss) -> &'static str {
    match f {
        RedisLoss::Kill => "kill",
        RedisLoss::Flushall => "flushall",
    }
}

/// `v2 503×812, v1 timeout×3`, or `0`.
fn errors(t: &Trial) -> String {
    let parts: Vec<String> = t.paths.iter().flat_map(|(v, p)| p.errors.iter().map(move |(k, n)| format!("{v} {k}×{n}"))).collect();
    if parts.is_empty() { "0".to_owned() } else { parts.join(", ") }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::repair_bench::results::{PathResult, RunConfig};
    use crate::repair_bench::verify::{Drained, Losses};
    use crate::results::load::LatencyMs;

    fn trial(fault: RedisLoss, v2_recovery: Option<f64>) -> Trial {
        let path = |lost_with_stream, errors: &[(&str, u64)]| PathResult {
            offered_rate: 333.3,
            requests: 3000,
            achieved_rate: 330.0,
            latency_ms: LatencyMs::default(),
            late_sends: 0,
            errors: errors.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
            losses: Losses { acked: 2900, lost: 0, lost_with_stream, unacked_stored: 0 },
            postgres_rows: 2900,
        };
        fn per<T>(a: T, b: T, c: T) -> BTreeMap<ApiVersion, T> {
            BTreeMap::from([(ApiVersion::V1, a), (ApiVersion::V2, b), (ApiVersion::V3, c)])
        }
        Trial {
            offered_rate: 1000.0,
            achieved_rate: 990.4,
            fault,
            load_average: [3.31, 2.0, 1.0],
            redis_down_ms: Some(1012.0),
            counts_at_t0: per(100, 90, 100),
            recovery_s: per(Some(0.81), v2_recovery, Some(1.234)),
            first_reading_s: Some(0.001),
            redis_totals_first: per(0, 0, 0),
            redis_totals_last: per(120, 95, 130),
            rebuilds: BTreeMap::new(),
            drain: Drained { outcome: "complete", seconds: 2.5, postgres: BTreeMap::new(), redis: BTreeMap::new(), outbox: 0 },
            drift: 0,
            drift_examples: Vec::new(),
            paths: BTreeMap::from([
                (ApiVersion::V1, path(0, &[])),
                (ApiVersion::V2, path(17, &[("503", 812)])),
                (ApiVersion::V3, path(0, &[])),
            ]),
            latency_ms: LatencyMs { p50: 1.0, p95: 2.0, p99: 4.56, max: 30.0 },
            latency_before_loss_ms: LatencyMs { p50: 1.0, p95: 2.0, p99: 3.04, max: 10.0 },
            latency_after_loss_ms: LatencyMs { p50: 1.0, p95: 2.0, p99: 4.56, max: 30.0 },
        }
    }

    #[test]
    fn the_table_has_a_row_per_trial_with_every_figure() {
        let t = table(&[trial(RedisLoss::Kill, Some(1.5)), trial(RedisLoss::Flushall, None)]);
        let rows: Vec<&str> = t.lines().collect();
        assert_eq!(rows.len(), 4, "{t}");
        assert_eq!(rows[2], "| 1000 | 990 | kill | 0.81 | 1.50 | 1.23 | 0 | 0 / 0 | 17 | 3.0 / 4.6 | v2 503×812 | 3.3 |");
        assert!(rows[3].contains("| flushall | 0.81 | not recovered | 1.23 |"), "{t}");
    }

    #[test]
    fn the_section_names_its_command() {
        let r = RepairResults {
            command: "coffee-lab bench repair --rates 1000,5000".into(),
            started_at: "2025-01-01T00:00:00Z".into(),
            machine: crate::machine::Machine::default(),
            redis_version: "Redis server v=7.0.15".into(),
            config: RunConfig {
                warmup_s: 10.0,
                after_s: 15.0,
                down_s: 1.0,
                poll_ms: 100.0,
                recovery_cap_s: 60.0,
                aggregate_every_ms: 1000.0,
                connections_per_path: 64,
                boundary_grace_s: 1.0,
            },
            trials: vec![trial(RedisLoss::Kill, Some(1.5))],
        };
        let s = section(&r);
        assert!(s.starts_with(HEADING), "{s}");
        assert!(s.contains("Command: `coffee-lab bench repair --rates 1000,5000`"), "{s}");
        assert!(s.contains("| 1000 | 990 | kill |"), "{s}");
    }
}

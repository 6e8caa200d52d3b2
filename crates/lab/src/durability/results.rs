//! What the durability bench measured, as data: docs/durability-results.json is
//! [`DurabilityResults`] serialized, and the document's table is rendered from it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::machine::Machine;
use crate::results::load::LatencyMs;

#[derive(Debug, Clone, Serialize)]
pub struct DurabilityResults {
    /// The command that produced the results.
    pub command: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub machine: Machine,
    /// `redis-server --version`'s first line.
    pub redis_version: String,
    /// The filesystem under the private Redis servers' data dirs (`findmnt`): what an fsync costs.
    pub redis_data_fs: String,
    pub config: RunConfig,
    /// Every kill trial, in the order run.
    pub trials: Vec<Trial>,
    /// Per mode and scenario: the trials' median and max.
    pub summary: Vec<LossSummary>,
    pub cost: Option<Cost>,
    pub raw: Option<Vec<RawLoop>>,
    /// The sentence the numbers lead to.
    pub recommendation: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    pub rate: f64,
    pub before_kill_s: f64,
    pub after_restart_s: f64,
    pub trials: u32,
}

/// One kill trial: the client's acknowledgements against PostgreSQL after the drain.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    pub mode: &'static str,
    pub scenario: &'static str,
    pub trial: u32,
    pub sent: u64,
    /// Answered 202.
    pub acked: u64,
    pub acked_before_kill: u64,
    /// Acknowledged orders that PostgreSQL does not hold after the drain.
    pub lost: u64,
    /// From the first lost acknowledgement to the kill, ms (0 when none was lost).
    pub loss_window_ms: f64,
    /// From the last lost acknowledgement to the kill, ms: how close to the kill the losses
    /// reach (0 when none was lost).
    pub last_loss_before_kill_ms: f64,
    /// Orders answered with something else (503 while Redis was down, a timeout) that
    /// PostgreSQL holds all the same: the XADD happened, its answer did not arrive.
    pub unacked_stored: u64,
    /// Failures by status or transport error.
    pub failures: BTreeMap<String, u64>,
    /// From the kill to Redis answering PING again (the AOF replayed).
    pub redis_down_ms: f64,
    /// `aof_delayed_fsync` just before the kill: times an everysec fsync ran late and Redis
    /// answered writes it had not yet even written to its file.
    pub aof_delayed_fsync: Option<u64>,
    /// Rows PostgreSQL held at the end.
    pub stored: u64,
    /// From the end of the posting until every acknowledged order was there, or nothing more
    /// could arrive (rows unchanged, nothing pending or unread in the group), ms.
    pub drain_ms: f64,
    /// False when `--drain-timeout` ended the drain first: the losses may then be late orders.
    pub drained: bool,
    /// Entries still pending in the group at the end of the drain.
    pub pending_at_end: u64,
    /// Lost orders whose entry is still in the stream after the drain: Redis kept them, the
    /// pipeline did not deliver them.
    pub lost_in_stream: u64,
    /// Lost orders in the dead-letter stream.
    pub lost_dead_lettered: u64,
}

impl Trial {
    /// Lost orders that Redis no longer held at the end.
    pub fn lost_by_redis(&self) -> u64 {
        self.lost.saturating_sub(self.lost_in_stream + self.lost_dead_lettered)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LossSummary {
    pub mode: &'static str,
    pub scenario: &'static str,
    pub trials: usize,
    pub acked_median: f64,
    pub lost_median: f64,
    pub lost_max: u64,
    /// The most lost in one trial that Redis itself no longer held (neither in the stream nor
    /// in the dead letters): the losses that are Redis's durability, not the pipeline's.
    pub lost_by_redis_max: u64,
    /// The most lost in one trial that were still in the stream or the dead letters.
    pub lost_in_redis_max: u64,
    pub loss_window_ms_median: f64,
    pub loss_window_ms_max: f64,
    pub redis_down_ms_median: f64,
    pub drain_ms_median: f64,
    pub drain_ms_max: f64,
    /// Whether every trial's drain completed (none ended at `--drain-timeout`).
    pub all_drained: bool,
}

/// Medians and maxima of the trials of one mode and scenario.
pub fn summarize(trials: &[Trial]) -> Vec<LossSummary> {
    let mut keys: Vec<(&'static str, &'static str)> = Vec::new();
    for t in trials {
        if !keys.contains(&(t.mode, t.scenario)) {
            keys.push((t.mode, t.scenario));
        }
    }
    keys.into_iter()
        .map(|(mode, scenario)| {
            let of: Vec<&Trial> = trials.iter().filter(|t| t.mode == mode && t.scenario == scenario).collect();
            let f = |g: fn(&Trial) -> f64| of.iter().map(|t| g(t)).collect::<Vec<f64>>();
            LossSummary {
                mode,
                scenario,
                trials: of.len(),
                acked_median: median(&f(|t| t.acked as f64)),
                lost_median: median(&f(|t| t.lost as f64)),
                lost_max: of.iter().map(|t| t.lost).max().unwrap_or(0),
                lost_by_redis_max: of.iter().map(|t| t.lost_by_redis()).max().unwrap_or(0),
                lost_in_redis_max: of.iter().map(|t| t.lost - t.lost_by_redis()).max().unwrap_or(0),
                loss_window_ms_median: median(&f(|t| t.loss_window_ms)),
                loss_window_ms_max: f(|t| t.loss_window_ms).into_iter().fold(0.0, f64::max),
                redis_down_ms_median: median(&f(|t| t.redis_down_ms)),
                drain_ms_median: median(&f(|t| t.drain_ms)),
                drain_ms_max: f(|t| t.drain_ms).into_iter().fold(0.0, f64::max),
                all_drained: of.iter().all(|t| t.drained),
            }
        })
        .collect()
}

/// The median (the mean of the middle two for an even count); NaN for none.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// What `appendfsync always` costs against `everysec`, measured in the same run.
#[derive(Debug, Clone, Serialize)]
pub struct Cost {
    pub rate: f64,
    pub duration_s: f64,
    pub slo_p99_ms: f64,
    /// Per mode (`everysec`, `always`).
    pub modes: Vec<ModeCost>,
    /// always / everysec.
    pub p99_ratio: f64,
    /// NaN (null) when everysec held no step of the ladder.
    pub sustained_ratio: f64,
    pub closed_loop_ratio: f64,
    pub redis_cpu_ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModeCost {
    pub mode: &'static str,
    /// Each fixed-rate run, in the order run.
    pub runs: Vec<FixedRun>,
    pub p99_ms_median: f64,
    pub redis_cpu_us_per_order_median: f64,
    /// The ladder's steps (a broken step is tried once more), up to the first that broke twice.
    pub ladder: Vec<LadderStep>,
    /// The highest ladder rate held (p99 under the bound, nothing shed); 0 if none was.
    pub sustained_rate: f64,
    pub closed_loop: ClosedLoop,
}

/// Closed-loop throughput: each client posts its next order when the last was answered.
#[derive(Debug, Clone, Serialize)]
pub struct ClosedLoop {
    pub clients: usize,
    /// Acknowledged orders per second after the warm-up.
    pub orders_per_s: f64,
    pub errors: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FixedRun {
    pub latency_ms: LatencyMs,
    pub achieved_rate: f64,
    pub errors: u64,
    /// redis-server's user + system CPU over the run (its warm-up included) per order answered.
    pub redis_cpu_us_per_order: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LadderStep {
    pub offered: f64,
    pub achieved: f64,
    pub p99_ms: f64,
    pub errors: u64,
    pub held: bool,
}

/// One raw client loop straight against a private Redis: no coffee-rt in between.
#[derive(Debug, Clone, Serialize)]
pub struct RawLoop {
    /// e.g. `XADD (everysec)`, `XADD + WAITAOF 1 0 (everysec)`.
    pub name: String,
    /// False when the server refused the command (WAITAOF needs Redis 7.2).
    pub supported: bool,
    pub error: Option<String>,
    pub clients: usize,
    pub ops: u64,
    pub ops_per_s: f64,
    pub latency_ms: LatencyMs,
    /// WAIT and WAITAOF: calls whose timeout passed before the replica (WAIT) or the local
    /// fsync (WAITAOF) confirmed the write.
    pub unconfirmed: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(mode: &'static str, lost: u64, window: f64) -> Trial {
        Trial {
            mode,
            scenario: "live",
            trial: 0,
            sent: 10,
            acked: 10,
            acked_before_kill: 5,
            lost,
            loss_window_ms: window,
            last_loss_before_kill_ms: 0.0,
            unacked_stored: 0,
            failures: BTreeMap::new(),
            redis_down_ms: 1.0,
            aof_delayed_fsync: None,
            stored: 10 - lost,
            drain_ms: 1.0,
            drained: true,
            pending_at_end: 0,
            lost_in_stream: 0,
            lost_dead_lettered: 0,
        }
    }

    #[test]
    fn medians_and_maxima_per_mode_in_first_seen_order() {
        let trials = [trial("none", 4, 30.0), trial("always", 0, 0.0), trial("none", 1, 10.0), trial("none", 9, 20.0)];
        let s = summarize(&trials);
        assert_eq!(s.iter().map(|s| s.mode).collect::<Vec<_>>(), ["none", "always"]);
        assert_eq!(
            (s[0].trials, s[0].lost_median, s[0].lost_max, s[0].loss_window_ms_median, s[0].loss_window_ms_max),
            (3, 4.0, 9, 20.0, 30.0)
        );
        assert_eq!((s[1].lost_median, s[1].lost_max), (0.0, 0));
    }

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}

//! The bench's flags resolved into one plan: `--quick`'s smaller numbers filled in where a flag
//! was not given, and the modes' names as the results and the document spell them.

use std::time::Duration;

use coffee_sandbox::Persistence;

use crate::config::{DurabilityArgs, KillScenario, RedisAof};

/// Everything one run does, with no flag left to interpret.
#[derive(Debug, Clone)]
pub struct Plan {
    pub modes: Vec<RedisAof>,
    pub scenarios: Vec<KillScenario>,
    pub trials: u32,
    /// Offered rate of a kill trial, orders/s.
    pub rate: f64,
    pub before_kill: Duration,
    pub after_restart: Duration,
    pub drain_timeout: Duration,
    /// `None`: the cost is skipped.
    pub cost: Option<CostPlan>,
    /// `None`: the raw loop is skipped.
    pub raw: Option<RawPlan>,
}

#[derive(Debug, Clone)]
pub struct CostPlan {
    pub rate: f64,
    pub duration: Duration,
    /// Fixed-rate runs per mode, alternating between the modes so that a noisy minute on the
    /// shared machine does not land on one mode only.
    pub rounds: usize,
    pub ladder: Vec<f64>,
    pub step: Duration,
    pub slo_p99: Duration,
}

#[derive(Debug, Clone)]
pub struct RawPlan {
    pub duration: Duration,
    pub clients: usize,
}

/// The modes the cost compares: the two with an AOF.
pub const COST_MODES: [RedisAof; 2] = [RedisAof::Everysec, RedisAof::Always];

impl DurabilityArgs {
    pub fn plan(&self) -> anyhow::Result<Plan> {
        let q = self.quick;
        let pick = |flag: Option<Duration>, full: u64, quick: u64| flag.unwrap_or(Duration::from_secs(if q { quick } else { full }));
        let mut modes = self.modes.clone();
        modes.dedup();
        let mut scenarios = self.scenarios.clone();
        scenarios.dedup();
        anyhow::ensure!(!modes.is_empty() && !scenarios.is_empty(), "--modes and --scenarios need at least one value each");
        let rate = self.rate.unwrap_or(if q { 300.0 } else { 1000.0 });
        anyhow::ensure!(rate > 0.0 && rate.is_finite(), "--rate must be > 0");
        let ladder = self.ladder.clone().unwrap_or_else(|| if q { vec![1000.0, 2000.0] } else { LADDER.to_vec() });
        anyhow::ensure!(ladder.iter().all(|r| *r > 0.0 && r.is_finite()), "--ladder rates must be > 0");
        let cost = (!self.no_cost).then(|| CostPlan {
            rate: self.cost_rate,
            duration: pick(self.cost_duration, 10, 2),
            rounds: 3,
            ladder,
            step: pick(self.step_duration, 4, 1),
            slo_p99: self.slo_p99,
        });
        let raw = (!self.no_raw).then(|| RawPlan { duration: pick(self.raw_duration, 3, 1), clients: self.raw_clients.max(1) });
        Ok(Plan {
            modes,
            scenarios,
            trials: self.trials.unwrap_or(if q { 1 } else { 3 }),
            rate,
            before_kill: pick(self.before_kill, 3, 1),
            after_restart: pick(self.after_restart, 2, 1),
            drain_timeout: self.drain_timeout,
            cost,
            raw,
        })
    }
}

/// The sustained-rate ladder: from a rate an fsync per request can hold on a slow disk up to
/// just past the 15,000/s v2 held in docs/SCALE.md's sweep.
const LADDER: [f64; 9] = [250.0, 500.0, 1000.0, 2000.0, 4000.0, 6000.0, 8000.0, 12000.0, 16000.0];

/// The sandbox's persistence for a `--modes` value.
pub fn persistence(mode: RedisAof) -> Persistence {
    match mode {
        RedisAof::None => Persistence::None,
        RedisAof::Everysec => Persistence::AofEverySec,
        RedisAof::Always => Persistence::AofAlways,
    }
}

/// The name a mode goes by in the results and the document.
pub fn mode_name(mode: RedisAof) -> &'static str {
    match mode {
        RedisAof::None => "none",
        RedisAof::Everysec => "everysec",
        RedisAof::Always => "always",
    }
}

pub fn scenario_name(s: KillScenario) -> &'static str {
    match s {
        KillScenario::Live => "live",
        KillScenario::Backlog => "backlog",
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::config::{BenchCommand, Command};

    fn plan(line: &[&str]) -> super::Plan {
        let mut argv = vec!["coffee-lab", "bench", "durability"];
        argv.extend_from_slice(line);
        let Command::Bench(BenchCommand::Durability(args)) = crate::Cli::try_parse_from(argv).unwrap().command else { unreachable!() };
        args.plan().unwrap()
    }

    #[test]
    fn quick_shrinks_what_no_flag_set_and_flags_win() {
        let full = plan(&[]);
        assert_eq!((full.trials, full.rate, full.modes.len(), full.scenarios.len()), (3, 1000.0, 3, 2));
        let quick = plan(&["--quick", "--trials", "2", "--modes", "always"]);
        assert_eq!((quick.trials, quick.rate, quick.modes.len()), (2, 300.0, 1));
        assert_eq!(quick.cost.as_ref().unwrap().ladder, [1000.0, 2000.0]);
        assert!(plan(&["--no-cost", "--no-raw"]).cost.is_none());
    }
}

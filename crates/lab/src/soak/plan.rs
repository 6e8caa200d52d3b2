//! The fault schedule, drawn from the seed before anything runs: the same seed gives the same
//! faults at the same offsets, so a failing soak can be run again as it was.
//!
//! Kinds are drawn from a shuffled bag of all five, refilled when empty, rather than one at a
//! time: a short soak with four or five faults then meets every kind instead of, by chance,
//! killing the worker three times and never restarting PostgreSQL.
//!
//! The offsets are when a fault is due. Faults run one at a time, so a slow one (a broker
//! restart takes 10–20 s) delays those due during it; any pushed into the last [`QUIET_END`]
//! of the load are left out, and the results count them.

use std::time::Duration;

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

/// What one fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// SIGKILL one v2 `worker`, a pause, then start it again with the same consumer name.
    KillWorker,
    /// SIGKILL one v3 `processor`, a pause, then start it again.
    KillProcessor,
    /// Redis stopped (SIGTERM: it fsyncs its AOF) and started again on the same data.
    RestartRedis,
    /// PostgreSQL stopped (a clean shutdown) and started again on the same data.
    RestartPostgres,
    /// The Kafka broker stopped (controlled shutdown) and started again on the same log dirs.
    RestartBroker,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] =
        [FaultKind::KillWorker, FaultKind::KillProcessor, FaultKind::RestartRedis, FaultKind::RestartPostgres, FaultKind::RestartBroker];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::KillWorker => "kill-worker",
            FaultKind::KillProcessor => "kill-processor",
            FaultKind::RestartRedis => "restart-redis",
            FaultKind::RestartPostgres => "restart-postgres",
            FaultKind::RestartBroker => "restart-broker",
        }
    }
}

/// One planned fault.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedFault {
    /// Offset from the start of the load.
    pub at: Duration,
    pub kind: FaultKind,
    /// Which instance of a killed role (index among the workers or processors).
    pub instance: usize,
    /// How long a killed process stays down before it is started again (servers are restarted
    /// at once: their downtime is their own stop and start).
    pub pause: Duration,
}

/// How the faults are spread.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    pub seed: u64,
    pub duration: Duration,
    pub min_gap: Duration,
    pub max_gap: Duration,
    pub workers: usize,
    pub processors: usize,
}

/// The longest pause of a killed process: long enough for work to pile up behind it (and, for
/// a processor, for the group to rebalance its partitions to the other one), short enough for
/// many faults per hour.
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// Faults stop this long before the end of the load, so the last one has recovered before the
/// load stops and the drain measures the pipeline, not a server still starting.
pub const QUIET_END: Duration = Duration::from_secs(10);

impl FaultPlan {
    /// The faults, in time order: the first after one gap, each next one a gap later (uniform
    /// in `min_gap..=max_gap`), none in the last [`QUIET_END`].
    pub fn faults(&self) -> Vec<PlannedFault> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed);
        let (lo, hi) = (self.min_gap.as_millis() as u64, self.max_gap.as_millis().max(self.min_gap.as_millis()) as u64);
        let end = self.duration.saturating_sub(QUIET_END);
        let mut bag: Vec<FaultKind> = Vec::new();
        let mut out = Vec::new();
        let mut at = Duration::ZERO;
        loop {
            at += Duration::from_millis(rng.random_range(lo.max(1)..=hi.max(1)));
            if at > end {
                return out;
            }
            if bag.is_empty() {
                bag = FaultKind::ALL.to_vec();
                bag.shuffle(&mut rng);
            }
            let kind = bag.pop().expect("refilled");
            let instance = match kind {
                FaultKind::KillWorker => rng.random_range(0..self.workers.max(1)),
                FaultKind::KillProcessor => rng.random_range(0..self.processors.max(1)),
                _ => 0,
            };
            let pause = match kind {
                FaultKind::KillWorker | FaultKind::KillProcessor => {
                    Duration::from_millis(rng.random_range(500..=MAX_PAUSE.as_millis() as u64))
                }
                _ => Duration::ZERO,
            };
            out.push(PlannedFault { at, kind, instance, pause });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(seed: u64, duration_s: u64, min_s: u64, max_s: u64) -> FaultPlan {
        FaultPlan {
            seed,
            duration: Duration::from_secs(duration_s),
            min_gap: Duration::from_secs(min_s),
            max_gap: Duration::from_secs(max_s),
            workers: 2,
            processors: 2,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_faults_and_another_seed_others() {
        assert_eq!(plan(7, 1800, 20, 60).faults(), plan(7, 1800, 20, 60).faults());
        assert_ne!(plan(7, 1800, 20, 60).faults(), plan(8, 1800, 20, 60).faults());
    }

    #[test]
    fn gaps_stay_in_bounds_and_the_end_is_quiet() {
        let faults = plan(3, 1800, 20, 60).faults();
        // 1790 s of faults at a mean gap of 40 s.
        assert!((35..=60).contains(&faults.len()), "{}", faults.len());
        let mut prev = Duration::ZERO;
        for f in &faults {
            let gap = f.at - prev;
            assert!(gap >= Duration::from_secs(20) && gap <= Duration::from_secs(60), "{gap:?}");
            prev = f.at;
        }
        assert!(prev <= Duration::from_secs(1800) - QUIET_END);
    }

    #[test]
    fn every_kind_comes_in_each_run_of_five() {
        let faults = plan(11, 1800, 20, 60).faults();
        for chunk in faults.chunks_exact(5) {
            let mut kinds: Vec<FaultKind> = chunk.iter().map(|f| f.kind).collect();
            kinds.sort();
            assert_eq!(kinds, FaultKind::ALL.to_vec());
        }
    }

    #[test]
    fn kills_pick_an_existing_instance_and_pause_briefly() {
        for f in plan(5, 3600, 5, 10).faults() {
            match f.kind {
                FaultKind::KillWorker | FaultKind::KillProcessor => {
                    assert!(f.instance < 2);
                    assert!(f.pause >= Duration::from_millis(500) && f.pause <= MAX_PAUSE);
                }
                _ => assert_eq!((f.instance, f.pause), (0, Duration::ZERO)),
            }
        }
    }

    #[test]
    fn a_run_shorter_than_a_gap_has_no_fault() {
        assert!(plan(1, 15, 20, 60).faults().is_empty());
    }
}

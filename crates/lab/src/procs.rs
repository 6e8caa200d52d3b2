//! CPU and memory of the processes a load step exercises (the server and its services),
//! sampled while the step runs, so each step says which resource was saturating.
//!
//! Processes are grouped by name (`postgres` has many); the lab's own process is kept
//! apart as `load-generator`, because when it is launched as `coffee-rt bench sweep` it
//! carries the server's name but must not be counted as the server.

use std::collections::BTreeMap;

use serde::Serialize;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// The process names the sweep watches by default.
pub const DEFAULT_PROCESSES: [&str; 4] = ["coffee-rt", "postgres", "redis-server", "java"];

/// Name under which the lab's own process is reported.
pub const SELF_NAME: &str = "load-generator";

/// Usage of one group of processes over a step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ProcUsage {
    /// Mean CPU over the step, in % of one core (200 % = both cores of a 2-core machine).
    pub cpu_pct: f64,
    /// Peak resident memory of the group (sum over its processes), MiB.
    pub rss_mib: f64,
}

/// Samples the named processes; call [`ProcSampler::sample`] about once a second.
pub struct ProcSampler {
    sys: System,
    names: Vec<String>,
    me: Option<Pid>,
    samples: u32,
    cpu_sum: BTreeMap<String, f64>,
    rss_max: BTreeMap<String, f64>,
}

impl ProcSampler {
    pub fn new(names: &[&str]) -> anyhow::Result<Self> {
        let sys = System::new().map_err(|e| anyhow::anyhow!("cannot read process table: {e:?}"))?;
        let mut s = Self {
            sys,
            names: names.iter().map(|n| n.to_string()).collect(),
            me: sysinfo::get_current_pid().ok(),
            samples: 0,
            cpu_sum: BTreeMap::new(),
            rss_max: BTreeMap::new(),
        };
        // CPU usage is a difference between two refreshes: take the baseline now.
        s.refresh();
        Ok(s)
    }

    fn refresh(&mut self) {
        self.sys.refresh_processes_specifics(ProcessesToUpdate::All, true, ProcessRefreshKind::nothing().with_cpu().with_memory());
    }

    /// Record one sample: CPU since the previous call, RSS now.
    pub fn sample(&mut self) {
        self.refresh();
        let mut cpu: BTreeMap<String, f64> = BTreeMap::new();
        let mut rss: BTreeMap<String, f64> = BTreeMap::new();
        for (pid, p) in self.sys.processes() {
            let group = if Some(*pid) == self.me {
                SELF_NAME.to_string()
            } else {
                let name = p.name().to_string_lossy();
                match self.names.iter().find(|n| **n == name) {
                    Some(n) => n.clone(),
                    None => continue,
                }
            };
            *cpu.entry(group.clone()).or_default() += p.cpu_usage() as f64;
            *rss.entry(group).or_default() += p.memory() as f64 / (1024.0 * 1024.0);
        }
        self.samples += 1;
        for (k, v) in cpu {
            *self.cpu_sum.entry(k).or_default() += v;
        }
        for (k, v) in rss {
            let m = self.rss_max.entry(k).or_default();
            *m = m.max(v);
        }
    }

    /// Usage per group since the sampler was created (groups never seen are absent).
    pub fn usage(&self) -> BTreeMap<String, ProcUsage> {
        let n = self.samples.max(1) as f64;
        self.rss_max
            .iter()
            .map(|(k, rss)| {
                let cpu = self.cpu_sum.get(k).copied().unwrap_or(0.0) / n;
                (k.clone(), ProcUsage { cpu_pct: (cpu * 10.0).round() / 10.0, rss_mib: (rss * 10.0).round() / 10.0 })
            })
            .collect()
    }
}

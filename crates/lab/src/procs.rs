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
    /// Peak proportional set size (Linux `smaps_rollup`), MiB: each shared page is divided
    /// among the processes mapping it, so PostgreSQL's shared buffers count once for the
    /// group, not once per backend. `None` where the kernel does not expose it.
    pub pss_mib: Option<f64>,
    /// CPU time the group used between the sampler's creation and its last sample, seconds
    /// (exact: the kernel's counters, not the mean of the samples).
    pub cpu_s: f64,
}

/// Samples the named processes; call [`ProcSampler::sample`] about once a second.
pub struct ProcSampler {
    sys: System,
    names: Vec<String>,
    me: Option<Pid>,
    samples: u32,
    cpu_sum: BTreeMap<String, f64>,
    rss_max: BTreeMap<String, f64>,
    pss_max: BTreeMap<String, f64>,
    /// Accumulated CPU (ms) of each process when first seen, and its group.
    cpu_base: BTreeMap<Pid, (String, u64)>,
    /// CPU (ms) used since first seen, per process, at the last sample.
    cpu_used: BTreeMap<Pid, u64>,
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
            pss_max: BTreeMap::new(),
            cpu_base: BTreeMap::new(),
            cpu_used: BTreeMap::new(),
        };
        // CPU usage is a difference between two refreshes: take the baseline now.
        s.refresh();
        let groups: Vec<(Pid, String, u64)> =
            s.sys.processes().iter().filter_map(|(pid, p)| Some((*pid, s.group_of(*pid, p)?, p.accumulated_cpu_time()))).collect();
        for (pid, group, ms) in groups {
            s.cpu_base.insert(pid, (group, ms));
        }
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
        let mut pss: BTreeMap<String, f64> = BTreeMap::new();
        for (pid, p) in self.sys.processes() {
            let Some(group) = self.group_of(*pid, p) else { continue };
            // A process started during the step counts from zero.
            let (_, base) = self.cpu_base.entry(*pid).or_insert_with(|| (group.clone(), 0));
            self.cpu_used.insert(*pid, p.accumulated_cpu_time().saturating_sub(*base));
            *cpu.entry(group.clone()).or_default() += p.cpu_usage() as f64;
            if let Some(kib) = pss_kib(pid.as_u32()) {
                *pss.entry(group.clone()).or_default() += kib / 1024.0;
            }
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
        for (k, v) in pss {
            let m = self.pss_max.entry(k).or_default();
            *m = m.max(v);
        }
    }

    fn group_of(&self, pid: Pid, p: &sysinfo::Process) -> Option<String> {
        if Some(pid) == self.me {
            return Some(SELF_NAME.to_string());
        }
        let name = p.name().to_string_lossy();
        self.names.iter().find(|n| **n == name).cloned()
    }

    /// Usage per group since the sampler was created (groups never seen are absent).
    pub fn usage(&self) -> BTreeMap<String, ProcUsage> {
        let n = self.samples.max(1) as f64;
        self.rss_max
            .iter()
            .map(|(k, rss)| {
                let cpu = self.cpu_sum.get(k).copied().unwrap_or(0.0) / n;
                let ms: u64 =
                    self.cpu_used.iter().filter(|(pid, _)| self.cpu_base.get(pid).is_some_and(|(g, _)| g == k)).map(|(_, ms)| ms).sum();
                let usage = ProcUsage {
                    cpu_pct: (cpu * 10.0).round() / 10.0,
                    rss_mib: (rss * 10.0).round() / 10.0,
                    pss_mib: self.pss_max.get(k).map(|p| (p * 10.0).round() / 10.0),
                    cpu_s: ms as f64 / 1000.0,
                };
                (k.clone(), usage)
            })
            .collect()
    }
}

/// A process's proportional set size, KiB, from `/proc/<pid>/smaps_rollup`.
fn pss_kib(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    text.lines().find_map(|l| l.strip_prefix("Pss:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}

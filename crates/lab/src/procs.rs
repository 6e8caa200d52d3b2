//! The lab's one reader of processes: CPU time and memory from Linux's `/proc`, per process and
//! per group of processes by name, and the whole machine's busy CPU time.
//!
//! [`ProcSampler`] watches the processes a load step exercises (the server and its services)
//! while the step runs, so each step says which resource was saturating. Processes are grouped
//! by name (`postgres` has many); the lab's own process is kept apart as `load-generator`, so
//! that it is never counted as the server even when it carries a watched name.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Instant;

use serde::Serialize;

/// The process names the sweep watches by default.
pub const DEFAULT_PROCESSES: [&str; 4] = ["coffee-rt", "postgres", "redis-server", "java"];

/// Name under which the lab's own process is reported.
pub const SELF_NAME: &str = "load-generator";

/// Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`; 100 on every Linux we run).
fn clk_tck() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// CPU time of one process, from `/proc/<pid>/stat`.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuTimes {
    /// The command name (`comm`, at most 15 bytes: what `pgrep -x` matches).
    pub name: String,
    /// User + system seconds of the process itself.
    pub cpu_s: f64,
    /// User + system seconds of its children that it reaped (the postmaster reaps the
    /// PostgreSQL backends that exited).
    pub reaped_children_cpu_s: f64,
}

/// CPU times of process `pid`; `None` when it is gone.
pub fn cpu_times(pid: u32) -> Option<CpuTimes> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?, clk_tck())
}

/// Pure part of [`cpu_times`]: the name may hold spaces and parentheses, so it is the text
/// between the first `(` and the last `)`.
fn parse_stat(text: &str, tck: f64) -> Option<CpuTimes> {
    let (open, close) = (text.find('(')?, text.rfind(')')?);
    // Field 3 (state) is not a number; fields 14–17 are utime, stime, cutime, cstime.
    let f: Vec<u64> = text[close + 1..].split_whitespace().skip(1).map(|f| f.parse::<i64>().unwrap_or(0).max(0) as u64).collect();
    Some(CpuTimes {
        name: text[open + 1..close].to_owned(),
        cpu_s: (f.get(10)? + f.get(11)?) as f64 / tck,
        reaped_children_cpu_s: (f.get(12)? + f.get(13)?) as f64 / tck,
    })
}

/// Memory of one process, MiB.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Memory {
    /// Resident set size now (`VmRSS`).
    pub rss_mib: f64,
    /// Peak resident set size (`VmHWM`).
    pub peak_rss_mib: f64,
}

/// Memory of process `pid` from `/proc/<pid>/status`; `None` when it is gone.
pub fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| status.lines().find_map(|l| l.strip_prefix(key)).and_then(kib_value).unwrap_or(0.0);
    Some(Memory { rss_mib: kib("VmRSS:") / 1024.0, peak_rss_mib: kib("VmHWM:") / 1024.0 })
}

/// A process's proportional set size, MiB, from `/proc/<pid>/smaps_rollup`: each shared page is
/// divided among the processes mapping it.
pub fn pss_mib(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    Some(text.lines().find_map(|l| l.strip_prefix("Pss:")).and_then(kib_value)? / 1024.0)
}

/// `   1234 kB` → 1234.
fn kib_value(v: &str) -> Option<f64> {
    v.trim().trim_end_matches("kB").trim().parse().ok()
}

/// Every process id in /proc now.
fn pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect()
}

/// CPU seconds so far of every process named in `names`, own plus reaped children's, summed
/// per name.
pub fn cpu_s_by_name(names: &[&str]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for pid in pids() {
        let Some(t) = cpu_times(pid).filter(|t| names.contains(&t.name.as_str())) else { continue };
        *out.entry(t.name).or_default() += t.cpu_s + t.reaped_children_cpu_s;
    }
    out
}

/// Busy CPU seconds of all cores since boot: /proc/stat's `cpu` line without idle and iowait
/// (guest time is already inside user).
pub fn machine_busy_cpu_s() -> f64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else { return 0.0 };
    let f: Vec<u64> = line.split_whitespace().skip(1).map(|v| v.parse().unwrap_or(0)).collect();
    // user nice system idle iowait irq softirq steal
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum();
    busy as f64 / clk_tck()
}

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

/// One watched process: its group, its CPU seconds when first seen and at the last sample.
struct Watched {
    group: String,
    base_s: f64,
    last_s: f64,
}

/// Samples the named processes; call [`ProcSampler::sample`] about once a second.
pub struct ProcSampler {
    names: Vec<String>,
    me: u32,
    samples: u32,
    last_sample: Instant,
    watched: BTreeMap<u32, Watched>,
    cpu_sum: BTreeMap<String, f64>,
    rss_max: BTreeMap<String, f64>,
    pss_max: BTreeMap<String, f64>,
}

impl ProcSampler {
    /// Takes the baseline: the CPU time of every watched process now.
    pub fn new(names: &[&str]) -> anyhow::Result<Self> {
        anyhow::ensure!(std::path::Path::new("/proc/self/stat").exists(), "cannot read the process table: no /proc");
        let mut s = Self {
            names: names.iter().map(|n| n.to_string()).collect(),
            me: std::process::id(),
            samples: 0,
            last_sample: Instant::now(),
            watched: BTreeMap::new(),
            cpu_sum: BTreeMap::new(),
            rss_max: BTreeMap::new(),
            pss_max: BTreeMap::new(),
        };
        for (pid, group, t) in s.scan() {
            s.watched.insert(pid, Watched { group, base_s: t.cpu_s, last_s: t.cpu_s });
        }
        Ok(s)
    }

    /// The watched processes now: pid, group, CPU times.
    fn scan(&self) -> Vec<(u32, String, CpuTimes)> {
        pids()
            .into_iter()
            .filter_map(|pid| {
                let t = cpu_times(pid)?;
                let group = if pid == self.me { SELF_NAME.to_string() } else { self.names.iter().find(|n| **n == t.name)?.clone() };
                Some((pid, group, t))
            })
            .collect()
    }

    /// Record one sample: CPU since the previous one, memory now.
    pub fn sample(&mut self) {
        let now = Instant::now();
        let wall_s = (now - self.last_sample).as_secs_f64().max(1e-3);
        self.last_sample = now;
        let mut cpu: BTreeMap<String, f64> = BTreeMap::new();
        let mut rss: BTreeMap<String, f64> = BTreeMap::new();
        let mut pss: BTreeMap<String, f64> = BTreeMap::new();
        for (pid, group, t) in self.scan() {
            // A process started during the step counts from zero.
            let w = self.watched.entry(pid).or_insert_with(|| Watched { group: group.clone(), base_s: 0.0, last_s: 0.0 });
            *cpu.entry(group.clone()).or_default() += 100.0 * (t.cpu_s - w.last_s).max(0.0) / wall_s;
            w.last_s = t.cpu_s;
            if let Some(mib) = pss_mib(pid) {
                *pss.entry(group.clone()).or_default() += mib;
            }
            *rss.entry(group).or_default() += memory(pid).map_or(0.0, |m| m.rss_mib);
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

    /// Usage per group since the sampler was created (groups never seen in a sample are absent).
    pub fn usage(&self) -> BTreeMap<String, ProcUsage> {
        let n = self.samples.max(1) as f64;
        let round1 = |x: f64| (x * 10.0).round() / 10.0;
        self.rss_max
            .iter()
            .map(|(k, rss)| {
                let cpu_s: f64 = self.watched.values().filter(|w| w.group == *k).map(|w| w.last_s - w.base_s).sum();
                let usage = ProcUsage {
                    cpu_pct: round1(self.cpu_sum.get(k).copied().unwrap_or(0.0) / n),
                    rss_mib: round1(*rss),
                    pss_mib: self.pss_max.get(k).map(|p| round1(*p)),
                    // Whole milliseconds, as the kernel's ticks allow no finer.
                    cpu_s: (cpu_s * 1000.0).round() / 1000.0,
                };
                (k.clone(), usage)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_spaces_in_the_name() {
        let line = "42 (tokio rt (x)) S 1 2 3 4 5 6 7 8 9 10 150 50 30 20 20 0 1";
        let t = parse_stat(line, 100.0).unwrap();
        assert_eq!(t.name, "tokio rt (x)");
        assert_eq!(t.cpu_s, 2.0);
        assert_eq!(t.reaped_children_cpu_s, 0.5);
        assert_eq!(parse_stat("42 (short) S 1", 100.0), None);
    }

    #[test]
    fn reads_its_own_process() {
        let me = std::process::id();
        let m = memory(me).unwrap();
        assert!(m.rss_mib > 0.0 && m.peak_rss_mib >= m.rss_mib, "{m:?}");
        assert!(cpu_times(me).is_some());
        assert!(machine_busy_cpu_s() > 0.0);
    }

    #[test]
    fn the_sampler_reports_its_own_process_apart() {
        let mut s = ProcSampler::new(&[]).unwrap();
        // Burn a little CPU so the group has some.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        s.sample();
        let u = s.usage();
        let me = u.get(SELF_NAME).expect("own process sampled");
        assert!(me.rss_mib > 0.0 && me.cpu_s >= 0.0, "{me:?}");
    }
}

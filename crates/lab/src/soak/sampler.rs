//! RSS and CPU of every process of the soak, once a second, by name: `serve-0`, `worker-1`,
//! `postgres`, … and `coffee-lab` (this process: the load generator). A name outlives its
//! pids: a killed worker's series continues with the pid of its next start.
//!
//! A process counts with its descendants (PostgreSQL's backends are children of the postmaster,
//! Redis forks to rewrite its AOF), as `procs::ProcSampler` sums a group: the RSS of the tree,
//! and the CPU the tree used since the previous sample (its reaped children's included).
//! RSS counts a shared page once per process holding it, so `postgres`'s RSS grows as its
//! backends touch its shared buffers; its PSS (each shared page divided among the processes
//! mapping it) is sampled beside it and is the figure to read for PostgreSQL.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use tokio::time::Instant;

use crate::procs;

/// One process's samples, in time order.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Series {
    /// Seconds since the load started.
    pub t_s: Vec<f64>,
    pub rss_mib: Vec<f64>,
    /// Proportional set size of the tree (each shared page divided among the processes that
    /// map it): PostgreSQL's memory without its shared buffers counted once per backend.
    pub pss_mib: Vec<f64>,
    /// % of one core over the interval since the previous sample (0 at a new pid's first).
    pub cpu_pct: Vec<f64>,
}

/// Start, peak and end of one series.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub start_mib: f64,
    pub max_mib: f64,
    pub end_mib: f64,
    /// The same of the proportional set size.
    pub start_pss_mib: f64,
    pub max_pss_mib: f64,
    pub end_pss_mib: f64,
    pub mean_cpu_pct: f64,
    pub samples: usize,
}

pub struct Sampler {
    t0: Instant,
    /// Per name: the pid last seen, its tree's CPU seconds and when.
    last: HashMap<String, (u32, f64, Instant)>,
    pub series: BTreeMap<String, Series>,
}

/// Name under which this process is sampled.
pub const SELF_NAME: &str = "coffee-lab";

impl Sampler {
    pub fn new(t0: Instant) -> Sampler {
        Sampler { t0, last: HashMap::new(), series: BTreeMap::new() }
    }

    /// One sample of every named process that is up (a `None` pid, or one that is gone, is
    /// simply not sampled this second: a gap in its line).
    pub fn sample(&mut self, pids: &[(String, Option<u32>)]) {
        let now = Instant::now();
        let me = (SELF_NAME.to_string(), Some(std::process::id()));
        for (name, pid) in pids.iter().chain(std::iter::once(&me)) {
            let Some(pid) = *pid else { continue };
            // This process's descendants are the soak's other processes: sampled under their names.
            let tree = if name == SELF_NAME { vec![pid] } else { tree(pid) };
            // A descendant that exits between the listing and the reading is left out.
            let Some(root) = procs::memory(pid) else { continue };
            let rss = root.rss_mib + tree[1..].iter().filter_map(|p| procs::memory(*p)).map(|m| m.rss_mib).sum::<f64>();
            let pss: f64 = tree.iter().filter_map(|p| procs::pss_mib(*p)).sum();
            let reaped = |t: &procs::CpuTimes| if name == SELF_NAME { 0.0 } else { t.reaped_children_cpu_s };
            let cpu_s: f64 = tree.iter().filter_map(|p| procs::cpu_times(*p)).map(|t| t.cpu_s + reaped(&t)).sum();
            let cpu_pct = match self.last.get(name) {
                Some(&(last_pid, last_s, at)) if last_pid == pid => 100.0 * (cpu_s - last_s).max(0.0) / (now - at).as_secs_f64().max(1e-3),
                _ => 0.0,
            };
            self.last.insert(name.clone(), (pid, cpu_s, now));
            let s = self.series.entry(name.clone()).or_default();
            s.t_s.push(round((now - self.t0).as_secs_f64(), 1));
            s.rss_mib.push(round(rss, 1));
            s.pss_mib.push(round(pss, 1));
            s.cpu_pct.push(round(cpu_pct, 1));
        }
    }
}

/// `pid` and its descendants, from `/proc/<pid>/task/<tid>/children`.
fn tree(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for t in tasks.flatten() {
                let text = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
                out.extend(text.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
            }
        }
        i += 1;
    }
    out
}

/// Start, peak and end of each series.
pub fn summarize(series: &BTreeMap<String, Series>) -> BTreeMap<String, Summary> {
    series
        .iter()
        .filter(|(_, s)| !s.rss_mib.is_empty())
        .map(|(name, s)| {
            let n = s.rss_mib.len();
            let max = |v: &[f64]| v.iter().copied().fold(f64::MIN, f64::max);
            let summary = Summary {
                start_mib: s.rss_mib[0],
                max_mib: max(&s.rss_mib),
                end_mib: s.rss_mib[n - 1],
                start_pss_mib: s.pss_mib.first().copied().unwrap_or(0.0),
                max_pss_mib: max(&s.pss_mib).max(0.0),
                end_pss_mib: s.pss_mib.last().copied().unwrap_or(0.0),
                mean_cpu_pct: round(s.cpu_pct.iter().sum::<f64>() / n as f64, 1),
                samples: n,
            };
            (name.clone(), summary)
        })
        .collect()
}

/// At most `max_points` points per series for the results file, each the peak RSS and mean CPU
/// of its bucket (the peak, so the file never hides a spike the plot shows).
pub fn downsample(series: &BTreeMap<String, Series>, max_points: usize) -> BTreeMap<String, Series> {
    series
        .iter()
        .map(|(name, s)| {
            let n = s.t_s.len();
            let per = n.div_ceil(max_points.max(1)).max(1);
            let mut out = Series::default();
            for start in (0..n).step_by(per) {
                let end = (start + per).min(n);
                out.t_s.push(s.t_s[start]);
                out.rss_mib.push(s.rss_mib[start..end].iter().copied().fold(f64::MIN, f64::max));
                out.pss_mib.push(s.pss_mib[start..end].iter().copied().fold(f64::MIN, f64::max));
                out.cpu_pct.push(round(s.cpu_pct[start..end].iter().sum::<f64>() / (end - start) as f64, 1));
            }
            (name.clone(), out)
        })
        .collect()
}

fn round(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_its_own_process_and_skips_the_absent() {
        let mut s = Sampler::new(Instant::now());
        let pids = vec![("down".to_string(), None), ("gone".to_string(), Some(u32::MAX - 1))];
        s.sample(&pids);
        std::thread::sleep(std::time::Duration::from_millis(20));
        s.sample(&pids);
        assert_eq!(s.series.keys().collect::<Vec<_>>(), [SELF_NAME]);
        let me = &s.series[SELF_NAME];
        assert_eq!(me.t_s.len(), 2);
        assert!(me.rss_mib.iter().all(|r| *r > 1.0), "{me:?}");
        assert!(me.pss_mib.iter().all(|p| *p > 0.0), "{me:?}");
        let sum = summarize(&s.series);
        assert_eq!(sum[SELF_NAME].samples, 2);
        assert!(sum[SELF_NAME].max_mib >= sum[SELF_NAME].start_mib);
    }

    #[test]
    fn downsampling_keeps_the_peaks() {
        let mut series = BTreeMap::new();
        let s = Series {
            t_s: (0..10).map(f64::from).collect(),
            rss_mib: vec![1.0, 9.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 5.0],
            pss_mib: vec![1.0; 10],
            cpu_pct: vec![10.0; 10],
        };
        series.insert("x".to_string(), s.clone());
        let d = &downsample(&series, 4)["x"];
        assert_eq!(d.t_s, [0.0, 3.0, 6.0, 9.0]);
        assert_eq!(d.rss_mib, [9.0, 1.0, 1.0, 5.0]);
        assert_eq!(d.cpu_pct, [10.0; 4]);
        assert_eq!(&downsample(&series, 100)["x"], &s);
        let sum = &summarize(&series)["x"];
        assert_eq!((sum.start_mib, sum.max_mib, sum.end_mib), (1.0, 9.0, 5.0));
    }
}

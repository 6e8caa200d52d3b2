//! Process memory from /proc/self/status. Each strategy runs in its own
//! child process, so VmRSS there is that strategy's memory and nothing else's.

fn field_kb(name: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix(name)?.trim().strip_suffix("kB")?.trim().parse().ok()).unwrap_or(0)
}

/// Resident set size now, MiB.
pub fn rss_mb() -> f64 {
    field_kb("VmRSS:") as f64 / 1024.0
}

/// Peak resident set size, MiB.
pub fn hwm_mb() -> f64 {
    field_kb("VmHWM:") as f64 / 1024.0
}

/// 1, 5 and 15 minute load averages: the machine is shared, so every result
/// says how busy it was.
pub fn loadavg() -> String {
    let s = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// One line describing the machine, for the report.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("model name").map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())))
        .unwrap_or_else(|| "unknown cpu".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()))
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, {cores} cores, {:.1} GiB RAM, Linux {}", mem as f64 / 1048576.0, kernel.trim())
}

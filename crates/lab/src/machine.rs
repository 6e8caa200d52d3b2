//! A description of the machine the numbers were measured on, for SCALE.md.

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Machine {
    pub cpu_model: String,
    pub logical_cpus: usize,
    pub memory_gib: f64,
    pub kernel: String,
}

impl Machine {
    /// Read `/proc/cpuinfo`, `/proc/meminfo` and the kernel release.
    pub fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Self::parse(&cpuinfo, &meminfo, kernel.trim())
    }

    /// Pure part of [`Machine::read`].
    pub fn parse(cpuinfo: &str, meminfo: &str, kernel: &str) -> Self {
        let field = |line: &str, key: &str| -> Option<String> {
            let (k, v) = line.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_string())
        };
        let cpu_model = cpuinfo.lines().find_map(|l| field(l, "model name")).unwrap_or_else(|| "unknown".into());
        let logical_cpus = cpuinfo.lines().filter(|l| field(l, "processor").is_some()).count();
        let mem_kib: f64 =
            meminfo.lines().find_map(|l| field(l, "MemTotal")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0.0);
        Self { cpu_model, logical_cpus, memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0, kernel: kernel.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let cpu = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        let mem = "MemTotal:       24683520 kB\nMemFree:        20000000 kB\n";
        let m = Machine::parse(cpu, mem, "6.1.0");
        assert_eq!(m.cpu_model, "AMD EPYC 7B13");
        assert_eq!(m.logical_cpus, 2);
        assert_eq!(m.memory_gib, 23.5);
        assert_eq!(m.kernel, "6.1.0");
    }
}

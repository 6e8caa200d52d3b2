//! What a run measures (sizes, runs per query) and whether the disk can hold it.

use std::path::Path;

use crate::config::AnalyticsArgs;
use crate::report::format::rows_label;

/// The default ladder: the sizes at which `docs/SCALE.md` found a `GROUP BY` over every order
/// to take 1 s and 10 s.
pub const LADDER: [u64; 2] = [1_000_000, 10_000_000];
/// Orders of the smoke run (`--quick`).
pub const QUICK_ROWS: u64 = 20_000;
/// Timed runs per query and store, and with `--quick`.
pub const RUNS: u64 = 10;
pub const QUICK_RUNS: u64 = 3;

/// Disk a size needs, per order: PostgreSQL's table and indexes (~210 B a row), the REINDEX's
/// new copies and the WAL, and ClickHouse's parts (~30 B a row, twice while OPTIMIZE rewrites
/// them). A 10M run took up to ~3.2 GB at once; rounded up.
pub const DISK_BYTES_PER_ROW: u64 = 400;
/// Kept free beyond that, for everyone else on the machine.
pub const DISK_RESERVE_BYTES: u64 = 1 << 30;

impl AnalyticsArgs {
    pub fn plan_sizes(&self) -> Vec<u64> {
        match &self.sizes {
            Some(s) => s.clone(),
            None if self.quick => vec![QUICK_ROWS],
            None => LADDER.to_vec(),
        }
    }

    pub fn plan_runs(&self) -> u64 {
        self.runs.unwrap_or(if self.quick { QUICK_RUNS } else { RUNS })
    }
}

/// Bytes of free disk a size needs.
pub fn disk_needed(rows: u64) -> u64 {
    rows.saturating_mul(DISK_BYTES_PER_ROW).saturating_add(DISK_RESERVE_BYTES)
}

/// Each size is measured on fresh scratch databases, dropped before the next, so the largest
/// one decides. An error naming the size, the need and the free space when it does not fit.
pub fn check_disk(sizes: &[u64], free: &[(String, u64)]) -> anyhow::Result<()> {
    let Some(&largest) = sizes.iter().max() else { return Ok(()) };
    let need = disk_needed(largest);
    for (path, avail) in free {
        anyhow::ensure!(
            *avail >= need,
            "refusing to run {} orders: they need about {:.1} GiB of free disk ({} B per order for PostgreSQL, \
             its REINDEX and WAL and ClickHouse, plus {:.0} GiB kept free), and the filesystem of {path} has {:.1} GiB; \
             ask for smaller --sizes",
            rows_label(largest),
            need as f64 / GIB,
            DISK_BYTES_PER_ROW,
            DISK_RESERVE_BYTES as f64 / GIB,
            *avail as f64 / GIB,
        );
    }
    Ok(())
}

const GIB: f64 = (1u64 << 30) as f64;

/// Returns (an error saying where) once the free space on the filesystem of any of `dirs`
/// falls below [`DISK_RESERVE_BYTES`]; checks every second. Raced against a size's run, whose
/// future is then dropped.
pub async fn watch_disk(dirs: &[std::path::PathBuf]) -> anyhow::Error {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        for dir in dirs {
            if let Some(avail) = free_bytes(dir).filter(|&a| a < DISK_RESERVE_BYTES) {
                return anyhow::anyhow!(
                    "stopped: the filesystem of {} has only {:.0} MiB free (others share it); the scratch databases are dropped",
                    dir.display(),
                    avail as f64 / (1u64 << 20) as f64
                );
            }
        }
    }
}

/// Free bytes on the filesystem holding `path` (`df`; None if it cannot tell, e.g. the path is
/// on another machine).
pub fn free_bytes(path: &Path) -> Option<u64> {
    let out = std::process::Command::new("df").arg("-P").arg("-B1").arg(path).output().ok()?;
    if !out.status.success() {
        return None;
    }
    parse_df(&String::from_utf8_lossy(&out.stdout))
}

/// The "Available" column of `df -P -B1`'s one data line.
pub fn parse_df(text: &str) -> Option<u64> {
    text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_size_must_fit() {
        let free = vec![("/".to_string(), 15u64 << 30)];
        assert!(check_disk(&[1_000_000, 10_000_000], &free).is_ok());
        let e = check_disk(&[100_000_000], &free).unwrap_err().to_string();
        assert!(e.contains("refusing to run 100M orders") && e.contains("15.0 GiB"), "{e}");
        assert!(check_disk(&[], &free).is_ok());
    }

    #[test]
    fn df_output() {
        let out = "Filesystem     1-blocks        Used   Available Capacity Mounted on\n/dev/vda 270582939648 82678571008 16106127360      84% /\n";
        assert_eq!(parse_df(out), Some(16_106_127_360));
        assert_eq!(parse_df("header only\n"), None);
    }
}

//! `coffee-rt` as a child of the lab: where the binary is, starting one of its roles with its
//! log in a file, and stopping it as an operator would (SIGTERM, then SIGKILL after a grace
//! period). The scale-out bench starts `processor`s; the dashboard bench `serve` and `worker`.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use tokio::process::Command;

use crate::config::CoffeeRtBinary;

/// How long a SIGTERMed child gets before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(30);

/// The `coffee-rt` binary: `--coffee-rt`, or `coffee-rt` beside this executable (cargo builds
/// both into `target/<profile>/`; from a test binary in `target/<profile>/deps/`, one level up).
pub fn locate(flag: &CoffeeRtBinary) -> anyhow::Result<PathBuf> {
    if let Some(path) = &flag.path {
        anyhow::ensure!(path.is_file(), "the coffee-rt binary {} given with --coffee-rt does not exist", path.display());
        return Ok(path.clone());
    }
    let exe = std::env::current_exe().context("locating this executable")?;
    let dir = exe.parent().context("this executable has no directory")?;
    let mut candidates = vec![dir.join("coffee-rt")];
    if dir.file_name().is_some_and(|d| d == "deps") {
        candidates.extend(dir.parent().map(|p| p.join("coffee-rt")));
    }
    candidates.iter().find(|p| p.is_file()).cloned().with_context(|| {
        format!(
            "the coffee-rt binary is not beside coffee-lab (looked for {}): build both (`cargo build --release -p coffee-rt -p coffee-lab`) or give its path with --coffee-rt <PATH>",
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )
    })
}

/// `<bin> <role>` with no stdin, killed if dropped, and without the product's test hooks and
/// metrics listener, which the lab's environment may carry for other processes.
pub fn command(bin: &Path, role: &str) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg(role).env_remove("COFFEE_RT_METRICS_LISTEN").env_remove("COFFEE_RT_CRASH_AFTER_COMMIT").stdin(Stdio::null()).kill_on_drop(true);
    cmd
}

/// One started child, its output going to `log`.
pub struct Child {
    process: tokio::process::Child,
    pub pid: u32,
    pub log: PathBuf,
    what: String,
}

/// Starts `cmd` with stdout and stderr in the file `log` (created or truncated).
pub fn spawn(mut cmd: Command, log: PathBuf) -> anyhow::Result<Child> {
    let what = format!("{:?}", cmd.as_std());
    let file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let process = cmd.stdout(file.try_clone()?).stderr(file).spawn().with_context(|| format!("starting {what}"))?;
    let pid = process.id().context("a just-started child has a pid")?;
    Ok(Child { process, pid, log, what })
}

impl Child {
    /// Fails if the child has exited, naming it and its log.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        match self.process.try_wait()? {
            Some(status) => anyhow::bail!("{} exited ({status}); its log: {}", self.what, self.log.display()),
            None => Ok(()),
        }
    }
}

/// SIGTERM to every child, then wait; SIGKILL for one that does not exit within
/// [`STOP_GRACE`]. Whether all exited 0.
pub async fn stop(children: &mut [Child]) -> bool {
    for c in children.iter() {
        signal_term(c.pid).await;
    }
    let mut graceful = true;
    for c in children.iter_mut() {
        graceful &= wait_or_kill(&mut c.process).await.is_ok_and(|s| s.success());
    }
    graceful
}

/// [`stop`] for one process started some other way.
pub async fn terminate(process: &mut tokio::process::Child) -> std::io::Result<ExitStatus> {
    if let Some(pid) = process.id() {
        signal_term(pid).await;
    }
    wait_or_kill(process).await
}

async fn signal_term(pid: u32) {
    // tokio has no SIGTERM for a child and the lab has no libc; kill(1) is everywhere.
    let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).stdout(Stdio::null()).stderr(Stdio::null()).status().await;
}

/// Its exit status within [`STOP_GRACE`]; after it, SIGKILL and an error.
async fn wait_or_kill(process: &mut tokio::process::Child) -> std::io::Result<ExitStatus> {
    match tokio::time::timeout(STOP_GRACE, process.wait()).await {
        Ok(status) => status,
        Err(_) => {
            let _ = process.start_kill();
            let _ = process.wait().await;
            Err(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no exit within {STOP_GRACE:?} of SIGTERM: killed")))
        }
    }
}

//! One server process as the sandbox runs it: its own process group (so a SIGKILL takes the
//! PostgreSQL backends with the postmaster, as a crash of the machine would), its output in a
//! log file, and killed when dropped so that no test leaves a server behind.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use rustix::process::{Pid, Signal};
use tokio::process::{Child, Command};

/// How long a stopped (SIGTERM) server gets to exit before it is killed and the stop fails.
const STOP_GRACE: Duration = Duration::from_secs(60);

/// A free TCP port on 127.0.0.1 (the kernel's choice, released at once: another process could
/// take it before the server binds it, which a restart on the same port must accept anyway).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0").context("binding a free port")?.local_addr()?.port())
}

/// A running child server.
pub struct Server {
    child: Child,
    pid: u32,
    what: String,
    log: PathBuf,
}

impl Server {
    /// Starts `cmd` in a new process group with stdin closed and stdout and stderr appended to
    /// `log`. `program` names the binary in the error when it is not installed.
    pub fn spawn(mut cmd: Command, program: &str, log: &Path) -> anyhow::Result<Server> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log).with_context(|| format!("opening {}", log.display()))?;
        let what = format!("{:?}", cmd.as_std());
        cmd.stdin(Stdio::null()).stdout(file.try_clone()?).stderr(file).process_group(0).kill_on_drop(true);
        let child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                anyhow::bail!("{program} is not installed (not found: {e}); the sandbox runs the real server")
            }
            Err(e) => return Err(e).with_context(|| format!("starting {what}")),
        };
        let pid = child.id().context("a just-started child has a pid")?;
        Ok(Server { child, pid, what, log: log.to_owned() })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Fails when the server has exited, with the end of its log: a start that cannot succeed
    /// fails at once instead of waiting out its timeout.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            Some(status) => anyhow::bail!("{} exited ({status}); the end of its log:\n{}", self.what, log_tail(&self.log)),
            None => Ok(()),
        }
    }

    /// SIGKILL to the whole process group, then waits for the leader to exit.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.signal_group(Signal::KILL);
        self.child.wait().await.with_context(|| format!("waiting for the killed {}", self.what))?;
        Ok(())
    }

    /// `signal` to the leader (a clean shutdown: Redis fsyncs its AOF, PostgreSQL checkpoints),
    /// then waits; after [`STOP_GRACE`] the group is killed and the stop fails.
    pub async fn stop(&mut self, signal: Signal) -> anyhow::Result<()> {
        if let Some(pid) = Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process(pid, signal);
        }
        match tokio::time::timeout(STOP_GRACE, self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                // What the leader left running in its group (a PostgreSQL backend) goes too.
                self.signal_group(Signal::KILL);
                // The JVM exits with 128 + the signal's number after its shutdown hooks ran.
                let clean = status.success() || status.code() == Some(128 + signal.as_raw());
                anyhow::ensure!(clean, "{} exited with {status} when stopped; its log:\n{}", self.what, log_tail(&self.log));
                Ok(())
            }
            Err(_) => {
                self.kill().await?;
                anyhow::bail!("{} did not exit within {STOP_GRACE:?} of {signal:?}: killed", self.what)
            }
        }
    }

    fn signal_group(&self, signal: Signal) {
        if let Some(pid) = Pid::from_raw(self.pid as i32) {
            // ESRCH once the group is empty: nothing left to signal.
            let _ = rustix::process::kill_process_group(pid, signal);
        }
    }
}

impl Drop for Server {
    /// Kills the group and reaps the leader briefly, so the caller can remove the data dir of
    /// a process that no longer writes into it.
    fn drop(&mut self) {
        self.signal_group(Signal::KILL);
        let deadline = Instant::now() + Duration::from_secs(2);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The last lines of a log file, for error messages.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_else(|e| format!("({} unreadable: {e})", log.display()));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Polls `ready` every 50 ms until it answers true, the server exits, or `timeout` passes.
pub async fn wait_ready<F, Fut>(server: &mut Server, timeout: Duration, what: &str, mut ready: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        server.ensure_running()?;
        if ready().await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!("{what} did not become ready within {timeout:?}; the end of its log:\n{}", log_tail(&server.log));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_missing_program_fails_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = tokio::process::Command::new("coffee-sandbox-no-such-server");
        let err = super::Server::spawn(cmd, "coffee-sandbox-no-such-server", &dir.path().join("log")).err().expect("no such binary");
        assert!(err.to_string().contains("coffee-sandbox-no-such-server is not installed"), "{err}");
    }
}

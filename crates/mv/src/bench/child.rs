//! One strategy in a process of its own: the parent re-executes this very
//! binary with the same arguments and a job in [`BENCH_CHILD_ENV`]; the child
//! runs the strategy and prints its result on one marked stdout line.

use super::{BenchArgs, Scratch, Strategy, StrategyResult, eager_run, lazy_run};
use crate::config::{BENCH_CHILD_ENV, SourceArgs};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

const RESULT_PREFIX: &str = "MVBENCH_RESULT ";

#[derive(Debug, Serialize, Deserialize)]
pub struct Job {
    pub strategy: Strategy,
    pub scratch: Scratch,
}

/// The job this process was started for, if it is a bench child.
pub fn job_from_env() -> Result<Option<Job>> {
    match std::env::var(BENCH_CHILD_ENV) {
        Ok(json) => Ok(Some(serde_json::from_str(&json).with_context(|| format!("{BENCH_CHILD_ENV}={json}"))?)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(e) => Err(e).context(BENCH_CHILD_ENV),
    }
}

pub async fn run_strategy(args: &BenchArgs, src: &SourceArgs, s: Strategy) -> Result<StrategyResult> {
    match s {
        Strategy::A => eager_run::run(args, src).await,
        Strategy::B => lazy_run::run(args, src).await,
    }
}

/// The child's side: run, then print the result for the parent.
pub async fn run(args: &BenchArgs, src: &SourceArgs, s: Strategy) -> Result<()> {
    let r = run_strategy(args, src, s).await?;
    println!("{RESULT_PREFIX}{}", serde_json::to_string(&r)?);
    Ok(())
}

/// The parent's side. The child is killed if this future is dropped (the
/// bench was interrupted), so it never outlives the scratch resources.
pub async fn spawn(s: Strategy, scratch: &Scratch) -> Result<StrategyResult> {
    let exe = std::env::current_exe()?;
    tracing::info!(strategy = s.label(), "starting child process");
    let job = serde_json::to_string(&Job { strategy: s, scratch: scratch.clone() })?;
    let out = tokio::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(BENCH_CHILD_ENV, job)
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("{} child failed ({}): {stdout}", s.label(), out.status);
    }
    let line = stdout.lines().find_map(|l| l.strip_prefix(RESULT_PREFIX)).context("child printed no result")?;
    Ok(serde_json::from_str(line)?)
}

//! `coffee-lab bench durability`: how durable v2's acknowledgement is in each Redis
//! persistence mode, and what the durable mode costs.
//!
//! * Kill trials ([`trial`]): per mode (no AOF, `everysec`, `always`) and scenario, a world of
//!   its own ([`world`]: a private Redis, a scratch database, `coffee-rt serve` and `worker`),
//!   v2 orders at a fixed rate from a client that records every acknowledgement ([`poster`]),
//!   SIGKILL of Redis mid-stream, a restart from its data dir, a drain, and the count of
//!   acknowledged orders PostgreSQL lacks.
//! * The cost ([`cost`]): `everysec` against `always`, p99 at a fixed rate, sustained rate and
//!   redis-server's CPU per order, in the same run.
//! * The raw loop ([`raw`]): XADD alone against XADD + WAITAOF and XADD + WAIT to a replica.
//!
//! The results ([`results`]) go to a JSON file, and [`doc`] renders the section of
//! docs/RELIABILITY.md with the recommendation the numbers lead to. The trials run
//! interleaved (trial 1 of every mode, then trial 2...), so that the shared machine's noisy
//! minutes are spread over the modes.

pub mod cost;
pub mod doc;
pub mod plan;
pub mod poster;
pub mod raw;
pub mod results;
pub mod trial;
pub mod world;

use std::path::Path;

use anyhow::Context;

use crate::config::DurabilityArgs;
use crate::machine::Machine;
use plan::Plan;
use results::{DurabilityResults, RunConfig};
use trial::TrialSpec;

/// `coffee-lab bench durability`: progress on stderr, the results written, the summary on
/// stdout.
pub async fn durability_command(args: DurabilityArgs) -> anyhow::Result<()> {
    let results = run(&args, &|line| eprintln!("{line}")).await?;
    write_json(&args.out, &results)?;
    let existing = match std::fs::read_to_string(&args.doc) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", args.doc.display())),
    };
    let section = doc::section(&results);
    write_file(&args.doc, &doc::splice(&existing, &section))?;
    print!("{section}");
    Ok(())
}

/// Runs the whole bench and returns its results (writing nothing).
pub async fn run(args: &DurabilityArgs, progress: &dyn Fn(&str)) -> anyhow::Result<DurabilityResults> {
    let plan = args.plan()?;
    let bin = crate::children::locate(&args.coffee_rt)?;
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let redis_version = redis_version().await?;

    let trials = kill_trials(&plan, &bin, args, progress).await?;
    let summary = results::summarize(&trials);
    let cost = match &plan.cost {
        Some(c) => Some(cost::measure(&bin, &args.database_url, &args.kafka_brokers, c, progress).await?),
        None => None,
    };
    let raw = match &plan.raw {
        Some(r) => Some(raw::measure(r, progress).await?),
        None => None,
    };
    let recommendation = doc::recommend(&summary, cost.as_ref(), raw.as_deref());
    Ok(DurabilityResults {
        command: args.report_command.clone().unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" ")),
        started_at,
        machine: Machine::read(),
        redis_version,
        redis_data_fs: data_fs().await,
        config: RunConfig {
            rate: plan.rate,
            before_kill_s: plan.before_kill.as_secs_f64(),
            after_restart_s: plan.after_restart.as_secs_f64(),
            trials: plan.trials,
        },
        trials,
        summary,
        cost,
        raw,
        recommendation,
    })
}

async fn kill_trials(plan: &Plan, bin: &Path, args: &DurabilityArgs, progress: &dyn Fn(&str)) -> anyhow::Result<Vec<results::Trial>> {
    let mut trials = Vec::new();
    for trial in 1..=plan.trials {
        for &scenario in &plan.scenarios {
            for &mode in &plan.modes {
                let spec = TrialSpec {
                    mode,
                    scenario,
                    trial,
                    rate: plan.rate,
                    before_kill: plan.before_kill,
                    after_restart: plan.after_restart,
                    drain_timeout: plan.drain_timeout,
                };
                let t = trial::run_trial(bin, &args.database_url, &args.kafka_brokers, &spec).await?;
                progress(&format!(
                    "durability: {} {} trial {trial}: {} acknowledged, {} lost (window {:.0} ms), Redis down {:.0} ms",
                    t.mode, t.scenario, t.acked, t.lost, t.loss_window_ms, t.redis_down_ms
                ));
                trials.push(t);
            }
        }
    }
    Ok(trials)
}

/// `redis-server --version`, e.g. `Redis server v=7.0.15 sha=… malloc=jemalloc-5.3.0 bits=64`.
async fn redis_version() -> anyhow::Result<String> {
    let out = tokio::process::Command::new("redis-server").arg("--version").output().await.context("running redis-server --version")?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().trim().to_owned())
}

/// `<fstype> <source>` of the temp dir, where the sandbox keeps Redis's data (`findmnt`).
async fn data_fs() -> String {
    let out = tokio::process::Command::new("findmnt").args(["-n", "-o", "FSTYPE,SOURCE", "-T"]).arg(std::env::temp_dir()).output().await;
    out.ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .map(|fs| format!("{fs} ({})", std::env::temp_dir().display()))
        .unwrap_or_else(|| "an unknown filesystem".to_owned())
}

fn write_json(path: &Path, results: &DurabilityResults) -> anyhow::Result<()> {
    write_file(path, &(serde_json::to_string_pretty(results)? + "\n"))
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

//! `coffee-lab bench repair`: how long after Redis loses everything the metrics are right
//! again, with orders coming on all three paths.
//!
//! The projection repairs itself (`coffee_pipeline::repair`: each v2 worker and v3 processor
//! checks once a second whether Redis lost its fences and rebuilds the version from one
//! PostgreSQL snapshot; v1's aggregator recomputes everything when its fence is missing). This
//! measures it, per offered rate and per way of losing Redis ([`crate::config::RedisLoss`]):
//!
//! * [`world`]: a private Redis without AOF, a scratch database and topic, `coffee-rt up`.
//! * [`load`]: a third of the rate on each path, open loop, every order's answer recorded.
//! * [`trial`]: the warm-up, the loss, the recovery watch ([`recovery`]), more load, the drain
//!   and the checks ([`verify`]: drift against the lab's own SQL, lost acknowledgements).
//! * [`results`] is what goes to docs/repair-results.json; [`doc`] renders the table and the
//!   section of docs/RELIABILITY.md.
//!
//! The command fails, after writing its results, when a trial drifted or lost an
//! acknowledged order beyond what a Redis without AOF may lose: those are findings, not
//! figures. A path not recovered within the cap is a figure ("not recovered").

pub mod doc;
pub mod load;
pub mod recovery;
pub mod results;
pub mod trial;
pub mod verify;
pub mod world;

use std::path::Path;

use anyhow::Context;

use crate::config::RepairArgs;
use crate::machine::Machine;
use results::{RepairResults, RunConfig};
use trial::TrialSpec;

/// `coffee-lab bench repair`: progress on stderr, the results written, the section on stdout.
pub async fn repair_command(args: RepairArgs) -> anyhow::Result<()> {
    let results = run(&args, &|line| eprintln!("{line}")).await?;
    write_file(&args.out, &(serde_json::to_string_pretty(&results)? + "\n"))?;
    print!("{}", doc::section(&results));
    let findings: Vec<String> = results
        .trials
        .iter()
        .filter(|t| t.drift > 0 || t.lost() > 0)
        .map(|t| {
            format!("{}/s {}: {} values drifted, {} acknowledged orders lost", t.offered_rate, doc::fault_name(t.fault), t.drift, t.lost())
        })
        .collect();
    anyhow::ensure!(findings.is_empty(), "the repair left Redis wrong or lost orders: {}", findings.join("; "));
    Ok(())
}

/// Runs every trial (rates outer, faults inner) and returns the results (writing nothing).
pub async fn run(args: &RepairArgs, progress: &dyn Fn(&str)) -> anyhow::Result<RepairResults> {
    anyhow::ensure!(!args.rates.is_empty() && args.rates.iter().all(|r| *r > 0.0 && r.is_finite()), "--rates must be > 0");
    anyhow::ensure!(!args.faults.is_empty(), "--fault needs at least one of kill, flushall");
    anyhow::ensure!(args.recovery_cap >= args.poll && !args.poll.is_zero(), "--poll must be > 0 and at most --recovery-cap");
    let bin = crate::children::locate(&args.coffee_rt)?;
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let redis_version = redis_version().await?;
    let mut trials = Vec::new();
    for &rate in &args.rates {
        for &fault in &args.faults {
            let spec = TrialSpec {
                rate,
                fault,
                warmup: args.warmup,
                after: args.after,
                down: args.down,
                poll: args.poll,
                recovery_cap: args.recovery_cap,
                drain_timeout: args.drain_timeout,
                aggregate_every: args.aggregate_every,
                connections: args.connections,
            };
            trials.push(trial::run_trial(&bin, &args.database_url, &args.kafka_brokers, &spec, progress).await?);
        }
    }
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    Ok(RepairResults {
        command: args.report_command.clone().unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" ")),
        started_at,
        machine: Machine::read(),
        redis_version,
        config: RunConfig {
            warmup_s: args.warmup.as_secs_f64(),
            after_s: args.after.as_secs_f64(),
            down_s: args.down.as_secs_f64(),
            poll_ms: ms(args.poll),
            recovery_cap_s: args.recovery_cap.as_secs_f64(),
            aggregate_every_ms: ms(args.aggregate_every),
            connections_per_path: args.connections,
            boundary_grace_s: verify::BOUNDARY_GRACE.as_secs_f64(),
        },
        trials,
    })
}

/// `redis-server --version`'s first line.
async fn redis_version() -> anyhow::Result<String> {
    let out = tokio::process::Command::new("redis-server").arg("--version").output().await.context("running redis-server --version")?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().trim().to_owned())
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

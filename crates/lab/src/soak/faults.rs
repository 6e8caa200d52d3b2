//! Injecting one planned fault into the cluster, and recording what happened.
//!
//! A server's restart is a clean stop (SIGTERM: Redis fsyncs its AOF, PostgreSQL checkpoints,
//! the broker shuts down in order) and a start on the same port and data. A stop that overruns
//! the sandbox's grace period ends in a kill; that is noted on the fault, and the start follows
//! all the same. A start that keeps failing ends the soak: nothing after it would mean much.

use std::time::Duration;

use anyhow::Context;
use tokio::time::Instant;

use super::cluster::Cluster;
use super::plan::{FaultKind, PlannedFault};
use super::results::FaultRecord;

/// Starts tried before a server that will not come back ends the soak.
const START_ATTEMPTS: u32 = 3;

/// `start` (an expression giving a fresh start future each time), tried up to
/// [`START_ATTEMPTS`] times 2 s apart. A macro, as a closure cannot lend out the `&mut` server
/// to the future it returns.
macro_rules! retry_start {
    ($what:expr, $start:expr) => {{
        let mut attempt = 0;
        loop {
            attempt += 1;
            match $start.await {
                Ok(()) => break Ok(()),
                Err(e) if attempt < START_ATTEMPTS => {
                    tracing::warn!(error = %format!("{e:#}"), "the private {} did not start again; retrying", $what);
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Err(e) => break Err(e).with_context(|| format!("starting the private {} again ({attempt} attempts)", $what)),
            }
        }
    }};
}
pub async fn inject(cluster: &mut Cluster, f: &PlannedFault, at_s: f64) -> anyhow::Result<FaultRecord> {
    let started = Instant::now();
    let mut record = FaultRecord::planned(at_s, f.kind, "");
    match f.kind {
        FaultKind::KillWorker | FaultKind::KillProcessor => {
            let role = if f.kind == FaultKind::KillWorker { "worker" } else { "processor" };
            let i = cluster.index_of(role, f.instance).with_context(|| format!("no {role} {}", f.instance))?;
            record.target = cluster.roles[i].name.clone();
            if cluster.roles[i].pid().is_none() {
                // It exited by itself a moment ago and has not been started again yet.
                cluster.start_role(i)?;
                record.note = Some("it was down (an unexpected exit): started first, then killed".into());
            }
            record.pid = Some(cluster.kill_role(i).await?);
            tokio::time::sleep(f.pause).await;
            record.pause_s = f.pause.as_secs_f64();
            cluster.start_role(i)?;
        }
        FaultKind::RestartRedis => {
            record.target = "redis".into();
            record.pid = cluster.redis.pid();
            record.note = cluster.redis.stop().await.err().map(|e| format!("stop: {e:#}"));
            retry_start!("redis", cluster.redis.start_again())?;
        }
        FaultKind::RestartPostgres => {
            record.target = "postgres".into();
            record.pid = cluster.postgres.pid();
            record.note = cluster.postgres.stop().await.err().map(|e| format!("stop: {e:#}"));
            retry_start!("postgres", cluster.postgres.start_again())?;
        }
        FaultKind::RestartBroker => {
            record.target = "kafka".into();
            record.pid = cluster.kafka.pid();
            record.note = cluster.kafka.stop().await.err().map(|e| format!("stop: {e:#}"));
            retry_start!("kafka", cluster.kafka.start_again())?;
        }
    }
    record.down_s = round(started.elapsed().as_secs_f64());
    Ok(record)
}

fn round(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

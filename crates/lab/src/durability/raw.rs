//! The raw Redis loop: what the v2 producer's XADD costs by itself in each mode, and what
//! production could add to it, straight against private servers with no coffee-rt between:
//! `WAITAOF 1 0` (the reply waits for the local fsync, `always`'s guarantee on an `everysec`
//! server, Redis 7.2+) and `WAIT 1` to a replica (the entry is in a second machine's memory).
//! Each client sends one XADD (and its WAIT*, pipelined behind it) at a time, closed loop.

use std::time::Duration;

use anyhow::Context;
use coffee_sandbox::{Persistence, RedisServer};
use redis::aio::MultiplexedConnection;
use tokio::time::Instant;

use super::plan::RawPlan;
use super::results::RawLoop;
use crate::results::load::{LatencyMs, new_histogram};

/// How long the replica may take to report its link up.
const REPLICA_WITHIN: Duration = Duration::from_secs(30);
/// WAIT's and WAITAOF's timeout: a reply that took longer went out unconfirmed.
const WAIT_TIMEOUT_MS: u64 = 1000;

/// What one loop sends after its XADD, in the same round trip.
#[derive(Debug, Clone, Copy)]
enum Then {
    Nothing,
    WaitAof,
    WaitReplica,
}

pub async fn measure(plan: &RawPlan, progress: &dyn Fn(&str)) -> anyhow::Result<Vec<RawLoop>> {
    let (everysec, always, replica) = tokio::try_join!(
        RedisServer::start(Persistence::AofEverySec),
        RedisServer::start(Persistence::AofAlways),
        RedisServer::start(Persistence::AofEverySec),
    )?;
    let replicated = attach_replica(&everysec, &replica).await;
    let mut loops = Vec::new();
    for (name, server, then) in [
        ("XADD (everysec)", &everysec, Then::Nothing),
        ("XADD (always)", &always, Then::Nothing),
        ("XADD + WAITAOF 1 0 (everysec)", &everysec, Then::WaitAof),
        ("XADD + WAIT 1 (everysec, one replica)", &everysec, Then::WaitReplica),
    ] {
        progress(&format!("durability: raw loop {name}"));
        if let (Then::WaitReplica, Err(e)) = (then, &replicated) {
            loops.push(unsupported(name, plan.clients, format!("the replica did not attach: {e:#}")));
            continue;
        }
        loops.push(run_loop(name, &server.url(), then, plan).await?);
    }
    Ok(loops)
}

/// `REPLICAOF` the primary, then waits for `master_link_status:up`.
async fn attach_replica(primary: &RedisServer, replica: &RedisServer) -> anyhow::Result<()> {
    let mut conn = connect(&replica.url()).await?;
    let () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(primary.port()).query_async(&mut conn).await?;
    let deadline = Instant::now() + REPLICA_WITHIN;
    loop {
        let info: String = redis::cmd("INFO").arg("replication").query_async(&mut conn).await?;
        if info.lines().any(|l| l.trim() == "master_link_status:up") {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "no master link within {REPLICA_WITHIN:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn connect(url: &str) -> anyhow::Result<MultiplexedConnection> {
    redis::Client::open(url)?.get_multiplexed_async_connection().await.with_context(|| format!("connecting to {url}"))
}

fn unsupported(name: &str, clients: usize, error: String) -> RawLoop {
    RawLoop {
        name: name.to_owned(),
        supported: false,
        error: Some(error),
        clients,
        ops: 0,
        ops_per_s: 0.0,
        latency_ms: LatencyMs::default(),
        unconfirmed: None,
    }
}

async fn run_loop(name: &str, url: &str, then: Then, plan: &RawPlan) -> anyhow::Result<RawLoop> {
    // One probe first: a command this Redis lacks is a finding, not a failed run.
    let mut probe = connect(url).await?;
    if let Err(e) = op(&mut probe, then).await {
        let msg = e.to_string();
        let Some(at) = msg.find("unknown command") else { anyhow::bail!("{name}: {msg}") };
        // "unknown command 'WAITAOF', with args beginning with: ..." → its first clause.
        let short = msg[at..].split(',').next().unwrap_or(&msg[at..]).to_owned();
        return Ok(unsupported(name, plan.clients, short));
    }
    let end = Instant::now() + plan.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..plan.clients {
        let mut conn = connect(url).await?;
        tasks.spawn(async move {
            let (mut hist, mut unconfirmed) = (new_histogram(), 0u64);
            while Instant::now() < end {
                let at = Instant::now();
                let acked = op(&mut conn, then).await?;
                hist.record(at.elapsed().as_micros().max(1) as u64).expect("within the histogram's bounds");
                unconfirmed += u64::from(!matches!(then, Then::Nothing) && acked == 0);
            }
            anyhow::Ok((hist, unconfirmed))
        });
    }
    let started = Instant::now();
    let (mut all, mut unconfirmed) = (new_histogram(), 0);
    while let Some(done) = tasks.join_next().await {
        let (h, u) = done??;
        all.add(&h).expect("same bounds");
        unconfirmed += u;
    }
    let elapsed = started.elapsed().as_secs_f64().max(f64::MIN_POSITIVE);
    Ok(RawLoop {
        name: name.to_owned(),
        supported: true,
        error: None,
        clients: plan.clients,
        ops: all.len(),
        ops_per_s: all.len() as f64 / elapsed,
        latency_ms: LatencyMs::from_micros(&all),
        unconfirmed: (!matches!(then, Then::Nothing)).then_some(unconfirmed),
    })
}

/// One XADD and what follows it: how many confirmed it (WAIT: replicas; WAITAOF: the local
/// fsync, 1 or 0); 1 when nothing was asked.
async fn op(conn: &mut MultiplexedConnection, then: Then) -> redis::RedisResult<i64> {
    let mut pipe = redis::pipe();
    pipe.cmd("XADD").arg("raw:stream").arg("MAXLEN").arg("~").arg(100_000).arg("*").arg("order").arg(ORDER).ignore();
    match then {
        Then::Nothing => {
            let () = pipe.query_async(conn).await?;
            Ok(1)
        }
        Then::WaitAof => {
            pipe.cmd("WAITAOF").arg(1).arg(0).arg(WAIT_TIMEOUT_MS);
            let (local_and_replicas,): (Vec<i64>,) = pipe.query_async(conn).await?;
            Ok(local_and_replicas.first().copied().unwrap_or(0))
        }
        Then::WaitReplica => {
            pipe.cmd("WAIT").arg(1).arg(WAIT_TIMEOUT_MS);
            let (replicas,): (i64,) = pipe.query_async(conn).await?;
            Ok(replicas)
        }
    }
}

/// A v2 stream entry's size: one order record as the producer writes it.
const ORDER: &str = r#"{"order_id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","drink":"latte","store":"downtown","price_cents":525,"ordered_at":"2025-01-01T08:00:00.000Z","accepted_at":"2025-01-01T08:00:00.001Z"}"#;

//! One trial: load on all three paths, Redis loses everything, the time until each path's
//! metrics count everything committed before Redis returned ([`recovery`]), more load, then
//! the drain, the drift check and the count of lost acknowledgements ([`verify`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use tokio::time::Instant;

use super::doc::fault_name;
use super::load::{Answer, LoadOutcome, RunningLoad};
use super::recovery::{self, postgres_counts, redis_totals};
use super::results::{PathResult, Rebuilds, Trial, load_average, round3};
use super::verify::{self, BOUNDARY_GRACE};
use super::world::{NAMESPACE, World};
use crate::ApiVersion;
use crate::config::RedisLoss;
use crate::load::client::HttpClient;
use crate::results::load::{LatencyMs, new_histogram};

/// A request unanswered this long after its intended time is a timeout (the load engine's
/// default).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How many differing values the results keep as examples.
const DRIFT_EXAMPLES: usize = 10;

/// Which trial, and its phases.
#[derive(Debug, Clone)]
pub struct TrialSpec {
    pub rate: f64,
    pub fault: RedisLoss,
    pub warmup: Duration,
    pub after: Duration,
    pub down: Duration,
    pub poll: Duration,
    pub recovery_cap: Duration,
    pub drain_timeout: Duration,
    pub aggregate_every: Duration,
    pub connections: usize,
}

/// Runs one trial in a world of its own, removed after whatever happened.
pub async fn run_trial(bin: &Path, database_url: &str, brokers: &str, spec: &TrialSpec, progress: &dyn Fn(&str)) -> anyhow::Result<Trial> {
    let load_average = load_average();
    let mut world = World::start(bin, database_url, brokers, spec.aggregate_every).await?;
    let result = measure(&mut world, spec, load_average, progress).await;
    world.remove(result.is_err()).await;
    result.with_context(|| format!("the {} trial at {}/s", fault_name(spec.fault), spec.rate))
}

async fn measure(world: &mut World, spec: &TrialSpec, load_average: [f64; 3], progress: &dyn Fn(&str)) -> anyhow::Result<Trial> {
    let what = format!("repair: {}/s {}", spec.rate, fault_name(spec.fault));
    let (client, connection) =
        tokio_postgres::connect(&world.database_url(), tokio_postgres::NoTls).await.context("connecting to the scratch database")?;
    let connection = tokio::spawn(connection);
    let load = RunningLoad::start(&world.url, spec.rate, spec.connections, REQUEST_TIMEOUT).await?;
    tokio::time::sleep(spec.warmup).await;
    world.ensure_running()?;

    // The loss must meet a live projection on every path, or it measures nothing.
    let before_redis = redis_totals(&mut redis_connection(&world.redis.url()).await?, NAMESPACE).await?;
    let before_pg = postgres_counts(&client).await?;
    for v in ApiVersion::ALL {
        anyhow::ensure!(
            before_redis[&v] > 0 && before_pg[&v] > 0,
            "after the warm-up {v} has {} orders in PostgreSQL and {} in Redis: the loss would meet nothing",
            before_pg[&v],
            before_redis[&v]
        );
    }
    let loss_began = Instant::now();
    let (t0, redis_down_ms) = inflict(world, spec).await?;
    let targets = postgres_counts(&client).await?;
    progress(&format!("{what}: Redis lost everything; PostgreSQL held {targets:?} at t0"));
    let watch = tokio::spawn(recovery::watch(world.redis.url(), NAMESPACE, targets.clone(), t0, spec.poll, spec.recovery_cap));
    tokio::time::sleep_until(t0 + spec.after).await;
    // The load goes on while a path has not recovered yet (the watch ends at the cap).
    let recovery = watch.await.context("the recovery watch panicked")?;
    progress(&format!("{what}: recovered after {:?} s", recovery.seconds()));
    let outcome = load.finish().await?;
    world.ensure_running()?;

    let boundary = t0 + BOUNDARY_GRACE;
    let answers: Vec<Answer> = outcome.paths.iter().flat_map(|p| p.answers.iter().cloned()).collect();
    let mut redis = redis_connection(&world.redis.url()).await?;
    let (drained, stored) = verify::drain(&client, &mut redis, NAMESPACE, &answers, boundary, spec.drain_timeout).await?;
    let drift = verify::drift(&client, &mut redis, NAMESPACE).await?;
    let losses = verify::losses(&answers, &stored, boundary);
    let rebuilds = rebuilds(&world.url).await;
    world.ensure_running()?;
    connection.abort();
    progress(&format!("{what}: drain {} in {} s, {} values drifted, losses {losses:?}", drained.outcome, drained.seconds, drift.len()));

    let mut paths = path_results(&outcome);
    for (v, p) in paths.iter_mut() {
        p.losses = losses[v].clone();
        p.postgres_rows = drained.postgres.get(v).copied().unwrap_or(0);
    }
    let mut all = new_histogram();
    for p in &outcome.paths {
        all.add(&p.latency).expect("same bounds");
    }
    let (mut before, mut after) = (new_histogram(), new_histogram());
    for a in answers.iter().filter(|a| a.acked()) {
        let h = if a.answered < loss_began { &mut before } else { &mut after };
        h.saturating_record(a.took_us);
    }
    Ok(Trial {
        offered_rate: spec.rate,
        achieved_rate: round3(paths.values().map(|p| p.achieved_rate).sum()),
        fault: spec.fault,
        load_average,
        redis_down_ms,
        counts_at_t0: targets,
        recovery_s: recovery.seconds(),
        first_reading_s: recovery.first.as_ref().map(|(at, _)| round3(at.as_secs_f64())),
        redis_totals_first: recovery.first.as_ref().map(|(_, t)| t.clone()).unwrap_or_default(),
        redis_totals_last: recovery.last.clone(),
        rebuilds,
        drain: drained,
        drift: drift.len(),
        drift_examples: drift.into_iter().take(DRIFT_EXAMPLES).collect(),
        paths,
        latency_ms: LatencyMs::from_micros(&all),
        latency_before_loss_ms: LatencyMs::from_micros(&before),
        latency_after_loss_ms: LatencyMs::from_micros(&after),
    })
}

/// Makes the private Redis lose everything; returns t0 (when it answers again, empty) and,
/// for a kill, how long it was down.
async fn inflict(world: &mut World, spec: &TrialSpec) -> anyhow::Result<(Instant, Option<f64>)> {
    anyhow::ensure!(world.redis.port() != 6379, "faults only ever on a private Redis");
    match spec.fault {
        RedisLoss::Kill => {
            let killed = Instant::now();
            world.redis.kill().await.context("SIGKILL of the private Redis")?;
            tokio::time::sleep(spec.down).await;
            world.redis.start_empty().await.context("starting the private Redis again, empty")?;
            let t0 = Instant::now();
            Ok((t0, Some(round3((t0 - killed).as_secs_f64() * 1000.0))))
        }
        RedisLoss::Flushall => {
            let mut conn = redis_connection(&world.redis.url()).await?;
            let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.context("FLUSHALL on the private Redis")?;
            Ok((Instant::now(), None))
        }
    }
}

async fn redis_connection(url: &str) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(url)?;
    client.get_multiplexed_async_connection().await.with_context(|| format!("connecting to the private Redis at {url}"))
}

/// Each path's load figures (losses and rows are filled in by the caller).
fn path_results(outcome: &LoadOutcome) -> BTreeMap<ApiVersion, PathResult> {
    let span = (outcome.stopped - outcome.started).as_secs_f64().max(f64::MIN_POSITIVE);
    outcome
        .paths
        .iter()
        .map(|p| {
            let acked = p.answers.iter().filter(|a| a.acked()).count();
            let result = PathResult {
                offered_rate: round3(p.rate),
                requests: p.answers.len() as u64,
                achieved_rate: round3(acked as f64 / span),
                latency_ms: LatencyMs::from_micros(&p.latency),
                late_sends: p.late,
                errors: p.errors(),
                losses: Default::default(),
                postgres_rows: 0,
            };
            (p.version, result)
        })
        .collect()
}

/// `up`'s rebuild counters from its `/metrics`; empty when they cannot be read.
async fn rebuilds(base_url: &str) -> BTreeMap<ApiVersion, Rebuilds> {
    let Ok(uri) = format!("{base_url}/metrics").parse::<http::Uri>() else { return BTreeMap::new() };
    let Ok(text) = HttpClient::new().get_text(uri).await else { return BTreeMap::new() };
    let samples = crate::prom::parse(&text);
    let mut out = BTreeMap::new();
    for v in ApiVersion::ALL {
        let filter = [("version", v.as_str())];
        if let Some(count) = crate::prom::gauge(&samples, "coffee_rt_projection_rebuilds_total", &filter) {
            let seconds_sum = crate::prom::gauge(&samples, "coffee_rt_projection_rebuild_seconds_sum", &filter).unwrap_or(0.0);
            out.insert(v, Rebuilds { count, seconds_sum: round3(seconds_sum) });
        }
    }
    out
}

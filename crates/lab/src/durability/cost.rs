//! What `appendfsync always` costs against `everysec`, in the same run: both worlds are up at
//! once and the fixed-rate runs alternate between them (everysec, always, always, everysec),
//! so that the shared machine's noisy minutes fall on both. Each mode is then stepped up a
//! rate ladder to its sustained rate, and run closed loop for its throughput. The load is the lab's open-loop engine ([`engine`]),
//! as the sweep's; redis-server's CPU comes from /proc ([`procs`]).

use std::path::Path;
use std::time::Duration;

use super::plan::{COST_MODES, CostPlan, mode_name, persistence};
use tokio::time::Instant;

use super::results::{ClosedLoop, Cost, FixedRun, LadderStep, ModeCost, median};
use super::world::World;
use crate::load::client::HttpClient;
use crate::load::engine::{self, LoadPlan, RunOutcome};
use crate::order::{self, OrderMix};
use crate::procs;
use crate::results::load::{ConnectionModel, LatencyMs};

/// Connections of the generator's pool (the sweep's default is 64; a tenth of the
/// sustained rates' in-flight requests at a few ms each).
const CONNECTIONS: usize = 32;
/// Offered before each run and left out of its latency.
const WARMUP: Duration = Duration::from_secs(1);
/// The worker catches up between runs, so no run inherits the previous one's backlog.
const PAUSE: Duration = Duration::from_secs(1);
/// A ladder step that achieves less than this share of its offered rate did not hold it.
const HELD_SHARE: f64 = 0.95;
/// Clients of the closed-loop throughput run (the soak's probe uses 48 against three paths).
const CLOSED_LOOP_CLIENTS: usize = 32;

pub async fn measure(bin: &Path, database_url: &str, brokers: &str, plan: &CostPlan, progress: &dyn Fn(&str)) -> anyhow::Result<Cost> {
    let mut worlds = Vec::new();
    for mode in COST_MODES {
        match World::start(bin, database_url, brokers, persistence(mode), true).await {
            Ok(w) => worlds.push(w),
            Err(e) => {
                for w in worlds {
                    w.remove(true).await;
                }
                return Err(e);
            }
        }
    }
    let result = measure_in(&mut worlds, plan, progress).await;
    for w in worlds {
        w.remove(result.is_err()).await;
    }
    result
}

async fn measure_in(worlds: &mut [World], plan: &CostPlan, progress: &dyn Fn(&str)) -> anyhow::Result<Cost> {
    let mut runs: Vec<Vec<FixedRun>> = vec![Vec::new(); worlds.len()];
    for round in 0..plan.rounds {
        let order: Vec<usize> = if round % 2 == 0 { (0..worlds.len()).collect() } else { (0..worlds.len()).rev().collect() };
        for i in order {
            progress(&format!("durability: cost, {} at {}/s, run {}", mode_name(COST_MODES[i]), plan.rate, round + 1));
            runs[i].push(fixed_run(&mut worlds[i], plan).await?);
        }
    }
    let mut modes = Vec::new();
    for (i, world) in worlds.iter_mut().enumerate() {
        let mode = mode_name(COST_MODES[i]);
        progress(&format!("durability: cost, {mode}'s sustained rate"));
        let ladder = ladder(world, plan).await?;
        progress(&format!("durability: cost, {mode}'s closed-loop throughput"));
        let closed_loop = closed_loop(world, plan.duration).await?;
        let sustained_rate = ladder.iter().filter(|s| s.held).map(|s| s.offered).fold(0.0, f64::max);
        let runs = std::mem::take(&mut runs[i]);
        modes.push(ModeCost {
            mode,
            p99_ms_median: median(&runs.iter().map(|r| r.latency_ms.p99).collect::<Vec<_>>()),
            redis_cpu_us_per_order_median: median(&runs.iter().map(|r| r.redis_cpu_us_per_order).collect::<Vec<_>>()),
            runs,
            ladder,
            sustained_rate,
            closed_loop,
        });
    }
    let ratio = |f: fn(&ModeCost) -> f64| f(&modes[1]) / f(&modes[0]);
    Ok(Cost {
        rate: plan.rate,
        duration_s: plan.duration.as_secs_f64(),
        slo_p99_ms: plan.slo_p99.as_secs_f64() * 1000.0,
        p99_ratio: ratio(|m| m.p99_ms_median),
        sustained_ratio: ratio(|m| m.sustained_rate),
        closed_loop_ratio: ratio(|m| m.closed_loop.orders_per_s),
        redis_cpu_ratio: ratio(|m| m.redis_cpu_us_per_order_median),
        modes,
    })
}

/// One run at the plan's fixed rate, with redis-server's CPU over it.
async fn fixed_run(world: &mut World, plan: &CostPlan) -> anyhow::Result<FixedRun> {
    let pid = world.redis.pid().expect("the cost's Redis is running");
    let cpu = || procs::cpu_times(pid).map(|c| c.cpu_s);
    let before = cpu();
    let outcome = load(world, plan.rate, plan.duration).await?;
    let after = cpu();
    let answered = (outcome.ok + outcome.warm_ok).max(1) as f64;
    let redis_cpu_us_per_order = match (before, after) {
        (Some(b), Some(a)) => (a - b) * 1e6 / answered,
        _ => anyhow::bail!("redis-server {pid} vanished during the run"),
    };
    Ok(FixedRun {
        latency_ms: LatencyMs::from_micros(&outcome.latency),
        achieved_rate: outcome.achieved_rate(),
        errors: outcome.error_count(),
        redis_cpu_us_per_order,
    })
}

/// Steps up the plan's ladder until a step breaks twice in a row (every attempt is kept): on
/// a machine shared with other work, one stall of a few ms in a 4 s step is enough to push
/// its p99 over the bound, and a rate is only called unsustainable when it fails again.
async fn ladder(world: &mut World, plan: &CostPlan) -> anyhow::Result<Vec<LadderStep>> {
    let mut steps = Vec::new();
    for &rate in &plan.ladder {
        let mut held = false;
        for _attempt in 0..2 {
            let outcome = load(world, rate, plan.step).await?;
            let p99_ms = LatencyMs::from_micros(&outcome.latency).p99;
            let (achieved, errors) = (outcome.achieved_rate(), outcome.error_count());
            held = errors == 0 && p99_ms <= plan.slo_p99.as_secs_f64() * 1000.0 && achieved >= HELD_SHARE * rate;
            steps.push(LadderStep { offered: rate, achieved, p99_ms, errors, held });
            if held {
                break;
            }
        }
        if !held {
            break;
        }
    }
    Ok(steps)
}

/// Closed loop: [`CLOSED_LOOP_CLIENTS`] clients, each posting its next order as soon as the
/// last was answered, for `duration` after a warm-up. Orders acknowledged per second: the
/// throughput this machine gave, robust to the stalls that decide a p99 on a shared machine.
async fn closed_loop(world: &mut World, duration: Duration) -> anyhow::Result<ClosedLoop> {
    let url: http::Uri = format!("{}/api/v2/order", world.url).parse()?;
    let client = HttpClient::new();
    let (mix, warm_end) = (OrderMix::default(), Instant::now() + WARMUP);
    let end = warm_end + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CLOSED_LOOP_CLIENTS {
        let (client, url, mix) = (client.clone(), url.clone(), mix.clone());
        tasks.spawn(async move {
            let (mut rng, mut ok, mut errors) = (order::rng(), 0u64, 0u64);
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let outcome = client.post_json(url.clone(), mix.next_body(&mut rng)).await;
                if now >= warm_end {
                    if outcome.is_success() { ok += 1 } else { errors += 1 }
                }
            }
            (ok, errors)
        });
    }
    let (mut ok, mut errors) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (o, e) = done?;
        (ok, errors) = (ok + o, errors + e);
    }
    world.ensure_running()?;
    tokio::time::sleep(PAUSE).await;
    Ok(ClosedLoop { clients: CLOSED_LOOP_CLIENTS, orders_per_s: ok as f64 / duration.as_secs_f64(), errors })
}

async fn load(world: &mut World, rate: f64, duration: Duration) -> anyhow::Result<RunOutcome> {
    let plan = LoadPlan {
        target: format!("{}/api/v2/order", world.url).parse()?,
        rate,
        duration,
        model: ConnectionModel::Pooled(CONNECTIONS),
        timeout: Duration::from_secs(10),
        warmup: WARMUP,
    };
    let outcome = engine::run(&plan, engine::live_for(&plan)).await?;
    world.ensure_running()?;
    tokio::time::sleep(PAUSE).await;
    Ok(outcome)
}

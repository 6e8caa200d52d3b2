//! `coffee-lab soak`: hours of abuse compressed, then a strict audit.
//!
//! On servers of its own ([`cluster`]: a private PostgreSQL, Redis with AOF and Kafka broker,
//! and the real `coffee-rt` roles pointed at them), the soak offers a fraction of the measured
//! capacity to all three paths ([`load`]), every order retried with its same body until it is
//! acknowledged and recorded ([`ledger`]). Meanwhile it kills a v2 worker or a v3 processor and
//! restarts Redis, PostgreSQL or the broker at seeded random times ([`plan`], [`faults`]), and
//! samples every process's RSS and CPU once a second ([`sampler`]). At the end it stops the
//! load, lets the pipeline drain ([`drain`]) and audits ([`audit`]): PostgreSQL must hold
//! exactly the acknowledged orders, and Redis must equal a recomputation from PostgreSQL. The
//! results ([`results`]) and the RSS plot ([`plot`]) are written, and the command fails when
//! anything was lost, duplicated or drifted.

pub mod audit;
pub mod cluster;
pub mod drain;
pub mod faults;
pub mod ledger;
pub mod load;
pub mod plan;
pub mod plot;
pub mod results;
pub mod sampler;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use coffee_sandbox::Persistence;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::ApiVersion;
use crate::config::{RedisAof, SoakArgs};
use cluster::{Cluster, Shape};
use ledger::Ledger;
use load::Load;
use plan::FaultPlan;
use results::{AuditReport, FaultRecord, LoadReport, RssReport, SoakResults, UnexpectedExit};
use sampler::Sampler;

/// The closed-loop probe: this long, this many senders at once.
const PROBE: Duration = Duration::from_secs(10);
const PROBE_CONCURRENCY: usize = 48;
/// Longest wait after the load for the orders still retrying to be answered.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Points per series kept in the results file.
const MAX_POINTS: usize = 600;
/// How often a progress line is printed during the load.
const PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// `coffee-lab soak`: progress on stderr, the results and plot written, a verdict on stdout;
/// an error when the audit did not pass.
pub async fn soak_command(args: SoakArgs) -> anyhow::Result<()> {
    let results = run_soak(&args, &|line| eprintln!("{line}")).await?;
    write(&args, &results)?;
    println!("{}", verdict(&results));
    anyhow::ensure!(results.passed, "the soak's audit failed: {}", results.problems.join("; "));
    Ok(())
}

/// The one-paragraph verdict.
pub fn verdict(r: &SoakResults) -> String {
    let faults: Vec<String> = r.faults_by_kind.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let acked: Vec<String> = r.audit.orders.iter().map(|(v, c)| format!("{v} {}", c.acknowledged)).collect();
    let drift: usize = r.audit.drift.len();
    let extra: u64 = r.audit.orders.values().map(|c| c.extra + c.mismatched).sum();
    format!(
        "soak {}: {:.0} s at {:.0} orders/s, {} faults ({}), {} unexpected exits; acknowledged {}; lost {}, duplicated {}, extra or mismatched {}, drifted values {drift}; unresolved {}",
        if r.passed { "PASSED" } else { "FAILED" },
        r.duration_s,
        r.load.offered_per_s,
        r.faults.len(),
        faults.join(", "),
        r.unexpected_exits.len(),
        acked.join(", "),
        r.audit.lost(),
        r.audit.duplicated,
        extra,
        r.load.unresolved,
    )
}

fn write(args: &SoakArgs, results: &SoakResults) -> anyhow::Result<()> {
    for p in [&args.out, &args.plot] {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    let value = serde_json::to_value(results)?;
    std::fs::write(&args.out, results::to_json(&value)).with_context(|| format!("writing {}", args.out.display()))?;
    Ok(())
}

pub async fn run_soak(args: &SoakArgs, progress: &dyn Fn(&str)) -> anyhow::Result<SoakResults> {
    anyhow::ensure!(args.fraction > 0.0 && args.fraction <= 1.0, "--fraction must be in (0, 1]");
    anyhow::ensure!(args.rate.is_none_or(|r| r > 0.0), "--rate must be positive");
    anyhow::ensure!(args.fault_min_gap <= args.fault_max_gap, "--fault-min-gap is longer than --fault-max-gap");
    let bin = crate::children::locate(&args.coffee_rt)?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let logs = std::env::temp_dir().join(format!("coffee-lab-soak-{}", crate::scratch::suffix()));
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let persistence = match args.redis_aof {
        RedisAof::Always => Persistence::AofAlways,
        RedisAof::Everysec => Persistence::AofEverySec,
        RedisAof::None => Persistence::None,
    };
    let shape = Shape { servers: args.servers.into(), workers: args.workers.into(), processors: args.processors.into(), persistence };
    let mut cluster = Cluster::start(bin, logs.clone(), &shape, progress).await?;
    let outcome = drive(args, &mut cluster, seed, progress).await;
    let graceful = cluster.stop_roles().await;
    let (mut results, full_series) = outcome?;
    results.graceful_exit = graceful;
    results.processes = cluster.roles.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.name.rsplit_once('-').map_or(r.name.as_str(), |(role, _)| role).to_string()).or_default() += 1;
        m
    });
    results.redis_persistence = match args.redis_aof {
        RedisAof::Always => "appendfsync always",
        RedisAof::Everysec => "appendfsync everysec",
        RedisAof::None => "no AOF",
    }
    .to_string();
    plot::rss_over_time(&full_series, &results.faults, results.load.seconds, &plot_title(&results), &args.plot)?;
    if results.passed {
        let _ = std::fs::remove_dir_all(&logs);
    } else {
        progress(&format!("soak: the roles' logs are kept in {}", logs.display()));
    }
    Ok(results)
}

fn plot_title(r: &SoakResults) -> String {
    format!("coffee-lab soak: RSS over {:.0} s, {} faults (seed {})", r.duration_s, r.faults.len(), r.seed)
}

/// Probe, load with faults, settle, drain, audit: the results, and the RSS series at full
/// resolution for the plot (the results keep a downsampled copy).
async fn drive(
    args: &SoakArgs,
    cluster: &mut Cluster,
    seed: u64,
    progress: &dyn Fn(&str),
) -> anyhow::Result<(SoakResults, BTreeMap<String, sampler::Series>)> {
    let ledger = Arc::new(Ledger::default());
    let load = Load::new(&cluster.servers, Arc::clone(&ledger))?;
    let mut probe_acknowledged = 0;
    let probe_per_s = match args.rate {
        Some(_) => None,
        None => {
            progress(&format!("soak: probing capacity (closed loop, {PROBE_CONCURRENCY} senders, {PROBE:?})"));
            let per_s = load.probe(PROBE, PROBE_CONCURRENCY, seed).await;
            probe_acknowledged = ledger.acknowledged().values().sum();
            Some(per_s)
        }
    };
    let rate = args.rate.unwrap_or_else(|| probe_per_s.unwrap_or(0.0) * args.fraction);
    anyhow::ensure!(rate >= 1.0, "the probe acknowledged {probe_per_s:?} orders/s: nothing to soak at");
    let plan = FaultPlan {
        seed,
        duration: args.duration,
        min_gap: args.fault_min_gap,
        max_gap: args.fault_max_gap,
        workers: args.workers.into(),
        processors: args.processors.into(),
    }
    .faults();
    progress(&format!(
        "soak: {rate:.0} orders/s{} for {:?}, {} faults planned (seed {seed})",
        probe_per_s.map_or(String::new(), |p| format!(" ({:.0} % of the probe's {p:.0}/s)", args.fraction * 100.0)),
        args.duration,
        plan.len()
    ));

    // The sampler reads the pids the loop below keeps current.
    let t0 = Instant::now();
    let pids = Arc::new(Mutex::new(cluster.pids()));
    let stop_sampling = CancellationToken::new();
    let sampler = tokio::spawn(sample_every_second(t0, Arc::clone(&pids), stop_sampling.clone()));
    let until = t0 + args.duration;
    let sender = {
        let load = Arc::clone(&load);
        tokio::spawn(async move { load.open_loop(rate, until, 1 << 32, seed.wrapping_add(1)).await })
    };

    let mut faults: Vec<FaultRecord> = Vec::new();
    let mut exits: Vec<UnexpectedExit> = Vec::new();
    let mut next = 0;
    let mut not_injected = 0;
    let mut last_progress = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while Instant::now() < until {
        let due = plan.get(next).map(|f| t0 + f.at).unwrap_or(until);
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::time::sleep_until(due.min(until)) => {}
        }
        restart_exited(cluster, t0, &mut exits, progress)?;
        let quiet = until.checked_sub(plan::QUIET_END).unwrap_or(t0);
        if plan.get(next).is_some_and(|f| Instant::now() >= t0 + f.at) && Instant::now() >= quiet {
            // Delayed into the quiet end by a slow fault before it (a broker restart takes
            // 10–20 s): left out, so every fault has recovered before the load stops.
            progress(&format!(
                "soak: {} planned faults left out: the earlier ones ran into the last {QUIET_END:?}",
                plan.len() - next,
                QUIET_END = plan::QUIET_END
            ));
            not_injected = plan.len() - next;
            next = plan.len();
        }
        if let Some(f) = plan.get(next).filter(|f| Instant::now() >= t0 + f.at) {
            let at_s = ((Instant::now() - t0).as_secs_f64() * 10.0).round() / 10.0;
            let record = faults::inject(cluster, f, at_s).await?;
            progress(&format!(
                "soak +{at_s:.0} s: {} {} (pid {}), running again after {:.1} s{}",
                record.kind.as_str(),
                record.target,
                record.pid.map_or("-".into(), |p| p.to_string()),
                record.down_s,
                record.note.as_ref().map_or(String::new(), |n| format!(" ({n})"))
            ));
            faults.push(record);
            next += 1;
        }
        *pids.lock().unwrap_or_else(|p| p.into_inner()) = cluster.pids();
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            progress(&format!("soak +{:.0} s: acknowledged {}", (Instant::now() - t0).as_secs_f64(), per_path(&ledger.acknowledged())));
        }
    }
    let (sent, skipped) = sender.await.context("the load task")?;
    // The sender stopped at `until`; a fault still under way then has finished since.
    let load_seconds = args.duration.as_secs_f64();
    progress(&format!("soak: load stopped after {load_seconds:.0} s ({sent} orders sent); waiting for the retries to be answered"));

    let settle_deadline = Instant::now() + SETTLE_TIMEOUT;
    let settled = loop {
        if load.settle(Duration::from_secs(1)).await {
            break true;
        }
        restart_exited(cluster, t0, &mut exits, progress)?;
        *pids.lock().unwrap_or_else(|p| p.into_inner()) = cluster.pids();
        if Instant::now() >= settle_deadline {
            break false;
        }
    };
    let acknowledged = ledger.acknowledged();
    progress(&format!(
        "soak: {}; draining the pipeline (at most {:?})",
        if settled { "every order answered" } else { "some orders still unanswered" },
        args.drain_timeout
    ));
    let endpoints = drain::Endpoints {
        database_url: cluster.postgres.url(cluster::DATABASE),
        redis_url: cluster.redis.url(),
        brokers: cluster.kafka.brokers(),
    };
    let drained = drain::drain(&endpoints, &acknowledged, args.drain_timeout, progress).await?;
    progress(&format!("soak: drain {} after {:.0} s: {}", drained.outcome, drained.seconds, drained.last.describe(&acknowledged)));
    restart_exited(cluster, t0, &mut exits, progress)?;

    let closed = ledger.close();
    let unresolved = closed.orders.values().filter(|(_, s)| *s == ledger::State::Pending).count() as u64;
    let audit = run_audit(&endpoints, &closed).await?;
    stop_sampling.cancel();
    let sampled = sampler.await.context("the sampler task")?;
    let load_report = LoadReport {
        probe_per_s: probe_per_s.map(|p| p.round()),
        probe_acknowledged,
        offered_per_s: rate.round(),
        seconds: load_seconds.round(),
        sent,
        skipped,
        paths: closed.paths,
        unresolved,
    };
    let problems = results::problems(&load_report, &audit);
    let mut faults_by_kind: BTreeMap<String, usize> = plan::FaultKind::ALL.iter().map(|k| (k.as_str().to_string(), 0)).collect();
    for f in &faults {
        *faults_by_kind.entry(f.kind.as_str().to_string()).or_default() += 1;
    }
    let results = SoakResults {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        passed: problems.is_empty(),
        problems,
        seed,
        duration_s: args.duration.as_secs_f64(),
        fraction: args.fraction,
        redis_persistence: String::new(),
        processes: BTreeMap::new(),
        machine_cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        faults_by_kind,
        faults,
        faults_left_out: not_injected,
        unexpected_exits: exits,
        load: load_report,
        drain: drained,
        audit,
        graceful_exit: false,
        rss: RssReport {
            summary: sampler::summarize(&sampled.series),
            max_points: MAX_POINTS,
            series: sampler::downsample(&sampled.series, MAX_POINTS),
        },
    };
    Ok((results, sampled.series))
}

/// Starts again every role that exited by itself, and records each exit.
fn restart_exited(cluster: &mut Cluster, t0: Instant, exits: &mut Vec<UnexpectedExit>, progress: &dyn Fn(&str)) -> anyhow::Result<()> {
    for (i, what) in cluster.reap_exits() {
        let at_s = ((Instant::now() - t0).as_secs_f64() * 10.0).round() / 10.0;
        let process = cluster.roles[i].name.clone();
        progress(&format!("soak +{at_s:.0} s: {process} exited unexpectedly; starting it again: {what}"));
        exits.push(UnexpectedExit { at_s, process, what });
        cluster.start_role(i)?;
    }
    Ok(())
}

/// The processes to sample, by name, as the main loop keeps them current.
type Pids = Arc<Mutex<Vec<(String, Option<u32>)>>>;

async fn sample_every_second(t0: Instant, pids: Pids, stop: CancellationToken) -> Sampler {
    let mut sampler = Sampler::new(t0);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return sampler,
        }
        let now = pids.lock().unwrap_or_else(|p| p.into_inner()).clone();
        // /proc reads are quick but blocking; a second's worth is a few hundred of them.
        sampler = tokio::task::spawn_blocking(move || {
            sampler.sample(&now);
            sampler
        })
        .await
        .expect("the sampling thread does not panic");
    }
}

async fn run_audit(at: &drain::Endpoints, closed: &ledger::Closed) -> anyhow::Result<AuditReport> {
    let (client, conn) =
        tokio_postgres::connect(&at.database_url, tokio_postgres::NoTls).await.context("connecting to the soak's PostgreSQL")?;
    let task = tokio::spawn(conn);
    let rows = audit::read_rows(&client).await?;
    let (orders, duplicated) = audit::check_orders(closed, &rows);
    let mut redis = coffee_store::redis::connect(&at.redis_url).await.context("connecting to the soak's Redis")?;
    let mut drift = Vec::new();
    for v in ApiVersion::ALL {
        let expected = audit::recompute(&client, v).await?;
        let actual = audit::read_redis(&mut redis, cluster::NAMESPACE, v).await?;
        drift.extend(audit::compare_metrics(v, &actual, &expected));
    }
    task.abort();
    Ok(AuditReport { orders, duplicated, drift })
}

fn per_path(m: &BTreeMap<ApiVersion, u64>) -> String {
    m.iter().map(|(v, n)| format!("{v} {n}")).collect::<Vec<_>>().join(", ")
}

//! One instance count: a fresh database, namespace and group; `n` processors started; the drain
//! timed from their spawn until Redis counts every record; then stop, verify, clean up.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use coffee_store::postgres::{self, ScratchDatabase};
use tokio::time::{Instant, MissedTickBehavior};

use super::verify::{cleanup_run, verify};
use super::{Backlog, POLL, SERVICES};
use crate::children::{self, Child};
use crate::config::ScaleOutArgs;
use crate::procs;
use crate::results::scale_out::ScaleOutRun;

/// Scratch databases of the runs: this prefix, this process's id, a random part.
pub const SCRATCH_DB_PREFIX: &str = "coffee_lab_scaleout_";

/// What the drain loop measured.
struct Drain {
    seconds: f64,
    first_seconds: f64,
    after_first_per_s: f64,
    cpu_s: Vec<f64>,
    rss_mib: Vec<f64>,
    peak_rss_mib: Vec<f64>,
    services: BTreeMap<String, f64>,
    machine: f64,
    partitions: Vec<Vec<i32>>,
}

pub(super) async fn run_one(args: &ScaleOutArgs, backlog: &Backlog, n: usize) -> anyhow::Result<ScaleOutRun> {
    let name = format!("{}_n{n}", backlog.kafka.topic);
    let namespace = format!("{name}:");
    let db = ScratchDatabase::create(&args.services.database_url, &format!("{SCRATCH_DB_PREFIX}{}_", std::process::id())).await?;
    let mut instances: Vec<Child> = Vec::new();

    let measured = async {
        // Migrated here, so the instances' own (idempotent) migration costs the drain nothing.
        let pool = postgres::connect(&db.url(), 1).await.context("connecting to the run's database")?;
        postgres::migrate(&pool).await.context("migrating the run's database")?;
        drop(pool);
        drain(args, backlog, n, &name, &db.url(), &mut instances).await
    }
    .await;
    // Stop gracefully whatever was started (SIGKILL after the grace period).
    let graceful_exit = children::stop(&mut instances).await;
    let result = match measured {
        Ok(d) => verify(args, backlog, &db.url(), &namespace).await.map(|v| (d, v)),
        Err(e) => Err(e),
    };
    if result.is_ok() {
        for i in &instances {
            let _ = std::fs::remove_file(&i.log);
        }
    }
    let cleaned = cleanup_run(args, &backlog.kafka, &db, &name).await;
    let (d, v) = result?;
    cleaned?;
    let cpu_s_total = round(d.cpu_s.iter().sum(), 2);
    Ok(ScaleOutRun {
        instances: n,
        records: backlog.records,
        seconds: d.seconds,
        first_record_seconds: d.first_seconds,
        records_per_s: backlog.records as f64 / d.seconds,
        records_per_s_after_first: d.after_first_per_s,
        cpu_s_per_instance: d.cpu_s,
        cpu_s_total,
        cpu_us_per_record: cpu_s_total * 1e6 / backlog.records as f64,
        rss_mib_per_instance: d.rss_mib,
        peak_rss_mib_per_instance: d.peak_rss_mib,
        cpu_s_services: d.services,
        cpu_s_machine: d.machine,
        pg_rows: v.pg_rows,
        pg_revenue_cents: v.pg_revenue,
        redis_orders: v.redis_orders,
        redis_revenue_cents: v.redis_revenue,
        fenced_partitions: v.fenced,
        partitions_per_instance: d.partitions,
        graceful_exit,
        database: db.name().to_string(),
        namespace,
        group: name,
    })
}

async fn drain(
    args: &ScaleOutArgs,
    backlog: &Backlog,
    n: usize,
    name: &str,
    database_url: &str,
    instances: &mut Vec<Child>,
) -> anyhow::Result<Drain> {
    let namespace = format!("{name}:");
    let counted_key = format!("{namespace}v3:metrics:total_orders");
    let mut redis = coffee_store::redis::connect(&args.services.redis_url).await?;
    let records = backlog.records as i64;
    let services_before = procs::cpu_s_by_name(&SERVICES);
    let machine_before = procs::machine_busy_cpu_s();
    let spawned = Instant::now();
    for k in 0..n {
        let mut cmd = children::command(&backlog.bin, "processor");
        cmd.env("DATABASE_URL", database_url)
            .env("REDIS_URL", &args.services.redis_url)
            .env("COFFEE_RT_NAMESPACE", &namespace)
            .env("KAFKA_BROKERS", &backlog.kafka.brokers)
            .env("COFFEE_RT_KAFKA_TOPIC", &backlog.kafka.topic)
            .env("COFFEE_RT_KAFKA_GROUP", name)
            .env("COFFEE_RT_KAFKA_PARTITIONS", backlog.kafka.partitions.to_string())
            .env("COFFEE_RT_LOG", "info,librdkafka=off,rdkafka=off");
        instances.push(children::spawn(cmd, std::env::temp_dir().join(format!("{name}_{k}.log")))?);
    }

    let deadline = spawned + args.drain_timeout;
    let mut first: Option<(Instant, i64)> = None;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let counted: Option<i64> = redis::cmd("GET").arg(&counted_key).query_async(&mut redis).await?;
        let counted = counted.unwrap_or(0);
        let now = Instant::now();
        if first.is_none() && counted > 0 {
            first = Some((now, counted));
        }
        if counted >= records {
            break;
        }
        for (k, i) in instances.iter_mut().enumerate() {
            i.ensure_running().with_context(|| format!("instance {k}, with {counted}/{records} counted"))?;
        }
        if now >= deadline {
            anyhow::bail!(
                "{counted}/{records} counted after {:?} (logs: {})",
                args.drain_timeout,
                instances.iter().map(|i| i.log.display().to_string()).collect::<Vec<_>>().join(", ")
            );
        }
    }
    let done = Instant::now();
    // Read at once, before anything stops: the instances' CPU since they started (all of it is
    // drain), and the services' since the spawn.
    let cpu_s: Vec<f64> = instances.iter().map(|i| procs::cpu_times(i.pid).map_or(0.0, |t| round(t.cpu_s, 2))).collect();
    let memory: Vec<procs::Memory> = instances.iter().map(|i| procs::memory(i.pid).unwrap_or_default()).collect();
    let services_after = procs::cpu_s_by_name(&SERVICES);
    let machine = round(procs::machine_busy_cpu_s() - machine_before, 2);
    let services = SERVICES
        .iter()
        .filter_map(|s| {
            let after = services_after.get(*s)?;
            Some((s.to_string(), round(after - services_before.get(*s).unwrap_or(&0.0), 2)))
        })
        .collect();
    let seconds = (done - spawned).as_secs_f64();
    let (first_at, first_count) = first.expect("the loop ends after a count");
    let after = (done - first_at).as_secs_f64();
    let after_first_per_s = if after > 0.0 { (records - first_count) as f64 / after } else { f64::INFINITY };
    Ok(Drain {
        seconds,
        first_seconds: (first_at - spawned).as_secs_f64(),
        after_first_per_s,
        cpu_s,
        rss_mib: memory.iter().map(|m| round(m.rss_mib, 1)).collect(),
        peak_rss_mib: memory.iter().map(|m| round(m.peak_rss_mib, 1)).collect(),
        services,
        machine,
        partitions: instances.iter().map(|i| held_partitions(&i.log)).collect(),
    })
}

/// The partitions a processor's log says it holds last: the cooperative protocol logs the
/// partitions it gains (`assigned`) and loses (`revoked`); an eager one revokes all first.
fn held_partitions(log: &Path) -> Vec<i32> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut held = std::collections::BTreeSet::new();
    for line in text.lines() {
        let Some(start) = line.find("partitions=[") else { continue };
        let list = &line[start + "partitions=[".len()..];
        let Some(end) = list.find(']') else { continue };
        let ps: Vec<i32> = list[..end].split(',').filter_map(|p| p.trim().parse().ok()).collect();
        if line.contains("partitions assigned") {
            held.extend(ps);
        } else if line.contains("partitions revoked") {
            held.retain(|p| !ps.contains(p));
        }
    }
    held.into_iter().collect()
}

fn round(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

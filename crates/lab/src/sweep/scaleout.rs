//! The v3 stream processor alone, draining a backlog with 1, 2, 4… instances.
//!
//! Produces `--records` valid orders straight to a fresh topic (no HTTP, no processor running),
//! spread round-robin over its partitions. Then, for each instance count, starts that many
//! `coffee-rt processor` child processes against a fresh database, Redis namespace and consumer
//! group (the same topic), and times the drain: from the spawn until the v3 order count in
//! Redis reaches the record count. The Redis count is the last thing the processor moves (a
//! window's delta is applied only after its PostgreSQL transaction committed), so it is the
//! cheapest sufficient "done": one `GET` every 100 ms. After a graceful stop (SIGTERM), the run
//! checks that PostgreSQL holds every record once and Redis counts each once (rows, revenue
//! and the per-partition fences), then drops the database, the namespace's keys and the group.
//! The topic (and the processors' dead-letter topic) is deleted at the end, whatever happened.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use coffee_pipeline::v3::{KafkaSettings, delete_topics, ensure_topic, source_of};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use serde::Serialize;
use tokio::process::{Child, Command};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_postgres::NoTls;
use uuid::Uuid;

/// `coffee-rt bench scale-out`
#[derive(Debug, Clone, clap::Args)]
pub struct ScaleOutArgs {
    /// The coffee-rt binary to start as `processor` instances (default: this executable).
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// Orders in the backlog.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Partitions of the scratch topic: the most instances that can share the work.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
    /// Instance counts to measure, comma separated; each drains the whole backlog afresh.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    pub instances: Vec<usize>,
    #[command(flatten)]
    pub services: super::Services,
    /// A run whose drain takes longer than this fails.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20m")]
    pub drain_timeout: Duration,
}

/// One instance count.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleOutRun {
    pub instances: usize,
    pub records: u64,
    /// Wall time from spawning the instances until Redis counted every record.
    pub seconds: f64,
    /// Wall time from spawning the instances until Redis first counted a record (process
    /// start, PostgreSQL pool, group join, first window).
    pub first_record_seconds: f64,
    /// `records / seconds`.
    pub records_per_s: f64,
    /// Records counted after the first poll that saw any, over the time since that poll.
    pub records_per_s_after_first: f64,
    /// CPU seconds (user + system) of each instance process over the drain, and their sum.
    pub cpu_s_per_instance: Vec<f64>,
    pub cpu_s_total: f64,
    pub cpu_us_per_record: f64,
    /// Resident memory of each instance when the drain ended, and its peak (VmHWM), MiB.
    pub rss_mib_per_instance: Vec<f64>,
    pub peak_rss_mib_per_instance: Vec<f64>,
    /// CPU seconds of the services over the drain: `postgres` (every backend, and exited
    /// ones through the postmaster's reaped-children time), `redis-server`, `java` (the broker).
    pub cpu_s_services: BTreeMap<String, f64>,
    /// Busy CPU seconds of the whole machine over the drain (all cores, from /proc/stat): what
    /// is left after the instances and the services is everything else that ran (the bench's
    /// own polling, and any other work on the machine, which would taint the figures).
    pub cpu_s_machine: f64,
    /// Checked after the instances stopped: v3 rows in PostgreSQL, their revenue, and the
    /// Redis projection's total count and revenue. All four match the produced backlog.
    pub pg_rows: i64,
    pub pg_revenue_cents: i64,
    pub redis_orders: i64,
    pub redis_revenue_cents: i64,
    /// Partitions whose Redis fence equals PostgreSQL's outbox seq (all of them, checked).
    pub fenced_partitions: usize,
    /// The partitions each instance held when the drain ended (from its log).
    pub partitions_per_instance: Vec<Vec<i32>>,
    /// Every instance exited 0 after SIGTERM.
    pub graceful_exit: bool,
    /// The run's scratch names (all removed after the run).
    pub database: String,
    pub namespace: String,
    pub group: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScaleOutReport {
    pub records: u64,
    pub partitions: i32,
    pub runs: Vec<ScaleOutRun>,
    /// Producing the backlog, acknowledged (`acks=all`, idempotent).
    pub produce_seconds: f64,
    pub machine_cores: usize,
    /// The scratch topic (deleted at the end, with its `.dead` topic).
    pub topic: String,
}

/// The catalog's drinks and stores (`coffee_core::Catalog::default()`).
const DRINKS: [&str; 3] = ["cappuccino", "americano", "latte"];
const STORES: [&str; 4] = ["uptown", "downtown", "central", "southend"];
/// Delivery futures the producer keeps at most.
const IN_FLIGHT: usize = 100_000;
const POLL: Duration = Duration::from_millis(100);
/// How long a SIGTERMed instance gets before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(30);
const SERVICES: [&str; 3] = ["postgres", "redis-server", "java"];

/// The wire form of a v3 order exactly as the processor parses it: `coffee_core::OrderRecord`
/// (`deny_unknown_fields`), mirrored because the lab does not depend on coffee-core. The
/// producer in `coffee_pipeline::v3` sends its JSON as the value, the store as the key, and no
/// headers. A record the processor could not parse would be dead-lettered and never counted,
/// so a drain that completes proves the shape.
#[derive(Serialize)]
struct OrderRecord<'a> {
    order_id: Uuid,
    drink: &'a str,
    store: &'a str,
    price_cents: i64,
    ordered_at: DateTime<Utc>,
    accepted_at: DateTime<Utc>,
}

/// Record `i`: its key (the store), JSON value and price.
fn record(i: u64, now: DateTime<Utc>) -> (&'static str, Vec<u8>, i64) {
    let store = STORES[(i % STORES.len() as u64) as usize];
    // 3.50 to 6.75 in 5-cent steps, like a menu's.
    let price_cents = 350 + ((i / 7) % 66) as i64 * 5;
    let rec = OrderRecord {
        order_id: Uuid::now_v7(),
        drink: DRINKS[((i / 4) % DRINKS.len() as u64) as usize],
        store,
        price_cents,
        ordered_at: now,
        accepted_at: now,
    };
    (store, serde_json::to_vec(&rec).expect("record serialises"), price_cents)
}

/// The backlog every run drains.
struct Backlog {
    kafka: KafkaSettings,
    bin: PathBuf,
    records: u64,
    revenue_cents: i64,
}

pub async fn run_scale_out(args: &ScaleOutArgs, progress: &dyn Fn(&str)) -> anyhow::Result<ScaleOutReport> {
    anyhow::ensure!(args.records > 0, "--records must be at least 1");
    anyhow::ensure!(!args.instances.is_empty() && args.instances.iter().all(|&n| n >= 1), "--instances must list counts ≥ 1");
    let bin = match &args.bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("locating this executable")?,
    };
    anyhow::ensure!(bin.is_file(), "the processor binary {} does not exist", bin.display());
    // Fail before producing a million records if a service is away.
    admin_client(&args.services.pg_url).await?;
    let mut redis = coffee_store::redis::connect(&args.services.redis_url)
        .await
        .with_context(|| format!("connecting to Redis at {}", args.services.redis_url))?;
    let _: String = redis::cmd("PING").query_async(&mut redis).await.context("Redis PING")?;

    let id = Uuid::new_v4().simple().to_string()[..10].to_owned();
    let topic = format!("scaleout_{id}");
    let kafka = KafkaSettings {
        brokers: args.services.kafka_brokers.clone(),
        topic: topic.clone(),
        group: topic.clone(),
        partitions: args.partitions,
        replication_factor: 1,
        producer_linger: Duration::from_millis(20),
    };
    let created =
        ensure_topic(&kafka, &topic, args.partitions).await.with_context(|| format!("creating topic {topic} on {}", kafka.brokers));
    let result = match created {
        Ok(()) => measure_all(args, &kafka, bin, progress).await,
        Err(e) => Err(e),
    };
    // The processors create `<topic>.dead` when they start.
    let deleted = delete_topics(&kafka, &[topic.clone(), kafka.dead_letter_topic()]).await;
    let (produce_seconds, runs) = result?;
    deleted.with_context(|| format!("deleting topic {topic}"))?;
    Ok(ScaleOutReport {
        records: args.records,
        partitions: args.partitions,
        runs,
        produce_seconds,
        machine_cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        topic,
    })
}

async fn measure_all(
    args: &ScaleOutArgs,
    kafka: &KafkaSettings,
    bin: PathBuf,
    progress: &dyn Fn(&str),
) -> anyhow::Result<(f64, Vec<ScaleOutRun>)> {
    progress(&format!("scale-out: producing {} records to {} ({} partitions)", args.records, kafka.topic, args.partitions));
    let started = Instant::now();
    let revenue_cents = produce(kafka, args.records, args.partitions).await?;
    let produce_seconds = started.elapsed().as_secs_f64();
    progress(&format!(
        "produced {} records in {produce_seconds:.1} s ({:.0} records/s)",
        args.records,
        args.records as f64 / produce_seconds
    ));
    let backlog = Backlog { kafka: kafka.clone(), bin, records: args.records, revenue_cents };
    let mut runs = Vec::new();
    for &n in &args.instances {
        let run = run_one(args, &backlog, n).await.with_context(|| format!("scale-out run with {n} instance(s)"))?;
        progress(&format!(
            "n={n}: {} records in {:.1} s: {:.0} records/s ({:.0}/s after the first record at {:.1} s); CPU {:.1} s ({}) = {:.1} µs/record; RSS {} MiB (peak {}); partitions {}; services CPU {}; machine CPU {:.1} s{}",
            run.records,
            run.seconds,
            run.records_per_s,
            run.records_per_s_after_first,
            run.first_record_seconds,
            run.cpu_s_total,
            join(&run.cpu_s_per_instance, 1),
            run.cpu_us_per_record,
            join(&run.rss_mib_per_instance, 0),
            join(&run.peak_rss_mib_per_instance, 0),
            partitions(&run.partitions_per_instance),
            run.cpu_s_services.iter().map(|(k, v)| format!("{k} {v:.1} s")).collect::<Vec<_>>().join(", "),
            run.cpu_s_machine,
            other_work(&run),
        ));
        runs.push(run);
    }
    Ok((produce_seconds, runs))
}

/// A warning when something besides the instances and the services kept the machine busy
/// during the drain (another build or test on a shared machine).
fn other_work(run: &ScaleOutRun) -> String {
    let other = run.cpu_s_machine - run.cpu_s_total - run.cpu_s_services.values().sum::<f64>();
    if other > 1.0 && other > 0.2 * run.cpu_s_machine {
        format!(" (WARNING: other work used {other:.1} s of CPU during the drain; the figures are not clean)")
    } else {
        String::new()
    }
}

fn partitions(per_instance: &[Vec<i32>]) -> String {
    per_instance.iter().map(|ps| format!("{ps:?}")).collect::<Vec<_>>().join(" ")
}

fn join(values: &[f64], decimals: usize) -> String {
    values.iter().map(|v| format!("{v:.decimals$}")).collect::<Vec<_>>().join(" + ")
}

/// Produces the backlog, round-robin over the partitions (the store key alone would fill at
/// most four of them), and checks the log holds exactly `records`. Returns the revenue.
async fn produce(kafka: &KafkaSettings, records: u64, partitions: i32) -> anyhow::Result<i64> {
    let producer: FutureProducer = kafka
        .client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "none")
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", "120000")
        .create()
        .context("creating the Kafka producer")?;
    let mut pending = FuturesUnordered::new();
    let mut revenue = 0i64;
    let mut now = Utc::now();
    for i in 0..records {
        if i % 10_000 == 0 {
            now = Utc::now();
        }
        let (key, payload, price) = record(i, now);
        revenue += price;
        let partition = (i % partitions as u64) as i32;
        loop {
            match producer.send_result(FutureRecord::to(&kafka.topic).key(key).payload(&payload).partition(partition)) {
                Ok(f) => {
                    pending.push(f);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    if pending.is_empty() {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    } else {
                        delivered(pending.next().await)?;
                    }
                }
                Err((e, _)) => return Err(anyhow::anyhow!("producing to {}: {e}", kafka.topic)),
            }
        }
        while pending.len() >= IN_FLIGHT {
            delivered(pending.next().await)?;
        }
    }
    while !pending.is_empty() {
        delivered(pending.next().await)?;
    }
    let topic = kafka.topic.clone();
    let in_log: i64 = tokio::task::spawn_blocking(move || -> anyhow::Result<i64> {
        let mut sum = 0;
        for p in 0..partitions {
            let (low, high) = producer.client().fetch_watermarks(&topic, p, Duration::from_secs(10))?;
            sum += high - low;
        }
        Ok(sum)
    })
    .await??;
    anyhow::ensure!(in_log == records as i64, "the topic holds {in_log} records after producing {records}");
    Ok(revenue)
}

/// A delivery report: the broker acknowledged the record, or why not.
fn delivered(r: Option<Result<OwnedDeliveryResult, futures::channel::oneshot::Canceled>>) -> anyhow::Result<()> {
    match r {
        Some(Ok(Ok(_))) | None => Ok(()),
        Some(Ok(Err((e, _)))) => Err(anyhow::anyhow!("delivery failed: {e}")),
        Some(Err(_)) => Err(anyhow::anyhow!("the producer dropped a delivery")),
    }
}

/// One started processor.
struct Instance {
    child: Child,
    pid: u32,
    log: PathBuf,
}

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

async fn run_one(args: &ScaleOutArgs, backlog: &Backlog, n: usize) -> anyhow::Result<ScaleOutRun> {
    let name = format!("{}_n{n}", backlog.kafka.topic);
    let namespace = format!("{name}:");
    let database_url = database_url(&args.services.pg_url, &name)?;
    let mut instances: Vec<Instance> = Vec::new();

    let measured = async {
        let admin = admin_client(&args.services.pg_url).await?;
        admin.batch_execute(&format!("CREATE DATABASE \"{name}\"")).await.with_context(|| format!("creating database {name}"))?;
        migrate(&backlog.bin, &database_url).await?;
        drain(args, backlog, n, &name, &database_url, &mut instances).await
    }
    .await;
    // Stop gracefully whatever was started (SIGKILL after the grace period).
    let graceful_exit = stop(&mut instances).await;
    let result = match measured {
        Ok(d) => verify(args, backlog, &database_url, &namespace).await.map(|v| (d, v)),
        Err(e) => Err(e),
    };
    if result.is_ok() {
        for i in &instances {
            let _ = std::fs::remove_file(&i.log);
        }
    }
    let cleaned = cleanup_run(args, &backlog.kafka, &name).await;
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
        database: name.clone(),
        namespace,
        group: name,
    })
}

/// Runs `<bin> migrate`, so the instances' own (idempotent) migration costs the drain nothing.
async fn migrate(bin: &Path, database_url: &str) -> anyhow::Result<()> {
    let out = Command::new(bin)
        .arg("migrate")
        .env("DATABASE_URL", database_url)
        .env("COFFEE_RT_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("running {} migrate", bin.display()))?;
    anyhow::ensure!(out.status.success(), "{} migrate failed ({}): {}", bin.display(), out.status, String::from_utf8_lossy(&out.stderr));
    Ok(())
}

async fn drain(
    args: &ScaleOutArgs,
    backlog: &Backlog,
    n: usize,
    name: &str,
    database_url: &str,
    instances: &mut Vec<Instance>,
) -> anyhow::Result<Drain> {
    let namespace = format!("{name}:");
    let counted_key = format!("{namespace}v3:metrics:total_orders");
    let mut redis = coffee_store::redis::connect(&args.services.redis_url).await?;
    let records = backlog.records as i64;
    let services_before = services_cpu_s();
    let machine_before = machine_busy_cpu_s();
    let spawned = Instant::now();
    for k in 0..n {
        let log = std::env::temp_dir().join(format!("{name}_{k}.log"));
        let file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(&backlog.bin)
            .arg("processor")
            .env("DATABASE_URL", database_url)
            .env("REDIS_URL", &args.services.redis_url)
            .env("COFFEE_RT_NAMESPACE", &namespace)
            .env("KAFKA_BROKERS", &backlog.kafka.brokers)
            .env("KAFKA_TOPIC", &backlog.kafka.topic)
            .env("KAFKA_GROUP", name)
            .env("KAFKA_PARTITIONS", backlog.kafka.partitions.to_string())
            .env("COFFEE_RT_LOG", "info,librdkafka=off,rdkafka=off")
            .env_remove("COFFEE_RT_METRICS_LISTEN")
            .env_remove("COFFEE_RT_CRASH_AFTER_COMMIT")
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} processor", backlog.bin.display()))?;
        let pid = child.id().context("a just-started child has a pid")?;
        instances.push(Instance { child, pid, log });
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
            if let Some(status) = i.child.try_wait()? {
                anyhow::bail!("instance {k} exited ({status}) with {counted}/{records} counted; its log: {}", i.log.display());
            }
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
    let stats: Vec<ProcStat> = instances.iter().map(|i| proc_stat(i.pid).unwrap_or_default()).collect();
    let services_after = services_cpu_s();
    let machine = round(machine_busy_cpu_s() - machine_before, 2);
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
        cpu_s: stats.iter().map(|s| round(s.cpu_s, 2)).collect(),
        rss_mib: stats.iter().map(|s| round(s.rss_mib, 1)).collect(),
        peak_rss_mib: stats.iter().map(|s| round(s.peak_rss_mib, 1)).collect(),
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

/// SIGTERM to every instance, then wait; SIGKILL for one that does not exit within the grace
/// period. Whether all exited 0.
async fn stop(instances: &mut [Instance]) -> bool {
    for i in instances.iter() {
        // tokio has no SIGTERM for a child and the lab has no libc; kill(1) is everywhere.
        let _ = Command::new("kill").arg("-TERM").arg(i.pid.to_string()).stdout(Stdio::null()).stderr(Stdio::null()).status().await;
    }
    let mut graceful = true;
    for i in instances.iter_mut() {
        match tokio::time::timeout(STOP_GRACE, i.child.wait()).await {
            Ok(Ok(status)) => graceful &= status.success(),
            _ => {
                graceful = false;
                let _ = i.child.start_kill();
                let _: std::io::Result<ExitStatus> = i.child.wait().await;
            }
        }
    }
    graceful
}

struct Verified {
    pg_rows: i64,
    pg_revenue: i64,
    redis_orders: i64,
    redis_revenue: i64,
    fenced: usize,
}

/// Exactly once, checked on the final state (every instance stopped): PostgreSQL has one row
/// per record (the order id is the primary key and every produced id is distinct, so `records`
/// rows are every record once), Redis counts `records` orders and their revenue, and each
/// partition's Redis fence equals its outbox seq in PostgreSQL (every committed delta applied,
/// none twice).
async fn verify(args: &ScaleOutArgs, backlog: &Backlog, database_url: &str, namespace: &str) -> anyhow::Result<Verified> {
    let (client, conn) = tokio_postgres::connect(database_url, NoTls).await.context("connecting to the run's database")?;
    let task = tokio::spawn(conn);
    let row = client.query_one("SELECT count(*), COALESCE(sum(price_cents), 0)::bigint FROM orders WHERE version = 'v3'", &[]).await?;
    let (pg_rows, pg_revenue): (i64, i64) = (row.get(0), row.get(1));
    let positions: BTreeMap<String, i64> = client
        .query("SELECT source, seq FROM sink_positions WHERE source LIKE 'v3:%'", &[])
        .await?
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
        .collect();
    task.abort();
    let mut redis = coffee_store::redis::connect(&args.services.redis_url).await?;
    let metric = |m: &str| format!("{namespace}v3:metrics:{m}");
    let (orders, revenue, fences): (Option<i64>, Option<i64>, BTreeMap<String, i64>) =
        redis::pipe().get(metric("total_orders")).get(metric("total_revenue")).hgetall(metric("fence")).query_async(&mut redis).await?;
    let (redis_orders, redis_revenue) = (orders.unwrap_or(0), revenue.unwrap_or(0));
    let records = backlog.records as i64;
    anyhow::ensure!(
        pg_rows == records && redis_orders == records && pg_revenue == backlog.revenue_cents && redis_revenue == backlog.revenue_cents,
        "not exactly once: {records} records ({} cents) produced; PostgreSQL {pg_rows} rows ({pg_revenue} cents); Redis {redis_orders} orders ({redis_revenue} cents)",
        backlog.revenue_cents
    );
    let mut fenced = 0;
    for p in 0..backlog.kafka.partitions {
        let source = source_of(&backlog.kafka.topic, p);
        let seq = positions.get(&source).copied().unwrap_or(0);
        let fence = fences.get(&source).copied().unwrap_or(0);
        anyhow::ensure!(fence == seq, "partition {p}: Redis fence {fence} but PostgreSQL outbox seq {seq}");
        fenced += 1;
    }
    Ok(Verified { pg_rows, pg_revenue, redis_orders, redis_revenue, fenced })
}

/// Drops the run's database, deletes its Redis keys and its consumer group; tries each step
/// and reports every failure.
async fn cleanup_run(args: &ScaleOutArgs, kafka: &KafkaSettings, name: &str) -> anyhow::Result<()> {
    let mut errors = Vec::new();
    let dropped = async {
        let admin = admin_client(&args.services.pg_url).await?;
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await?;
        anyhow::Ok(())
    };
    if let Err(e) = dropped.await {
        errors.push(format!("dropping database {name}: {e:#}"));
    }
    if let Err(e) = delete_redis_keys(&args.services.redis_url, &format!("{name}:")).await {
        errors.push(format!("deleting Redis keys {name}:*: {e:#}"));
    }
    if let Err(e) = delete_group(kafka, name).await {
        errors.push(format!("deleting consumer group {name}: {e:#}"));
    }
    anyhow::ensure!(errors.is_empty(), "cleanup: {}", errors.join("; "));
    Ok(())
}

async fn delete_redis_keys(url: &str, prefix: &str) -> anyhow::Result<()> {
    let mut conn = coffee_store::redis::connect(url).await?;
    let pattern = format!("{}*", prefix.replace('\\', "\\\\").replace('*', "\\*").replace('?', "\\?").replace('[', "\\["));
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000).query_async(&mut conn).await?;
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Deletes the group; retries while the broker still sees a leaving member.
async fn delete_group(kafka: &KafkaSettings, group: &str) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create()?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(5))).request_timeout(Some(Duration::from_secs(5)));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let results = admin.delete_groups(&[group], &opts).await?;
        match results.into_iter().next() {
            None | Some(Ok(_)) | Some(Err((_, RDKafkaErrorCode::GroupIdNotFound))) => return Ok(()),
            Some(Err((_, code))) if attempt < 20 && code == RDKafkaErrorCode::NonEmptyGroup => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Some(Err((_, code))) => anyhow::bail!("{code}"),
        }
    }
}

async fn admin_client(pg_url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(pg_url, NoTls).await.with_context(|| format!("connecting to PostgreSQL at {pg_url}"))?;
    tokio::spawn(conn);
    Ok(client)
}

/// `admin` with its database name replaced by `db` (URL form only).
fn database_url(admin: &str, db: &str) -> anyhow::Result<String> {
    let scheme_end = admin.find("://").context("the PostgreSQL admin URL must be a postgres:// URL")? + 3;
    let (base, query) = match admin.find('?') {
        Some(q) => admin.split_at(q),
        None => (admin, ""),
    };
    let authority_end = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    Ok(format!("{}/{db}{query}", &base[..authority_end]))
}

#[derive(Debug, Default, Clone, Copy)]
struct ProcStat {
    cpu_s: f64,
    rss_mib: f64,
    peak_rss_mib: f64,
}

/// Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`; 100 on every Linux we run).
fn clk_tck() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// The command name and the fields after it of /proc/<pid>/stat (the name may hold spaces).
fn stat_fields(pid: u32) -> Option<(String, Vec<u64>)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (open, close) = (text.find('(')?, text.rfind(')')?);
    let comm = text[open + 1..close].to_owned();
    // Field 3 (state) is not a number; 14–17 are utime, stime, cutime, cstime.
    let fields = text[close + 1..].split_whitespace().skip(1).map(|f| f.parse::<i64>().unwrap_or(0).max(0) as u64).collect();
    Some((comm, fields))
}

/// CPU (utime + stime) and memory (VmRSS, VmHWM) of one process.
fn proc_stat(pid: u32) -> Option<ProcStat> {
    let (_, f) = stat_fields(pid)?;
    let cpu_s = (f.get(10)? + f.get(11)?) as f64 / clk_tck();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Some(ProcStat { cpu_s, rss_mib: kib("VmRSS:") / 1024.0, peak_rss_mib: kib("VmHWM:") / 1024.0 })
}

/// CPU seconds so far of every process named like a service, own plus reaped children's (the
/// postmaster reaps the backends that exited).
fn services_cpu_s() -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Some((comm, f)) = stat_fields(pid) else { continue };
        if !SERVICES.contains(&comm.as_str()) {
            continue;
        }
        let ticks: u64 = f.iter().skip(10).take(4).sum();
        *out.entry(comm).or_default() += ticks as f64 / clk_tck();
    }
    out
}

/// Busy CPU seconds of all cores since boot: /proc/stat's `cpu` line without idle and iowait
/// (guest time is already inside user).
fn machine_busy_cpu_s() -> f64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else { return 0.0 };
    let f: Vec<u64> = line.split_whitespace().skip(1).map(|v| v.parse().unwrap_or(0)).collect();
    // user nice system idle iowait irq softirq steal
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum();
    busy as f64 / clk_tck()
}

/// The report as a small table.
pub fn scale_out_table(report: &ScaleOutReport) -> String {
    use comfy_table::{Table, presets};
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "instances",
        "drain s",
        "first record s",
        "records/s",
        "records/s after first",
        "CPU s per instance",
        "µs CPU/record",
        "RSS MiB (peak)",
        "partitions",
        "services CPU s",
        "machine CPU s",
    ]);
    for r in &report.runs {
        let rss: Vec<String> =
            r.rss_mib_per_instance.iter().zip(&r.peak_rss_mib_per_instance).map(|(a, b)| format!("{a:.0} ({b:.0})")).collect();
        t.add_row(vec![
            r.instances.to_string(),
            format!("{:.2}", r.seconds),
            format!("{:.2}", r.first_record_seconds),
            format!("{:.0}", r.records_per_s),
            format!("{:.0}", r.records_per_s_after_first),
            join(&r.cpu_s_per_instance, 1),
            format!("{:.1}", r.cpu_us_per_record),
            rss.join(" + "),
            partitions(&r.partitions_per_instance),
            r.cpu_s_services.iter().map(|(k, v)| format!("{k} {v:.1}")).collect::<Vec<_>>().join(", "),
            format!("{:.1}", r.cpu_s_machine),
        ]);
    }
    format!(
        "{} records on {} partitions, produced in {:.1} s; {} cores\n{t}",
        report.records, report.partitions, report.produce_seconds, report.machine_cores
    )
}

/// `coffee-rt bench scale-out`: progress on stderr, then the table and one JSON line.
pub async fn scale_out_command(args: ScaleOutArgs) -> anyhow::Result<()> {
    let report = run_scale_out(&args, &|line| eprintln!("{line}")).await?;
    println!("{}", scale_out_table(&report));
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_replaces_the_database() {
        assert_eq!(database_url("postgres://u:p@h:5432/postgres", "x").unwrap(), "postgres://u:p@h:5432/x");
        assert_eq!(database_url("postgres://u:p@h:5432", "x").unwrap(), "postgres://u:p@h:5432/x");
        assert_eq!(database_url("postgres://h/postgres?sslmode=disable", "x").unwrap(), "postgres://h/x?sslmode=disable");
        assert!(database_url("host=h dbname=postgres", "x").is_err());
    }

    #[test]
    fn records_are_valid_orders() {
        let (store, payload, price) = record(12, Utc::now());
        let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(v["store"], store);
        assert_eq!(v["price_cents"], price);
        assert!(DRINKS.contains(&v["drink"].as_str().unwrap()));
        assert_eq!(v.as_object().unwrap().len(), 6);
        assert!((350..=675).contains(&price));
    }

    #[test]
    fn reads_own_proc_stat() {
        let s = proc_stat(std::process::id()).unwrap();
        assert!(s.rss_mib > 0.0 && s.peak_rss_mib >= s.rss_mib);
    }
}

//! The v3 stream processor: one member of the consumer group (`coffee-processors` by default).
//!
//! Exactly once without Kafka transactions:
//! - each partition is a writer (`v3:<topic>:<partition>`) whose last consumed offset lives in
//!   PostgreSQL, committed in the same transaction as its orders and their metric delta;
//! - on assignment a partition resumes from that offset, not from Kafka's committed one;
//! - records at or below it are skipped inside the transaction, so a replayed batch that only
//!   partly overlaps the last one still inserts each record once;
//! - the delta reaches Redis through the fenced Lua script (one call per window per partition),
//!   whose per-partition high-water mark moves atomically with the counters.
//!
//! Records are pre-aggregated per partition over a short window (`window`, ≤ 1 s) and flushed on
//! the window or on size.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use coffee_core::{Catalog, Order, OrderRecord, Version};
use coffee_store::{PgPool, Projection, postgres};
use rdkafka::{
    Message,
    consumer::{Consumer, StreamConsumer},
    message::OwnedMessage,
    producer::FutureProducer,
    util::Timeout,
};
use tokio::time::{Instant, sleep};

use super::{
    KafkaSettings,
    dead_letter::dead_letter,
    ensure_topic,
    rebalance::{Context, Rebalanced},
};
use crate::{
    commit::{CommitStep, Stopped},
    relay,
};

/// Which consumer-group protocol the processors speak. `Consumer` is the default: the whole
/// v3 suite (kills, two processors, broker restart) passes on it with Kafka 4.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupProtocol {
    /// The classic protocol: the client-side assignor, eager rebalances (every member stops
    /// and rejoins), and the client's own session timeout.
    Classic,
    /// KIP-848 (Kafka 4.0+): the broker assigns and rebalances incrementally, so a member
    /// joining or leaving moves only the partitions that change hands. Session timeout and
    /// heartbeat are the broker's settings (`group.consumer.session.timeout.ms`).
    Consumer,
}

impl std::str::FromStr for GroupProtocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "classic" => Ok(GroupProtocol::Classic),
            "consumer" => Ok(GroupProtocol::Consumer),
            other => Err(format!("unknown group protocol {other:?} (classic or consumer)")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// Longest a record waits in its partition's window before the flush.
    pub window: Duration,
    /// A partition's window is flushed early at this many records.
    pub max_batch: usize,
    pub session_timeout: Duration,
    /// Outbox entries older than this are adopted from processors that died.
    pub sweep_older_than: Duration,
    /// The broker's long-poll time (`fetch.wait.max.ms`). Kafka answers a fetch as soon as a
    /// record is there, so under load this costs nothing; idle, it is how often the consumer
    /// asks again, so a tiny value only burns CPU in the processor and the broker.
    pub fetch_wait: Duration,
    /// The broker holds a fetch until this many bytes are there (or `fetch_wait` passed).
    /// 1 answers at once with whatever arrived, so under load the consumer sends thousands of
    /// tiny fetches a second and the broker spends its CPU answering them.
    pub fetch_min_bytes: usize,
    pub group_protocol: GroupProtocol,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            window: Duration::from_millis(50),
            max_batch: 5_000,
            session_timeout: Duration::from_secs(6),
            sweep_older_than: Duration::from_secs(10),
            fetch_wait: Duration::from_millis(20),
            fetch_min_bytes: 16 * 1024,
            group_protocol: GroupProtocol::Consumer,
        }
    }
}

/// The source name of one partition in `sink_positions`, the outbox and the Redis fence.
pub fn source_of(topic: &str, partition: i32) -> String {
    format!("v3:{topic}:{partition}")
}

/// One partition's open window.
#[derive(Default)]
struct Window {
    orders: Vec<(Order, Option<i64>)>,
    /// Last offset read, including records that carried no valid order.
    upto: Option<i64>,
    opened: Option<Instant>,
}

pub struct Processor {
    config: ProcessorConfig,
    kafka: KafkaSettings,
    database_url: String,
    pool: PgPool,
    projection: Projection,
    catalog: Arc<Catalog>,
    /// Each partition is a writer of its own, with its own commit step.
    steps: HashMap<i32, CommitStep>,
}

impl Processor {
    pub fn new(
        config: ProcessorConfig,
        kafka: KafkaSettings,
        database_url: &str,
        pool: PgPool,
        projection: Projection,
        catalog: Arc<Catalog>,
    ) -> Processor {
        Processor { config, kafka, database_url: database_url.to_owned(), pool, projection, catalog, steps: HashMap::new() }
    }

    /// Runs until `shutdown`; open windows are flushed first. Waits for the broker if it is away.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        // The self-repair check runs beside the writer for as long as it runs: dropping
        // `_repair` (on any return) stops it.
        let (_repair, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(crate::repair::watch(self.pool.clone(), self.projection.clone(), Version::V3, async {
            let _ = stopped.await;
        }));
        loop {
            let ready = async {
                ensure_topic(&self.kafka, &self.kafka.topic, self.kafka.partitions).await?;
                ensure_topic(&self.kafka, &self.kafka.dead_letter_topic(), 1).await
            };
            match ready.await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "v3 processor waiting for the broker");
                    tokio::select! { _ = &mut shutdown => return Ok(()), _ = sleep(Duration::from_secs(1)) => {} }
                }
            }
        }
        let context = Context { database_url: self.database_url.clone(), topic: self.kafka.topic.clone(), events: Mutex::new(Vec::new()) };
        let mut config = self.kafka.client_config();
        config
            .set("group.id", &self.kafka.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", self.config.fetch_wait.as_millis().to_string())
            .set("fetch.min.bytes", self.config.fetch_min_bytes.to_string());
        match self.config.group_protocol {
            GroupProtocol::Classic => config
                .set("group.protocol", "classic")
                .set("session.timeout.ms", self.config.session_timeout.as_millis().to_string())
                .set("heartbeat.interval.ms", (self.config.session_timeout.as_millis() / 3).to_string())
                .set("partition.assignment.strategy", "range"),
            GroupProtocol::Consumer => config.set("group.protocol", "consumer"),
        };
        let consumer: Arc<StreamConsumer<Context>> = Arc::new(config.create_with_context(context)?);
        consumer.subscribe(&[&self.kafka.topic])?;
        let dead_letters: FutureProducer = self.kafka.client_config().set("message.timeout.ms", "5000").create()?;
        tracing::info!(topic = %self.kafka.topic, "v3 processor started");

        let mut windows: HashMap<i32, Window> = HashMap::new();
        let mut owned: HashSet<i32> = HashSet::new();
        let mut tick = tokio::time::interval(self.config.window.min(Duration::from_millis(20)).max(Duration::from_millis(5)));
        let mut maintenance = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                _ = tick.tick() => {
                    self.take_rebalances(&consumer, &mut windows, &mut owned);
                    self.flush_due(&mut windows, false).await?;
                }
                _ = maintenance.tick() => {
                    if let Err(e) = self.maintain(&consumer).await {
                        tracing::warn!(error = %e, "v3 maintenance failed");
                    }
                }
                msg = consumer.recv() => match msg {
                    Ok(m) => {
                        // Owned, so no librdkafka pointer is held across an await.
                        let m = m.detach();
                        self.take_rebalances(&consumer, &mut windows, &mut owned);
                        // A record librdkafka fetched before its partition was revoked can still
                        // arrive after the revoke. Taken into a new window it would commit an
                        // offset past the records of the window the revoke discarded, and the
                        // partition's next owner would start after them: they would never be
                        // stored. The next owner reads it again from PostgreSQL's offset.
                        if owned.contains(&m.partition()) {
                            self.accept(&m, &mut windows, &dead_letters).await?;
                        } else {
                            metrics::counter!("coffee_rt_v3_stale_records_total").increment(1);
                        }
                        let full = windows.get(&m.partition()).is_some_and(|w| w.orders.len() >= self.config.max_batch);
                        if full {
                            self.flush_due(&mut windows, false).await?;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "v3 consume error");
                        sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }
        self.flush_due(&mut windows, true).await?;
        consumer.unsubscribe();
        tracing::info!("v3 processor stopped");
        Ok(())
    }

    /// Revoked partitions drop their open windows: their next owner re-reads those records
    /// from PostgreSQL's offset, so nothing is lost and nothing is written twice.
    fn take_rebalances(&self, consumer: &StreamConsumer<Context>, windows: &mut HashMap<i32, Window>, owned: &mut HashSet<i32>) {
        let events = std::mem::take(&mut *consumer.context().events.lock().expect("events"));
        for e in events {
            match e {
                Rebalanced::Assigned(ps) => {
                    for p in ps {
                        windows.remove(&p);
                        owned.insert(p);
                    }
                }
                Rebalanced::Revoked(ps) => {
                    for p in ps {
                        windows.remove(&p);
                        owned.remove(&p);
                    }
                }
            }
        }
    }

    async fn accept(&self, m: &OwnedMessage, windows: &mut HashMap<i32, Window>, dead: &FutureProducer) -> anyhow::Result<()> {
        metrics::counter!("coffee_rt_v3_records_total").increment(1);
        let w = windows.entry(m.partition()).or_default();
        w.opened.get_or_insert_with(Instant::now);
        w.upto = Some(m.offset());
        match parse(m.payload(), &self.catalog) {
            Ok(order) => w.orders.push((order, Some(m.offset()))),
            Err(reason) => {
                tracing::warn!(partition = m.partition(), offset = m.offset(), %reason, "dead-lettering malformed v3 record");
                dead_letter(dead, &self.kafka.dead_letter_topic(), m, &reason).await?;
            }
        }
        Ok(())
    }

    async fn flush_due(&mut self, windows: &mut HashMap<i32, Window>, all: bool) -> anyhow::Result<()> {
        let due: Vec<i32> = windows
            .iter()
            .filter(|(_, w)| {
                w.upto.is_some()
                    && (all || w.orders.len() >= self.config.max_batch || w.opened.is_some_and(|t| t.elapsed() >= self.config.window))
            })
            .map(|(p, _)| *p)
            .collect();
        for p in due {
            let w = windows.remove(&p).expect("due window");
            self.flush(p, w).await?;
        }
        Ok(())
    }

    /// One PostgreSQL transaction and one Redis script call for a partition's window. A window
    /// PostgreSQL refuses for its data stops the processor: skipping it would lose orders.
    async fn flush(&mut self, partition: i32, w: Window) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        let (pool, projection) = (&self.pool, &self.projection);
        let step = self
            .steps
            .entry(partition)
            .or_insert_with(|| CommitStep::new(pool.clone(), projection.clone(), Version::V3, source_of(&self.kafka.topic, partition)));
        // Retried until PostgreSQL answers, even at shutdown: the window is committed or, if
        // the process dies first, re-read from PostgreSQL's offset by the next owner.
        match step.commit(&w.orders, w.upto, &mut std::future::pending()).await {
            Ok(_) => {}
            Err(Stopped::Refused(e)) => anyhow::bail!("v3 window refused by PostgreSQL: {e}"),
            Err(Stopped::ShuttingDown) => unreachable!("a pending future never resolves"),
        }
        metrics::histogram!("coffee_rt_batch_orders", "stage" => "v3_window").record(w.orders.len() as f64);
        metrics::histogram!("coffee_rt_flush_duration_seconds", "stage" => "v3_window").record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Adopts orphaned outbox entries and publishes per-partition lag (log end − PostgreSQL).
    async fn maintain(&self, consumer: &Arc<StreamConsumer<Context>>) -> anyhow::Result<()> {
        relay::sweep(&self.pool, &self.projection, "v3:%", self.config.sweep_older_than).await?;
        relay::publish_outbox_depth(&self.pool, Version::V3).await?;
        let partitions: Vec<i32> = consumer.assignment()?.elements().iter().map(|e| e.partition()).collect();
        // `fetch_watermarks` blocks until the broker answers (a round trip, longer under load); on a runtime
        // worker it stalled every request scheduled on that thread, so it runs off the runtime.
        let (c, topic) = (Arc::clone(consumer), self.kafka.topic.clone());
        let highs: Vec<(i32, i64)> = tokio::task::spawn_blocking(move || {
            partitions
                .into_iter()
                .filter_map(|p| c.fetch_watermarks(&topic, p, Timeout::After(Duration::from_millis(500))).ok().map(|(_, high)| (p, high)))
                .collect()
        })
        .await?;
        let client = self.pool.get().await?;
        for (p, high) in highs {
            let (_, done) = postgres::position(&client, &source_of(&self.kafka.topic, p)).await?;
            let lag = high - done.map(|d| d + 1).unwrap_or(0);
            metrics::gauge!("coffee_rt_v3_consumer_lag_records", "partition" => p.to_string()).set(lag.max(0) as f64);
        }
        Ok(())
    }
}

fn parse(payload: Option<&[u8]>, catalog: &Catalog) -> Result<Order, String> {
    let bytes = payload.ok_or("empty record")?;
    let record: OrderRecord = serde_json::from_slice(bytes).map_err(|e| format!("malformed order: {e}"))?;
    Order::from_record(record, catalog).map_err(|e| format!("invalid order: {e}"))
}

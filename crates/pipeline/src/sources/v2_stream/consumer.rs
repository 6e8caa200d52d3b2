//! The v2 worker: one consumer of the group `order-workers`.
//!
//! Life of a batch: XREADGROUP (size cap, or a time cap once the first entry arrived) →
//! parse (malformed entries go to the dead-letter stream) → the [`CommitStep`] (PostgreSQL, then
//! the Redis projection) → XACK. Nothing is acknowledged before PostgreSQL committed it, so a
//! crash anywhere replays the batch, and the commit step makes the replay harmless.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use coffee_core::{Catalog, Order, OrderRecord, Version};
use coffee_store::{Keys, PgPool, Projection, redis::blocking_connection};
use redis::{
    AsyncCommands, FromRedisValue, Value,
    aio::{ConnectionManager, MultiplexedConnection},
    streams::{StreamAutoClaimOptions, StreamId, StreamReadOptions, StreamReadReply},
};
use tokio::time::{Instant, sleep};

use super::{GROUP, ORDER_FIELD, dead_letter::dead_letter, ensure_group};
use crate::{
    commit::{CommitStep, Stopped},
    relay,
};

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Stable across restarts, so a restarted worker finds its own pending entries.
    pub consumer: String,
    pub max_batch: usize,
    /// How long a batch may keep filling after its first entry arrived.
    pub linger: Duration,
    /// Entries idle this long in another consumer's pending list are taken over (XAUTOCLAIM).
    /// Keep it above the longest honest batch.
    pub claim_min_idle: Duration,
    /// An entry delivered this many times without being acknowledged is dead-lettered.
    pub max_deliveries: usize,
    pub maintenance_every: Duration,
    /// Outbox entries older than this are adopted from writers that died.
    pub sweep_older_than: Duration,
}

impl WorkerConfig {
    pub fn new(consumer: impl Into<String>) -> WorkerConfig {
        WorkerConfig {
            consumer: consumer.into(),
            max_batch: 1_000,
            linger: Duration::from_millis(5),
            claim_min_idle: Duration::from_secs(30),
            max_deliveries: 5,
            maintenance_every: Duration::from_secs(2),
            sweep_older_than: Duration::from_secs(10),
        }
    }
}

pub struct Worker {
    config: WorkerConfig,
    pool: PgPool,
    projection: Projection,
    catalog: Arc<Catalog>,
    redis_url: String,
    stream: String,
    step: CommitStep,
    /// In-process count of failed attempts per entry id, for entries that fail on their own.
    failures: HashMap<String, usize>,
}

enum Outcome {
    Done,
    /// Shutdown came while PostgreSQL was unavailable: leave the entries pending.
    Abandoned,
}

impl Worker {
    pub fn new(config: WorkerConfig, pool: PgPool, projection: Projection, catalog: Arc<Catalog>, redis_url: &str) -> Worker {
        let step = CommitStep::new(pool.clone(), projection.clone(), Version::V2, format!("v2:{}", config.consumer));
        let stream = Keys::stream(projection.namespace());
        Worker { config, pool, projection, catalog, redis_url: redis_url.to_owned(), stream, step, failures: HashMap::new() }
    }

    /// Runs until `shutdown` resolves; the batch in hand is finished first.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        // The self-repair check runs beside the writer for as long as it runs: dropping
        // `_repair` (on any return) stops it.
        let (_repair, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(crate::repair::watch(self.pool.clone(), self.projection.clone(), Version::V2, async {
            let _ = stopped.await;
        }));
        let mut conn = self.projection.connection();
        let mut blocking = loop {
            match self.prepare(&mut conn).await {
                Ok(b) => break b,
                Err(e) => {
                    tracing::warn!(error = %e, "v2 worker waiting for its services");
                    tokio::select! { _ = &mut shutdown => return Ok(()), _ = sleep(Duration::from_secs(1)) => {} }
                }
            }
        };
        tracing::info!(consumer = %self.config.consumer, "v2 worker started");

        // First the entries this consumer was given before it last stopped.
        if let Outcome::Abandoned = self.own_pending(&mut blocking, &mut shutdown).await? {
            return Ok(());
        }

        let mut next_maintenance = Instant::now();
        loop {
            let batch = tokio::select! {
                biased;
                _ = &mut shutdown => break,
                b = self.read_new(&mut blocking) => b,
            };
            match batch {
                Ok(batch) if !batch.is_empty() => {
                    if let Outcome::Abandoned = self.process(batch, &mut shutdown).await? {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) if e.code() == Some("NOGROUP") => {
                    // Redis came back without the stream or the group (restarted empty, a
                    // failover to an empty replica, FLUSHALL). Orders the API accepts from now
                    // on go to a new stream: recreate the group at `0` so they are all read.
                    // Whatever is replayed, PostgreSQL deduplicates by order id.
                    tracing::warn!("the v2 consumer group is gone; recreating it at 0");
                    metrics::counter!("coffee_rt_v2_group_recreated_total").increment(1);
                    if let Err(e) = ensure_group(&mut conn, self.projection.namespace()).await {
                        tracing::warn!(error = %e, "recreating the v2 consumer group failed");
                        sleep(Duration::from_millis(500)).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "XREADGROUP failed; reconnecting");
                    sleep(Duration::from_millis(500)).await;
                    if let Ok(b) = blocking_connection(&self.redis_url).await {
                        blocking = b;
                        // The lost connection may have taken an XREADGROUP reply with it: those
                        // entries are delivered to this consumer and would wait for XAUTOCLAIM's
                        // idle time (30 s) before anyone stores them. Read them back now.
                        match self.own_pending(&mut blocking, &mut shutdown).await {
                            Ok(Outcome::Abandoned) => break,
                            Ok(Outcome::Done) => {}
                            Err(e) => tracing::warn!(error = %e, "re-reading this consumer's pending entries failed"),
                        }
                    }
                }
            }
            if Instant::now() >= next_maintenance {
                if let Err(e) = self.maintain(&mut conn, &mut shutdown).await {
                    tracing::warn!(error = %e, "v2 maintenance failed");
                }
                next_maintenance = Instant::now() + self.config.maintenance_every;
            }
        }
        tracing::info!(consumer = %self.config.consumer, "v2 worker stopped");
        Ok(())
    }

    /// Processes the entries delivered to this consumer and not yet acknowledged, oldest first.
    async fn own_pending(
        &mut self,
        blocking: &mut MultiplexedConnection,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
    ) -> anyhow::Result<Outcome> {
        let mut cursor = "0".to_owned();
        loop {
            let batch = self.read(blocking, &cursor, None).await?;
            let Some(last) = batch.last() else { return Ok(Outcome::Done) };
            cursor = last.id.clone();
            if let Outcome::Abandoned = self.process(batch, shutdown).await? {
                return Ok(Outcome::Abandoned);
            }
        }
    }

    async fn prepare(&self, conn: &mut ConnectionManager) -> anyhow::Result<MultiplexedConnection> {
        ensure_group(conn, self.projection.namespace()).await?;
        if let Err(e) = relay::drain(&self.pool, &self.projection, self.step.source()).await {
            // Orders keep landing in PostgreSQL; only the projection waits for the repair.
            tracing::error!(error = %e, "v2 outbox not drained");
        }
        Ok(blocking_connection(&self.redis_url).await?)
    }

    /// XREADGROUP from `id` (`>` for new entries, an id for this consumer's own pending ones).
    async fn read(&self, conn: &mut MultiplexedConnection, id: &str, block: Option<Duration>) -> redis::RedisResult<Vec<StreamId>> {
        let mut opts = StreamReadOptions::default().group(GROUP, &self.config.consumer).count(self.config.max_batch);
        if let Some(b) = block {
            opts = opts.block(b.as_millis().max(1) as usize);
        }
        let reply: Option<StreamReadReply> = conn.xread_options(&[&self.stream], &[id], &opts).await?;
        Ok(reply.map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect()).unwrap_or_default())
    }

    /// New entries: blocks up to a second for the first, then fills for at most `linger`.
    async fn read_new(&self, conn: &mut MultiplexedConnection) -> redis::RedisResult<Vec<StreamId>> {
        let mut batch = self.read(conn, ">", Some(Duration::from_secs(1))).await?;
        if batch.is_empty() || self.config.linger.is_zero() {
            return Ok(batch);
        }
        let deadline = Instant::now() + self.config.linger;
        while batch.len() < self.config.max_batch {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let mut opts = StreamReadOptions::default().group(GROUP, &self.config.consumer).count(self.config.max_batch - batch.len());
            opts = opts.block(left.as_millis().max(1) as usize);
            let reply: Option<StreamReadReply> = conn.xread_options(&[&self.stream], &[">"], &opts).await?;
            let more: Vec<StreamId> = reply.map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect()).unwrap_or_default();
            if more.is_empty() {
                break;
            }
            batch.extend(more);
        }
        Ok(batch)
    }

    async fn process(&mut self, entries: Vec<StreamId>, shutdown: &mut (impl Future<Output = ()> + Unpin)) -> anyhow::Result<Outcome> {
        let started = std::time::Instant::now();
        let mut conn = self.projection.connection();
        let mut orders = Vec::with_capacity(entries.len());
        let mut ids = Vec::with_capacity(entries.len());
        for e in &entries {
            match parse_entry(e, &self.catalog) {
                Ok(order) => {
                    orders.push((order, None));
                    ids.push(e.id.clone());
                }
                Err(reason) => {
                    tracing::warn!(id = %e.id, %reason, "dead-lettering malformed v2 entry");
                    dead_letter(&mut conn, self.projection.namespace(), GROUP, &e.id, &fields(e), &reason).await?;
                }
            }
        }
        if orders.is_empty() {
            return Ok(Outcome::Done);
        }
        metrics::histogram!("coffee_rt_batch_orders", "stage" => "v2_worker").record(orders.len() as f64);
        match self.step.commit(&orders, None, shutdown).await {
            Ok(_) => {}
            Err(Stopped::Refused(e)) => {
                tracing::warn!(error = %e, "v2 batch refused by PostgreSQL");
                return self.isolate(&entries, orders, ids, shutdown).await;
            }
            Err(Stopped::ShuttingDown) => return Ok(Outcome::Abandoned),
        }
        let _: () = conn
            .xack(&self.stream, GROUP, &ids)
            .await
            .unwrap_or_else(|e| tracing::warn!(error = %e, "XACK failed; entries will be redelivered and skipped"));
        metrics::histogram!("coffee_rt_flush_duration_seconds", "stage" => "v2_worker").record(started.elapsed().as_secs_f64());
        Ok(Outcome::Done)
    }

    /// A batch PostgreSQL refused: retry entry by entry, so one bad entry cannot hold back the
    /// rest. An entry that keeps failing alone is dead-lettered after `max_deliveries` tries.
    async fn isolate(
        &mut self,
        entries: &[StreamId],
        orders: Vec<(Order, Option<i64>)>,
        ids: Vec<String>,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
    ) -> anyhow::Result<Outcome> {
        let mut conn = self.projection.connection();
        for (order, id) in orders.into_iter().zip(ids) {
            match self.step.commit(std::slice::from_ref(&order), None, shutdown).await {
                Ok(_) => {
                    let _: () = conn.xack(&self.stream, GROUP, &[&id]).await?;
                    self.failures.remove(&id);
                }
                Err(Stopped::Refused(e)) => {
                    tracing::warn!(%id, error = %e, "v2 entry refused by PostgreSQL");
                    let n = self.failures.entry(id.clone()).or_default();
                    *n += 1;
                    if *n >= self.config.max_deliveries {
                        let e = entries.iter().find(|e| e.id == id).expect("id from this batch");
                        dead_letter(&mut conn, self.projection.namespace(), GROUP, &id, &fields(e), "refused by PostgreSQL").await?;
                        self.failures.remove(&id);
                    }
                }
                Err(Stopped::ShuttingDown) => return Ok(Outcome::Abandoned),
            }
        }
        Ok(Outcome::Done)
    }

    /// Takes over entries stuck with dead consumers, adopts orphaned outbox entries, and
    /// publishes the group's lag.
    async fn maintain(&mut self, conn: &mut ConnectionManager, shutdown: &mut (impl Future<Output = ()> + Unpin)) -> anyhow::Result<()> {
        let opts = StreamAutoClaimOptions::default().count(self.config.max_batch);
        let min_idle = self.config.claim_min_idle.as_millis() as u64;
        let claimed: redis::streams::StreamAutoClaimReply =
            conn.xautoclaim_options(&self.stream, GROUP, &self.config.consumer, min_idle, "0-0", opts).await?;
        if !claimed.claimed.is_empty() {
            tracing::info!(count = claimed.claimed.len(), "took over entries from a dead consumer");
            metrics::counter!("coffee_rt_v2_claimed_total").increment(claimed.claimed.len() as u64);
            let mut keep = Vec::new();
            for e in claimed.claimed {
                let pending: redis::streams::StreamPendingCountReply = conn.xpending_count(&self.stream, GROUP, &e.id, &e.id, 1).await?;
                let delivered = pending.ids.first().map(|p| p.times_delivered).unwrap_or(0);
                if delivered > self.config.max_deliveries {
                    dead_letter(conn, self.projection.namespace(), GROUP, &e.id, &fields(&e), &format!("delivered {delivered} times"))
                        .await?;
                } else {
                    keep.push(e);
                }
            }
            if !keep.is_empty() {
                self.process(keep, shutdown).await?;
            }
        }
        relay::sweep(&self.pool, &self.projection, "v2:%", self.config.sweep_older_than).await?;
        relay::publish_outbox_depth(&self.pool, Version::V2).await?;
        let info: redis::streams::StreamInfoGroupsReply = conn.xinfo_groups(&self.stream).await?;
        if let Some(g) = info.groups.iter().find(|g| g.name == GROUP) {
            metrics::gauge!("coffee_rt_v2_consumer_lag_entries").set(g.lag.unwrap_or(0) as f64);
            metrics::gauge!("coffee_rt_v2_pending_entries").set(g.pending as f64);
        }
        Ok(())
    }
}

fn fields(e: &StreamId) -> Vec<(String, String)> {
    e.map.iter().map(|(k, v)| (k.clone(), String::from_redis_value(v.clone()).unwrap_or_else(|_| format!("{v:?}")))).collect()
}

fn parse_entry(e: &StreamId, catalog: &Catalog) -> Result<Order, String> {
    let raw: &Value = e.map.get(ORDER_FIELD).ok_or_else(|| format!("no `{ORDER_FIELD}` field"))?;
    let text = String::from_redis_value(raw.clone()).map_err(|e| format!("`{ORDER_FIELD}` is not text: {e}"))?;
    let record: OrderRecord = serde_json::from_str(&text).map_err(|e| format!("malformed order: {e}"))?;
    Order::from_record(record, catalog).map_err(|e| format!("invalid order: {e}"))
}

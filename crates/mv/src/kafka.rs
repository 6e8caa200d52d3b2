//! Broker plumbing: topic creation, producing events, and replaying a topic
//! from the beginning with a "caught up" signal.
//!
//! The engines do not use consumer groups: every instance needs every price
//! and every position change, and a restart must replay the topics from the
//! start on top of the PostgreSQL snapshot. So each reader assigns all
//! partitions itself and remembers the high watermarks it saw at start;
//! reaching them is "rebuilt".

use crate::model::{PositionEvent, PriceUpdate};
use anyhow::{Context, Result, bail};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

const META_TIMEOUT: Duration = Duration::from_secs(10);

pub fn base_config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    c
}

/// Creates topics; an existing topic is fine (restarts reuse them).
pub async fn create_topics(brokers: &str, topics: &[&str], partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = base_config(brokers).create().context("admin client")?;
    let new: Vec<NewTopic> = topics.iter().map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1))).collect();
    let res = admin.create_topics(&new, &AdminOptions::new().operation_timeout(Some(META_TIMEOUT))).await?;
    for r in res {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => bail!("creating topic {t}: {e}"),
        }
    }
    Ok(())
}

pub fn producer(brokers: &str) -> Result<FutureProducer> {
    base_config(brokers).set("linger.ms", "0").set("message.timeout.ms", "10000").create().context("producer")
}

/// For loading many events at once: lets librdkafka batch them into few
/// produce requests (a slow broker times out thousands of tiny ones) and
/// gives it a minute.
pub fn bulk_producer(brokers: &str) -> Result<FutureProducer> {
    base_config(brokers)
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("message.timeout.ms", "60000")
        .create()
        .context("bulk producer")
}

async fn send(p: &FutureProducer, topic: &str, key: &str, payload: &[u8]) -> Result<()> {
    p.send(FutureRecord::to(topic).key(key).payload(payload), Duration::from_secs(10))
        .await
        .map_err(|(e, _)| anyhow::anyhow!("producing to {topic}: {e}"))?;
    Ok(())
}

/// Price updates are keyed by instrument: per-instrument order is kept.
pub async fn send_price(p: &FutureProducer, topic: &str, u: &PriceUpdate) -> Result<()> {
    send(p, topic, &u.instrument.to_string(), &serde_json::to_vec(u)?).await
}

pub async fn send_position(p: &FutureProducer, topic: &str, ev: &PositionEvent) -> Result<()> {
    send(p, topic, &ev.key(), &serde_json::to_vec(ev)?).await
}

/// A whole-topic reader positioned at the beginning of every partition.
pub struct TopicReplay {
    topic: String,
    consumer: StreamConsumer,
    /// Offset each partition must reach to be caught up (its high watermark
    /// when the replay was opened); partitions already there are left out.
    pending: HashMap<i32, i64>,
}

impl TopicReplay {
    pub async fn open(brokers: &str, topic: &str) -> Result<TopicReplay> {
        let brokers = brokers.to_string();
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || {
            let consumer: StreamConsumer = base_config(&brokers)
                .set("group.id", format!("coffee-mv-replay-{}", std::process::id()))
                .set("enable.auto.commit", "false")
                .set("auto.offset.reset", "earliest")
                .set("session.timeout.ms", "6000")
                .set("fetch.wait.max.ms", "5")
                .create()
                .context("consumer")?;
            let md = consumer.fetch_metadata(Some(&topic), META_TIMEOUT).with_context(|| format!("metadata of {topic}"))?;
            let t = md.topics().iter().find(|t| t.name() == topic).context("topic missing from metadata")?;
            if let Some(e) = t.error() {
                bail!("topic {topic}: {e:?}");
            }
            if t.partitions().is_empty() {
                bail!("topic {topic} has no partitions");
            }
            let mut tpl = TopicPartitionList::new();
            let mut pending = HashMap::new();
            for p in t.partitions() {
                tpl.add_partition_offset(&topic, p.id(), Offset::Beginning)?;
                let (low, high) = consumer.fetch_watermarks(&topic, p.id(), META_TIMEOUT)?;
                if high > low {
                    pending.insert(p.id(), high);
                }
            }
            consumer.assign(&tpl)?;
            Ok(TopicReplay { topic, consumer, pending })
        })
        .await?
    }

    /// Replays until caught up with the start watermarks, then stops.
    pub async fn replay_to_end(self, apply: impl FnMut(&[u8]) -> Result<()>) -> Result<u64> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.run(apply, tx, async move {
            let _ = rx.await;
        })
        .await
    }

    /// True once every partition reached its watermark from `open`.
    pub fn caught_up(&self) -> bool {
        self.pending.is_empty()
    }

    /// The next message's payload. Transport errors are transient
    /// (librdkafka reconnects by itself), so they are logged and retried
    /// rather than ending valuation. Cancel-safe.
    pub async fn next(&mut self) -> Vec<u8> {
        loop {
            match self.consumer.recv().await {
                Ok(m) => {
                    if let Some(&high) = self.pending.get(&m.partition())
                        && m.offset() + 1 >= high
                    {
                        self.pending.remove(&m.partition());
                    }
                    return m.payload().unwrap_or_default().to_vec();
                }
                Err(e) => {
                    tracing::warn!(topic = %self.topic, "read error: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Feeds every message payload to `apply` until `shutdown` resolves.
    /// `caught_up` fires once all partitions reached their start watermark.
    /// A payload `apply` rejects is logged and counted, not fatal: one bad
    /// event must not stop valuation for everyone. Returns the rejected count.
    pub async fn run(
        mut self,
        mut apply: impl FnMut(&[u8]) -> Result<()>,
        caught_up: tokio::sync::oneshot::Sender<()>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<u64> {
        let mut caught_up = Some(caught_up);
        let mut rejected = 0u64;
        tokio::pin!(shutdown);
        loop {
            if self.caught_up()
                && let Some(tx) = caught_up.take()
            {
                let _ = tx.send(());
            }
            let payload = tokio::select! {
                _ = &mut shutdown => return Ok(rejected),
                p = self.next() => p,
            };
            if let Err(e) = apply(&payload) {
                rejected += 1;
                tracing::error!(topic = %self.topic, "rejected event: {e:#}");
            }
        }
    }
}

pub fn decode_price(b: &[u8]) -> Result<PriceUpdate> {
    serde_json::from_slice(b).context("decoding price update")
}

pub fn decode_position(b: &[u8]) -> Result<PositionEvent> {
    serde_json::from_slice(b).context("decoding position event")
}

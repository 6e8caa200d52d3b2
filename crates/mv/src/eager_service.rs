//! `coffee-mv eager`: strategy A as a service. Rebuilds from PostgreSQL and both
//! topics (emitting nothing), then revalues on every price and position
//! event and publishes one [`AccountChange`] per affected account to the
//! output topic, keyed by account.

use crate::config::EagerArgs;
use crate::eager::{AccountChange, EagerEngine};
use crate::kafka::{self, TopicReplay};
use crate::sources;
use anyhow::{Context, Result};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Runs until `shutdown` is cancelled, then flushes what it produced.
pub async fn run(args: EagerArgs, shutdown: CancellationToken) -> Result<()> {
    serve_eager(&args, || {}, shutdown.cancelled_owned()).await
}

/// Enqueues one change; waits for room when librdkafka's queue is full
/// (backpressure instead of dropping).
async fn publish(p: &FutureProducer, topic: &str, c: &AccountChange) -> Result<()> {
    let payload = serde_json::to_vec(c)?;
    let key = c.account.to_string();
    loop {
        match p.send_result(FutureRecord::to(topic).key(&key).payload(&payload)) {
            Ok(_delivery) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err((e, _)) => return Err(e).context("enqueueing account change"),
        }
    }
}

/// Rebuilds, calls `ready` (events published after that are live, not part
/// of the rebuild), then runs until `shutdown` resolves. A shutdown during
/// the rebuild ends it there, without calling `ready`.
pub async fn serve_eager(args: &EagerArgs, ready: impl FnOnce(), shutdown: impl Future<Output = ()>) -> Result<()> {
    tokio::pin!(shutdown);
    let t0 = Instant::now();
    let Rebuilt { mut engine, rows, mut positions, mut prices } = tokio::select! {
        r = rebuild(args) => r?,
        _ = &mut shutdown => return Ok(()),
    };
    tracing::info!(rows, rebuild_ms = t0.elapsed().as_millis() as u64, "strategy A rebuilt");
    ready();

    let producer = kafka::producer(&args.sources.services.brokers)?;
    let mut out: Vec<AccountChange> = Vec::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            p = prices.next() => match kafka::decode_price(&p) {
                Ok(u) => engine.apply_price(&u, |c| out.push(c)),
                Err(e) => tracing::error!("rejected price: {e:#}"),
            },
            p = positions.next() => {
                let r = kafka::decode_position(&p).and_then(|ev| Ok(engine.apply_position(&ev, |c| out.push(c))?));
                if let Err(e) = r {
                    tracing::error!("rejected position event: {e:#}");
                }
            }
        }
        for c in out.drain(..) {
            publish(&producer, &args.output_topic, &c).await?;
        }
    }
    producer.flush(Duration::from_secs(10)).context("flushing account changes")?;
    Ok(())
}

/// The rebuilt engine and both topic readers, positioned where the rebuild
/// stopped: they simply continue from there.
struct Rebuilt {
    engine: EagerEngine,
    /// Rows loaded from PostgreSQL.
    rows: u64,
    positions: TopicReplay,
    prices: TopicReplay,
}

/// The engine from PostgreSQL, then both topics replayed silently (nothing
/// is published) up to their start watermarks: positions first, then prices.
async fn rebuild(args: &EagerArgs) -> Result<Rebuilt> {
    let src = &args.sources;
    let brokers = &src.services.brokers;
    let (mut engine, rows) = sources::load_pg(
        src,
        |s| EagerEngine::with_capacity(s.instruments, s.accounts, s.accounts, s.max_order_id),
        |e, ev| Ok(e.load(ev)?),
    )
    .await?;
    src.ensure_topics().await?;
    kafka::create_topics(brokers, &[&args.output_topic], src.partitions).await?;
    let mut positions = TopicReplay::open(brokers, &src.position_topic).await?;
    let mut prices = TopicReplay::open(brokers, &src.price_topic).await?;
    while !positions.caught_up() {
        if let Err(e) = engine.load(&kafka::decode_position(&positions.next().await)?) {
            tracing::error!("rejected position event: {e}");
        }
    }
    while !prices.caught_up() {
        engine.apply_price(&kafka::decode_price(&prices.next().await)?, |_| {});
    }
    Ok(Rebuilt { engine, rows, positions, prices })
}

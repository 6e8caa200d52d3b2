//! `mv eager`: strategy A as a service. Rebuilds from PostgreSQL and both
//! topics (emitting nothing), then revalues on every price and position
//! event and publishes one [`AccountChange`] per affected account to the
//! output topic, keyed by account.

use crate::eager::{AccountChange, EagerEngine};
use crate::kafka::{self, TopicReplay};
use crate::sources::{self, SourceArgs};
use anyhow::{Context, Result};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use std::future::Future;
use std::time::{Duration, Instant};

#[derive(clap::Args, Clone, Debug)]
pub struct EagerArgs {
    #[command(flatten)]
    pub sources: SourceArgs,
    /// Where per-account changes go.
    #[arg(long, default_value = "mv.account-changes")]
    pub output_topic: String,
}

pub async fn run(args: EagerArgs) -> Result<()> {
    serve_eager(&args, || {}, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
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
/// of the rebuild), then runs until `shutdown` resolves.
pub async fn serve_eager(args: &EagerArgs, ready: impl FnOnce(), shutdown: impl Future<Output = ()>) -> Result<()> {
    let src = &args.sources;
    let t0 = Instant::now();
    let (mut engine, rows) = sources::load_pg(
        src,
        |s| EagerEngine::with_capacity(s.instruments, s.accounts, s.accounts, s.max_order_id),
        |e, ev| Ok(e.load(ev)?),
    )
    .await?;
    src.ensure_topics().await?;
    kafka::create_topics(&src.brokers, &[&args.output_topic], src.partitions).await?;
    let mut positions = TopicReplay::open(&src.brokers, &src.position_topic).await?;
    let mut prices = TopicReplay::open(&src.brokers, &src.price_topic).await?;
    // Rebuild: positions first, then prices, silently. Afterwards both
    // readers simply continue from where the rebuild stopped.
    while !positions.caught_up() {
        if let Err(e) = engine.load(&kafka::decode_position(&positions.next().await)?) {
            tracing::error!("rejected position event: {e}");
        }
    }
    while !prices.caught_up() {
        engine.apply_price(&kafka::decode_price(&prices.next().await)?, |_| {});
    }
    tracing::info!(rows, rebuild_ms = t0.elapsed().as_millis() as u64, "strategy A rebuilt");
    ready();

    let producer = kafka::producer(&src.brokers)?;
    let mut out: Vec<AccountChange> = Vec::new();
    tokio::pin!(shutdown);
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

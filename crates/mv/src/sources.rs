//! Where state comes from: PostgreSQL for the start-of-day snapshot, the
//! broker for prices and position changes. Shared by `serve` and `bench`.

use crate::api::RebuildStats;
use crate::kafka::{self, TopicReplay};
use crate::model::{PositionEvent, PriceUpdate};
use crate::pg;
use anyhow::Result;
use std::time::Instant;

#[derive(clap::Args, Clone, Debug)]
pub struct SourceArgs {
    /// PostgreSQL holding mv_holdings / mv_orders.
    #[arg(long, env = "MV_DATABASE_URL", default_value = "postgres://coffee:coffee@127.0.0.1/coffee_mv")]
    pub database_url: String,
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Price updates, keyed by instrument.
    #[arg(long, default_value = "mv.prices")]
    pub price_topic: String,
    /// Holding and order changes, keyed by account / order id.
    #[arg(long, default_value = "mv.positions")]
    pub position_topic: String,
    /// Partitions for topics this process has to create.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
}

impl SourceArgs {
    pub async fn ensure_topics(&self) -> Result<()> {
        kafka::create_topics(&self.brokers, &[&self.price_topic, &self.position_topic], self.partitions).await
    }
}

/// Creates the schema if missing and COPYs every holding and order into a
/// fresh engine. Returns the engine and the row count.
pub async fn load_pg<E>(
    src: &SourceArgs,
    before_load: impl FnOnce(pg::Sizes) -> E,
    mut load: impl FnMut(&mut E, &PositionEvent) -> Result<()>,
) -> Result<(E, u64)> {
    let client = pg::connect(&src.database_url).await?;
    pg::create_schema(&client).await?;
    let mut engine = before_load(pg::sizes(&client).await?);
    let rows = pg::load_positions(&client, |ev| load(&mut engine, ev)).await?;
    Ok((engine, rows))
}

/// Replays the positions topic, then the prices topic, from the beginning
/// to the watermarks they had when each replay opened. Returns the events.
pub async fn replay_topics<E>(
    src: &SourceArgs,
    engine: &mut E,
    mut load: impl FnMut(&mut E, &PositionEvent) -> Result<()>,
    mut price: impl FnMut(&mut E, &PriceUpdate) -> Result<()>,
) -> Result<u64> {
    src.ensure_topics().await?;
    let mut events = 0u64;
    let replay = TopicReplay::open(&src.brokers, &src.position_topic).await?;
    let rejected = replay
        .replay_to_end(|b| {
            events += 1;
            load(engine, &kafka::decode_position(b)?)
        })
        .await?;
    let replay = TopicReplay::open(&src.brokers, &src.price_topic).await?;
    let rejected = rejected
        + replay
            .replay_to_end(|b| {
                events += 1;
                price(engine, &kafka::decode_price(b)?)
            })
            .await?;
    anyhow::ensure!(rejected == 0, "{rejected} events rejected during replay");
    Ok(events)
}

/// Rebuilds any engine: COPY from PostgreSQL, then [`replay_topics`].
/// `before_load` receives table sizes so the engine can pre-allocate.
pub async fn rebuild<E>(
    src: &SourceArgs,
    before_load: impl FnOnce(pg::Sizes) -> E,
    mut load: impl FnMut(&mut E, &PositionEvent) -> Result<()>,
    price: impl FnMut(&mut E, &PriceUpdate) -> Result<()>,
) -> Result<(E, RebuildStats)> {
    let t0 = Instant::now();
    let (mut engine, pg_rows) = load_pg(src, before_load, &mut load).await?;
    let pg_load_ms = t0.elapsed().as_millis() as u64;
    let t1 = Instant::now();
    let topic_events = replay_topics(src, &mut engine, load, price).await?;
    let stats = RebuildStats {
        pg_rows,
        pg_load_ms,
        topic_events,
        topic_replay_ms: t1.elapsed().as_millis() as u64,
        total_ms: t0.elapsed().as_millis() as u64,
    };
    tracing::info!(?stats, "rebuilt");
    Ok((engine, stats))
}

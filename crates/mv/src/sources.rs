//! Where state comes from: PostgreSQL for the start-of-day snapshot, the
//! broker for prices and position changes. Shared by `serve`, `eager` and `bench`.

use crate::config::SourceArgs;
use crate::kafka::{self, TopicReplay};
use crate::model::{PositionEvent, PriceUpdate};
use crate::pg;
use anyhow::Result;

impl SourceArgs {
    pub async fn ensure_topics(&self) -> Result<()> {
        kafka::create_topics(&self.services.brokers, &[&self.price_topic, &self.position_topic], self.partitions).await
    }
}

/// Creates the schema if missing and COPYs every holding and order into a
/// fresh engine. Returns the engine and the row count.
pub async fn load_pg<E>(
    src: &SourceArgs,
    before_load: impl FnOnce(pg::Sizes) -> E,
    mut load: impl FnMut(&mut E, &PositionEvent) -> Result<()>,
) -> Result<(E, u64)> {
    let client = pg::connect(&src.services.database_url).await?;
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
    let replay = TopicReplay::open(&src.services.brokers, &src.position_topic).await?;
    let rejected = replay
        .replay_to_end(|b| {
            events += 1;
            load(engine, &kafka::decode_position(b)?)
        })
        .await?;
    let replay = TopicReplay::open(&src.services.brokers, &src.price_topic).await?;
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

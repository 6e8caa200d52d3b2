//! Puts the data set where the strategies rebuild from: the scratch database
//! (below full scale) and fresh topics holding the opening prices and a
//! stream of intraday position changes; and removes both afterwards.

use super::BenchArgs;
use crate::config::SourceArgs;
use crate::dataset::{DataSet, splitmix64};
use crate::kafka;
use crate::model::{Order, PositionEvent, Price, Side};
use crate::pg;
use anyhow::Result;
use coffee_store::postgres::ScratchDatabase;
use futures::{StreamExt, TryStreamExt};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use std::time::Instant;

/// The k-th intraday change: a third holding changes, a third new orders
/// (ids past the loaded ones), a third cancels of loaded orders.
pub fn position_event(ds: &DataSet, k: u64) -> PositionEvent {
    let r = splitmix64(ds.seed ^ splitmix64(0xC0FFEE ^ k));
    let a = (r % ds.accounts as u64) as u32;
    let i = ((r >> 20) % ds.instruments as u64) as u32;
    match k % 3 {
        0 => PositionEvent::Holding(crate::model::Holding { account: a, instrument: i, qty: ((r >> 40) % 2000) as i64 }),
        1 => PositionEvent::Order(Order {
            id: ds.orders_count() + k,
            account: a,
            instrument: i,
            side: if r & 1 == 0 { Side::Buy } else { Side::Sell },
            qty: 1 + ((r >> 44) % 500) as i64,
            limit_price: Price(ds.initial_price(i).0),
        }),
        _ => PositionEvent::OrderCancel { id: (r >> 8) % ds.orders_count() },
    }
}

pub async fn run(args: &BenchArgs, ds: &DataSet, src: &SourceArgs) -> Result<()> {
    if args.uses_postgres() {
        let t = Instant::now();
        let mut client = pg::connect(&src.services.database_url).await?;
        pg::create_schema(&client).await?;
        pg::copy_in_dataset(&mut client, ds).await?;
        tracing::info!(
            holdings = ds.holdings_count(),
            orders = ds.orders_count(),
            secs = t.elapsed().as_secs_f64(),
            "data set copied into PostgreSQL"
        );
    }
    let t = Instant::now();
    src.ensure_topics().await?;
    let producer = kafka::bulk_producer(&src.services.brokers)?;
    let p = &producer;
    futures::stream::iter(ds.initial_prices().collect::<Vec<_>>())
        .map(|u| async move { kafka::send_price(p, &src.price_topic, &u).await })
        .buffer_unordered(1024)
        .try_collect::<()>()
        .await?;
    futures::stream::iter(0..args.position_events)
        .map(|k| async move { kafka::send_position(p, &src.position_topic, &position_event(ds, k)).await })
        .buffer_unordered(1024)
        .try_collect::<()>()
        .await?;
    tracing::info!(secs = t.elapsed().as_secs_f64(), "topics published");
    Ok(())
}

/// Best effort: a failed cleanup must not hide the results.
pub async fn cleanup(args: &BenchArgs, src: &SourceArgs, db: Option<&ScratchDatabase>) {
    if let Ok(admin) = kafka::base_config(&src.services.brokers).create::<AdminClient<DefaultClientContext>>()
        && let Err(e) = admin.delete_topics(&[&src.price_topic, &src.position_topic], &AdminOptions::new()).await
    {
        tracing::warn!("deleting bench topics: {e}");
    }
    match db {
        Some(db) if args.keep_db => tracing::info!(database = db.name(), "bench database kept"),
        Some(db) => {
            if let Err(e) = db.drop_now().await {
                tracing::warn!("dropping bench database: {e:#}");
            }
        }
        None => {}
    }
}

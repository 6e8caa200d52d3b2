//! Builds a strategy's state the way a restart would, timing each phase:
//! COPY from PostgreSQL (or in-memory generation at full scale), then the
//! topic replay.

use super::BenchArgs;
use crate::config::SourceArgs;
use crate::model::{PositionEvent, PriceUpdate};
use crate::pg::Sizes;
use crate::sources;
use anyhow::Result;
use std::time::Instant;

pub struct Built<E> {
    pub engine: E,
    pub load_s: f64,
    pub topic_s: f64,
    pub topic_events: u64,
}

impl<E> Built<E> {
    pub fn source(args: &BenchArgs) -> &'static str {
        if args.uses_postgres() { "postgres" } else { "memory" }
    }
}

pub async fn build<E>(
    args: &BenchArgs,
    src: &SourceArgs,
    make: impl FnOnce(Sizes) -> E,
    mut load: impl FnMut(&mut E, &PositionEvent) -> Result<()>,
    price: impl FnMut(&mut E, &PriceUpdate) -> Result<()>,
) -> Result<Built<E>> {
    let ds = args.dataset();
    let t0 = Instant::now();
    let mut engine = if args.uses_postgres() {
        sources::load_pg(src, make, &mut load).await?.0
    } else {
        let mut e = make(Sizes {
            accounts: ds.accounts as usize,
            instruments: ds.instruments as usize,
            holdings: ds.holdings_count() as usize,
            max_order_id: ds.orders_count() as usize,
        });
        for ev in ds.positions() {
            load(&mut e, &ev)?;
        }
        e
    };
    let load_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let topic_events = sources::replay_topics(src, &mut engine, load, price).await?;
    Ok(Built { engine, load_s, topic_s: t1.elapsed().as_secs_f64(), topic_events })
}

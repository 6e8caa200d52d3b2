//! PostgreSQL: the schema, bulk COPY of a data set in, and the rebuild-time
//! COPY of all holdings and orders out. Binary COPY both ways: no text
//! parsing, and the whole table streams through one statement. Throw-away
//! databases (bench, tests) are `coffee_store::postgres::ScratchDatabase`.

use crate::dataset::DataSet;
use crate::model::{Holding, Order, PositionEvent, Price, Side};
use anyhow::{Context, Result};
use futures::{StreamExt, pin_mut};
use tokio_postgres::binary_copy::{BinaryCopyInWriter, BinaryCopyOutStream};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS mv_accounts (id int4 PRIMARY KEY, name text NOT NULL);
CREATE TABLE IF NOT EXISTS mv_instruments (id int4 PRIMARY KEY, symbol text NOT NULL);
CREATE TABLE IF NOT EXISTS mv_holdings (
    account_id int4 NOT NULL, instrument_id int4 NOT NULL, qty int8 NOT NULL,
    PRIMARY KEY (account_id, instrument_id));
CREATE TABLE IF NOT EXISTS mv_orders (
    order_id int8 PRIMARY KEY, account_id int4 NOT NULL, instrument_id int4 NOT NULL,
    side text NOT NULL CHECK (side IN ('buy', 'sell')), qty int8 NOT NULL,
    limit_price int8 NOT NULL);
";

/// Connects and drives the connection on its own task.
pub async fn connect(url: &str) -> Result<Client> {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.with_context(|| format!("connecting to {url}"))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!("postgres connection ended: {e}");
        }
    });
    Ok(client)
}

pub async fn create_schema(client: &Client) -> Result<()> {
    client.batch_execute(SCHEMA).await.context("creating mv schema")
}

/// Bulk-loads a generated data set (tables must be empty).
pub async fn copy_in_dataset(client: &mut Client, ds: &DataSet) -> Result<()> {
    let tx = client.transaction().await?;
    // Keys are built once after the load, far cheaper than per row.
    tx.batch_execute(
        "ALTER TABLE mv_holdings DROP CONSTRAINT IF EXISTS mv_holdings_pkey;
         ALTER TABLE mv_orders DROP CONSTRAINT IF EXISTS mv_orders_pkey;",
    )
    .await?;
    tx.batch_execute(&format!(
        "INSERT INTO mv_accounts SELECT g, 'account-' || g FROM generate_series(0, {}) g;
         INSERT INTO mv_instruments SELECT g, 'INS' || g FROM generate_series(0, {}) g;",
        ds.accounts - 1,
        ds.instruments - 1
    ))
    .await?;
    {
        let sink = tx.copy_in("COPY mv_holdings (account_id, instrument_id, qty) FROM STDIN BINARY").await?;
        let w = BinaryCopyInWriter::new(sink, &[Type::INT4, Type::INT4, Type::INT8]);
        pin_mut!(w);
        for h in ds.holdings() {
            w.as_mut().write(&[&(h.account as i32), &(h.instrument as i32), &h.qty]).await?;
        }
        w.finish().await?;
    }
    {
        let sink = tx.copy_in("COPY mv_orders (order_id, account_id, instrument_id, side, qty, limit_price) FROM STDIN BINARY").await?;
        let w = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::INT4, Type::INT4, Type::TEXT, Type::INT8, Type::INT8]);
        pin_mut!(w);
        for o in ds.orders() {
            w.as_mut()
                .write(&[&(o.id as i64), &(o.account as i32), &(o.instrument as i32), &o.side.as_str(), &o.qty, &o.limit_price.0])
                .await?;
        }
        w.finish().await?;
    }
    tx.batch_execute(
        "ALTER TABLE mv_holdings ADD PRIMARY KEY (account_id, instrument_id);
         ALTER TABLE mv_orders ADD PRIMARY KEY (order_id);",
    )
    .await?;
    tx.commit().await?;
    client.batch_execute("ANALYZE mv_holdings; ANALYZE mv_orders;").await?;
    Ok(())
}

/// Sizes to pre-allocate engine state with before a COPY load.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sizes {
    pub accounts: usize,
    pub instruments: usize,
    pub holdings: usize,
    pub max_order_id: usize,
}

pub async fn sizes(client: &Client) -> Result<Sizes> {
    let r = client
        .query_one(
            "SELECT (SELECT count(*) FROM mv_accounts), (SELECT count(*) FROM mv_instruments),
                    (SELECT count(*) FROM mv_holdings), (SELECT coalesce(max(order_id) + 1, 0) FROM mv_orders)",
            &[],
        )
        .await?;
    Ok(Sizes {
        accounts: r.get::<_, i64>(0) as usize,
        instruments: r.get::<_, i64>(1) as usize,
        holdings: r.get::<_, i64>(2) as usize,
        max_order_id: r.get::<_, i64>(3) as usize,
    })
}

/// Streams every holding, then every open order, into `apply`. Rows come in
/// physical order, which for a bulk-loaded table is load order.
pub async fn load_positions(client: &Client, mut apply: impl FnMut(&PositionEvent) -> Result<()>) -> Result<u64> {
    let mut n = 0u64;
    let s = client.copy_out("COPY mv_holdings (account_id, instrument_id, qty) TO STDOUT BINARY").await?;
    let rows = BinaryCopyOutStream::new(s, &[Type::INT4, Type::INT4, Type::INT8]);
    pin_mut!(rows);
    while let Some(r) = rows.next().await {
        let r = r?;
        let h = Holding { account: r.get::<i32>(0) as u32, instrument: r.get::<i32>(1) as u32, qty: r.get(2) };
        apply(&PositionEvent::Holding(h))?;
        n += 1;
    }
    let s = client.copy_out("COPY mv_orders (order_id, account_id, instrument_id, side, qty, limit_price) TO STDOUT BINARY").await?;
    let rows = BinaryCopyOutStream::new(s, &[Type::INT8, Type::INT4, Type::INT4, Type::TEXT, Type::INT8, Type::INT8]);
    pin_mut!(rows);
    while let Some(r) = rows.next().await {
        let r = r?;
        let side: &str = r.get(3);
        let o = Order {
            id: r.get::<i64>(0) as u64,
            account: r.get::<i32>(1) as u32,
            instrument: r.get::<i32>(2) as u32,
            side: Side::parse(side).with_context(|| format!("bad side {side:?}"))?,
            qty: r.get(4),
            limit_price: Price(r.get(5)),
        };
        apply(&PositionEvent::Order(o))?;
        n += 1;
    }
    Ok(n)
}

/// Writes one position change the way the upstream system would: the row
/// first, then (by the caller) the event on the positions topic.
pub async fn write_position(client: &Client, ev: &PositionEvent) -> Result<()> {
    match ev {
        PositionEvent::Holding(h) => {
            client
                .execute(
                    "INSERT INTO mv_holdings VALUES ($1, $2, $3)
                     ON CONFLICT (account_id, instrument_id) DO UPDATE SET qty = EXCLUDED.qty",
                    &[&(h.account as i32), &(h.instrument as i32), &h.qty],
                )
                .await?;
        }
        PositionEvent::Order(o) => {
            client
                .execute(
                    "INSERT INTO mv_orders VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (order_id) DO UPDATE SET account_id = EXCLUDED.account_id,
                       instrument_id = EXCLUDED.instrument_id, side = EXCLUDED.side,
                       qty = EXCLUDED.qty, limit_price = EXCLUDED.limit_price",
                    &[&(o.id as i64), &(o.account as i32), &(o.instrument as i32), &o.side.as_str(), &o.qty, &o.limit_price.0],
                )
                .await?;
        }
        PositionEvent::OrderCancel { id } => {
            client.execute("DELETE FROM mv_orders WHERE order_id = $1", &[&(*id as i64)]).await?;
        }
    }
    Ok(())
}

//! What the warehouse sink reads from PostgreSQL: the orders of a transaction-id window in
//! keyset pages, its watermark in `sink_positions`, and how old the oldest order waiting for it is.
//!
//! The window `[from, to)` is bounded by snapshot xmins ([`super::snapshot_xmin`]), so every
//! transaction in it has ended and its set of rows is fixed: pages read in separate statements
//! (no long transaction holding back anyone's xmin) still see exactly that set, once each.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::XidWindow;

/// The `sink_positions` row of the warehouse sink; `log_offset` holds its watermark, an xid8:
/// every order whose transaction id is below it is in the warehouse.
pub const WAREHOUSE_SOURCE: &str = "warehouse";

/// One order as the warehouse stores it, with the transaction that inserted it (the page key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarehouseOrder {
    pub txid: u64,
    pub order_id: Uuid,
    pub version: String,
    pub store: String,
    pub drink: String,
    pub price_cents: i64,
    pub ordered_at: DateTime<Utc>,
    pub accepted_at: DateTime<Utc>,
}

/// Where a page starts: after this (txid, order_id), or at the window's start.
pub type PageKey = Option<(u64, Uuid)>;

/// Up to `limit` orders of `window` after `after`, in (txid, order_id) order, skipping orders
/// placed before `not_before` (the hot window's cutoff). One index range scan on
/// `orders (txid, order_id)`.
pub async fn warehouse_page<C: GenericClient>(
    client: &C,
    window: XidWindow,
    after: PageKey,
    not_before: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<WarehouseOrder>, tokio_postgres::Error> {
    let (after_txid, after_id) = match after {
        Some((t, id)) => (t.to_string(), id),
        None => (window.from.to_string(), Uuid::nil()),
    };
    // Rows at (from, nil) itself cannot exist with a real id; `>=` on the first page keeps an
    // order whose id were nil anyway.
    let op = if after.is_some() { ">" } else { ">=" };
    // `ORDER BY orders.txid`: a bare `txid` would name the output column (the int8 cast),
    // which no index has; the sort would then read the whole window for every page.
    let statement = client
        .prepare_cached(&format!(
            "SELECT txid::text::int8 AS tx, order_id, version, store, drink, price_cents, ordered_at, accepted_at
             FROM orders
             WHERE (txid, order_id) {op} ($1::text::xid8, $2::uuid) AND txid < $3::text::xid8
               AND ($4::timestamptz IS NULL OR ordered_at >= $4::timestamptz)
             ORDER BY orders.txid, orders.order_id
             LIMIT $5"
        ))
        .await?;
    let rows = client.query(&statement, &[&after_txid, &after_id, &window.to.to_string(), &not_before, &limit]).await?;
    Ok(rows
        .iter()
        .map(|r| WarehouseOrder {
            txid: r.get::<_, i64>(0) as u64,
            order_id: r.get(1),
            version: r.get(2),
            store: r.get(3),
            drink: r.get(4),
            price_cents: r.get(5),
            ordered_at: r.get(6),
            accepted_at: r.get(7),
        })
        .collect())
}

/// The xmax of the current snapshot: every transaction that has committed so far has an id
/// below it. A watermark at or past it means the warehouse holds every order committed before.
pub async fn snapshot_xmax<C: GenericClient>(client: &C) -> Result<u64, tokio_postgres::Error> {
    let row = client.query_one("SELECT pg_snapshot_xmax(pg_current_snapshot())::text", &[]).await?;
    Ok(row.get::<_, String>(0).parse().expect("xid8 is an integer"))
}

/// The warehouse's watermark: every order with `txid` below it is in ClickHouse. 0 before the
/// first window.
pub async fn warehouse_watermark<C: GenericClient>(client: &C) -> Result<u64, tokio_postgres::Error> {
    let row = client.query_opt("SELECT log_offset FROM sink_positions WHERE source = $1", &[&WAREHOUSE_SOURCE]).await?;
    Ok(row.and_then(|r| r.get::<_, Option<i64>>(0)).unwrap_or(0) as u64)
}

/// Moves the watermark to `to` (never back: two sinks running at once cannot undo each other).
pub async fn set_warehouse_watermark<C: GenericClient>(client: &C, to: u64) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO sink_positions (source, log_offset) VALUES ($1, $2)
             ON CONFLICT (source) DO UPDATE SET log_offset = GREATEST(sink_positions.log_offset, EXCLUDED.log_offset)",
            &[&WAREHOUSE_SOURCE, &(to as i64)],
        )
        .await
        .map(drop)
}

/// Moves the watermark back to 0, so that the next round copies every order again: for a
/// warehouse table found empty (new, or emptied by hand) while the watermark says otherwise.
pub async fn reset_warehouse_watermark<C: GenericClient>(client: &C) -> Result<(), tokio_postgres::Error> {
    client.execute("UPDATE sink_positions SET log_offset = 0 WHERE source = $1", &[&WAREHOUSE_SOURCE]).await.map(drop)
}

/// When the oldest order waiting for the warehouse was accepted: the earliest `accepted_at`
/// among the first 1,000 orders at or past `watermark` by transaction id (an index range scan,
/// however long the backlog). `None` when nothing waits.
pub async fn oldest_unwarehoused<C: GenericClient>(client: &C, watermark: u64) -> Result<Option<DateTime<Utc>>, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT min(accepted_at) FROM (SELECT accepted_at FROM orders WHERE txid >= $1::text::xid8 ORDER BY txid LIMIT 1000) o",
            &[&watermark.to_string()],
        )
        .await?;
    Ok(row.get(0))
}

/// Orders past the watermark (committed, not yet acknowledged by the warehouse): for tests and
/// the bench, a full count.
pub async fn unwarehoused_orders<C: GenericClient>(client: &C, watermark: u64) -> Result<i64, tokio_postgres::Error> {
    let row = client.query_one("SELECT count(*) FROM orders WHERE txid >= $1::text::xid8", &[&watermark.to_string()]).await?;
    Ok(row.get(0))
}

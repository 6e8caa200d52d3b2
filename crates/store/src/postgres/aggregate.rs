//! The metrics recomputed from PostgreSQL with GROUP BY: the v1 aggregator's job and
//! `reconcile`'s reference. Rows never come into the process, only groups.

use chrono::{DateTime, Utc};
use coffee_core::{Breakdown, Cents, MetricsDelta, RECENT_LEN, RecentOrder, Version};
use deadpool_postgres::GenericClient;

/// Rows whose inserting transaction id lies in `[from, to)`. Both bounds come from
/// `pg_snapshot_xmin`, below which every transaction has finished, so consecutive windows
/// cover every committed row exactly once even when transactions commit out of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XidWindow {
    pub from: u64,
    pub to: u64,
}

/// The xmin of the current snapshot: every transaction below it has committed or aborted.
pub async fn snapshot_xmin<C: GenericClient>(client: &C) -> Result<u64, tokio_postgres::Error> {
    let row = client.query_one("SELECT pg_snapshot_xmin(pg_current_snapshot())::text", &[]).await?;
    let text: String = row.get(0);
    Ok(text.parse().expect("xid8 is an integer"))
}

/// Computes the metrics of `version`'s orders (all of them, or those in `window`) in one scan
/// with GROUPING SETS, plus the newest orders for the recent list.
pub async fn compute_metrics<C: GenericClient>(
    client: &C,
    version: Version,
    window: Option<XidWindow>,
) -> Result<MetricsDelta, tokio_postgres::Error> {
    let (from, to) = window.map(|w| (w.from.to_string(), w.to.to_string())).unzip();
    let filter = "version = $1 AND ($2::text IS NULL OR (txid >= $2::text::xid8 AND txid < $3::text::xid8))";
    let groups = client
        .query(
            &format!(
                "SELECT GROUPING(drink, store, hour) AS g, drink, store, hour, count(*), sum(price_cents)::int8
                 FROM (SELECT drink, store, price_cents,
                              to_char(ordered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24') AS hour
                       FROM orders WHERE {filter}) o
                 GROUP BY GROUPING SETS ((), (drink), (store), (hour))"
            ),
            &[&version.as_str(), &from, &to],
        )
        .await?;
    let mut delta = MetricsDelta::default();
    for r in &groups {
        let grouping: i32 = r.get(0);
        let b = Breakdown { count: r.get(4), revenue: Cents(r.get::<_, Option<i64>>(5).unwrap_or(0)) };
        // GROUPING() has one bit per argument, set when that column is aggregated away.
        match grouping {
            0b111 => delta.total = b,
            0b011 => {
                delta.drinks.insert(r.get(1), b);
            }
            0b101 => {
                delta.stores.insert(r.get(2), b);
            }
            0b110 => {
                delta.hours.insert(r.get(3), b);
            }
            other => unreachable!("grouping set {other:#b}"),
        }
    }
    let recent = client
        .query(
            &format!(
                "SELECT order_id, drink, store, price_cents, ordered_at, accepted_at FROM orders
                 WHERE {filter} ORDER BY accepted_at DESC, order_id DESC LIMIT {RECENT_LEN}"
            ),
            &[&version.as_str(), &from, &to],
        )
        .await?;
    delta.recent = recent
        .iter()
        .map(|r| RecentOrder {
            order_id: r.get(0),
            drink: r.get(1),
            store: r.get(2),
            price_cents: r.get(3),
            ordered_at: r.get::<_, DateTime<Utc>>(4),
            accepted_at: r.get::<_, DateTime<Utc>>(5),
        })
        .collect();
    Ok(delta)
}

/// When the orders in `window` were accepted, grouped to 10 ms: the aggregator's freshness
/// input, without bringing rows into the process.
pub async fn acceptance_ages<C: GenericClient>(
    client: &C,
    version: Version,
    window: XidWindow,
) -> Result<Vec<(DateTime<Utc>, u64)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT to_timestamp(floor(extract(epoch FROM accepted_at) * 100) / 100), count(*)
             FROM orders WHERE version = $1 AND txid >= $2::text::xid8 AND txid < $3::text::xid8
             GROUP BY 1",
            &[&version.as_str(), &window.from.to_string(), &window.to.to_string()],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get::<_, DateTime<Utc>>(0), r.get::<_, i64>(1) as u64)).collect())
}

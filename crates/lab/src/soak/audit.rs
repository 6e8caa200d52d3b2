//! The strict audit after the drain, in two halves:
//!
//! * **Orders**: PostgreSQL holds exactly the acknowledged orders. Every acknowledged id is
//!   there (none missing) with the path, drink, store and price it was sent with (none
//!   mismatched), and no row is there that was never sent or was refused (none extra). An
//!   order still unresolved at the end may be either way, and is only counted. The primary key
//!   forbids two rows with one id; duplicates are counted from the rows read all the same, so
//!   the claim rests on the data and not on the schema.
//! * **Metrics**: each path's Redis projection (`{ns}{v}:metrics:*`, read with raw commands)
//!   equals a recomputation from PostgreSQL by this module's own SQL: total orders and
//!   revenue, counts and revenue per drink, per store and per hour. Not `coffee-rt reconcile`'s
//!   code: an audit that shared the product's arithmetic would share its bugs.
//!
//! The comparisons are pure functions ([`check_orders`], [`compare_metrics`]), unit tested.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::Context;
use serde::Serialize;
use uuid::Uuid;

use super::ledger::{Closed, Sent, State};
use crate::ApiVersion;

/// One row of `orders` as the audit reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub order_id: Uuid,
    pub version: String,
    pub drink: String,
    pub store: String,
    pub price_cents: i64,
}

/// The hash metrics and the field each is keyed by.
pub const HASHES: [&str; 6] = ["drink_counts", "drink_revenue", "store_counts", "store_revenue", "hourly_counts", "hourly_revenue"];

/// One path's metrics, from Redis or recomputed: `total_orders`, `total_revenue`, and each of
/// [`HASHES`] as field → value (fields at 0 left out, as a missing field reads 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    pub totals: BTreeMap<&'static str, i64>,
    pub hashes: BTreeMap<&'static str, BTreeMap<String, i64>>,
}

/// One value on which Redis and PostgreSQL disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub version: ApiVersion,
    /// The metric's key name, e.g. `drink_revenue`.
    pub metric: String,
    /// The hash field (`latte`, `2025-01-15T10`); empty for a total.
    pub field: String,
    pub redis: i64,
    pub postgres: i64,
    /// `redis - postgres`: positive when Redis counted too much.
    pub diff: i64,
}

/// The order half of the audit, for one path.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OrderCheck {
    pub acknowledged: u64,
    pub postgres_rows: u64,
    /// Acknowledged, not in PostgreSQL.
    pub missing: u64,
    /// In PostgreSQL under this path, never acknowledged nor pending (never sent, or refused).
    pub extra: u64,
    /// In PostgreSQL with another path, drink, store or price than it was sent with.
    pub mismatched: u64,
    /// Still retrying when the load ended: found in PostgreSQL / not found.
    pub unresolved_stored: u64,
    pub unresolved_absent: u64,
    /// A few of the ids behind the counts above, for the logs.
    pub examples: Vec<String>,
}

/// Checks the rows against the ledger, per path; and the number of ids found on more than one
/// row.
pub fn check_orders(ledger: &Closed, rows: &[Row]) -> (BTreeMap<ApiVersion, OrderCheck>, u64) {
    let mut out: BTreeMap<ApiVersion, OrderCheck> = ApiVersion::ALL.iter().map(|v| (*v, OrderCheck::default())).collect();
    let mut seen: HashSet<Uuid> = HashSet::with_capacity(rows.len());
    let mut duplicated = 0;
    let note = |c: &mut OrderCheck, what: &str, id: &Uuid| {
        if c.examples.len() < 10 {
            c.examples.push(format!("{what} {id}"));
        }
    };
    for row in rows {
        if !seen.insert(row.order_id) {
            duplicated += 1;
            continue;
        }
        let Some(version) = ApiVersion::ALL.into_iter().find(|v| v.as_str() == row.version) else {
            // The schema's CHECK allows no other; counted under v1 so it is not lost from view.
            let c = out.get_mut(&ApiVersion::V1).expect("every path");
            c.extra += 1;
            note(c, "unknown version", &row.order_id);
            continue;
        };
        let c = out.get_mut(&version).expect("every path");
        c.postgres_rows += 1;
        match ledger.orders.get(&row.order_id) {
            None | Some((_, State::Rejected(_))) => {
                c.extra += 1;
                note(c, "extra", &row.order_id);
            }
            Some((sent, state)) => {
                if !same(sent, row) {
                    c.mismatched += 1;
                    note(c, "mismatched", &row.order_id);
                }
                if *state == State::Pending {
                    c.unresolved_stored += 1;
                }
            }
        }
    }
    for (id, (sent, state)) in &ledger.orders {
        let c = out.get_mut(&sent.version).expect("every path");
        match state {
            State::Acknowledged => {
                c.acknowledged += 1;
                if !seen.contains(id) {
                    c.missing += 1;
                    note(c, "missing", id);
                }
            }
            State::Pending if !seen.contains(id) => c.unresolved_absent += 1,
            _ => {}
        }
    }
    (out, duplicated)
}

fn same(sent: &Sent, row: &Row) -> bool {
    sent.version.as_str() == row.version && sent.drink == row.drink && sent.store == row.store && sent.price_cents == row.price_cents
}

/// Every value of `redis` that differs from `postgres`'s, a missing one reading 0.
pub fn compare_metrics(version: ApiVersion, redis: &Metrics, postgres: &Metrics) -> Vec<Drift> {
    let mut out = Vec::new();
    let mut push = |metric: &str, field: &str, r: i64, p: i64| {
        if r != p {
            out.push(Drift { version, metric: metric.into(), field: field.into(), redis: r, postgres: p, diff: r - p });
        }
    };
    for name in ["total_orders", "total_revenue"] {
        push(name, "", redis.totals.get(name).copied().unwrap_or(0), postgres.totals.get(name).copied().unwrap_or(0));
    }
    let empty = BTreeMap::new();
    for name in HASHES {
        let (r, p) = (redis.hashes.get(name).unwrap_or(&empty), postgres.hashes.get(name).unwrap_or(&empty));
        let fields: std::collections::BTreeSet<&String> = r.keys().chain(p.keys()).collect();
        for f in fields {
            push(name, f, r.get(f).copied().unwrap_or(0), p.get(f).copied().unwrap_or(0));
        }
    }
    out
}

/// Every row of `orders`, the five columns the audit checks.
pub async fn read_rows(client: &tokio_postgres::Client) -> anyhow::Result<Vec<Row>> {
    let rows = client.query("SELECT order_id, version, drink, store, price_cents FROM orders", &[]).await.context("reading every order")?;
    Ok(rows
        .iter()
        .map(|r| Row { order_id: r.get(0), version: r.get(1), drink: r.get(2), store: r.get(3), price_cents: r.get(4) })
        .collect())
}

/// One path's metrics recomputed from `orders` with the audit's own SQL. Hours are the UTC
/// hour of the order's own time, `YYYY-MM-DDTHH`, as the projection buckets them.
pub async fn recompute(client: &tokio_postgres::Client, version: ApiVersion) -> anyhow::Result<Metrics> {
    let v = version.as_str();
    let mut m = Metrics::default();
    let total = client
        .query_one("SELECT count(*), COALESCE(sum(price_cents), 0)::bigint FROM orders WHERE version = $1", &[&v])
        .await
        .context("recomputing the totals")?;
    m.totals.insert("total_orders", total.get(0));
    m.totals.insert("total_revenue", total.get(1));
    let groups = [
        ("drink_counts", "drink_revenue", "drink"),
        ("store_counts", "store_revenue", "store"),
        ("hourly_counts", "hourly_revenue", r#"to_char(ordered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24')"#),
    ];
    for (counts, revenue, expr) in groups {
        let sql = format!("SELECT {expr}, count(*), sum(price_cents)::bigint FROM orders WHERE version = $1 GROUP BY 1");
        for r in client.query(&sql, &[&v]).await.with_context(|| format!("recomputing {counts}"))? {
            let field: String = r.get(0);
            m.hashes.entry(counts).or_default().insert(field.clone(), r.get(1));
            m.hashes.entry(revenue).or_default().insert(field, r.get(2));
        }
    }
    Ok(m)
}

/// One path's metrics as Redis holds them, by raw `GET` and `HGETALL`.
pub async fn read_redis(conn: &mut impl redis::aio::ConnectionLike, namespace: &str, version: ApiVersion) -> anyhow::Result<Metrics> {
    let key = |m: &str| format!("{namespace}{version}:metrics:{m}");
    let mut pipe = redis::pipe();
    pipe.get(key("total_orders")).get(key("total_revenue"));
    for h in HASHES {
        pipe.hgetall(key(h));
    }
    type H = HashMap<String, i64>;
    let (orders, revenue, a, b, c, d, e, f): (Option<i64>, Option<i64>, H, H, H, H, H, H) =
        pipe.query_async(conn).await.context("reading the Redis metrics")?;
    let (totals, hashes) = ((orders, revenue), [a, b, c, d, e, f]);
    let mut m = Metrics::default();
    m.totals.insert("total_orders", totals.0.unwrap_or(0));
    m.totals.insert("total_revenue", totals.1.unwrap_or(0));
    for (name, h) in HASHES.into_iter().zip(hashes) {
        let nonzero: BTreeMap<String, i64> = h.into_iter().filter(|(_, v)| *v != 0).collect();
        if !nonzero.is_empty() {
            m.hashes.insert(name, nonzero);
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(version: ApiVersion, cents: i64) -> Sent {
        Sent { version, drink: "latte", store: "uptown", price_cents: cents }
    }

    fn row(id: Uuid, version: &str, cents: i64) -> Row {
        Row { order_id: id, version: version.into(), drink: "latte".into(), store: "uptown".into(), price_cents: cents }
    }

    #[test]
    fn every_kind_of_discrepancy_is_counted_where_it_belongs() {
        let ids: Vec<Uuid> = (0..8).map(|_| Uuid::now_v7()).collect();
        let mut orders = HashMap::new();
        orders.insert(ids[0], (sent(ApiVersion::V1, 450), State::Acknowledged)); // fine
        orders.insert(ids[1], (sent(ApiVersion::V2, 450), State::Acknowledged)); // missing
        orders.insert(ids[2], (sent(ApiVersion::V2, 450), State::Acknowledged)); // wrong price
        orders.insert(ids[3], (sent(ApiVersion::V3, 450), State::Pending)); // unresolved, stored
        orders.insert(ids[4], (sent(ApiVersion::V3, 450), State::Pending)); // unresolved, absent
        orders.insert(ids[5], (sent(ApiVersion::V3, 450), State::Rejected(409))); // refused yet stored
        let ledger = Closed { orders, paths: BTreeMap::new() };
        let rows = vec![
            row(ids[0], "v1", 450),
            row(ids[2], "v2", 455),
            row(ids[3], "v3", 450),
            row(ids[5], "v3", 450),
            row(ids[6], "v2", 450), // never sent
            row(ids[0], "v1", 450), // the same id twice
        ];
        let (checks, duplicated) = check_orders(&ledger, &rows);
        assert_eq!(duplicated, 1);
        let v1 = &checks[&ApiVersion::V1];
        assert_eq!((v1.acknowledged, v1.postgres_rows, v1.missing, v1.extra, v1.mismatched), (1, 1, 0, 0, 0));
        let v2 = &checks[&ApiVersion::V2];
        assert_eq!((v2.acknowledged, v2.postgres_rows, v2.missing, v2.extra, v2.mismatched), (2, 2, 1, 1, 1));
        let v3 = &checks[&ApiVersion::V3];
        assert_eq!((v3.acknowledged, v3.postgres_rows, v3.missing, v3.extra, v3.mismatched), (0, 2, 0, 1, 0));
        assert_eq!((v3.unresolved_stored, v3.unresolved_absent), (1, 1));
        assert!(v2.examples.iter().any(|e| e == &format!("missing {}", ids[1])), "{:?}", v2.examples);
    }

    #[test]
    fn a_clean_ledger_and_table_agree() {
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let versions = [ApiVersion::V1, ApiVersion::V2, ApiVersion::V3];
        let orders = ids.iter().zip(versions).map(|(id, v)| (*id, (sent(v, 500), State::Acknowledged))).collect();
        let rows: Vec<Row> = ids.iter().zip(versions).map(|(id, v)| row(*id, v.as_str(), 500)).collect();
        let (checks, duplicated) = check_orders(&Closed { orders, paths: BTreeMap::new() }, &rows);
        assert_eq!(duplicated, 0);
        for c in checks.values() {
            assert_eq!((c.acknowledged, c.postgres_rows, c.missing, c.extra, c.mismatched), (1, 1, 0, 0, 0));
        }
    }

    fn metrics(total: i64, revenue: i64, latte: i64) -> Metrics {
        let mut m = Metrics::default();
        m.totals.insert("total_orders", total);
        m.totals.insert("total_revenue", revenue);
        m.hashes.entry("drink_counts").or_default().insert("latte".into(), latte);
        m
    }

    #[test]
    fn metrics_drift_names_the_metric_the_field_and_the_difference() {
        assert!(compare_metrics(ApiVersion::V2, &metrics(3, 1500, 3), &metrics(3, 1500, 3)).is_empty());
        let drift = compare_metrics(ApiVersion::V2, &metrics(4, 1500, 4), &metrics(3, 1500, 3));
        assert_eq!(drift.len(), 2);
        assert_eq!(
            drift[0],
            Drift { version: ApiVersion::V2, metric: "total_orders".into(), field: "".into(), redis: 4, postgres: 3, diff: 1 }
        );
        assert_eq!((drift[1].metric.as_str(), drift[1].field.as_str(), drift[1].diff), ("drink_counts", "latte", 1));
        // A field only one side has reads 0 on the other.
        let mut redis = metrics(3, 1500, 3);
        redis.hashes.entry("store_counts").or_default().insert("uptown".into(), 2);
        let drift = compare_metrics(ApiVersion::V1, &redis, &metrics(3, 1500, 3));
        assert_eq!((drift.len(), drift[0].postgres, drift[0].redis), (1, 0, 2));
    }
}

//! What the metrics should be, recomputed from PostgreSQL by SQL of its own, and what Redis
//! holds, read with raw commands: the yardstick of the fault tests.
//!
//! Independent on purpose: `coffee_pipeline::reconcile` and store's `compute_metrics` are the
//! code under test (the repair after a Redis loss runs them), so a bug in them would agree
//! with itself. Here the expected side is one `GROUPING SETS` statement over `orders` (one
//! snapshot), and the actual side is `GET`/`HGETALL` on the projection's keys; only the key
//! names come from `coffee_store::redis::Keys`.

use std::{collections::BTreeMap, fmt, time::Duration};

use coffee_core::Version;
use coffee_store::Keys;
use serde_json::Value;
use uuid::Uuid;

use crate::TestEnv;

/// A count and its revenue in cents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sum {
    pub count: i64,
    pub cents: i64,
}

impl fmt::Display for Sum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} orders / {} cents", self.count, self.cents)
    }
}

/// One version's metrics: the total, and per drink, store and hour bucket (`2025-01-15T10`,
/// the order's own time in UTC, as `coffee_core::hour_bucket` keys them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    pub total: Sum,
    pub drinks: BTreeMap<String, Sum>,
    pub stores: BTreeMap<String, Sum>,
    pub hours: BTreeMap<String, Sum>,
}

impl Metrics {
    /// Every difference, one line each (`expected` is `self`), empty when they are equal.
    pub fn diff(&self, actual: &Metrics) -> Vec<String> {
        let mut out = Vec::new();
        if self.total != actual.total {
            out.push(format!("total: PostgreSQL {}, Redis {}", self.total, actual.total));
        }
        for (name, ours, theirs) in
            [("drink", &self.drinks, &actual.drinks), ("store", &self.stores, &actual.stores), ("hour", &self.hours, &actual.hours)]
        {
            let keys: std::collections::BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
            for k in keys {
                let (e, a) = (ours.get(k).copied().unwrap_or_default(), theirs.get(k).copied().unwrap_or_default());
                if e != a {
                    out.push(format!("{name} {k}: PostgreSQL {e}, Redis {a}"));
                }
            }
        }
        out
    }
}

/// `version`'s metrics recomputed from every row PostgreSQL holds, in one statement.
pub async fn from_postgres(env: &TestEnv, version: Version) -> Metrics {
    let pool = env.pool().await;
    let client = pool.get().await.expect("PostgreSQL must be running");
    let rows = client
        .query(
            "SELECT GROUPING(drink, store, hour) AS g, drink, store, hour, count(*), COALESCE(sum(price_cents), 0)::int8
             FROM (SELECT drink, store, price_cents, to_char(ordered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24') AS hour
                   FROM orders WHERE version = $1) o
             GROUP BY GROUPING SETS ((), (drink), (store), (hour))",
            &[&version.as_str()],
        )
        .await
        .expect("the truth query");
    let mut m = Metrics::default();
    for r in rows {
        let sum = Sum { count: r.get(4), cents: r.get(5) };
        // GROUPING's bits, drink first: 0b011 = grouped by drink only, and so on.
        match r.get::<_, i32>(0) {
            0b111 => m.total = sum,
            0b011 => drop(m.drinks.insert(r.get(1), sum)),
            0b101 => drop(m.stores.insert(r.get(2), sum)),
            0b110 => drop(m.hours.insert(r.get(3), sum)),
            g => panic!("unexpected grouping {g}"),
        }
    }
    m
}

/// `version`'s metrics as the Redis projection holds them. Zero entries count as absent (an
/// increment by zero leaves a field behind).
pub async fn from_redis(env: &TestEnv, version: Version) -> redis::RedisResult<Metrics> {
    let keys = Keys::new(&env.namespace, version);
    let mut conn = env.redis().await;
    type Hash = BTreeMap<String, i64>;
    let (orders, cents, dc, dr, sc, sr, hc, hr): (Option<i64>, Option<i64>, Hash, Hash, Hash, Hash, Hash, Hash) = redis::pipe()
        .cmd("GET")
        .arg(keys.metric("total_orders"))
        .cmd("GET")
        .arg(keys.metric("total_revenue"))
        .cmd("HGETALL")
        .arg(keys.metric("drink_counts"))
        .cmd("HGETALL")
        .arg(keys.metric("drink_revenue"))
        .cmd("HGETALL")
        .arg(keys.metric("store_counts"))
        .cmd("HGETALL")
        .arg(keys.metric("store_revenue"))
        .cmd("HGETALL")
        .arg(keys.metric("hourly_counts"))
        .cmd("HGETALL")
        .arg(keys.metric("hourly_revenue"))
        .query_async(&mut conn)
        .await?;
    let zip = |counts: Hash, revenue: Hash| -> BTreeMap<String, Sum> {
        let names: std::collections::BTreeSet<String> = counts.keys().chain(revenue.keys()).cloned().collect();
        names
            .into_iter()
            .map(|n| {
                let s = Sum { count: counts.get(&n).copied().unwrap_or(0), cents: revenue.get(&n).copied().unwrap_or(0) };
                (n, s)
            })
            .filter(|(_, s)| *s != Sum::default())
            .collect()
    };
    Ok(Metrics {
        total: Sum { count: orders.unwrap_or(0), cents: cents.unwrap_or(0) },
        drinks: zip(dc, dr),
        stores: zip(sc, sr),
        hours: zip(hc, hr),
    })
}

/// Where Redis differs from the recomputation, as a readable report; `None` when it agrees.
pub async fn projection_diff(env: &TestEnv, version: Version) -> Option<String> {
    let expected = from_postgres(env, version).await;
    let lines = match from_redis(env, version).await {
        Ok(actual) => expected.diff(&actual),
        Err(e) => vec![format!("Redis unreadable: {e}")],
    };
    (!lines.is_empty()).then(|| format!("{version} projection differs from PostgreSQL:\n  {}", lines.join("\n  ")))
}

/// Panics with the differences unless Redis holds exactly what PostgreSQL's rows add up to.
pub async fn assert_projection_matches(env: &TestEnv, version: Version) {
    if let Some(diff) = projection_diff(env, version).await {
        panic!("{diff}");
    }
}

/// Waits (polling every 100 ms) until Redis holds exactly what PostgreSQL's rows add up to,
/// and returns how long that took; panics with the last differences after `timeout`.
pub async fn wait_projection_matches(env: &TestEnv, version: Version, timeout: Duration) -> Duration {
    let started = tokio::time::Instant::now();
    loop {
        let diff = projection_diff(env, version).await;
        let Some(diff) = diff else { return started.elapsed() };
        if started.elapsed() >= timeout {
            panic!("after {timeout:?}: {diff}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The price of an order body as a client sent it, in cents (`3.29` → 329).
pub fn cents(order: &Value) -> i64 {
    (order["price"].as_f64().expect("a price") * 100.0).round() as i64
}

/// What the client was acknowledged: the orders' count and revenue.
pub fn sum_of(orders: &[Value]) -> Sum {
    Sum { count: orders.len() as i64, cents: orders.iter().map(cents).sum() }
}

/// Of the `acked` orders, how many PostgreSQL holds under `version` exactly as sent (same
/// drink, store and cents), with their revenue. Equal to [`sum_of`] when none was lost or
/// changed.
pub async fn stored_as_sent(env: &TestEnv, version: Version, acked: &[Value]) -> Sum {
    let ids: Vec<Uuid> = acked.iter().map(|o| o["order_id"].as_str().expect("an order_id").parse().expect("a uuid")).collect();
    let drinks: Vec<&str> = acked.iter().map(|o| o["drink"].as_str().expect("a drink")).collect();
    let stores: Vec<&str> = acked.iter().map(|o| o["store"].as_str().expect("a store")).collect();
    let prices: Vec<i64> = acked.iter().map(cents).collect();
    let pool = env.pool().await;
    let client = pool.get().await.expect("PostgreSQL must be running");
    let row = client
        .query_one(
            "SELECT count(*), COALESCE(sum(o.price_cents), 0)::int8
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::int8[]) AS s(order_id, drink, store, price_cents)
             JOIN orders o ON o.order_id = s.order_id AND o.drink = s.drink AND o.store = s.store
                          AND o.price_cents = s.price_cents AND o.version = $5",
            &[&ids, &drinks, &stores, &prices, &version.as_str()],
        )
        .await
        .expect("the acknowledged-orders query");
    Sum { count: row.get(0), cents: row.get(1) }
}

/// Panics unless PostgreSQL holds every one of the `acked` orders as sent.
pub async fn assert_acked_stored(env: &TestEnv, version: Version, acked: &[Value]) {
    let (sent, stored) = (sum_of(acked), stored_as_sent(env, version, acked).await);
    assert_eq!(stored, sent, "{version}: of the acknowledged {sent}, PostgreSQL holds {stored} as sent");
}

/// `version`'s rows in PostgreSQL: count and revenue.
pub async fn rows(env: &TestEnv, version: Version) -> Sum {
    from_postgres(env, version).await.total
}

/// As [`crate::post_many`], but returns the acknowledged bodies, for [`sum_of`] and
/// [`assert_acked_stored`].
pub async fn post_acked(app: &crate::TestApp, version: &str, n: usize, concurrency: usize) -> Vec<Value> {
    use futures::StreamExt;
    futures::stream::iter(0..n)
        .map(|i| async move {
            let o = crate::order(i);
            let (status, _) = app.post(version, &o).await;
            (200..300).contains(&status).then_some(o)
        })
        .buffer_unordered(concurrency)
        .filter_map(|x| async move { x })
        .collect()
        .await
}

/// Posts orders to `version` like a well-behaved client until `enough` is set and at least
/// `min` are acknowledged, `concurrency` in flight: a 503 is retried with the same body (the
/// same `order_id`) for up to a minute; any other refusal panics. Returns every body, all
/// acknowledged, and how many 503s were retried. For fault tests that need work flowing for as
/// long as their faults take, however slow the machine.
pub async fn post_acked_until(
    app: &crate::TestApp,
    version: &str,
    min: usize,
    enough: &std::sync::atomic::AtomicBool,
    concurrency: usize,
) -> (Vec<Value>, usize) {
    use futures::StreamExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let retried = AtomicUsize::new(0);
    let retried = &retried;
    let acked = futures::stream::iter(0..)
        .take_while(|i| std::future::ready(*i < min || !enough.load(Ordering::Relaxed)))
        .map(|i| async move {
            let o = crate::order(i);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                let (status, body) = app.post(version, &o).await;
                match status {
                    200..=299 => return o,
                    503 if tokio::time::Instant::now() < deadline => {
                        retried.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    other => panic!("{version} answered {other}: {body}"),
                }
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    (acked, retried.load(Ordering::Relaxed))
}

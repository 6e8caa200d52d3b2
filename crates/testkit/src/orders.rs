//! Orders as clients send them, and checks of what the sinks hold.

use std::time::Duration;

use coffee_core::Version;
use futures::StreamExt;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{TestApp, TestEnv};

/// A valid order with a fresh id; `i` varies drink, store, price and time (yesterday between
/// 08:00 and 17:59 UTC: inside the API's default window, never in the future).
pub fn order(i: usize) -> Value {
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).date_naive();
    let drinks = ["cappuccino", "americano", "latte"];
    let stores = ["uptown", "downtown", "central", "southend"];
    json!({
        "order_id": Uuid::now_v7().to_string(),
        "drink": drinks[i % 3],
        "store": stores[i % 4],
        // The literal a client would write (3.29), not a float sum (3.0 + 0.29 = 3.2899999999999996).
        "price": format!("{}.{:02}", 3 + (i % 300) / 100, i % 100).parse::<f64>().unwrap(),
        "timestamp": format!("{yesterday}T{:02}:{:02}:00Z", 8 + i % 10, i % 60),
    })
}

/// Posts `n` orders with `concurrency` in flight; returns the ids acknowledged with a 2xx.
pub async fn post_many(app: &TestApp, version: &str, n: usize, concurrency: usize) -> Vec<String> {
    futures::stream::iter(0..n)
        .map(|i| async move {
            let o = order(i);
            let (status, _) = app.post(version, &o).await;
            ((200..300).contains(&status)).then(|| o["order_id"].as_str().unwrap().to_owned())
        })
        .buffer_unordered(concurrency)
        .filter_map(|x| async move { x })
        .collect()
        .await
}

/// Posts `n` orders like a well-behaved client: a 503 is retried with the same body (same
/// `order_id`) until it is acknowledged. Returns the ids, all of them acknowledged.
pub async fn post_all(app: &TestApp, version: &str, n: usize, concurrency: usize) -> Vec<String> {
    post_all_within(app, version, n, concurrency, Duration::from_secs(6)).await
}

/// As `post_all`, retrying each order for up to `patience` (an outage the test causes).
pub async fn post_all_within(app: &TestApp, version: &str, n: usize, concurrency: usize, patience: Duration) -> Vec<String> {
    futures::stream::iter(0..n)
        .map(|i| async move {
            let o = order(i);
            let deadline = tokio::time::Instant::now() + patience;
            loop {
                let (status, body) = app.post(version, &o).await;
                match status {
                    200..=299 => return o["order_id"].as_str().unwrap().to_owned(),
                    503 if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
                    503 => panic!("{version}: order {} never acknowledged within {patience:?}", o["order_id"]),
                    other => panic!("{version} answered {other}: {body}"),
                }
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

/// How many of the `acked` order ids PostgreSQL holds.
pub async fn stored(env: &TestEnv, acked: &[String]) -> i64 {
    let pool = env.pool().await;
    let ids: Vec<Uuid> = acked.iter().map(|s| s.parse().unwrap()).collect();
    pool.get().await.unwrap().query_one("SELECT count(*) FROM orders WHERE order_id = ANY($1)", &[&ids]).await.unwrap().get(0)
}

/// Asserts that Redis agrees with a recomputation from PostgreSQL, to the cent.
pub async fn assert_no_drift(env: &TestEnv, version: Version) {
    let report = coffee_pipeline::reconcile::reconcile(&env.pool().await, &env.projection().await, version, false).await.unwrap();
    assert!(report.drift.is_empty(), "{version} drift: {:?}", report.drift);
}

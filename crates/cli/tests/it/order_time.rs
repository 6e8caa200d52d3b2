//! Plausible order times: the API refuses a `timestamp` outside its window around the server's
//! clock (422 naming `timestamp`) on every path and stores it nowhere; the v2 worker and the
//! v3 processor store whatever their logs hold, however old, since a backlog may be.

use std::time::Duration;

use chrono::{DateTime, Utc};
use coffee_core::{Catalog, Order, OrderWindow, RawOrder, Version};
use coffee_pipeline::{Ingest, V2Ingest, V3Ingest};
use rdkafka::{
    ClientConfig,
    consumer::{BaseConsumer, Consumer},
};
use redis::AsyncCommands;
use serde_json::{Value, json};

use crate::support::*;

fn body(timestamp: &str) -> Value {
    let mut o = order(7);
    o["timestamp"] = json!(timestamp);
    o
}

async fn validate(app: &TestApp, order: &Value) -> (u16, Value) {
    let res = app.client.post(format!("{}/api/validate", app.address)).json(order).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

/// Records in the test's own topic: the sum of its partitions' high watermarks (0 when the
/// topic does not exist yet).
async fn records_in_topic(env: &TestEnv) -> i64 {
    let kafka = env.kafka().clone();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &kafka.brokers).create().unwrap();
        (0..kafka.partitions).map(|p| consumer.fetch_watermarks(&kafka.topic, p, Duration::from_secs(10)).map_or(0, |(_, high)| high)).sum()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn times_outside_the_window_are_a_422_naming_timestamp_on_every_path_and_stored_nowhere() {
    let env = TestEnv::new();
    let app = env.spawn_up().await;
    let pool = env.pool().await;
    let (stop_processor, processor) = start_processor(&env, pool.clone(), env.projection().await);
    let in_ten_minutes = (Utc::now() + chrono::Duration::minutes(10)).to_rfc3339();
    let refused = [("1900-01-01T00:00:00Z", "before"), ("9999-12-31T23:59:59Z", "ahead"), (in_ten_minutes.as_str(), "ahead")];
    for (timestamp, word) in refused {
        for version in ["v1", "v2", "v3"] {
            let (status, reply) = app.post(version, &body(timestamp)).await;
            assert_eq!(status, 422, "{version} {timestamp}: {reply}");
            assert_eq!(reply["field"], "timestamp", "{reply}");
            assert!(reply["error"].as_str().is_some_and(|e| e.contains(word)), "{version} {timestamp}: {reply}");
        }
        let (status, reply) = validate(&app, &body(timestamp)).await;
        assert_eq!((status, &reply["field"]), (422, &json!("timestamp")), "validate {timestamp}: {reply}");
    }
    // Nothing reached a sink or a log: no row, no stream entry, no topic record.
    for v in Version::ALL {
        assert_eq!(env.rows(v).await, 0, "{v}");
    }
    let len: i64 = env.redis().await.xlen(coffee_store::Keys::stream(&env.namespace)).await.unwrap();
    assert_eq!(len, 0, "v2 stream entries");
    assert_eq!(records_in_topic(&env).await, 0, "v3 topic records");

    // A day old is inside the window: accepted on every path, and stored.
    let yesterday = (Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    assert_eq!(validate(&app, &body(&yesterday)).await.0, 200);
    for (version, expected) in [("v1", 201), ("v2", 202), ("v3", 202)] {
        let (status, reply) = app.post(version, &body(&yesterday)).await;
        assert_eq!(status, expected, "{version}: {reply}");
    }
    let all_stored = || async { env.rows(Version::V1).await + env.rows(Version::V2).await + env.rows(Version::V3).await == 3 };
    assert!(wait_until(Duration::from_secs(30), all_stored).await, "the three accepted orders are stored");

    let _ = stop_processor.send(());
    processor.await.unwrap().unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_window_is_configurable() {
    let mut env = TestEnv::new();
    env.config.order_window = OrderWindow { max_future: Duration::from_secs(3600), max_age: Duration::from_secs(2 * 86_400) };
    let app = env.spawn_app().await;
    let at = |minutes: i64| (Utc::now() + chrono::Duration::minutes(minutes)).to_rfc3339();
    // 30 minutes ahead: past the default 5 minutes, inside this server's hour.
    assert_eq!(validate(&app, &body(&at(30))).await.0, 200);
    let (status, reply) = validate(&app, &body(&at(90))).await;
    assert_eq!((status, &reply["field"]), (422, &json!("timestamp")), "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("1h ahead"), "the message names the bound: {reply}");
    assert_eq!(validate(&app, &body(&at(-47 * 60))).await.0, 200);
    let (status, reply) = validate(&app, &body(&at(-49 * 60))).await;
    assert_eq!((status, &reply["field"]), (422, &json!("timestamp")), "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("2days before"), "{reply}");
    app.stop().await;
}

/// An order the API accepted long ago, read back now from a log.
fn old_order(i: usize, ordered_at: &str) -> Order {
    let o = order(i);
    let raw = RawOrder {
        order_id: o["order_id"].as_str().map(str::to_owned),
        drink: o["drink"].as_str().unwrap().to_owned(),
        store: o["store"].as_str().unwrap().to_owned(),
        price: serde_json::Number::from_f64(o["price"].as_f64().unwrap()).unwrap(),
        timestamp: ordered_at.to_owned(),
    };
    let accepted_at: DateTime<Utc> = "2020-01-01T00:00:00Z".parse().unwrap();
    Order::parse_within(raw, &Catalog::default(), accepted_at, &OrderWindow::default()).expect("inside the window when it was accepted")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_v2_worker_and_v3_processor_store_a_backlog_of_any_age() {
    let env = TestEnv::new();
    // Written to the logs directly, as the API wrote them years ago.
    let v2 = V2Ingest::new(env.redis().await, &env.namespace, 1_000);
    let v3 = V3Ingest::new(env.kafka()).unwrap();
    coffee_pipeline::sources::v3_kafka::ensure_topic(env.kafka(), &env.topic, env.kafka().partitions).await.unwrap();
    for i in 0..3 {
        v2.submit(old_order(i, "2019-12-31T23:00:00Z")).await.expect("XADD");
        v3.submit(old_order(i, "2019-12-31T23:00:00Z")).await.expect("produced");
    }
    v3.close().await;
    let app = env.spawn_up().await;
    let pool = env.pool().await;
    let (stop_processor, processor) = start_processor(&env, pool.clone(), env.projection().await);
    let stored = || async { env.rows(Version::V2).await == 3 && env.rows(Version::V3).await == 3 };
    assert!(
        wait_until(Duration::from_secs(30), stored).await,
        "v2 {} and v3 {} of 3",
        env.rows(Version::V2).await,
        env.rows(Version::V3).await
    );
    let old: i64 =
        pool.get().await.unwrap().query_one("SELECT count(*) FROM orders WHERE ordered_at < '2020-01-01'", &[]).await.unwrap().get(0);
    assert_eq!(old, 6, "stored with their own time");
    let _ = stop_processor.send(());
    processor.await.unwrap().unwrap();
    app.stop().await;
}

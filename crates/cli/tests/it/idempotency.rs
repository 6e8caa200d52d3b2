//! `order_id` is an idempotency key across all three paths: a repeat gets the first answer,
//! marked as a replay; another body under the same id is a 409 that changes nothing.

use std::time::Duration;

use coffee_core::Version;
use redis::AsyncCommands;
use serde_json::{Value, json};

use crate::support::*;

async fn post_with_headers(app: &TestApp, version: &str, order: &Value) -> (u16, Value, Option<String>) {
    let res = app.client.post(format!("{}/api/{version}/order", app.address)).json(order).send().await.unwrap();
    let status = res.status().as_u16();
    let replayed = res.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap().to_owned());
    (status, res.json().await.unwrap(), replayed)
}

/// Every version's stored price of `id`, as PostgreSQL has it.
async fn stored(env: &TestEnv, id: &Value) -> Vec<(String, i64)> {
    let client = env.pool().await.get().await.unwrap();
    let id: uuid::Uuid = id.as_str().unwrap().parse().unwrap();
    let rows = client.query("SELECT version, price_cents FROM orders WHERE order_id = $1", &[&id]).await.unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeat_on_any_path_is_answered_as_the_first_acceptance_and_marked_replayed() {
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    for (first, status, text) in [("v1", 201, "created"), ("v2", 202, "accepted"), ("v3", 202, "accepted")] {
        let o = order(7);
        let (got, body, replayed) = post_with_headers(&app, first, &o).await;
        assert_eq!((got, body["status"].as_str(), replayed.as_deref()), (status, Some(text), None), "{body}");
        assert!(body.get("replayed").is_none(), "a first acceptance is not a replay: {body}");
        for again in ["v1", "v2", "v3"] {
            let (got, body, replayed) = post_with_headers(&app, again, &o).await;
            assert_eq!(got, status, "{first} then {again}: {body}");
            assert_eq!(body["replayed"], json!(true), "{body}");
            assert_eq!(body["version"], json!(first), "a replay names the path that took the order: {body}");
            assert_eq!(body["order_id"], o["order_id"]);
            assert_eq!(replayed.as_deref(), Some("true"));
        }
    }
    // Nothing but the three first acceptances reached the logs and PostgreSQL.
    let mut redis = env.redis().await;
    let stream: i64 = redis.xlen(coffee_store::Keys::stream(&env.namespace)).await.unwrap();
    assert_eq!(stream, 1, "one v2 entry: the repeats were not appended");
    assert_eq!(env.rows(Version::V1).await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn another_body_under_a_used_id_is_a_conflict_on_every_path_and_changes_nothing() {
    let env = TestEnv::new();
    let app = env.spawn_up().await;
    let (processor, processing) = start_processor(&env, env.pool().await, env.projection().await);
    let mut firsts = Vec::new();
    for first in ["v1", "v2", "v3"] {
        let o = order(11);
        let (status, body, _) = post_with_headers(&app, first, &o).await;
        assert!(status == 201 || status == 202, "{body}");
        firsts.push((first, o));
    }
    for (first, o) in &firsts {
        let mut other = o.clone();
        other["price"] = json!(9.99);
        for again in ["v1", "v2", "v3"] {
            let (status, body, _) = post_with_headers(&app, again, &other).await;
            assert_eq!(status, 409, "{first} then {again} with another price: {body}");
            assert_eq!(body["field"], "order_id", "{body}");
            let error = body["error"].as_str().unwrap();
            assert!(error.contains(first) && error.contains("price"), "names the first path and the field: {error}");
        }
        let mut other_store = o.clone();
        other_store["store"] = json!(if o["store"] == "uptown" { "central" } else { "uptown" });
        let (status, body, _) = post_with_headers(&app, "v1", &other_store).await;
        assert_eq!(status, 409, "{body}");
        assert!(body["error"].as_str().unwrap().contains("store"), "{body}");
    }
    // Each id is stored once, on its first path, at its first price; the metrics count the
    // three first orders only.
    let all = [Version::V1, Version::V2, Version::V3];
    assert!(
        wait_until(Duration::from_secs(20), || async {
            let mut total = 0;
            for v in all {
                total += env.total_orders(v).await;
            }
            total == 3
        })
        .await
    );
    for (first, o) in &firsts {
        let price = (o["price"].as_f64().unwrap() * 100.0).round() as i64;
        assert_eq!(stored(&env, &o["order_id"]).await, vec![(first.to_string(), price)], "{o}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for v in all {
        assert_eq!(env.total_orders(v).await, 1, "{v}");
        assert_no_drift(&env, v).await;
    }
    let _ = processor.send(());
    processing.await.unwrap().unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn v1_decides_from_postgresql_when_the_registry_has_forgotten_the_id() {
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    let o = order(3);
    let (status, _, _) = post_with_headers(&app, "v1", &o).await;
    assert_eq!(status, 201);
    // The registry expired (or Redis lost it): PostgreSQL still knows the id.
    let mut redis = env.redis().await;
    let key = format!("{}orders:id:{}", env.namespace, o["order_id"].as_str().unwrap());
    let removed: i64 = redis.del(&key).await.unwrap();
    assert_eq!(removed, 1, "the registry held the id under {key}");
    let (status, body, replayed) = post_with_headers(&app, "v1", &o).await;
    assert_eq!((status, body["replayed"].clone(), replayed.as_deref()), (201, json!(true), Some("true")), "{body}");
    let _: i64 = redis.del(&key).await.unwrap();
    let mut other = o.clone();
    other["price"] = json!(9.99);
    let (status, body, _) = post_with_headers(&app, "v1", &other).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(env.rows(Version::V1).await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_meaning_the_registry_forgot_is_not_stored_and_is_counted() {
    let env = TestEnv::new();
    let app = env.spawn_up().await;
    let (processor, processing) = start_processor(&env, env.pool().await, env.projection().await);
    let o = order(5);
    assert_eq!(post_with_headers(&app, "v1", &o).await.0, 201);
    let mut redis = env.redis().await;
    let _: i64 = redis.del(format!("{}orders:id:{}", env.namespace, o["order_id"].as_str().unwrap())).await.unwrap();
    let mut other = o.clone();
    other["price"] = json!(9.99);
    // v3 answers before PostgreSQL sees the order: with the id forgotten it can only accept.
    assert_eq!(post_with_headers(&app, "v3", &other).await.0, 202);
    let marker = order(6);
    assert_eq!(post_with_headers(&app, "v3", &marker).await.0, 202);
    assert!(wait_until(Duration::from_secs(20), || async { env.rows(Version::V3).await == 1 }).await, "the processor went past it");
    let price = (o["price"].as_f64().unwrap() * 100.0).round() as i64;
    assert_eq!(stored(&env, &o["order_id"]).await, vec![("v1".to_owned(), price)], "the first meaning is kept");
    let text = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
    assert!(text.lines().any(|l| l.starts_with("coffee_rt_commit_conflicts_total{version=\"v3\"}")), "counted");
    let _ = processor.send(());
    processing.await.unwrap().unwrap();
    app.stop().await;
}

//! Bad input gets a clear 4xx JSON error and changes nothing; repeated ids count once.

use coffee_core::Version;
use redis::AsyncCommands;
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn every_validation_error_is_json_and_stores_nothing() {
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    let ok = json!({"drink":"latte","store":"uptown","price":4.5,"timestamp":"2025-01-15T10:00:00Z"});
    let with = |k: &str, v: serde_json::Value| {
        let mut o = ok.clone();
        o[k] = v;
        o.to_string()
    };
    let cases: Vec<(&str, String, u16, Option<&str>)> = vec![
        ("application/json", "{\"drink\":".into(), 400, None),
        ("application/json", "not json".into(), 400, None),
        ("text/plain", ok.to_string(), 415, None),
        ("application/json", format!("{{\"drink\":\"{}\"}}", "a".repeat(20_000)), 413, None),
        ("application/json", with("drink", json!("tea")), 422, Some("drink")),
        ("application/json", with("drink", json!(5)), 422, Some("drink")),
        ("application/json", with("store", json!("mars")), 422, Some("store")),
        ("application/json", with("price", json!(4.555)), 422, Some("price")),
        ("application/json", with("price", json!(0)), 422, Some("price")),
        ("application/json", with("price", json!(-1)), 422, Some("price")),
        ("application/json", with("price", json!(1000.01)), 422, Some("price")),
        ("application/json", with("price", json!("4.50")), 422, Some("price")),
        ("application/json", with("timestamp", json!("2025-01-15T10:00:00")), 422, Some("timestamp")),
        ("application/json", with("order_id", json!("not-a-uuid")), 422, Some("order_id")),
        ("application/json", with("tip", json!(1)), 422, Some("tip")),
        ("application/json", json!({"drink":"latte","store":"uptown","price":4.5}).to_string(), 422, Some("timestamp")),
    ];
    for version in ["v1", "v2", "v3"] {
        for (ct, body, status, field) in &cases {
            let (got, res) = app.post_raw(version, ct, body.clone()).await;
            assert_eq!(got, *status, "{version} {ct} {body:.80}: {res}");
            assert!(res["error"].as_str().is_some_and(|e| !e.is_empty()), "error message in {res}");
            if let Some(f) = field {
                assert_eq!(res["field"], json!(f), "{res}");
            }
        }
    }
    let (status, _) = app.post("v9", &order(0)).await;
    assert_eq!(status, 404);
    // Nothing stored anywhere.
    assert_eq!(env.rows(Version::V1).await + env.rows(Version::V2).await + env.rows(Version::V3).await, 0);
    let mut redis = env.redis().await;
    let len: i64 = redis.xlen(coffee_store::Keys::stream(&env.namespace)).await.unwrap();
    assert_eq!(len, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_order_id_succeeds_and_counts_once() {
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    let o = order(1);
    for _ in 0..3 {
        let (status, body) = app.post("v1", &o).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["order_id"], o["order_id"]);
        assert_eq!(body["status"], "created");
    }
    assert_eq!(env.rows(Version::V1).await, 1);

    let o2 = order(2);
    for _ in 0..3 {
        let (status, body) = app.post("v2", &o2).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["order_id"], o2["order_id"]);
    }
    let (stop, task) =
        crate::v2_path::start_worker(&env, coffee_pipeline::WorkerConfig::new("w1"), env.pool().await, env.projection().await);
    assert!(wait_until(std::time::Duration::from_secs(10), || async { env.total_orders(Version::V2).await >= 1 }).await);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(env.rows(Version::V2).await, 1);
    assert_eq!(env.total_orders(Version::V2).await, 1);
    assert_no_drift(&env, Version::V2).await;
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn health_endpoints_answer() {
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    assert_eq!(app.get("/livez").await.0, 200);
    let started = std::time::Instant::now();
    let (status, body) = app.get("/readyz").await;
    assert!(started.elapsed() < std::time::Duration::from_millis(1500));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["postgres"], "ok");
    assert_eq!(body["redis"], "ok");
    app.post("v1", &order(0)).await;
    let text = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("coffee_rt_http_request_duration_seconds_bucket"), "histogram buckets exported");
    assert!(text.contains("coffee_rt_orders_accepted_total"), "{text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn overload_is_refused_with_503_and_retry_after_not_queued() {
    let mut env = TestEnv::new();
    env.config.max_in_flight = 0;
    let app = env.spawn_app().await;
    for version in ["v1", "v2", "v3"] {
        let (status, body) = app.post(version, &order(0)).await;
        assert_eq!(status, 503, "{body}"); // post() also asserts the Retry-After header
        assert!(body["error"].as_str().unwrap().contains("in flight"));
    }
    assert_eq!(env.rows(Version::V1).await, 0);
    app.stop().await;
}

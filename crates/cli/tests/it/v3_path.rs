//! v3: 5,000 orders through the broker and a processor: exactly 5,000 rows, metrics to the cent.

use std::time::Duration;

use coffee_core::Version;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn five_thousand_orders_count_exactly() {
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    let (stop, task) = start_processor(&env, env.pool().await, env.projection().await);
    // Retried on 503 with the same order_id, as a client does: every order ends acknowledged.
    let acked = post_all(&app, "v3", 5000, 32).await;
    assert_eq!(acked.len(), 5000, "the broker acknowledged every order");
    assert!(
        wait_until(Duration::from_secs(60), || async { env.total_orders(Version::V3).await == 5000 }).await,
        "metrics reach 5000 (now {})",
        env.total_orders(Version::V3).await
    );
    assert_eq!(env.rows(Version::V3).await, 5000);
    assert_no_drift(&env, Version::V3).await;
    // Windows pre-aggregate: far fewer Redis script calls than orders.
    let fences = env.projection().await.fences(Version::V3).await.unwrap();
    let windows: u64 = fences.values().sum();
    assert!(windows < 1000, "{windows} windows for 5000 orders");
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    app.stop().await;
}

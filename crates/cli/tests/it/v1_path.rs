//! v1: 2,000 concurrent orders become exactly 2,000 rows; the aggregator's metrics match.

use std::time::Duration;

use coffee_core::Version;
use coffee_pipeline::{AggregateMode, Aggregator};

use crate::support::*;

/// Runs the aggregator until it has counted `expected`. Its window ends at the cluster-wide
/// snapshot xmin, so a long write transaction anywhere on the server (another database's bulk
/// COPY, say) delays v1's metrics; it never makes them wrong, which the callers check.
async fn catch_up(aggregator: &Aggregator, env: &TestEnv, expected: i64) {
    let done = wait_until(Duration::from_secs(120), || async {
        aggregator.run_once(AggregateMode::Incremental).await.unwrap();
        let n = env.total_orders(Version::V1).await;
        assert!(n <= expected, "counted {n} > {expected}");
        n == expected
    })
    .await;
    assert!(done, "v1 metrics reach {expected} (now {})", env.total_orders(Version::V1).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_thousand_concurrent_orders_count_exactly() {
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    let acked = post_all(&app, "v1", 2000, 64).await;
    assert_eq!(acked.len(), 2000, "every order acknowledged");
    // 201 means committed: the rows are there before any aggregator runs.
    assert_eq!(env.rows(Version::V1).await, 2000);

    let aggregator = Aggregator::new(env.pool().await, env.projection().await);
    let full = aggregator.run_once(AggregateMode::Incremental).await.unwrap();
    assert_eq!(full.mode, AggregateMode::Full, "first run has no fence: full recompute");
    catch_up(&aggregator, &env, 2000).await;
    assert_no_drift(&env, Version::V1).await;

    // Incremental runs add only what committed since, and a run with nothing new changes nothing.
    post_many(&app, "v1", 300, 16).await;
    let inc = aggregator.run_once(AggregateMode::Incremental).await.unwrap();
    assert_eq!(inc.mode, AggregateMode::Incremental);
    assert!(inc.orders_counted <= 300);
    catch_up(&aggregator, &env, 2300).await;
    aggregator.run_once(AggregateMode::Incremental).await.unwrap();
    assert_eq!(env.total_orders(Version::V1).await, 2300, "a run with nothing new changes nothing");
    assert_no_drift(&env, Version::V1).await;

    // A full recompute agrees with the incremental result to the cent.
    let before = env.projection().await.read_all(Version::V1).await.unwrap();
    aggregator.run_once(AggregateMode::Full).await.unwrap();
    let after = env.projection().await.read_all(Version::V1).await.unwrap();
    assert_eq!(before.total, after.total);
    assert_eq!(before.drinks, after.drinks);
    assert_eq!(before.hours, after.hours);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn incremental_runs_racing_inserts_never_miss_or_double_count() {
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    let aggregator = Aggregator::new(env.pool().await, env.projection().await);
    let agg = aggregator.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        agg.run_every(Duration::from_millis(20), AggregateMode::Incremental, async move {
            let _ = stopped.await;
        })
        .await
    });
    let acked = post_many(&app, "v1", 1500, 48).await;
    assert_eq!(acked.len(), 1500);
    let _ = stop.send(());
    running.await.unwrap();
    catch_up(&aggregator, &env, 1500).await;
    assert_no_drift(&env, Version::V1).await;
    app.stop().await;
}

//! The projection repairs itself when Redis loses it: no `reconcile --fix` is run here.
//!
//! These tests lose one namespace's projection on the shared Redis (its keys deleted, which is
//! what a FLUSHALL does to it); `redis_loss` does it to a private Redis with SIGKILL and
//! FLUSHALL.

use std::time::{Duration, Instant};

use coffee_core::Version;

use crate::support::*;

const ALL: [Version; 3] = [Version::V1, Version::V2, Version::V3];

async fn lose_projection(env: &TestEnv) -> u64 {
    let mut redis = env.redis().await;
    let mut removed = 0;
    for v in ALL {
        removed += coffee_store::redis::delete_prefix(&mut redis, &format!("{}{v}:metrics:", env.namespace)).await.unwrap();
    }
    removed
}

async fn matches_postgres(env: &TestEnv) -> bool {
    for v in ALL {
        if env.total_orders(v).await != env.rows(v).await {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_projection_is_rebuilt_while_orders_keep_coming() {
    let env = TestEnv::new();
    let app = env.spawn_up().await;
    let (processor, processing) = start_processor(&env, env.pool().await, env.projection().await);
    for v in ["v1", "v2", "v3"] {
        assert_eq!(post_all(&app, v, 200, 16).await.len(), 200, "{v}");
    }
    assert!(wait_until(Duration::from_secs(30), || matches_postgres(&env)).await, "the projection caught up before the loss");

    // Orders keep flowing while Redis forgets, and after.
    let load = async {
        let mut acked = 0;
        for round in 0..6 {
            for v in ["v1", "v2", "v3"] {
                acked += post_all(&app, v, 40, 8).await.len();
            }
            tokio::time::sleep(Duration::from_millis(200 + round * 10)).await;
        }
        acked
    };
    let loss = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let removed = lose_projection(&env).await;
        (removed, Instant::now())
    };
    let (acked, (removed, lost_at)) = tokio::join!(load, loss);
    assert!(removed >= 6, "there was a projection to lose");
    assert_eq!(acked, 6 * 3 * 40, "every order was acknowledged during the loss");

    let repaired = wait_until(Duration::from_secs(20), || matches_postgres(&env)).await;
    let mut report = String::new();
    for v in ALL {
        report += &format!("{v}: redis {} postgres {}; ", env.total_orders(v).await, env.rows(v).await);
    }
    assert!(repaired, "the metrics equal PostgreSQL again with no command run: {report}");
    eprintln!("repaired {:.1} s after the loss", lost_at.elapsed().as_secs_f64());
    for v in ALL {
        assert_eq!(env.rows(v).await, 200 + 6 * 40, "{v}");
        assert_no_drift(&env, v).await;
    }
    let (status, ready) = app.get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    for v in ["v1", "v2", "v3"] {
        assert_eq!(ready["projection"][v], "live", "{ready}");
    }
    let text = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("coffee_rt_projection_rebuilds_total{version=\"v2\"}"), "the v2 rebuild is counted");
    assert!(text.contains("coffee_rt_projection_rebuilds_total{version=\"v3\"}"), "the v3 rebuild is counted");
    let _ = processor.send(());
    processing.await.unwrap().unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_lost_projection_is_rebuilt_too() {
    let env = TestEnv::new();
    let app = env.spawn_up().await;
    let (processor, processing) = start_processor(&env, env.pool().await, env.projection().await);
    for v in ["v2", "v3"] {
        assert_eq!(post_all(&app, v, 50, 8).await.len(), 50);
    }
    let settled = || async { env.rows(Version::V2).await == 50 && env.rows(Version::V3).await == 50 && matches_postgres(&env).await };
    assert!(wait_until(Duration::from_secs(30), settled).await);
    lose_projection(&env).await;
    // No order comes after the loss: the check finds it by itself.
    let rebuilt = || async { env.total_orders(Version::V2).await == 50 && env.total_orders(Version::V3).await == 50 };
    assert!(wait_until(Duration::from_secs(10), rebuilt).await, "rebuilt with no writes and no command");
    let _ = processor.send(());
    processing.await.unwrap().unwrap();
    app.stop().await;
}

//! PostgreSQL goes away: the API answers 503 fast, and once it is back no acknowledged order is
//! missing. The outage is a proxy cutting every connection, so the shared server keeps running.

use std::time::{Duration, Instant};

use coffee_core::Version;
use coffee_pipeline::WorkerConfig;

use crate::{support::*, v2_path::start_worker};

#[tokio::test(flavor = "multi_thread")]
async fn postgres_down_means_fast_503_and_nothing_acknowledged_is_lost() {
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let env = TestEnv::with_database_port(proxy.port);
    let app = env.spawn_app().await;
    let (stop, task) = start_worker(&env, WorkerConfig::new("w1"), env.pool().await, env.projection().await);
    let mut acked_v1 = post_many(&app, "v1", 100, 8).await;
    let mut acked_v2 = post_many(&app, "v2", 100, 8).await;
    assert_eq!((acked_v1.len(), acked_v2.len()), (100, 100));

    proxy.set_up(false);
    let mut refused = Vec::new();
    for i in 0..5 {
        let started = Instant::now();
        let o = order(i);
        refused.push(o["order_id"].as_str().unwrap().to_owned());
        let (status, body) = app.post("v1", &o).await;
        assert_eq!(status, 503, "{body}");
        assert!(started.elapsed() < Duration::from_secs(3), "503 within 3 s, took {:?}", started.elapsed());
    }
    let (status, _) = app.get("/readyz").await;
    assert_eq!(status, 503, "not ready without PostgreSQL");
    // v2 still accepts: the stream holds the orders until the worker can commit them.
    acked_v2.extend(post_many(&app, "v2", 100, 8).await);
    assert_eq!(acked_v2.len(), 200);
    tokio::time::sleep(Duration::from_secs(2)).await;

    proxy.set_up(true);
    acked_v1.extend(post_many(&app, "v1", 20, 4).await);
    assert_eq!(acked_v1.len(), 120, "v1 recovers");
    assert!(wait_until(Duration::from_secs(30), || async { env.total_orders(Version::V2).await == 200 }).await, "v2 catches up");
    for (version, ids) in [(Version::V1, &acked_v1), (Version::V2, &acked_v2)] {
        assert_eq!(stored(&env, ids).await, ids.len() as i64, "{version}: every acknowledged order is stored");
        // Nothing else, except that a refused order may have committed just as the connection
        // died (the client cannot know; it retries with the same id, which counts once).
        let maybe = stored(&env, &refused).await;
        let extra = if version == Version::V1 { maybe } else { 0 };
        assert_eq!(env.rows(version).await, ids.len() as i64 + extra, "{version}: and nothing else");
    }
    assert_no_drift(&env, Version::V2).await;
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    app.stop().await;
}

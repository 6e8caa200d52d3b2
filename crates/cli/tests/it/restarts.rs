//! The services the scripts start, restarted under a live stream: Redis coming back empty,
//! Redis killed and replaying its append-only file, PostgreSQL crashing and recovering. Each
//! test runs its own server of the kind it kills (see `services`).

use std::time::Duration;

use coffee_core::Version;
use coffee_pipeline::WorkerConfig;

use crate::{
    services::{PgCluster, RedisServer},
    support::*,
    v2_path::start_worker,
};

/// A Redis that keeps nothing on disk returns empty: no stream, no consumer group. The worker
/// recreates its group (it used to retry `NOGROUP` forever), so every order accepted after
/// Redis returned reaches PostgreSQL.
#[tokio::test(flavor = "multi_thread")]
async fn redis_restarted_empty_mid_stream_loses_no_order_accepted_after_it_returned() {
    let mut redis = RedisServer::start(&uuid::Uuid::new_v4().simple().to_string(), &["--appendonly", "no"]).await;
    let env = TestEnv::with_services(5432, &redis.url());
    let app = env.spawn_app().await;
    let (stop, task) = start_worker(&env, WorkerConfig::new("w1"), env.pool().await, env.projection().await);
    let before = post_all(&app, "v2", 300, 16).await;
    assert!(wait_until(Duration::from_secs(20), || async { stored(&env, &before).await == 300 }).await, "the first orders are stored");

    redis.kill().await;
    redis.run().await;
    let mut r = env.redis().await;
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut r).await.unwrap();
    assert!(keys.is_empty(), "Redis came back empty: {keys:?}");

    let after = post_all_within(&app, "v2", 1000, 32, Duration::from_secs(15)).await;
    let done = wait_until(Duration::from_secs(30), || async { stored(&env, &after).await == 1000 }).await;
    assert!(done, "{} of 1000 orders accepted after the restart reached PostgreSQL", stored(&env, &after).await);
    assert_eq!(env.rows(Version::V2).await, 1300, "and each of them once");
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    app.stop().await;
}

/// With `appendfsync always` an acknowledged XADD is on disk: SIGKILL in the middle of a
/// stream of orders, and the restarted Redis replays every acknowledged one to the worker.
#[tokio::test(flavor = "multi_thread")]
async fn redis_killed_mid_stream_replays_every_acknowledged_order_from_its_aof() {
    let mut redis =
        RedisServer::start(&uuid::Uuid::new_v4().simple().to_string(), &["--appendonly", "yes", "--appendfsync", "always"]).await;
    let env = TestEnv::with_services(5432, &redis.url());
    let app = env.spawn_app().await;
    let posting = post_all_within(&app, "v2", 3000, 32, Duration::from_secs(20));
    let outage = async {
        // The worker starts late, so entries are waiting unread in the stream at the kill.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let pending: usize =
            redis::cmd("XLEN").arg(coffee_store::Keys::stream(&env.namespace)).query_async(&mut env.redis().await).await.unwrap();
        redis.kill().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        redis.run().await;
        pending
    };
    let (acked, in_stream_at_kill) = tokio::join!(posting, outage);
    assert!(in_stream_at_kill > 0, "the kill met acknowledged orders waiting in the stream");
    let (stop, task) = start_worker(&env, WorkerConfig::new("w1"), env.pool().await, env.projection().await);
    let done = wait_until(Duration::from_secs(40), || async { stored(&env, &acked).await == 3000 }).await;
    assert!(done, "{} of 3000 acknowledged orders in PostgreSQL", stored(&env, &acked).await);
    assert_eq!(env.rows(Version::V2).await, 3000);
    assert!(wait_until(Duration::from_secs(20), || async { env.total_orders(Version::V2).await == 3000 }).await, "metrics count them");
    assert_no_drift(&env, Version::V2).await;
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    app.stop().await;
}

/// PostgreSQL crashes (immediate stop: no checkpoint) while orders stream in on all three paths
/// and comes back 2 s later: every acknowledged order is stored once and counted once.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_crashing_mid_stream_loses_no_acknowledged_order() {
    let pg = PgCluster::start(&uuid::Uuid::new_v4().simple().to_string()).await;
    let env = TestEnv::with_services(pg.port, REDIS);
    let app = env.spawn_app().await;
    let (stop_w, worker) = start_worker(&env, WorkerConfig::new("w1"), env.pool().await, env.projection().await);
    let (stop_p, processor) = start_processor(&env, env.pool().await, env.projection().await);
    let patience = Duration::from_secs(30);
    let posting = async {
        tokio::join!(
            post_all_within(&app, "v1", 2000, 16, patience),
            post_all_within(&app, "v2", 2000, 16, patience),
            post_all_within(&app, "v3", 2000, 16, patience),
        )
    };
    let outage = async {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let rows_at_crash = env.rows(Version::V1).await + env.rows(Version::V2).await + env.rows(Version::V3).await;
        pg.crash().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        pg.run().await;
        rows_at_crash
    };
    let ((v1, v2, v3), rows_at_crash) = tokio::join!(posting, outage);
    assert!(rows_at_crash > 0 && rows_at_crash < 6000, "the crash came mid-stream ({rows_at_crash} rows stored before it)");
    for (version, acked) in [(Version::V1, &v1), (Version::V2, &v2), (Version::V3, &v3)] {
        // v1's metrics come from the aggregator, which this test does not run.
        let done = wait_until(Duration::from_secs(60), || async {
            stored(&env, acked).await == 2000 && (version == Version::V1 || env.total_orders(version).await == 2000)
        })
        .await;
        assert!(done, "{version}: {} of 2000 acknowledged stored, {} counted", stored(&env, acked).await, env.total_orders(version).await);
        assert_eq!(env.rows(version).await, 2000, "{version}: each once");
    }
    assert_no_drift(&env, Version::V2).await;
    assert_no_drift(&env, Version::V3).await;
    let _ = (stop_w.send(()), stop_p.send(()));
    worker.await.unwrap().unwrap();
    processor.await.unwrap().unwrap();
    app.stop().await;
}

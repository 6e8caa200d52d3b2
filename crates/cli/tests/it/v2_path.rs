//! v2: 2,000 concurrent orders through the stream and a worker: exactly 2,000 rows and metrics.

use std::{sync::Arc, time::Duration};

use coffee_core::{Catalog, Version};
use coffee_pipeline::{Worker, WorkerConfig};

use crate::support::*;

pub fn start_worker(
    env: &TestEnv,
    config: WorkerConfig,
    pool: coffee_store::PgPool,
    projection: coffee_store::Projection,
) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let worker = Worker::new(config, pool, projection, Arc::new(Catalog::default()), &env.redis_url);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(worker.run(async move {
        let _ = stopped.await;
    }));
    (stop, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_thousand_concurrent_orders_count_exactly() {
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    let (stop, task) = start_worker(&env, WorkerConfig::new("w1"), env.pool().await, env.projection().await);
    let acked = post_all(&app, "v2", 2000, 64).await;
    assert_eq!(acked.len(), 2000);
    assert!(wait_until(Duration::from_secs(20), || async { env.total_orders(Version::V2).await == 2000 }).await, "metrics reach 2000");
    assert_eq!(env.rows(Version::V2).await, 2000);
    assert_no_drift(&env, Version::V2).await;
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_flushes_on_its_time_cap_while_entries_keep_coming() {
    // A worker with a huge size cap still makes orders visible within its linger.
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    let mut config = WorkerConfig::new("w1");
    config.max_batch = 1_000_000;
    config.linger = Duration::from_millis(50);
    let (stop, task) = start_worker(&env, config, env.pool().await, env.projection().await);
    let poster = async {
        for i in 0..40 {
            app.post("v2", &order(i)).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let watcher = async { wait_until(Duration::from_millis(350), || async { env.total_orders(Version::V2).await > 0 }).await };
    let (_, seen_early) = tokio::join!(poster, watcher);
    assert!(seen_early, "first orders visible while entries still arrive");
    assert!(wait_until(Duration::from_secs(10), || async { env.total_orders(Version::V2).await == 40 }).await);
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_split_worker_serves_its_own_metrics_and_cleans_its_outbox() {
    // `serve` and `worker` as separate processes: only the worker knows how fresh the orders
    // it counts are, so it must export that itself (`--metrics-listen`).
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let mut worker = env.spawn(&["worker", "--consumer", "split", "--metrics-listen", &listen], &[]);
    let acked = post_all(&app, "v2", 500, 32).await;
    assert_eq!(acked.len(), 500);
    assert!(wait_until(Duration::from_secs(20), || async { env.total_orders(Version::V2).await == 500 }).await, "metrics reach 500");

    let metrics = reqwest::get(format!("http://{listen}/metrics")).await.unwrap().text().await.unwrap();
    let count = |name: &str| -> f64 {
        metrics.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
    };
    assert_eq!(count("coffee_rt_order_freshness_seconds_count{version=\"v2\"}"), 500.0, "{metrics}");
    assert!(count("coffee_rt_batch_orders_count{stage=\"v2_worker\"}") >= 1.0, "{metrics}");

    // Applied deltas are deleted by the source's next transaction: what remains is at most the
    // last one, already in Redis.
    let client = env.pool().await.get().await.unwrap();
    let (left, fence): (i64, i64) = {
        let r =
            client.query_one("SELECT count(*), coalesce(max(seq), 0) FROM metrics_outbox WHERE source = 'v2:split'", &[]).await.unwrap();
        (r.get(0), r.get(1))
    };
    let (seq,): (i64,) = {
        let r = client.query_one("SELECT seq FROM sink_positions WHERE source = 'v2:split'", &[]).await.unwrap();
        (r.get(0),)
    };
    assert!(left <= 1, "{left} outbox entries left after {seq} batches");
    assert!(left == 0 || fence == seq, "only the newest entry may wait for the next batch");
    assert_no_drift(&env, Version::V2).await;
    worker.start_kill().unwrap();
    worker.wait().await.unwrap();
    app.stop().await;
}

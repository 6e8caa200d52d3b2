//! `reconcile` finds drift between Redis and PostgreSQL and `--fix` repairs it.

use std::time::Duration;

use coffee_core::Version;
use coffee_pipeline::{WorkerConfig, reconcile::reconcile};
use redis::AsyncCommands;

use crate::{support::*, v2_path::start_worker};

type WorkerHandle = (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>);

/// A running app and v2 worker `w1` that have counted `n` orders (posted `concurrency` at a time).
async fn app_with_counted_v2_orders(env: &TestEnv, n: usize, concurrency: usize) -> (TestApp, WorkerHandle) {
    let app = env.spawn_app().await;
    let worker = start_worker(env, WorkerConfig::new("w1"), env.pool().await, env.projection().await);
    post_many(&app, "v2", n, concurrency).await;
    assert!(wait_until(Duration::from_secs(15), || async { env.total_orders(Version::V2).await == n as i64 }).await);
    (app, worker)
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_is_reported_and_fixed_and_later_deltas_still_apply_once() {
    let env = TestEnv::new();
    let (app, (stop, task)) = app_with_counted_v2_orders(&env, 200, 16).await;

    // Damage the projection.
    let mut r = env.redis().await;
    let keys = coffee_store::Keys::new(&env.namespace, Version::V2);
    let _: i64 = r.incr(keys.metric("total_orders"), 7).await.unwrap();
    let _: i64 = r.hincr(keys.metric("drink_revenue"), "latte", -123).await.unwrap();

    let (pool, projection) = (env.pool().await, env.projection().await);
    let report = reconcile(&pool, &projection, Version::V2, false).await.unwrap();
    let metrics: Vec<&str> = report.drift.iter().map(|d| d.metric.as_str()).collect();
    assert!(metrics.contains(&"total") && metrics.contains(&"drink:latte"), "{metrics:?}");
    assert!(!report.fixed);

    let fixed = reconcile(&pool, &projection, Version::V2, true).await.unwrap();
    assert!(fixed.fixed);
    assert_no_drift(&env, Version::V2).await;
    assert_eq!(env.total_orders(Version::V2).await, 200);

    // The fences were reset with the metrics: new batches count once, nothing is replayed.
    post_many(&app, "v2", 50, 8).await;
    assert!(wait_until(Duration::from_secs(15), || async { env.total_orders(Version::V2).await == 250 }).await);
    assert_no_drift(&env, Version::V2).await;

    // The CLI prints the same report and exits non-zero on unfixed drift.
    let _: i64 = r.incr(keys.metric("total_orders"), 1).await.unwrap();
    let out = env.command(&["reconcile", "--version", "v2"]).stdout(std::process::Stdio::piped()).output().await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"total\""));
    let out = env.command(&["reconcile", "--version", "v2", "--fix"]).output().await.unwrap();
    assert!(out.status.success());
    assert_no_drift(&env, Version::V2).await;
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wiped_projection_is_rebuilt_by_the_worker_and_later_deltas_apply_once() {
    // Redis here keeps nothing on disk: after a restart the fences are gone and the next delta
    // is a gap the outbox cannot fill. Orders must keep landing in PostgreSQL, the worker must
    // not spin, and its self-repair (no `reconcile` run) must bring Redis back to exact.
    let env = TestEnv::new();
    let (app, (stop, task)) = app_with_counted_v2_orders(&env, 100, 8).await;
    let mut r = env.redis().await;
    let keys = coffee_store::Keys::new(&env.namespace, Version::V2);
    let _: () = r.del(&keys.all()[..]).await.unwrap();

    post_many(&app, "v2", 50, 8).await;
    assert!(wait_until(Duration::from_secs(15), || async { env.rows(Version::V2).await == 150 }).await, "orders still land");
    assert!(
        wait_until(Duration::from_secs(10), || async { env.total_orders(Version::V2).await == 150 }).await,
        "rebuilt from PostgreSQL with no command"
    );
    let report = reconcile(&env.pool().await, &env.projection().await, Version::V2, false).await.unwrap();
    assert!(report.drift.is_empty(), "{report:?}");
    post_many(&app, "v2", 10, 4).await;
    assert!(wait_until(Duration::from_secs(15), || async { env.total_orders(Version::V2).await == 160 }).await);
    assert_no_drift(&env, Version::V2).await;
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("the worker stops; it is not spinning").unwrap().unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_projection_ahead_of_postgres_stops_the_writers_at_start() {
    // Redis kept a namespace whose database was dropped and recreated: every new delta would
    // look like a replay and be skipped. The writer roles refuse to start and say why.
    let env = TestEnv::new();
    let (app, (stop, task)) = app_with_counted_v2_orders(&env, 20, 4).await;
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    app.stop().await;

    let (pool, projection) = (env.pool().await, env.projection().await);
    coffee_pipeline::relay::check_projection(&pool, &projection, Version::V2).await.expect("in step after normal work");
    // "Reset" PostgreSQL, as restoring an older backup would: the source's position and its
    // outbox go back to before its first batch (the orders stay, so the rebuild has work).
    pool.get()
        .await
        .unwrap()
        .batch_execute("DELETE FROM metrics_outbox WHERE source = 'v2:w1'; UPDATE sink_positions SET seq = 0 WHERE source = 'v2:w1'")
        .await
        .unwrap();
    let err = coffee_pipeline::relay::check_projection(&pool, &projection, Version::V2).await.unwrap_err();
    assert!(err.to_string().contains("v2:w1") && err.to_string().contains("reconcile"), "{err}");

    let out = env.command(&["worker"]).stderr(std::process::Stdio::piped()).output().await.unwrap();
    assert!(!out.status.success(), "the worker refuses to start");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("reconcile --version v2 --fix --force"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A plain --fix refuses (a live writer would look the same) and points at --force.
    let out = env.command(&["reconcile", "--version", "v2", "--fix"]).stderr(std::process::Stdio::piped()).output().await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"), "{}", String::from_utf8_lossy(&out.stderr));
    // The advertised fix works: the fences follow PostgreSQL again and the metrics match it.
    let out = env
        .command(&["reconcile", "--version", "v2", "--fix", "--force"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    coffee_pipeline::relay::check_projection(&pool, &projection, Version::V2).await.expect("in step after reconcile --fix --force");
    assert_eq!(projection.fences(Version::V2).await.unwrap().get("v2:w1"), Some(&0));
    assert_no_drift(&env, Version::V2).await;
}

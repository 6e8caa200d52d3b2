//! v2 under faults: SIGKILL between commit and XACK, dead consumers, poison messages.

use std::time::Duration;

use coffee_core::Version;
use coffee_pipeline::{WorkerConfig, sources::v2_stream::GROUP};
use coffee_store::Keys;
use rand::RngExt;
use redis::{AsyncCommands, streams::StreamReadOptions};

use crate::{support::*, v2_path::start_worker};

async fn pending(env: &TestEnv) -> usize {
    let mut r = env.redis().await;
    let info: redis::streams::StreamInfoGroupsReply = r.xinfo_groups(Keys::stream(&env.namespace)).await.unwrap();
    info.groups.iter().find(|g| g.name == GROUP).map(|g| g.pending).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_between_commit_and_ack_loses_nothing_and_counts_once() {
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    let acked = post_many(&app, "v2", 6000, 64).await;
    assert_eq!(acked.len(), 6000);

    // 1. A worker that aborts (like SIGKILL) right after its 3rd PostgreSQL commit: the batch is
    //    in PostgreSQL and its delta in the outbox, but Redis and XACK never heard of it.
    let args = ["worker", "--consumer", "w1", "--batch", "500"];
    let status = env.spawn(&args, &[("COFFEE_RT_CRASH_AFTER_COMMIT", "3")]).wait().await.unwrap();
    assert!(!status.success(), "the fault fired");
    let rows_after_crash = env.rows(Version::V2).await;
    assert!((1500..6000).contains(&rows_after_crash), "crashed mid-stream ({rows_after_crash} rows)");
    assert!(pending(&env).await > 0, "the crashed batch is still pending");

    // 2. Twice more: restart and SIGKILL at a random moment mid-stream.
    for _ in 0..2 {
        let mut child = env.spawn(&args, &[]);
        let ms = rand::rng().random_range(150..600);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }

    // 3. The same consumer restarts, re-reads its own pending entries first, and finishes.
    let mut child = env.spawn(&args, &[]);
    let done =
        wait_until(Duration::from_secs(60), || async { env.total_orders(Version::V2).await == 6000 && pending(&env).await == 0 }).await;
    child.start_kill().unwrap();
    assert!(done, "all orders counted: {} in Redis, {} pending", env.total_orders(Version::V2).await, pending(&env).await);
    assert_eq!(env.rows(Version::V2).await, 6000);
    assert_eq!(stored(&env, &acked).await, 6000, "every acknowledged order is in PostgreSQL");
    assert_no_drift(&env, Version::V2).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn xautoclaim_takes_over_a_dead_consumers_entries() {
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    post_many(&app, "v2", 50, 8).await;
    // A consumer reads the entries and dies without acknowledging them.
    let mut r = env.redis().await;
    let opts = StreamReadOptions::default().group(GROUP, "dead-consumer").count(100);
    let got: redis::streams::StreamReadReply = r.xread_options(&[Keys::stream(&env.namespace)], &[">"], &opts).await.unwrap();
    assert_eq!(got.keys[0].ids.len(), 50);
    assert_eq!(pending(&env).await, 50);

    let mut config = WorkerConfig::new("rescuer");
    config.claim_min_idle = Duration::from_millis(300);
    config.maintenance_every = Duration::from_millis(200);
    let (stop, task) = start_worker(&env, config, env.pool().await, env.projection().await);
    assert!(wait_until(Duration::from_secs(15), || async { env.total_orders(Version::V2).await == 50 }).await, "claimed and processed");
    assert!(wait_until(Duration::from_secs(5), || async { pending(&env).await == 0 }).await);
    assert_eq!(env.rows(Version::V2).await, 50);
    assert_no_drift(&env, Version::V2).await;
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_message_goes_to_the_dead_letter_stream() {
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    let mut r = env.redis().await;
    let stream = Keys::stream(&env.namespace);
    let _: String = r.xadd(&stream, "*", &[("order", "{not json")]).await.unwrap();
    let _: String = r.xadd(&stream, "*", &[("something", "else")]).await.unwrap();
    post_many(&app, "v2", 10, 4).await;
    let (stop, task) = start_worker(&env, WorkerConfig::new("w1"), env.pool().await, env.projection().await);
    assert!(wait_until(Duration::from_secs(10), || async { env.total_orders(Version::V2).await == 10 }).await, "good orders still flow");
    let dead: redis::streams::StreamRangeReply = r.xrange_all(Keys::dead_letters(&env.namespace)).await.unwrap();
    assert_eq!(dead.ids.len(), 2, "both poison entries dead-lettered");
    let reason: String = dead.ids[0].get("reason").unwrap();
    assert!(reason.contains("malformed"), "{reason}");
    assert!(wait_until(Duration::from_secs(5), || async { pending(&env).await == 0 }).await, "poison entries acknowledged");
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_entry_delivered_too_often_is_dead_lettered() {
    // An entry that kills every consumer that takes it (so never acknowledged) is set aside
    // after `max_deliveries` instead of killing workers forever.
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    post_many(&app, "v2", 1, 1).await;
    let mut r = env.redis().await;
    let stream = Keys::stream(&env.namespace);
    for i in 0..3 {
        // Each "crashed" consumer reads it (delivery count +1) and never acks.
        let opts = StreamReadOptions::default().group(GROUP, format!("crasher-{i}")).count(10);
        let id = if i == 0 { ">" } else { "0" };
        let _: Option<redis::streams::StreamReadReply> = r.xread_options(&[&stream], &[id], &opts).await.unwrap();
        let _: redis::streams::StreamAutoClaimReply = r
            .xautoclaim_options(&stream, GROUP, format!("crasher-{}", i + 1), 0, "0-0", redis::streams::StreamAutoClaimOptions::default())
            .await
            .unwrap();
    }
    let mut config = WorkerConfig::new("w1");
    config.claim_min_idle = Duration::from_millis(100);
    config.maintenance_every = Duration::from_millis(100);
    config.max_deliveries = 2;
    let (stop, task) = start_worker(&env, config, env.pool().await, env.projection().await);
    let dead_len = || async { r.clone().xlen::<_, i64>(Keys::dead_letters(&env.namespace)).await.unwrap() };
    assert!(wait_until(Duration::from_secs(10), || async { dead_len().await == 1 }).await, "dead-lettered after too many deliveries");
    assert_eq!(env.rows(Version::V2).await, 0);
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    app.stop().await;
}

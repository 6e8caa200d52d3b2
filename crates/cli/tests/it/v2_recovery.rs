//! v2 under faults: SIGKILL between commit and XACK, dead consumers, poison messages.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

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

/// The outbox seq `source` has committed in PostgreSQL (`sink_positions`), 0 before its first.
async fn committed_seq(env: &TestEnv, source: &str) -> i64 {
    let pool = env.pool().await;
    let client = pool.get().await.unwrap();
    client.query_opt("SELECT seq FROM sink_positions WHERE source = $1", &[&source]).await.unwrap().map_or(0, |r| r.get(0))
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_between_commit_and_ack_loses_nothing_and_counts_once() {
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    let acked = truth::post_acked(&app, "v2", 6000, 64).await;
    assert_eq!(acked.len(), 6000);

    // 1. A worker that aborts (like SIGKILL) right after its 3rd PostgreSQL commit: the batch is
    //    in PostgreSQL and its delta in the outbox, but Redis and XACK never heard of it.
    let args = ["worker", "--consumer", "w1", "--batch", "500"];
    let status = env.spawn(&args, &[("COFFEE_RT_CRASH_AFTER_COMMIT", "3")]).wait().await.unwrap();
    assert!(!status.success(), "the fault fired");
    let rows_after_crash = env.rows(Version::V2).await;
    assert!((1500..6000).contains(&rows_after_crash), "crashed mid-stream ({rows_after_crash} rows)");
    assert!(pending(&env).await > 0, "the crashed batch is still pending");

    // 2. Twice more: restart, and SIGKILL at a random moment once the worker has committed a
    //    batch of its own (its `sink_positions` row moved) and holds another one unacknowledged.
    //    Orders keep coming meanwhile, so there is work however fast the worker drains. A kill
    //    that lands in the instant between an XACK and the next read finds nothing in flight;
    //    such a miss is retried, and two kills must hit.
    let small = ["worker", "--consumer", "w1", "--batch", "100"];
    let enough = AtomicBool::new(false);
    let posting = truth::post_acked_until(&app, "v2", 0, &enough, 16);
    let chaos = async {
        let (mut hits, mut attempts) = (0, 0);
        while hits < 2 {
            attempts += 1;
            assert!(attempts <= 6, "no kill met work in flight in {attempts} attempts");
            let before = committed_seq(&env, "v2:w1").await;
            let mut child = env.spawn(&small, &[]);
            let committed = wait_until(Duration::from_secs(30), || async { committed_seq(&env, "v2:w1").await > before }).await;
            assert!(committed, "the restarted worker commits a batch");
            tokio::time::sleep(Duration::from_millis(rand::rng().random_range(0..200))).await;
            let holding = wait_until(Duration::from_secs(10), || async { pending(&env).await > 0 }).await;
            assert!(holding, "the worker holds a batch (at {} rows)", env.rows(Version::V2).await);
            child.start_kill().unwrap(); // SIGKILL
            child.wait().await.unwrap();
            // Nothing acknowledges the dead consumer's entries: what is pending now, it held.
            if pending(&env).await > 0 {
                hits += 1;
            }
        }
        enough.store(true, Ordering::Relaxed);
    };
    let ((more, _), ()) = tokio::join!(posting, chaos);
    let acked: Vec<_> = acked.into_iter().chain(more).collect();
    let n = acked.len() as i64;

    // 3. The same consumer restarts, re-reads its own pending entries first, and finishes.
    let mut child = env.spawn(&args, &[]);
    let done = wait_until(Duration::from_secs(60), || async { env.total_orders(Version::V2).await == n && pending(&env).await == 0 }).await;
    child.start_kill().unwrap();
    assert!(done, "all orders counted: {} in Redis, {} pending", env.total_orders(Version::V2).await, pending(&env).await);
    assert_eq!(truth::rows(&env, Version::V2).await, truth::sum_of(&acked), "PostgreSQL holds the acknowledged orders, once");
    truth::assert_acked_stored(&env, Version::V2, &acked).await;
    truth::assert_projection_matches(&env, Version::V2).await;
    assert_no_drift(&env, Version::V2).await;
    app.stop().await;
}

/// A worker that dies right after its PostgreSQL commit and never comes back leaves its delta
/// in the outbox. Another worker adopts it (its relay sweep, or its projection watch once the
/// dead source has stalled for a second): taking over the dead consumer's entries adds nothing
/// (PostgreSQL already holds those orders), so only the adopted delta can make Redis count them.
#[tokio::test(flavor = "multi_thread")]
async fn a_dead_writers_committed_delta_is_adopted_by_another_worker() {
    let env = TestEnv::new();
    let app = env.spawn_app().await;
    let acked = truth::post_acked(&app, "v2", 300, 16).await;
    assert_eq!(acked.len(), 300);
    let mut gone = env.command(&["worker", "--consumer", "gone", "--batch", "100"]);
    gone.env("COFFEE_RT_CRASH_AFTER_COMMIT", "1").stderr(std::process::Stdio::piped());
    let out = tokio::time::timeout(Duration::from_secs(60), gone.output()).await.expect("the worker crashes within 60 s").unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fault injection: aborting after commit 1"), "the hook fired: {stderr}");
    let client = env.pool().await.get().await.unwrap();
    let outbox: i64 = client.query_one("SELECT count(*) FROM metrics_outbox WHERE source = 'v2:gone'", &[]).await.unwrap().get(0);
    assert_eq!(outbox, 1, "the dead worker's delta waits in the outbox");
    let committed = truth::rows(&env, Version::V2).await;
    assert!(committed.count > 0 && committed.count < 300, "it committed one batch ({committed})");
    assert_eq!(truth::from_redis(&env, Version::V2).await.unwrap().total.count, 0, "and Redis never heard of it");

    let mut config = WorkerConfig::new("rescuer");
    config.claim_min_idle = Duration::from_millis(300);
    config.maintenance_every = Duration::from_millis(200);
    config.sweep_older_than = Duration::from_millis(500);
    let (stop, task) = start_worker(&env, config, env.pool().await, env.projection().await);
    assert!(wait_until(Duration::from_secs(30), || async { pending(&env).await == 0 }).await, "the dead consumer's entries taken over");
    truth::wait_projection_matches(&env, Version::V2, Duration::from_secs(30)).await;
    assert_eq!(truth::rows(&env, Version::V2).await, truth::sum_of(&acked));
    truth::assert_acked_stored(&env, Version::V2, &acked).await;
    let _ = stop.send(());
    task.await.unwrap().unwrap();
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

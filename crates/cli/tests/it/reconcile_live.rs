//! `reconcile --fix` while writers keep writing: a snapshot older than a writer's fence is
//! refused (it would erase that writer's delta), and the fix retries with a newer one, so fixes
//! racing a live worker leave Redis equal to PostgreSQL ([`truth`], SQL of its own).

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use coffee_core::Version;
use coffee_pipeline::reconcile::reconcile;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_snapshot_is_refused_and_fixes_racing_a_live_writer_end_exact() {
    let env = TestEnv::new();
    let app = env.spawn_up().await;
    let first = truth::post_acked(&app, "v2", 200, 16).await;
    assert_eq!(first.len(), 200);
    truth::wait_projection_matches(&env, Version::V2, Duration::from_secs(30)).await;

    // A snapshot taken now, then the worker moves on: replacing with the old snapshot is refused
    // and changes nothing.
    let projection = env.projection().await;
    let (stale, stale_fences) = (projection.read_all(Version::V2).await.unwrap(), projection.fences(Version::V2).await.unwrap());
    let more = truth::post_acked(&app, "v2", 100, 8).await;
    assert_eq!(more.len(), 100);
    assert!(wait_until(Duration::from_secs(30), || async { env.total_orders(Version::V2).await == 300 }).await, "the writer moved on");
    let fences: Vec<(String, u64)> = stale_fences.into_iter().collect();
    assert!(!projection.replace(Version::V2, &stale, &fences).await.unwrap(), "a stale snapshot is refused");
    truth::assert_projection_matches(&env, Version::V2).await;

    // Fixes in a loop while orders stream in: each one that lands between a snapshot and a
    // worker's apply is refused and retried; none may leave a wrong count behind.
    let (pool, stop) = (env.pool().await, AtomicBool::new(false));
    let posting = async {
        let acked = truth::post_acked(&app, "v2", 3000, 32).await;
        stop.store(true, Ordering::Relaxed);
        acked
    };
    let fixing = async {
        let mut fixes = 0;
        while !stop.load(Ordering::Relaxed) {
            let report = reconcile(&pool, &projection, Version::V2, true).await.expect("a fix under a live writer succeeds");
            assert!(report.fixed);
            fixes += 1;
        }
        fixes
    };
    let (last, fixes) = tokio::join!(posting, fixing);
    assert_eq!(last.len(), 3000);
    assert!(fixes >= 3, "fixes raced the writer ({fixes})");
    let all: Vec<_> = first.into_iter().chain(more).chain(last).collect();
    assert!(wait_until(Duration::from_secs(30), || async { env.rows(Version::V2).await == 3300 }).await, "the worker drains");
    truth::wait_projection_matches(&env, Version::V2, Duration::from_secs(30)).await;
    assert_eq!(truth::rows(&env, Version::V2).await, truth::sum_of(&all));
    truth::assert_acked_stored(&env, Version::V2, &all).await;
    app.stop().await;
}

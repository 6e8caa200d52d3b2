//! SIGTERM under load: `coffee-rt up` finishes in-flight work, exits within 10 s, and every
//! order it acknowledged is kept, in PostgreSQL and in the Redis metrics.

use std::{
    process::Stdio,
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use coffee_core::Version;
use futures::StreamExt;
use serde_json::Value;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_load_keeps_every_acknowledged_order() {
    let env = TestEnv::new();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let mut up = env.command(&["up"]);
    up.env("COFFEE_RT_LISTEN", &listen).stdout(Stdio::null());
    let mut child = up.spawn().unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://{listen}");
    assert!(
        wait_until(Duration::from_secs(30), || async {
            client.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success())
        })
        .await
    );

    // Every request notes when it was sent and when its answer came, so the test can show
    // that SIGTERM met requests in flight: sent before the signal, acknowledged after it.
    let pid = child.id().unwrap() as i32;
    let started = Instant::now();
    let acked_so_far = AtomicUsize::new(0);
    let load = futures::stream::iter(0..3000)
        .map(|i| {
            let (client, base, acked_so_far) = (client.clone(), base.clone(), &acked_so_far);
            async move {
                let version = if i % 2 == 0 { "v1" } else { "v2" };
                let o = order(i);
                let sent = started.elapsed();
                let res = client.post(format!("{base}/api/{version}/order")).json(&o).send().await;
                match res {
                    Ok(r) if r.status().is_success() => {
                        acked_so_far.fetch_add(1, Ordering::Relaxed);
                        Some(Acked { version, order: o, sent, answered: started.elapsed() })
                    }
                    _ => None,
                }
            }
        })
        .buffer_unordered(32)
        .filter_map(|x| async move { x })
        .collect::<Vec<_>>();
    let killer = async {
        // Under way: a few hundred acknowledged, however slow the machine is.
        assert!(wait_until(Duration::from_secs(30), || async { acked_so_far.load(Ordering::Relaxed) >= 300 }).await, "load runs");
        let at = started.elapsed();
        std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
        (Instant::now(), at)
    };
    let (acked, (sent_at, signal)) = tokio::join!(load, killer);
    let status = tokio::time::timeout(Duration::from_secs(12), child.wait()).await.expect("exits").unwrap();
    assert!(sent_at.elapsed() < Duration::from_secs(11), "stopped within 10 s of SIGTERM");
    assert!(status.success(), "clean exit: {status:?}");
    assert!(acked.len() >= 300, "load was running ({} acknowledged)", acked.len());
    let drained: Vec<&Acked> = acked.iter().filter(|a| a.sent < signal && a.answered > signal).collect();
    eprintln!("{} acknowledged, {} of them in flight at SIGTERM and answered after it", acked.len(), drained.len());
    assert!(!drained.is_empty(), "SIGTERM met requests in flight (sent before it, acknowledged after it)");

    // v2 orders acknowledged but not yet processed are still in the stream: a restarted
    // worker finishes them; an aggregator counts the v1 orders `up` committed last (it runs on
    // an interval: a long transaction elsewhere on the shared server holds its window back).
    let mut worker =
        env.spawn(&["worker", "--consumer", &format!("up-{}", std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim())], &[]);
    let mut aggregator = env.spawn(&["aggregate", "--every", "200ms"], &[]);
    let of = |v: &str| acked.iter().filter(|a| a.version == v).map(|a| a.order.clone()).collect::<Vec<_>>();
    let (v1, v2) = (of("v1"), of("v2"));
    assert!(wait_until(Duration::from_secs(30), || async { env.rows(Version::V2).await >= v2.len() as i64 }).await);
    for (version, orders) in [(Version::V1, &v1), (Version::V2, &v2)] {
        truth::assert_acked_stored(&env, version, orders).await;
        assert_eq!(truth::rows(&env, version).await, truth::sum_of(orders), "{version}: PostgreSQL holds the acknowledged orders, once");
        truth::wait_projection_matches(&env, version, Duration::from_secs(30)).await;
    }
    worker.start_kill().unwrap();
    aggregator.start_kill().unwrap();
}

/// An order the server acknowledged, with when (since the load began) it was sent and answered.
struct Acked {
    version: &'static str,
    order: Value,
    sent: Duration,
    answered: Duration,
}

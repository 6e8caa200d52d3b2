//! The dashboard never says "live" about figures it cannot refresh: with Redis unreachable it
//! pushes the last figures marked `stale_since` (in the café's zone), and "live" again after.

use std::time::Duration;

use chrono::Offset;
use coffee_testkit::{Proxy, TestApp, TestEnv, ws::Frame};
use serde_json::Value;

async fn next_where(ws: &mut coffee_testkit::ws::WsClient, within: Duration, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(!left.is_zero(), "no such frame within {within:?}");
        match ws.next(left).await {
            Some(Frame::Snapshot(s)) if wanted(&s) => return s,
            Some(Frame::Snapshot(_) | Frame::Heartbeat) => {}
            Some(Frame::Closed(c)) => panic!("closed: {c:?}"),
            None => panic!("no such frame within {within:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_makes_the_page_stale_since_then_live_again() {
    let redis = Proxy::start("127.0.0.1:6379").await;
    let mut env = TestEnv::with_services(5432, &format!("redis://127.0.0.1:{}/0", redis.port));
    env.config.timezone = chrono_tz::Europe::Paris;
    let app = TestApp::up(env).await;
    app.order("v2", "latte", "uptown", 450).await;
    let mut ws = app.ws().await;
    let live = next_where(&mut ws, Duration::from_secs(10), |s| s["versions"]["v2"]["total_orders"] == 1).await;
    assert!(live.get("stale_since").is_none(), "{live}");

    redis.set_up(false);
    let stale = next_where(&mut ws, Duration::from_secs(10), |s| s.get("stale_since").is_some()).await;
    let since = stale["stale_since"].as_str().unwrap();
    let parsed = chrono::DateTime::parse_from_rfc3339(since).expect("RFC 3339 with an offset");
    let paris = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Paris);
    assert_eq!(parsed.offset().local_minus_utc(), paris.offset().fix().local_minus_utc(), "in the café's zone: {since}");
    assert_eq!(stale["timezone"], "Europe/Paris");
    assert_eq!(stale["versions"]["v2"]["total_orders"], 1, "the last figures are kept: {stale}");

    redis.set_up(true);
    let back = next_where(&mut ws, Duration::from_secs(20), |s| s.get("stale_since").is_none()).await;
    assert_eq!(back["versions"]["v2"]["total_orders"], 1);
    app.stop().await;
}

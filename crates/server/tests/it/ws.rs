//! `/ws/dashboard`: pushes on change, silence (but heartbeats) otherwise, coalescing, shutdown.

use std::time::Duration;

use tokio::time::Instant;

use crate::common::{self, Frame, total};

/// Reads until `quiet` passes without any snapshot (heartbeats allowed), at most `max`.
async fn drain(ws: &mut crate::common::WsClient, quiet: Duration, max: Duration) {
    let deadline = Instant::now() + max;
    while Instant::now() < deadline {
        match ws.next(quiet).await {
            None => return,
            Some(Frame::Snapshot(_) | Frame::Heartbeat) => {}
            Some(Frame::Closed(c)) => panic!("closed: {c:?}"),
        }
    }
    panic!("snapshots kept coming for {max:?} with nothing happening");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gets_a_frame_after_an_order_and_none_while_nothing_changes() {
    let app = common::spawn(None).await;
    let mut ws = app.ws().await;

    let first = ws.next_snapshot(Duration::from_secs(5)).await.expect("a snapshot on connect");
    assert_eq!(total(&first, "v2"), 0);
    for v in ["v1", "v2", "v3"] {
        let version = &first["versions"][v];
        assert!(version["freshness"].is_object() && version["drinks"].is_array() && version["recent"].is_array(), "{v}: {version}");
    }
    assert!(first["rates"]["v2"].is_array());
    drain(&mut ws, Duration::from_secs(2), Duration::from_secs(10)).await;

    let posted = Instant::now();
    app.order("v2", "latte", "uptown", 450).await;
    let snap = ws.until_total("v2", 1, Duration::from_secs(5)).await;
    eprintln!("v2 order visible on the socket after {:?}", posted.elapsed());
    assert_eq!(snap["versions"]["v2"]["total_revenue_cents"], 450);
    assert_eq!(snap["versions"]["v2"]["recent"][0]["drink"], "latte");
    // The freshness window has this order (it was applied in this process).
    let fresh = &snap["versions"]["v2"]["freshness"];
    let fresh = if fresh["count"].as_u64().unwrap_or(0) > 0 {
        fresh.clone()
    } else {
        ws.next_snapshot(Duration::from_secs(3)).await.expect("freshness follows")["versions"]["v2"]["freshness"].clone()
    };
    assert!(fresh["count"].as_u64().unwrap() >= 1 && fresh["p50_ms"].as_f64().unwrap() > 0.0, "{fresh}");

    // The orders/s chart drops back to zero once, then nothing moves.
    drain(&mut ws, Duration::from_millis(2500), Duration::from_secs(10)).await;
    let quiet_from = Instant::now();
    let mut heartbeats = 0;
    while quiet_from.elapsed() < Duration::from_secs(17) {
        match ws.next(Duration::from_secs(17).saturating_sub(quiet_from.elapsed())).await {
            None => break,
            Some(Frame::Heartbeat) => heartbeats += 1,
            Some(Frame::Snapshot(v)) => panic!("a snapshot while nothing changed: {v}"),
            Some(Frame::Closed(c)) => panic!("closed: {c:?}"),
        }
    }
    assert!(heartbeats >= 1, "a heartbeat every 15 s of silence");

    // And the next order is pushed again.
    app.order("v2", "americano", "central", 300).await;
    ws.until_total("v2", 2, Duration::from_secs(5)).await;
    ws.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_are_coalesced_to_about_ten_pushes_a_second() {
    let app = common::spawn(None).await;
    let mut ws = app.ws().await;
    ws.next_snapshot(Duration::from_secs(5)).await.expect("a snapshot on connect");

    let n = 200;
    let poster = {
        let (base, http) = (app.address.clone(), app.client.clone());
        tokio::spawn(async move {
            for i in 0..n {
                let body =
                    serde_json::json!({"drink": "latte", "store": "uptown", "price": 1, "timestamp": chrono::Utc::now().to_rfc3339()});
                let res = http.post(format!("{base}/api/v2/order")).json(&body).send().await.unwrap();
                assert!(res.status().is_success(), "order {i}: {}", res.status());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let mut arrivals = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let snap = ws.next_snapshot(deadline.saturating_duration_since(Instant::now())).await.expect("all orders arrive within 30 s");
        arrivals.push(Instant::now());
        if total(&snap, "v2") == n {
            break;
        }
    }
    poster.await.unwrap();
    let span = arrivals.last().unwrap().duration_since(arrivals[0]);
    // Orders arrive every ~10 ms; without coalescing there would be one frame per batch.
    for (i, t) in arrivals.iter().enumerate() {
        let in_one_second = arrivals[i..].iter().take_while(|u| u.duration_since(*t) < Duration::from_secs(1)).count();
        assert!(in_one_second <= 12, "{in_one_second} snapshots within 1 s (span {span:?}, {} frames)", arrivals.len());
    }
    assert!(arrivals.len() >= 5, "a burst over {span:?} still shows progress: {} frames", arrivals.len());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_are_closed_going_away_when_the_server_stops() {
    let app = common::spawn(None).await;
    let mut a = app.ws().await;
    let mut b = app.ws().await;
    a.next_snapshot(Duration::from_secs(5)).await.unwrap();
    b.next_snapshot(Duration::from_secs(5)).await.unwrap();
    let stopping = tokio::spawn(app.stop());
    for ws in [&mut a, &mut b] {
        loop {
            if let Frame::Closed(code) = ws.next(Duration::from_secs(5)).await.expect("a close frame within 5 s") {
                assert_eq!(code, Some(1001));
                break;
            }
        }
    }
    stopping.await.unwrap();
}

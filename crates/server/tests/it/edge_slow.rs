//! Slow and idle clients, and slow answers: cut off after the header, body or request timeout,
//! unable to crowd out a
//! real order, and answered clearly at the connection cap.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::{
    common::{TestApp, TestEnv},
    edge_support::{closed_within, connect, order_now, read_response},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sending_its_headers_a_byte_a_second_is_disconnected() {
    let mut env = TestEnv::new();
    env.config.header_timeout = Duration::from_secs(2);
    let app = TestApp::up(env).await;

    let mut s = connect(app.port).await;
    let request = b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\n\r\n";
    let started = Instant::now();
    let mut sent = 0;
    let cut = loop {
        if s.write_all(&request[sent..=sent]).await.is_err() {
            break started.elapsed();
        }
        sent += 1;
        if closed_within(&mut s, Duration::from_secs(1)).await {
            break started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "still connected after {sent} bytes");
    };
    eprintln!("slow-header client cut off after {cut:?} and {sent} of {} bytes", request.len());
    assert!(sent < request.len(), "the headers never completed");
    assert!(cut >= Duration::from_millis(1500) && cut <= Duration::from_millis(3500), "cut off after {cut:?}, header timeout 2 s");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sending_its_body_a_byte_a_second_gets_408_and_is_disconnected() {
    let mut env = TestEnv::new();
    env.config.body_timeout = Duration::from_secs(2);
    let app = TestApp::up(env).await;

    let body = order_now().to_string();
    let mut s = connect(app.port).await;
    let head = format!(
        "POST /api/v2/order HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (mut read, mut write) = s.into_split();
    let dribble = tokio::spawn(async move {
        for b in body.as_bytes() {
            if write.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let mut whole = read_whole(&mut read).await;
    let took = started.elapsed();
    dribble.abort();
    eprintln!("slow-body client answered after {took:?}: {}", whole.lines().next().unwrap_or(""));
    assert!(whole.starts_with("HTTP/1.1 408"), "{whole}");
    assert!(whole.to_ascii_lowercase().contains("connection: close"), "{whole}");
    whole.make_ascii_lowercase();
    assert!(whole.contains("\"error\""), "a JSON error: {whole}");
    assert!(took >= Duration::from_millis(1500) && took <= Duration::from_millis(4000), "answered after {took:?}, body timeout 2 s");
    app.stop().await;
}

/// Everything the server sends until it closes the connection (at most 10 s).
async fn read_whole(read: &mut tokio::net::tcp::OwnedReadHalf) -> String {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_connections_do_not_stop_an_order_and_are_closed() {
    let mut env = TestEnv::new();
    env.config.header_timeout = Duration::from_secs(3);
    let app = TestApp::up(env).await;

    let mut idle = Vec::with_capacity(1000);
    for _ in 0..1000 {
        idle.push(connect(app.port).await);
    }
    let opened = Instant::now();
    let started = Instant::now();
    let (status, body) = app.post("v2", &order_now()).await;
    let took = started.elapsed();
    eprintln!("an order beside 1,000 idle connections: {status} in {took:?}");
    assert_eq!(status, 202, "{body}");
    assert!(took < Duration::from_millis(500), "served normally: {took:?}");

    // Nothing they can do keeps them: every one is closed after the header timeout.
    let closes = futures::future::join_all(idle.iter_mut().map(|s| closed_within(s, Duration::from_secs(8)))).await;
    let closed = closes.iter().filter(|c| **c).count();
    eprintln!("{closed} of 1000 idle connections closed by the server within {:?}", opened.elapsed());
    assert_eq!(closed, 1000);
    assert!(opened.elapsed() >= Duration::from_millis(2500), "closed by the header timeout (3 s), not at once");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_a_new_connection_is_answered_503_and_closed() {
    let mut env = TestEnv::new();
    env.config.max_connections = 20;
    env.config.header_timeout = Duration::from_secs(30);
    let app = TestApp::up(env).await;

    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(connect(app.port).await);
    }
    // The accept loop takes them in order; give it a moment to have taken all 20.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut s = connect(app.port).await;
    s.write_all(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    let refused = read_response(&mut s, Duration::from_secs(5)).await;
    assert_eq!(refused.status, 503, "{}", refused.head);
    assert!(refused.head.contains("retry-after:") && refused.head.contains("connection: close"), "{}", refused.head);
    assert!(refused.json()["error"].as_str().unwrap().contains("too many connections"), "{}", refused.body);
    assert!(closed_within(&mut s, Duration::from_secs(2)).await, "closed after the answer");
    // An order in the same state gets the same clear answer, not a reset.
    let (status, body) = app.post("v2", &order_now()).await;
    assert_eq!(status, 503, "{body}");

    // Past the refusals' own cap (16 here) the server stops accepting for a moment instead of
    // dropping anyone: 40 more silent connections, and a real request behind them still gets
    // its clear 503 (each refusal waits 1 s for a request that never comes).
    let mut silent = Vec::new();
    for _ in 0..40 {
        silent.push(connect(app.port).await);
    }
    let behind = Instant::now();
    let mut s = connect(app.port).await;
    s.write_all(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    let late = read_response(&mut s, Duration::from_secs(10)).await;
    eprintln!("behind 40 silent connections past both caps: {} after {:?}", late.status, behind.elapsed());
    assert_eq!(late.status, 503, "{}", late.head);
    drop(silent);

    // Once the held connections go, orders are served again.
    drop(held);
    let served = coffee_testkit::wait_until(Duration::from_secs(5), || async { app.post("v2", &order_now()).await.0 == 202 }).await;
    assert!(served, "served once connections are free");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_not_answered_within_the_request_timeout_gets_503_naming_it() {
    let mut env = TestEnv::new();
    // Shorter than any v1 commit (a PostgreSQL transaction): the order cannot be answered in time.
    env.config.request_timeout = Duration::from_millis(1);
    let app = TestApp::up(env).await;
    let (status, body) = app.post("v1", &order_now()).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("no answer within 1ms"), "{body}");
    app.stop().await;
}

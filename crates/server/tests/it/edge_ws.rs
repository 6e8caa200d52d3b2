//! `/ws/dashboard` at the edge: a foreign `Origin` is refused, the page's own is upgraded, and
//! past `max_ws_clients` the upgrade is answered 503 until a socket closes.

use std::time::Duration;

use coffee_testkit::wait_until;

use crate::{
    common::{TestApp, TestEnv},
    edge_support::ws_handshake,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_origin_is_refused_and_the_pages_own_is_upgraded() {
    let mut env = TestEnv::new();
    env.config.allowed_origins = vec!["https://dashboard.example.com".into()];
    let app = TestApp::up(env).await;
    let port = app.port;

    let (_, evil) = ws_handshake(port, &[("Origin", "http://evil.example")]).await;
    assert_eq!(evil.status, 403, "{}", evil.head);
    assert_eq!(evil.json()["field"], "origin");
    // Same host, another port: another origin.
    let (_, other_port) = ws_handshake(port, &[("Origin", &format!("http://127.0.0.1:{}", port.wrapping_add(1)))]).await;
    assert_eq!(other_port.status, 403);
    let (_, null) = ws_handshake(port, &[("Origin", "null")]).await;
    assert_eq!(null.status, 403);

    let (_own, own) = ws_handshake(port, &[("Origin", &format!("http://127.0.0.1:{port}"))]).await;
    assert_eq!(own.status, 101, "{}", own.head);
    let (_listed, listed) = ws_handshake(port, &[("Origin", "https://dashboard.example.com")]).await;
    assert_eq!(listed.status, 101, "{}", listed.head);
    // Non-browser clients send no Origin, and no page can steer them.
    let (_none, none) = ws_handshake(port, &[]).await;
    assert_eq!(none.status, 101, "{}", none.head);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_client_cap_the_upgrade_is_refused_clearly() {
    let mut env = TestEnv::new();
    env.config.max_ws_clients = 3;
    let app = TestApp::up(env).await;
    let port = app.port;

    let mut open = Vec::new();
    for _ in 0..3 {
        let (socket, head) = ws_handshake(port, &[]).await;
        assert_eq!(head.status, 101, "{}", head.head);
        open.push(socket);
    }
    let (_, refused) = ws_handshake(port, &[]).await;
    assert_eq!(refused.status, 503, "{}", refused.head);
    assert!(refused.head.contains("retry-after:"), "{}", refused.head);
    assert!(refused.json()["error"].as_str().unwrap().contains("too many dashboard clients"), "{}", refused.body);

    // A closed socket frees its slot (the server notices the close on its next read).
    drop(open.pop());
    let freed = wait_until(Duration::from_secs(5), || async { ws_handshake(port, &[]).await.1.status == 101 }).await;
    assert!(freed, "a slot is free again once a socket closes");
    app.stop().await;
}

//! Tokens off loopback: no start without them, 401 (counted) without or with a wrong one,
//! the dashboard's one-time `?token=` link and its cookie, probes open.

use std::time::Duration;

use coffee_server::{Application, ServerConfig};
use tokio::io::AsyncWriteExt;

use crate::{
    common::{TestApp, TestEnv},
    edge_support::{connect, metric, order_now, read_response, ws_handshake},
};

const INGEST: &str = "ingest-0123456789abcdef0123456789abcdef";
const READ: &str = "read-fedcba9876543210fedcba9876543210";

fn everywhere(mut config: ServerConfig) -> ServerConfig {
    config.listen = "0.0.0.0:0".parse().unwrap();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_loopback_without_tokens_it_refuses_to_start_naming_the_flags() {
    let mut env = TestEnv::new();
    let err = Application::build(&everywhere(env.config.clone())).await.err().expect("refuses to start");
    let message = format!("{err:#}");
    assert!(message.contains("--ingest-token") && message.contains("--read-token"), "{message}");
    assert!(message.contains("--insecure-no-auth") && message.contains("0.0.0.0:0"), "{message}");

    let mut one = everywhere(env.config.clone());
    one.ingest_token = Some(INGEST.parse().unwrap());
    let message = format!("{:#}", Application::build(&one).await.err().expect("one token is not enough"));
    assert!(message.contains("--read-token") && !message.contains("--ingest-token"), "{message}");

    // --insecure-no-auth starts it, and then the routes are open.
    let mut insecure = everywhere(env.config.clone());
    insecure.insecure_no_auth = true;
    env.config = insecure;
    let app = TestApp::up(env).await;
    let (status, body) = app.post("v2", &order_now()).await;
    assert_eq!(status, 202, "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tokens_each_route_class_needs_its_own() {
    let mut env = TestEnv::new();
    env.config = everywhere(env.config.clone());
    env.config.ingest_token = Some(INGEST.parse().unwrap());
    env.config.read_token = Some(READ.parse().unwrap());
    let printed = format!("{:?}", env.config);
    assert!(!printed.contains(INGEST) && !printed.contains(READ), "tokens in Debug output: {printed}");
    let app = TestApp::up(env).await;
    let (base, http) = (app.address.clone(), app.client.clone());
    let metrics = || async {
        let res = http.get(format!("{base}/metrics")).bearer_auth(READ).send().await.unwrap();
        assert_eq!(res.status(), 200);
        res.text().await.unwrap()
    };
    let before = metrics().await;
    let order_route = r#"route="/api/{version}/order""#;

    let post = |token: Option<&'static str>| {
        let req = http.post(format!("{base}/api/v2/order")).json(&order_now());
        let req = match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        async move { req.send().await.unwrap() }
    };
    for (token, reason) in [(None, "missing"), (Some("wrong-token-0123456789abcdef"), "wrong"), (Some(READ), "wrong")] {
        let res = post(token).await;
        assert_eq!(res.status(), 401, "{token:?}");
        let challenge = res.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        assert_eq!(challenge.contains("invalid_token"), reason == "wrong", "{challenge}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert!(body["error"].is_string() && body["field"] == "authorization", "{body}");
    }
    let res = post(Some(INGEST)).await;
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());

    // Reads: 401 without, 200 with the read token; the ingest token does not read.
    for path in ["/api/dashboard", "/metrics", "/"] {
        assert_eq!(http.get(format!("{base}{path}")).send().await.unwrap().status(), 401, "{path}");
        assert_eq!(http.get(format!("{base}{path}")).bearer_auth(INGEST).send().await.unwrap().status(), 401, "{path}");
        assert_eq!(http.get(format!("{base}{path}")).bearer_auth(READ).send().await.unwrap().status(), 200, "{path}");
    }
    // Probes and the page's static code stay open.
    for path in ["/livez", "/readyz", "/assets/dashboard.js"] {
        assert_eq!(http.get(format!("{base}{path}")).send().await.unwrap().status(), 200, "{path}");
    }

    let after = metrics().await;
    let moved = |reason: &str| {
        let series = ["coffee_rt_http_unauthorized_total", order_route, reason];
        metric(&after, series[0], &series[1..]) - metric(&before, series[0], &series[1..])
    };
    assert!(moved(r#"reason="missing""#) >= 1.0 && moved(r#"reason="wrong""#) >= 2.0, "the 401 metric moved:\n{after}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_link_sets_a_cookie_that_opens_the_page_and_its_socket() {
    let mut env = TestEnv::new();
    env.config.ingest_token = Some(INGEST.parse().unwrap());
    env.config.read_token = Some(READ.parse().unwrap());
    // Tokens set on loopback are honoured.
    let app = TestApp::up(env).await;
    let port = app.port;

    let get = |path: String, cookie: Option<String>| async move {
        let mut s = connect(port).await;
        let cookie = cookie.map(|c| format!("Cookie: {c}\r\n")).unwrap_or_default();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{cookie}Connection: close\r\n\r\n").as_bytes()).await.unwrap();
        read_response(&mut s, Duration::from_secs(5)).await
    };
    let wrong = get("/?token=not-the-token-0123456789".into(), None).await;
    assert_eq!(wrong.status, 401);
    let link = get(format!("/?token={READ}"), None).await;
    assert_eq!(link.status, 303, "{}", link.head);
    assert!(link.head.contains("location: /\r\n"), "{}", link.head);
    let set_cookie = link.head.lines().find_map(|l| l.strip_prefix("set-cookie: ")).expect("a cookie").to_owned();
    for attribute in ["httponly", "samesite=strict", "path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    // Header values were lower-cased by the reader; the token is taken from the link itself.
    let cookie = format!("coffee_rt_read={READ}");
    assert!(set_cookie.starts_with(&cookie.to_ascii_lowercase()));

    let page = get("/".into(), Some(cookie.clone())).await;
    assert_eq!(page.status, 200);
    assert_eq!(get("/".into(), None).await.status, 401);
    // The cookie is a read credential only.
    let mut s = connect(app.port).await;
    let body = order_now().to_string();
    let req = format!(
        "POST /api/v2/order HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut s, Duration::from_secs(5)).await.status, 401);

    let origin = format!("http://127.0.0.1:{}", app.port);
    let (_socket, with) = ws_handshake(app.port, &[("Cookie", &cookie), ("Origin", &origin)]).await;
    assert_eq!(with.status, 101, "{}", with.head);
    let (_, without) = ws_handshake(app.port, &[("Origin", &origin)]).await;
    assert_eq!(without.status, 401);
    app.stop().await;
}

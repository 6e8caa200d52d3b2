//! What an operator's tools read: JSON logs with a span per request, Prometheus metrics by the
//! conventions (HELP for every metric, a version label, build info), readiness on every role,
//! and the revision in `--version`.

use std::{process::Stdio, time::Duration};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::*;

async fn get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

/// Every `# TYPE` of a coffee_rt metric has its `# HELP`, and every sample's name is declared.
fn assert_conventions(text: &str) {
    let typed: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()).collect();
    assert!(typed.iter().any(|n| n.starts_with("coffee_rt_")), "no coffee_rt metric in:\n{text}");
    for name in typed.iter().filter(|n| n.starts_with("coffee_rt_")) {
        assert!(text.contains(&format!("# HELP {name} ")), "{name} has no HELP text");
    }
    for line in text.lines().filter(|l| l.starts_with("coffee")) {
        assert!(line.starts_with("coffee_rt_"), "metric outside the coffee_rt_ namespace: {line}");
    }
}

#[tokio::test]
async fn a_request_is_one_json_line_with_its_span_fields() {
    let env = TestEnv::new();
    let port = free_port();
    let mut cmd = env.command(&["serve"]);
    cmd.envs([
        ("COFFEE_RT_LISTEN", format!("127.0.0.1:{port}")),
        ("COFFEE_RT_LOG_FORMAT", "json".into()),
        ("COFFEE_RT_LOG", "info,coffee_rt::http=debug,librdkafka=off,rdkafka=off".into()),
    ])
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("coffee-rt runs");
    let base = format!("http://127.0.0.1:{port}");
    assert!(wait_until(Duration::from_secs(20), || async { get(&format!("{base}/livez")).await.0 == 200 }).await, "serve did not start");
    let o = order(1);
    let id = o["order_id"].as_str().unwrap().to_owned();
    let res = reqwest::Client::new().post(format!("{base}/api/v2/order")).json(&o).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 202);

    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
            if v["span"]["order_id"] == Value::String(id.clone()) {
                return v;
            }
        }
        panic!("stderr closed before the request's line");
    })
    .await
    .expect("the request's log line within 10 s");
    let span = &found["span"];
    assert_eq!(span["method"], "POST");
    assert_eq!(span["route"], "/api/{version}/order");
    assert_eq!(span["version"], "v2");
    assert_eq!(span["status"], 202);
    assert!(span["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0), "latency: {found}");
    assert!(found["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "UTC timestamp: {found}");
    child.kill().await.unwrap();
}

#[tokio::test]
async fn every_role_answers_readiness_and_exports_described_metrics() {
    let env = TestEnv::new();
    let api = free_port();
    let mut serve = env.spawn(&["serve"], &[("COFFEE_RT_LISTEN", &format!("127.0.0.1:{api}"))]);
    let base = format!("http://127.0.0.1:{api}");
    assert!(wait_until(Duration::from_secs(20), || async { get(&format!("{base}/readyz")).await.0 == 200 }).await, "serve not ready");
    let mut roles = Vec::new();
    for args in [&["worker"][..], &["processor"][..], &["aggregate", "--every", "1s"][..]] {
        let port = free_port();
        let child = env.spawn(args, &[("COFFEE_RT_METRICS_LISTEN", &format!("127.0.0.1:{port}"))]);
        roles.push((args[0], port, child));
    }
    for (role, port, _) in &roles {
        let ready = format!("http://127.0.0.1:{port}/readyz");
        assert!(
            wait_until(Duration::from_secs(30), || async { get(&ready).await.0 == 200 }).await,
            "{role} not ready: {:?}",
            get(&ready).await
        );
        assert_eq!(get(&format!("http://127.0.0.1:{port}/livez")).await.0, 200, "{role} /livez");
    }
    for v in ["v1", "v2", "v3"] {
        let res = reqwest::Client::new().post(format!("{base}/api/{v}/order")).json(&order(2)).send().await.unwrap();
        assert!(res.status().is_success(), "{v}: {}", res.status());
    }
    // The worker publishes its lag and outbox depth on its maintenance tick (every 2 s).
    let worker_metrics = format!("http://127.0.0.1:{}/metrics", roles[0].1);
    assert!(
        wait_until(Duration::from_secs(10), || async { get(&worker_metrics).await.1.contains("coffee_rt_v2_consumer_lag_entries") }).await,
        "the worker's lag gauge"
    );

    let (_, text) = get(&format!("{base}/metrics")).await;
    assert_conventions(&text);
    for v in ["v1", "v2", "v3"] {
        assert!(
            text.lines().any(|l| l.starts_with("coffee_rt_http_requests_total{") && l.contains(&format!("version=\"{v}\""))),
            "no {v} label on the HTTP metrics"
        );
    }
    assert!(text.contains("role=\"serve\""), "build info of serve");
    assert!(text.contains("process_resident_memory_bytes"), "process memory");
    for (role, port, _) in &roles {
        let (_, text) = get(&format!("http://127.0.0.1:{port}/metrics")).await;
        assert_conventions(&text);
        assert!(text.contains(&format!("coffee_rt_build_info{{version=\"{}\"", env!("CARGO_PKG_VERSION"))), "{role}: build info");
        assert!(text.contains(&format!("role=\"{role}\"")), "{role}: role label");
    }
    for (_, _, mut child) in roles {
        child.kill().await.unwrap();
    }
    serve.kill().await.unwrap();
}

#[tokio::test]
async fn version_names_the_git_revision() {
    let out = std::process::Command::new(coffee_testkit::bin::path("coffee-rt")).arg("--version").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let head = std::process::Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().unwrap();
    let revision = String::from_utf8(head.stdout).unwrap().trim().to_owned();
    assert!(!revision.is_empty(), "the tests run in a git checkout");
    assert_eq!(text.trim(), format!("coffee-rt {} ({revision})", env!("CARGO_PKG_VERSION")));
}

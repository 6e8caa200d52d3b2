//! The API against its own OpenAPI description. schemathesis (PyPI, installed by
//! `scripts/tools/schemathesis.sh`, which `scripts/test` runs) reads `/openapi.json` from a
//! live server with tokens, as off loopback, and sends it valid and invalid requests of every
//! operation. The run must find no failure: no 5xx, and no status, content type, header or body
//! that the description does not declare. And what it did to the server must be right: every
//! order PostgreSQL holds is one the server acknowledged with a 2xx, and a valid one; every
//! acknowledged order is held.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::Duration,
};

use coffee_core::{Catalog, Order, OrderWindow, RawOrder};
use serde_json::Value;
use uuid::Uuid;

use crate::support::*;

/// The fixed seed: a failure reproduces with the same command.
const SEED: &str = "20261201";
/// Test cases per operation and phase: 1,943 cases in all with this seed, in 25 s (60 s while
/// the 2-core machine builds beside it).
const MAX_EXAMPLES: &str = "150";
/// Fewer cases than this means schemathesis tested much less than it was asked to (a
/// description it could not read, an operation it skipped), and proves little.
const MIN_CASES: u64 = 1_500;
const TOKEN: &str = "schemathesis-token-0123456789";

/// The schemathesis `scripts/tools/schemathesis.sh` installed: `COFFEE_RT_SCHEMATHESIS` (the
/// script exports it), else the venv under the cache dir for the version the script pins.
fn schemathesis() -> PathBuf {
    if let Some(path) = std::env::var_os("COFFEE_RT_SCHEMATHESIS") {
        return path.into();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/tools/schemathesis.sh");
    let text = std::fs::read_to_string(&script).unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    let version = text.lines().find_map(|l| l.strip_prefix("SCHEMATHESIS_VERSION=")).expect("the script pins a version");
    let cache = std::env::var_os("COFFEE_RT_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache"));
        base.join("coffee-rt")
    });
    cache.join(format!("schemathesis-{version}/bin/schemathesis"))
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_failure_and_only_acknowledged_valid_orders_are_stored() {
    let bin = schemathesis();
    assert!(
        bin.is_file(),
        "schemathesis is not installed at {}: run scripts/tools/schemathesis.sh (scripts/test does), or set COFFEE_RT_SCHEMATHESIS",
        bin.display()
    );
    let mut env = TestEnv::new();
    // Tokens, as off loopback: one value for both classes, so one header opens every route.
    let token: coffee_server::Token = TOKEN.parse().unwrap();
    (env.config.ingest_token, env.config.read_token) = (Some(token.clone()), Some(token));
    // The whole server: the v2 worker and the v3 processor store what their paths accepted.
    let app = env.spawn_up().await;
    let pool = env.pool().await;
    let (stop_processor, processor) = start_processor(&env, pool.clone(), env.projection().await);
    let started = chrono::Utc::now();

    let dir = std::env::temp_dir().join(format!("coffee-rt-schemathesis-{}", env.id));
    std::fs::create_dir_all(&dir).unwrap();
    let har = dir.join("run.har");
    let url = format!("{}/openapi.json", app.address);
    let run = tokio::process::Command::new(&bin)
        // Hypothesis keeps its example database in the working directory unless told not to.
        .current_dir(&dir)
        .args(["run", &url, "--header", &format!("Authorization: Bearer {TOKEN}"), "--checks"])
        .arg("not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance")
        .args(["--seed", SEED, "--max-examples", MAX_EXAMPLES, "--generation-database", "none", "--workers", "2"])
        // Every request and answer, for the check of what was stored.
        .args(["--request-timeout", "10", "--no-color", "--report", "har", "--report-har-path"])
        .arg(&har)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run).await.expect("schemathesis finishes within 5 minutes").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "schemathesis found failures ({}):\n{stdout}\n{stderr}", out.status);

    let cases = test_cases(&stdout);
    eprintln!("schemathesis ran {cases} test cases (seed {SEED}, {MAX_EXAMPLES} examples per operation and phase)");
    assert!(cases >= MIN_CASES, "only {cases} test cases:\n{stdout}");

    // Every order acknowledged, by the id of its answer: v1 has stored it already, v2 and v3
    // within seconds (the worker and processor run beside the API).
    let acknowledged = acknowledged_orders(&std::fs::read_to_string(&har).expect("the HAR report"));
    assert!(!acknowledged.is_empty(), "schemathesis had no order accepted; its valid orders never reach the paths");
    let stored_ids = || async {
        let rows = pool.get().await.unwrap().query("SELECT order_id FROM orders", &[]).await.unwrap();
        rows.iter().map(|r| r.get::<_, Uuid>(0)).collect::<BTreeSet<Uuid>>()
    };
    wait_until(Duration::from_secs(30), || async { stored_ids().await.len() >= acknowledged.len() }).await;
    let stored = stored_ids().await;
    let unacknowledged: Vec<_> = stored.difference(&acknowledged).collect();
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(unacknowledged.is_empty(), "stored without a 2xx: {unacknowledged:?}");
    assert!(lost.is_empty(), "acknowledged and not stored: {lost:?}");

    // And each is an order the API's own parsing accepts, inside the window, as of acceptance.
    let rows = pool
        .get()
        .await
        .unwrap()
        .query("SELECT order_id, drink, store, price_cents, ordered_at, accepted_at FROM orders", &[])
        .await
        .unwrap();
    for row in &rows {
        let accepted_at: chrono::DateTime<chrono::Utc> = row.get(5);
        let cents: i64 = row.get(3);
        let raw = RawOrder {
            order_id: Some(row.get::<_, Uuid>(0).to_string()),
            drink: row.get(1),
            store: row.get(2),
            price: format!("{}.{:02}", cents / 100, cents % 100).parse().unwrap(),
            timestamp: row.get::<_, chrono::DateTime<chrono::Utc>>(4).to_rfc3339(),
        };
        let parsed = Order::parse_within(raw.clone(), &Catalog::default(), accepted_at, &OrderWindow::default());
        assert!(parsed.is_ok(), "stored an order the API refuses: {raw:?}: {parsed:?}");
        assert!(accepted_at >= started - chrono::Duration::seconds(1), "accepted during the run: {accepted_at}");
    }
    eprintln!("{} orders acknowledged and stored, all valid", rows.len());

    let _ = stop_processor.send(());
    processor.await.unwrap().unwrap();
    app.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The test cases of a run, from its summary: "Test cases:" then "  952 generated, ...".
fn test_cases(stdout: &str) -> u64 {
    let summary = stdout.split("Test cases:").nth(1).unwrap_or_else(|| panic!("no test case summary in:\n{stdout}"));
    let count = summary.split_whitespace().next().and_then(|n| n.parse().ok());
    count.unwrap_or_else(|| panic!("no count after \"Test cases:\" in:\n{stdout}"))
}

/// The `order_id` of every 2xx answer of `POST /api/{version}/order` in a HAR log.
fn acknowledged_orders(har: &str) -> BTreeSet<Uuid> {
    let har: Value = serde_json::from_str(har).expect("the HAR report is JSON");
    let entries = har["log"]["entries"].as_array().expect("HAR entries");
    assert!(!entries.is_empty(), "the HAR report recorded no request");
    entries
        .iter()
        .filter(|e| e["request"]["method"] == "POST" && e["request"]["url"].as_str().is_some_and(|u| u.ends_with("/order")))
        .filter(|e| e["response"]["status"].as_u64().is_some_and(|s| (200..300).contains(&s)))
        .map(|e| {
            let body: Value = serde_json::from_str(e["response"]["content"]["text"].as_str().expect("a body")).expect("a JSON body");
            body["order_id"].as_str().and_then(|id| id.parse().ok()).unwrap_or_else(|| panic!("an order_id in {body}"))
        })
        .collect()
}

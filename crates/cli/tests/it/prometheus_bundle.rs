//! The observability bundle against a real Prometheus: `deploy/prometheus/prometheus.yml`,
//! `deploy/prometheus/alerts.yml` and the Grafana board `deploy/grafana/dashboards/coffee-rt.json`.
//!
//! 1. `promtool check config` and `promtool check rules` pass on the bundle as it is (beside the
//!    `read-token` file its serve job reads, as Compose mounts it).
//! 2. Real `coffee-rt` child processes run every role in one world: two `serve` (the second with
//!    an in-flight limit of 1, an overloaded replica, so real 503s exist), both with tokens so
//!    Prometheus must send the read token, `worker`, `processor`
//!    and `aggregate --every 1s`, each with `/metrics` on its own port. A real `prometheus` runs a
//!    copy of the bundle's configuration and rules; the copy differs only in what a test must
//!    change, each rewrite asserted to have happened:
//!    - the targets (Compose names `serve-a:8005`, …) become the test's ports;
//!    - `scrape_interval` and `evaluation_interval` become 1 s;
//!    - the rule file is the test's copy of alerts.yml, in which every `for:` becomes 2 s (the
//!      bundle's are minutes; the expressions are untouched).
//! 3. Under load on v1, v2 and v3 (valid orders, invalid ones for 4xx, one malformed entry on the
//!    v2 stream and one malformed record on the v3 topic for the dead letters), every expression
//!    of the board (with its variables at their default, "All", and `$__rate_interval` = 15s)
//!    returns data through `/api/v1/query`, with a finite value for every path, stage or role
//!    its panel is about.
//!
//!    An alert expression is a condition: when all is well it is rightly empty. So each alert is
//!    checked by its building blocks instead: Prometheus loaded and evaluated the rule without an
//!    error (`/api/v1/rules`: health `ok`), the whole expression evaluates, and every series
//!    selector in it (e.g. `coffee_rt_freshness_lag_seconds{version=~"v2|v3"}`) returns data, so
//!    the condition is decided on real series, not on a misspelt name that would never fire.
//!    Two alerts are checked as firing for real: the dead letters (from the malformed entries),
//!    and, the point of the bundle, the freshness SLO: the processor is SIGKILLed while v3
//!    orders keep arriving, and `CoffeeRtFreshnessOverSlo{version="v3"}` (inactive before) must
//!    fire, together with `CoffeeRtRoleDown{job="processor"}`.
//!
//! Prometheus and promtool come from Debian's package: `scripts/tools/prometheus.sh` installs it.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use coffee_core::Version;
use rdkafka::{
    ClientConfig,
    producer::{FutureProducer, FutureRecord},
    util::Timeout,
};
use redis::AsyncCommands;
use serde_json::Value;
use tokio::process::Child;

use crate::support::*;

const INSTALL: &str = "run scripts/tools/prometheus.sh (it installs Debian's prometheus package)";

/// The `$__rate_interval` the board's queries are checked with: what Grafana derives from a 1 s
/// scrape interval is 4 s; 15 s holds enough samples on a busy shared machine.
const RATE_INTERVAL: &str = "15s";
/// The `for:` of every rule in the test's copy of alerts.yml.
const TEST_FOR: &str = "2s";
/// The API processes' tokens: /metrics of `serve` needs the read token, as in production.
const INGEST_TOKEN: &str = "bundle-ingest-0123456789abcdef";
const READ_TOKEN: &str = "bundle-read-0123456789abcdef";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// `name` on PATH, or a failure that says how to get it: this test never skips.
fn tool(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()))
        .unwrap_or_else(|| panic!("`{name}` is not on PATH: {INSTALL}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn promtool(args: &[&str]) {
    let out = std::process::Command::new(tool("promtool")).args(args).output().expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A directory of this test's own, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(id: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("coffee-rt-prometheus-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The real Prometheus, SIGKILLed and reaped on drop (before its directory goes, also on a panic).
struct Prometheus {
    child: std::process::Child,
    url: String,
    log: PathBuf,
}

impl Prometheus {
    fn start(dir: &Path, config: &Path) -> Prometheus {
        let port = free_port();
        let log = dir.join("prometheus.log");
        let child = std::process::Command::new(tool("prometheus"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            // scrape_body_size_bytes: the size of each role's /metrics, printed as its scrape cost
            .arg("--enable-feature=extra-scrape-metrics")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("prometheus does not start ({e}): {INSTALL}"));
        Prometheus { child, url: format!("http://127.0.0.1:{port}"), log }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test's prometheus.yml: the bundle's, with the targets, intervals and rule file rewritten.
fn test_config(bundle: &str, targets: &[(&str, u16)], rules: &Path) -> String {
    let mut out = bundle.to_owned();
    for (target, port) in targets {
        let quoted = format!("\"{target}\"");
        assert!(out.contains(&quoted), "prometheus.yml has no target {quoted} (the Compose name of a role)");
        out = out.replace(&quoted, &format!("\"127.0.0.1:{port}\""));
    }
    assert!(out.contains("- alerts.yml"), "prometheus.yml loads alerts.yml");
    out = out.replace("- alerts.yml", &format!("- {}", rules.display()));
    let (mut scrape, mut evaluation) = (0, 0);
    let lines: Vec<String> = out
        .lines()
        .map(|line| {
            let indent = &line[..line.len() - line.trim_start().len()];
            match line.trim_start() {
                l if l.starts_with("scrape_interval:") => {
                    scrape += 1;
                    format!("{indent}scrape_interval: 1s")
                }
                l if l.starts_with("evaluation_interval:") => {
                    evaluation += 1;
                    format!("{indent}evaluation_interval: 1s")
                }
                _ => line.to_owned(),
            }
        })
        .collect();
    assert!(scrape >= 1 && evaluation >= 1, "prometheus.yml sets scrape_interval and evaluation_interval");
    lines.join("\n") + "\n"
}

/// The test's alerts.yml: the bundle's, every `for:` set to [`TEST_FOR`]. Returns it and the
/// number of alerts.
fn test_rules(bundle: &str) -> (String, usize) {
    let alerts = bundle.lines().filter(|l| l.trim_start().starts_with("- alert:")).count();
    let mut fors = 0;
    let lines: Vec<String> = bundle
        .lines()
        .map(|line| {
            let indent = &line[..line.len() - line.trim_start().len()];
            if line.trim_start().starts_with("for:") {
                fors += 1;
                format!("{indent}for: {TEST_FOR}")
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert!(alerts > 0, "alerts.yml has alerts");
    assert_eq!(fors, alerts, "every alert in alerts.yml has a `for:`");
    (lines.join("\n") + "\n", alerts)
}

/// The PromQL expressions of the board: every panel's targets, rows' panels included.
fn board_targets(board: &Value) -> Vec<(String, String)> {
    fn walk(panels: &Value, out: &mut Vec<(String, String)>) {
        for p in panels.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?").to_owned();
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str() {
                    out.push((title.clone(), expr.to_owned()));
                }
            }
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&board["panels"], &mut out);
    out
}

/// Substitutes the board's variables as Grafana does with their default ("All": the variable's
/// `allValue`) and `$__rate_interval`.
fn substitute(expr: &str, board: &Value) -> String {
    let mut out = expr.replace("$__rate_interval", RATE_INTERVAL);
    for v in board["templating"]["list"].as_array().expect("templating.list") {
        let name = v["name"].as_str().unwrap();
        if let Some(all) = v["allValue"].as_str() {
            out = out.replace(&format!("${{{name}}}"), all).replace(&format!("${name}"), all);
        }
    }
    assert!(!out.contains('$'), "a variable the test does not know in {expr}");
    out
}

/// The series selectors of a PromQL expression: each metric name of coffee-rt (`coffee_rt_*`),
/// of the process collector (`process_*`) or `up`, with its `{…}` matchers.
fn selectors(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            // a string literal outside a selector (label_replace and the like)
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let mut matchers = String::new();
            if j < chars.len() && chars[j] == '{' {
                let open = j;
                let mut in_string = false;
                while j < chars.len() {
                    match chars[j] {
                        '\\' if in_string => j += 1,
                        '"' => in_string = !in_string,
                        '}' if !in_string => break,
                        _ => {}
                    }
                    j += 1;
                }
                matchers = chars[open..=j].iter().collect();
                i = j + 1;
            }
            if name.starts_with("coffee_rt_") || name.starts_with("process_") || name == "up" {
                out.push(format!("{name}{matchers}"));
            }
        } else if c == '{' {
            // matchers without a name (`{__name__=~…}`): not used by the bundle
            panic!("a selector without a metric name in {expr}");
        } else {
            i += 1;
        }
    }
    out
}

/// What a board expression must cover, found by the metric it reads: a panel "per path" has a
/// finite value for each path the metric exists for, "per stage" for each stage, "per role" for
/// each role.
fn required_coverage(expr: &str) -> Vec<(&'static str, &'static [&'static str])> {
    const ALL: &[&str] = &["v1", "v2", "v3"];
    const STREAMING: &[&str] = &["v2", "v3"];
    const STAGES: &[&str] = &["v1_insert", "v1_aggregate", "v2_worker", "v3_window"];
    const ROLES: &[&str] = &["serve", "worker", "processor", "aggregate"];
    let table: &[(&str, &str, &[&str])] = &[
        ("coffee_rt_orders_accepted_total", "version", ALL),
        ("coffee_rt_http_request", "version", ALL),
        ("coffee_rt_order_freshness_seconds", "version", ALL),
        ("coffee_rt_freshness_lag_seconds", "version", ALL),
        ("coffee_rt_outbox_entries", "version", STREAMING),
        ("coffee_rt_dead_letters_total", "version", STREAMING),
        ("coffee_rt_batch_orders", "stage", STAGES),
        ("coffee_rt_flush_duration_seconds", "stage", STAGES),
        ("process_", "job", ROLES),
        ("up{", "job", ROLES),
        ("coffee_rt_build_info", "job", ROLES),
    ];
    table.iter().filter(|(metric, _, _)| expr.contains(metric)).map(|&(_, label, values)| (label, values)).collect()
}

struct Api {
    client: reqwest::Client,
    url: String,
}

impl Api {
    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        let res = self.client.get(format!("{}{path}", self.url)).query(query).send().await.map_err(|e| e.to_string())?;
        let body: Value = res.json().await.map_err(|e| e.to_string())?;
        if body["status"] != "success" {
            return Err(format!("{}: {}", body["errorType"], body["error"]));
        }
        Ok(body["data"].clone())
    }

    /// An instant query's vector.
    async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self.get("/api/v1/query", &[("query", expr)]).await?;
        match data["resultType"].as_str() {
            Some("vector") => Ok(data["result"].as_array().cloned().unwrap_or_default()),
            other => Err(format!("result type {other:?}, not a vector")),
        }
    }

    /// The alerts in state `firing` named `name`, as their label sets.
    async fn firing(&self, name: &str) -> Vec<BTreeMap<String, String>> {
        let Ok(data) = self.get("/api/v1/alerts", &[]).await else { return Vec::new() };
        data["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["labels"]["alertname"] == name && a["state"] == "firing")
            .map(|a| serde_json::from_value(a["labels"].clone()).unwrap_or_default())
            .collect()
    }

    async fn is_firing(&self, name: &str, label: &str, value: &str) -> bool {
        self.firing(name).await.iter().any(|l| l.get(label).map(String::as_str) == Some(value))
    }
}

/// What Prometheus sees of the targets and the alerts, for a failure message.
async fn diagnose(api: &Api) -> String {
    let mut out = String::new();
    for expr in ["up", "scrape_duration_seconds", "max by (version) (coffee_rt_freshness_lag_seconds)"] {
        let samples = api.query(expr).await.unwrap_or_default();
        let shown: Vec<String> = samples
            .iter()
            .map(|s| {
                let m = &s["metric"];
                let who = m["version"].as_str().map(str::to_owned).unwrap_or_else(|| format!("{}@{}", m["job"], m["instance"]));
                format!("{who}={}", s["value"][1].as_str().unwrap_or("?"))
            })
            .collect();
        out += &format!("\n  {expr}: {}", shown.join(", "));
    }
    if let Ok(data) = api.get("/api/v1/targets", &[]).await {
        for t in data["activeTargets"].as_array().into_iter().flatten().filter(|t| t["lastError"] != "") {
            out += &format!("\n  target {} {}: {}", t["labels"]["job"], t["scrapeUrl"], t["lastError"]);
        }
    }
    if let Ok(data) = api.get("/api/v1/alerts", &[]).await {
        for a in data["alerts"].as_array().into_iter().flatten() {
            out += &format!("\n  alert {} {}: {}", a["labels"]["alertname"], a["state"], a["labels"]);
        }
    }
    out
}

/// Per role: the /metrics body, its samples and the scrape's duration, as Prometheus measured them.
async fn scrape_cost(api: &Api) -> String {
    let mut by_job: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (expr, unit) in [
        ("max by (job) (scrape_body_size_bytes)", "bytes"),
        ("max by (job) (scrape_samples_scraped)", "samples"),
        ("max by (job) (max_over_time(scrape_duration_seconds[1m])) * 1000", "ms at most"),
    ] {
        for s in api.query(expr).await.unwrap_or_default() {
            let value = s["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
            by_job.entry(s["metric"]["job"].as_str().unwrap_or("?").to_owned()).or_default().push(format!("{value:.1} {unit}"));
        }
    }
    by_job.iter().map(|(job, v)| format!("\n  {job}: {}", v.join(", "))).collect()
}

fn finite(sample: &Value) -> bool {
    sample["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()).is_some_and(f64::is_finite)
}

/// Checks one board expression; an error says what is missing.
async fn check_board_expr(api: &Api, expr: &str) -> Result<(), String> {
    let result = api.query(expr).await?;
    if !result.iter().any(finite) {
        return Err(if result.is_empty() { "no data".into() } else { "no finite value".into() });
    }
    for (label, values) in required_coverage(expr) {
        let have: BTreeSet<&str> = result.iter().filter(|s| finite(s)).filter_map(|s| s["metric"][label].as_str()).collect();
        let missing: Vec<&str> = values.iter().copied().filter(|v| !have.contains(v)).collect();
        if !missing.is_empty() {
            return Err(format!("no finite value for {label} {missing:?} (has {have:?})"));
        }
    }
    Ok(())
}

/// The alerting rules as Prometheus loaded them: name → (query, health, last error).
async fn loaded_rules(api: &Api) -> Result<Vec<(String, String, String, String)>, String> {
    let data = api.get("/api/v1/rules", &[("type", "alert")]).await?;
    Ok(data["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or("").to_owned();
            (s("name"), s("query"), s("health"), s("lastError"))
        })
        .collect())
}

/// Every check of step 3 once; returns the failures and the number of expressions checked.
async fn check_all(api: &Api, board: &Value, alerts: usize) -> (Vec<String>, usize, usize, usize) {
    let mut failures = Vec::new();
    let targets = board_targets(board);
    for (title, expr) in &targets {
        let expr = substitute(expr, board);
        if let Err(e) = check_board_expr(api, &expr).await {
            failures.push(format!("board \"{title}\": {expr}\n    → {e}"));
        }
    }
    let rules = match loaded_rules(api).await {
        Ok(r) => r,
        Err(e) => {
            failures.push(format!("/api/v1/rules: {e}"));
            Vec::new()
        }
    };
    if rules.len() != alerts {
        failures.push(format!("Prometheus loaded {} alerting rules, alerts.yml has {alerts}", rules.len()));
    }
    let mut blocks = BTreeSet::new();
    for (name, query, health, error) in &rules {
        if health != "ok" {
            failures.push(format!("alert {name}: health {health:?} {error}"));
        }
        if let Err(e) = api.query(query).await {
            failures.push(format!("alert {name}: {query}\n    → {e}"));
        }
        let found = selectors(query);
        if found.is_empty() {
            failures.push(format!("alert {name}: no series selector found in {query}"));
        }
        blocks.extend(found.into_iter().map(|s| (s, name.clone())));
    }
    let distinct: BTreeSet<&String> = blocks.iter().map(|(s, _)| s).collect();
    for selector in &distinct {
        match api.query(selector).await {
            Ok(r) if !r.is_empty() => {}
            Ok(_) => {
                let users: Vec<&str> = blocks.iter().filter(|(s, _)| s == *selector).map(|(_, n)| n.as_str()).collect();
                failures.push(format!("selector {selector} (in {users:?}) → no data"));
            }
            Err(e) => failures.push(format!("selector {selector} → {e}")),
        }
    }
    (failures, targets.len(), rules.len(), distinct.len())
}

/// Every metric family the bundle reads has HELP text, as Prometheus's metadata API reports it.
async fn missing_help(api: &Api, exprs: &[String]) -> Vec<String> {
    let families: BTreeSet<String> = exprs
        .iter()
        .flat_map(|e| selectors(e))
        .map(|s| s.split('{').next().unwrap().to_owned())
        .filter(|n| n.starts_with("coffee_rt_"))
        .map(|n| ["_bucket", "_sum", "_count"].iter().fold(n, |n, suffix| n.strip_suffix(suffix).map(str::to_owned).unwrap_or(n)))
        .collect();
    let mut missing = Vec::new();
    for family in families {
        let data = api.get("/api/v1/metadata", &[("metric", &family)]).await.unwrap_or(Value::Null);
        let help = data[&family].as_array().into_iter().flatten().any(|m| m["help"].as_str().is_some_and(|h| !h.is_empty()));
        if !help {
            missing.push(family);
        }
    }
    missing
}

/// Posts orders on every path to both API processes until stopped: mostly valid ones, every
/// tenth invalid (a 4xx).
fn start_load(apis: [String; 2], stop: Arc<AtomicBool>, counts: Arc<[AtomicU64; 4]>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4)
        .map(|task| {
            let (apis, stop, counts) = (apis.clone(), stop.clone(), counts.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
                let mut i = task;
                while !stop.load(Ordering::Relaxed) {
                    let version = ["v1", "v2", "v3"][i % 3];
                    let api = &apis[(i / 3) % 2];
                    let body = if i % 10 == 7 { serde_json::json!({"drink": "latte", "price": "free"}) } else { order(i) };
                    let status = match client.post(format!("{api}/api/{version}/order")).bearer_auth(INGEST_TOKEN).json(&body).send().await
                    {
                        Ok(res) => res.status().as_u16(),
                        Err(_) => 0,
                    };
                    let slot = match status {
                        200..=299 => 0,
                        400..=499 => 1,
                        500..=599 => 2,
                        _ => 3,
                    };
                    counts[slot].fetch_add(1, Ordering::Relaxed);
                    i += 4;
                    tokio::time::sleep(Duration::from_millis(8)).await;
                }
            })
        })
        .collect()
}

async fn answers(client: &reqwest::Client, url: &str) -> bool {
    matches!(client.get(url).timeout(Duration::from_secs(1)).send().await, Ok(r) if r.status().is_success())
}

/// A malformed entry on the v2 stream and a malformed record on the v3 topic: each ends in its
/// path's dead letters.
async fn inject_dead_letters(env: &TestEnv) {
    let mut redis = env.redis().await;
    let _: String = redis.xadd(coffee_store::Keys::stream(&env.namespace), "*", &[("order", "{not an order")]).await.unwrap();
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", brokers()).create().unwrap();
    producer
        .send(FutureRecord::to(&env.topic).key("uptown").payload("{not an order"), Timeout::After(Duration::from_secs(5)))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_board_and_the_alerts_work_on_a_real_prometheus() {
    let started = Instant::now();
    let root = workspace();
    let prom_dir = root.join("deploy/prometheus");
    let (config_path, rules_path) = (prom_dir.join("prometheus.yml"), prom_dir.join("alerts.yml"));
    let board_path = root.join("deploy/grafana/dashboards/coffee-rt.json");

    // 1. The bundle as it ships (rule_files resolve beside prometheus.yml).
    promtool(&["check", "rules", rules_path.to_str().unwrap()]);
    // The serve job reads its token from `read-token` beside prometheus.yml (Compose mounts it
    // there): the shipped file is checked in a directory that has one.
    let shipped = TempDir::new(&format!("shipped-{}", std::process::id()));
    let shipped_config = shipped.0.join("prometheus.yml");
    std::fs::copy(&config_path, &shipped_config).unwrap();
    std::fs::copy(&rules_path, shipped.0.join("alerts.yml")).unwrap();
    std::fs::write(shipped.0.join("read-token"), READ_TOKEN).unwrap();
    promtool(&["check", "config", shipped_config.to_str().unwrap()]);
    let board: Value = serde_json::from_str(&std::fs::read_to_string(&board_path).unwrap()).expect("the board is JSON");

    // 2. Every role as its own process, in one world.
    let env = TestEnv::new();
    drop(env.pool().await); // migrated once, before the roles start side by side
    let ports: BTreeMap<&str, u16> =
        ["serve-a", "serve-b", "worker", "processor", "aggregate"].into_iter().map(|name| (name, free_port())).collect();
    let listen = |name: &str| format!("127.0.0.1:{}", ports[name]);
    let quiet = ("COFFEE_RT_LOG", "warn,librdkafka=off,rdkafka=off,tower_http=off");
    let (serve_a, serve_b) = (listen("serve-a"), listen("serve-b"));
    let mut children: BTreeMap<&str, Child> = BTreeMap::new();
    let tokens = [("COFFEE_RT_INGEST_TOKEN", INGEST_TOKEN), ("COFFEE_RT_READ_TOKEN", READ_TOKEN)];
    children.insert("serve-a", env.spawn(&["serve"], &[("COFFEE_RT_LISTEN", &serve_a), quiet, tokens[0], tokens[1]]));
    children.insert(
        "serve-b",
        env.spawn(&["serve"], &[("COFFEE_RT_LISTEN", &serve_b), ("COFFEE_RT_MAX_IN_FLIGHT", "1"), quiet, tokens[0], tokens[1]]),
    );
    for (role, extra) in [("worker", &[][..]), ("processor", &[][..]), ("aggregate", &["--every", "1s"][..])] {
        let addr = listen(role);
        let mut args = vec![role];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--metrics-listen", &addr]);
        children.insert(role, env.spawn(&args, &[quiet]));
    }
    let client = reqwest::Client::new();
    for (name, port) in &ports {
        let ready = format!("http://127.0.0.1:{port}/readyz");
        assert!(wait_until(Duration::from_secs(30), || answers(&client, &ready)).await, "{name}: {ready} never answered 200");
    }
    let apis = [format!("http://{serve_a}"), format!("http://{serve_b}")];
    // One order per path, counted end to end, before any load: no order waits for a role that
    // is still joining its group (that would put the freshness p99 over the SLO from the start).
    for version in ["v1", "v2", "v3"] {
        let res = client.post(format!("{}/api/{version}/order", apis[0])).bearer_auth(INGEST_TOKEN).json(&order(0)).send().await.unwrap();
        assert!(res.status().is_success(), "{version}: {}", res.status());
    }
    for version in [Version::V1, Version::V2, Version::V3] {
        assert!(wait_until(Duration::from_secs(30), || async { env.total_orders(version).await >= 1 }).await, "{version} counts an order");
    }

    // The real Prometheus on the bundle's jobs and rules.
    let dir = TempDir::new(&env.id);
    let (rules, alerts) = test_rules(&std::fs::read_to_string(&rules_path).unwrap());
    let test_rules_path = dir.0.join("alerts.yml");
    std::fs::write(&test_rules_path, rules).unwrap();
    let targets: Vec<(&str, u16)> = [("serve-a:8005", "serve-a"), ("serve-b:8006", "serve-b"), ("worker:9105", "worker")]
        .into_iter()
        .chain([("processor:9106", "processor"), ("aggregate:9107", "aggregate")])
        .map(|(target, name)| (target, ports[name]))
        .collect();
    let test_config_path = dir.0.join("prometheus.yml");
    std::fs::write(&test_config_path, test_config(&std::fs::read_to_string(&config_path).unwrap(), &targets, &test_rules_path)).unwrap();
    std::fs::write(dir.0.join("read-token"), READ_TOKEN).unwrap();
    promtool(&["check", "config", test_config_path.to_str().unwrap()]);
    let prometheus = Prometheus::start(&dir.0, &test_config_path);
    let api = Api { client: client.clone(), url: prometheus.url.clone() };
    let ready = format!("{}/-/ready", api.url);
    assert!(wait_until(Duration::from_secs(20), || answers(&client, &ready)).await, "Prometheus never ready:\n{}", prometheus.log_tail());

    // 3. Load, then every expression.
    let stop = Arc::new(AtomicBool::new(false));
    let counts: Arc<[AtomicU64; 4]> = Arc::new(Default::default());
    let load = start_load(apis.clone(), stop.clone(), counts.clone());
    inject_dead_letters(&env).await;
    let up = "count(up{job=~\"serve|worker|processor|aggregate\"} == 1)";
    assert!(
        wait_until(Duration::from_secs(15), || async {
            api.query(up).await.ok().and_then(|r| r.first().cloned()).is_some_and(|s| s["value"][1] == "5")
        })
        .await,
        "Prometheus does not scrape all five targets: {:?}\n{}",
        api.get("/api/v1/targets", &[]).await,
        prometheus.log_tail()
    );
    let deadline = Instant::now() + Duration::from_secs(40);
    let (board_exprs, alert_exprs, blocks) = loop {
        let (failures, board_exprs, alert_exprs, blocks) = check_all(&api, &board, alerts).await;
        if failures.is_empty() {
            break (board_exprs, alert_exprs, blocks);
        }
        if Instant::now() > deadline {
            let sent: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
            panic!(
                "{} check(s) failed against the real Prometheus (responses 2xx/4xx/5xx/failed: {sent:?}):\n  {}\nPrometheus sees:{}",
                failures.len(),
                failures.join("\n  "),
                diagnose(&api).await
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let checked = board_exprs + alert_exprs + blocks;
    println!(
        "prometheus_bundle: {checked} PromQL expressions checked against Prometheus: {board_exprs} board targets, \
         {alert_exprs} alert expressions, {blocks} distinct selectors in them"
    );
    println!("prometheus_bundle: scrape cost per role (largest target):{}", scrape_cost(&api).await);
    let all_exprs: Vec<String> = board_targets(&board)
        .iter()
        .map(|(_, e)| substitute(e, &board))
        .chain(loaded_rules(&api).await.unwrap().into_iter().map(|r| r.1))
        .collect();
    let no_help = missing_help(&api, &all_exprs).await;
    assert!(no_help.is_empty(), "metrics without HELP text: {no_help:?}");
    for version in ["v2", "v3"] {
        assert!(
            wait_until(Duration::from_secs(10), || api.is_firing("CoffeeRtDeadLetters", "version", version)).await,
            "CoffeeRtDeadLetters{{version=\"{version}\"}} does not fire after a malformed entry: {:?}",
            api.firing("CoffeeRtDeadLetters").await
        );
    }

    // 4. The processor stops while v3 orders keep arriving: the freshness alert fires.
    assert!(
        wait_until(Duration::from_secs(20), || async { !api.is_firing("CoffeeRtFreshnessOverSlo", "version", "v3").await }).await,
        "CoffeeRtFreshnessOverSlo fires for v3 before the processor is stopped:{}",
        diagnose(&api).await
    );
    let mut processor = children.remove("processor").unwrap();
    processor.start_kill().unwrap(); // SIGKILL
    processor.wait().await.unwrap();
    let killed = Instant::now();
    let fired = wait_until(Duration::from_secs(40), || async { api.is_firing("CoffeeRtFreshnessOverSlo", "version", "v3").await }).await;
    assert!(
        fired,
        "CoffeeRtFreshnessOverSlo{{version=\"v3\"}} did not fire within 40 s of the processor's SIGKILL:{}",
        diagnose(&api).await
    );
    println!(
        "prometheus_bundle: CoffeeRtFreshnessOverSlo{{version=\"v3\"}} fired {:.1} s after the processor's SIGKILL",
        killed.elapsed().as_secs_f64()
    );
    assert!(
        wait_until(Duration::from_secs(10), || api.is_firing("CoffeeRtRoleDown", "job", "processor")).await,
        "CoffeeRtRoleDown{{job=\"processor\"}} does not fire: {:?}",
        api.firing("CoffeeRtRoleDown").await
    );

    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let sent: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    println!("prometheus_bundle: responses 2xx/4xx/5xx/failed {sent:?}; {:.1} s in all", started.elapsed().as_secs_f64());
    drop(prometheus);
    drop(dir);
    for (_, mut child) in children {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

#[test]
fn selectors_are_found_with_their_matchers() {
    let expr = r#"sum by (version) (increase(coffee_rt_dead_letters_total[10m])) > 0
        or sum by (version) (coffee_rt_dead_letters_total{version=~"v2|v3", x="a}b"} unless coffee_rt_dead_letters_total offset 10m)
        / up{job="serve"} + label_replace(process_cpu_seconds_total, "a", "up", "", "")"#;
    assert_eq!(
        selectors(expr),
        [
            "coffee_rt_dead_letters_total",
            r#"coffee_rt_dead_letters_total{version=~"v2|v3", x="a}b"}"#,
            "coffee_rt_dead_letters_total",
            r#"up{job="serve"}"#,
            "process_cpu_seconds_total",
        ]
    );
}

//! What the warehouse tests share: a ClickHouse database per test, a private ClickHouse server
//! a test may kill, the comparison of both stores, and a stream of orders over the three paths.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use coffee_testkit::{TestApp, TestEnv, free_port, wait_until};
use coffee_warehouse::{
    ClickHouseConfig,
    clickhouse::ClickHouse,
    schema::{ORDERS, orders_final},
};
use serde_json::json;
use tokio::process::{Child, Command};

/// The shared ClickHouse: `CLICKHOUSE_URL`, or the one the scripts start.
pub fn clickhouse_url() -> String {
    std::env::var("CLICKHOUSE_URL").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "http://127.0.0.1:8123".into())
}

/// A ClickHouse database of one test, dropped with it (also on a panic).
pub struct ChDatabase {
    pub client: ClickHouse,
}

impl ChDatabase {
    /// A new database name on the server at `url`; nothing is created yet (the sink does it).
    pub fn new(url: &str, id: &str) -> ChDatabase {
        let config = ClickHouseConfig { url: url.to_owned(), database: format!("coffee_{id}") };
        ChDatabase { client: ClickHouse::new(&config).expect("ClickHouse URL") }
    }

    pub fn config(&self) -> &ClickHouseConfig {
        self.client.config()
    }

    /// Environment variables that point a child `coffee-rt` at this database.
    pub fn envs(&self) -> [(&'static str, String); 2] {
        [("CLICKHOUSE_URL", self.config().url.clone()), ("COFFEE_RT_CLICKHOUSE_DATABASE", self.config().database.clone())]
    }
}

impl Drop for ChDatabase {
    fn drop(&mut self) {
        // A client of its own: the test's connections belong to the test's runtime, which is
        // blocked in this drop.
        let config = self.config().clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let Ok(client) = ClickHouse::with_timeout(&config, Duration::from_secs(30)) else { return };
                let _ = client
                    .execute(&format!("DROP DATABASE IF EXISTS {}", coffee_warehouse::clickhouse::quote_ident(client.database())))
                    .await;
            });
        })
        .join();
    }
}

/// Count and revenue per version.
pub type Totals = BTreeMap<String, (i64, i64)>;

/// PostgreSQL's count and sum per version (every order; all are in range here).
pub async fn pg_totals(env: &TestEnv) -> Totals {
    let pool = env.pool().await;
    let client = pool.get().await.unwrap();
    let rows = client.query("SELECT version, count(*), sum(price_cents)::int8 FROM orders GROUP BY 1", &[]).await.unwrap();
    rows.iter().map(|r| (r.get(0), (r.get(1), r.get(2)))).collect()
}

/// ClickHouse's count and sum per version, read `FINAL` (replays collapsed). Empty when the
/// server or the table is not there.
pub async fn ch_totals(ch: &ClickHouse) -> Totals {
    #[derive(serde::Deserialize)]
    struct Row {
        version: String,
        orders: i64,
        revenue: i64,
    }
    let sql = format!(
        "SELECT version, toInt64(count()) AS orders, toInt64(sum(price_cents)) AS revenue FROM {} GROUP BY version",
        orders_final(ch)
    );
    match ch.query_json::<Row>(&sql).await {
        Ok(rows) => rows.into_iter().map(|r| (r.version, (r.orders, r.revenue))).collect(),
        Err(_) => Totals::new(),
    }
}

/// Rows on disk in ClickHouse, replays not collapsed.
pub async fn ch_raw_rows(ch: &ClickHouse) -> i64 {
    ch.query_text(&format!("SELECT count() FROM {}", ch.table(ORDERS))).await.ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0)
}

/// Distinct orders in ClickHouse.
pub async fn ch_orders(ch: &ClickHouse) -> i64 {
    ch_totals(ch).await.values().map(|(n, _)| n).sum()
}

/// The warehouse watermark and how many orders PostgreSQL holds below it.
pub async fn below_watermark(env: &TestEnv) -> (u64, i64) {
    let pool = env.pool().await;
    let client = pool.get().await.unwrap();
    let w = coffee_store::postgres::warehouse_watermark(&client).await.unwrap();
    let n: i64 = client.query_one("SELECT count(*) FROM orders WHERE txid < $1::text::xid8", &[&w.to_string()]).await.unwrap().get(0);
    (w, n)
}

/// Waits until ClickHouse's count and sum per version equal PostgreSQL's; panics with both otherwise.
pub async fn assert_stores_agree(env: &TestEnv, ch: &ClickHouse, within: Duration) {
    let agreed = wait_until(within, || async { !pg_totals(env).await.is_empty() && pg_totals(env).await == ch_totals(ch).await }).await;
    let (pg, wh) = (pg_totals(env).await, ch_totals(ch).await);
    assert!(agreed, "ClickHouse differs from PostgreSQL after {within:?}:\n  PostgreSQL {pg:?}\n  ClickHouse {wh:?}");
}

/// The v2 worker and the v3 processor as children, so that the v2 and v3 orders an in-process
/// API accepts reach PostgreSQL. The environment's `CLICKHOUSE_URL` is removed: these run no sink.
pub fn spawn_writers(env: &TestEnv) -> Vec<Child> {
    ["worker", "processor"]
        .iter()
        .map(|role| {
            let mut cmd = env.command(&[role]);
            cmd.env_remove("CLICKHOUSE_URL");
            cmd.spawn().expect("coffee-rt runs")
        })
        .collect()
}

/// `coffee-rt warehouse` as a child on `ch`, with `args`.
pub fn spawn_sink(env: &TestEnv, ch: &ChDatabase, args: &[&str]) -> Child {
    let mut all = vec!["warehouse"];
    all.extend_from_slice(args);
    let mut cmd = env.command(&all);
    cmd.envs(ch.envs());
    cmd.spawn().expect("coffee-rt runs")
}

pub async fn sigkill(child: &mut Child) {
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("reaped");
}

/// Waits until PostgreSQL holds every acknowledged order of the stream.
pub async fn wait_for_postgres(env: &TestEnv, acked: &[String], within: Duration) {
    let all = wait_until(within, || async { coffee_testkit::stored(env, acked).await == acked.len() as i64 }).await;
    let held = coffee_testkit::stored(env, acked).await;
    assert!(all, "PostgreSQL holds {held} of {} acknowledged orders after {within:?}", acked.len());
}

/// A steady stream of orders over v1, v2 and v3 through the real API: one order per path
/// every `every`, each retried on 503 with its own id, until stopped.
pub struct Stream {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(Vec<String>, u64)>,
    pub sent: Arc<AtomicU64>,
}

impl Stream {
    pub fn start(app: &TestApp, every: Duration) -> Stream {
        let (stop, sent) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let (client, address) = (app.client.clone(), app.address.clone());
        let (stop2, sent2) = (stop.clone(), sent.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            let mut inflight = futures::stream::FuturesUnordered::new();
            let (mut acked, mut refused) = (Vec::new(), 0u64);
            let mut i = 0usize;
            use futures::StreamExt;
            while !stop2.load(Ordering::SeqCst) {
                tokio::select! {
                    _ = tick.tick() => {
                        for version in ["v1", "v2", "v3"] {
                            let (client, address) = (client.clone(), address.clone());
                            let order = coffee_testkit::order(i);
                            i += 1;
                            sent2.fetch_add(1, Ordering::SeqCst);
                            inflight.push(async move { post(&client, &address, version, order).await });
                        }
                    }
                    Some((id, non_2xx)) = inflight.next(), if !inflight.is_empty() => {
                        acked.push(id);
                        refused += non_2xx;
                    }
                }
            }
            while let Some((id, non_2xx)) = inflight.next().await {
                acked.push(id);
                refused += non_2xx;
            }
            (acked, refused)
        });
        Stream { stop, task, sent }
    }

    /// Stops sending; returns every acknowledged id and how many answers were not 2xx.
    pub async fn finish(self) -> (Vec<String>, u64) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("stream task")
    }
}

/// Posts one order until it is acknowledged (503 retried, as a client does); returns its id and
/// how many answers were not 2xx.
async fn post(client: &reqwest::Client, address: &str, version: &str, order: serde_json::Value) -> (String, u64) {
    let mut refused = 0;
    loop {
        let res = client.post(format!("{address}/api/{version}/order")).json(&order).send().await;
        match res.map(|r| r.status().as_u16()) {
            Ok(200..=299) => return (order["order_id"].as_str().unwrap().to_owned(), refused),
            Ok(503) | Err(_) => {
                refused += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(other) => panic!("{version} answered {other} to {}", json!(order)),
        }
    }
}

/// A ClickHouse server of a test's own: its ports, its directory (a temp dir), the same
/// program and generated configuration as `scripts/tools/clickhouse.sh`. Killed and removed
/// when dropped; the shared server is never touched.
pub struct PrivateClickHouse {
    pub http_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateClickHouse {
    pub async fn start(id: &str) -> PrivateClickHouse {
        let (http_port, tcp_port) = (free_port(), free_port());
        let dir = std::env::temp_dir().join(format!("coffee-rt-clickhouse-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // The script's own configuration writer, so the test runs what the scripts run.
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/tools/clickhouse.sh");
        let status = std::process::Command::new("bash")
            .args(["-c", "source \"$0\" && clickhouse_config \"$1\" 127.0.0.1 \"$2\" \"$3\"", script])
            .arg(&dir)
            .arg(http_port.to_string())
            .arg(tcp_port.to_string())
            .status()
            .expect("bash runs");
        assert!(status.success(), "clickhouse_config of scripts/tools/clickhouse.sh writes the private server's configuration");
        let mut server = PrivateClickHouse { http_port, dir, child: None };
        server.run().await;
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Starts the server on its existing data and waits until `/ping` answers.
    pub async fn run(&mut self) {
        let log = std::fs::File::create(self.dir.join("log").join("stdout.log")).unwrap();
        let child = Command::new("clickhouse-server")
            .arg(format!("--config-file={}", self.dir.join("config.xml").display()))
            .stdout(Stdio::from(log))
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("clickhouse-server is installed (scripts/tools/clickhouse.sh installs it)");
        self.child = Some(child);
        let client = ClickHouse::new(&ClickHouseConfig { url: self.url(), database: "default".into() }).unwrap();
        let up = wait_until(Duration::from_secs(60), || async { client.ping().await.is_ok() }).await;
        assert!(up, "the private ClickHouse answers /ping (log in {})", self.dir.join("log").display());
    }

    /// SIGKILL, as a crash.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            sigkill(&mut c).await;
        }
    }
}

impl Drop for PrivateClickHouse {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A value of a Prometheus text exposition, e.g. `coffee_rt_warehouse_lag_seconds`.
pub async fn metric(url: &str, name: &str) -> Option<f64> {
    let text = reqwest::get(url).await.ok()?.text().await.ok()?;
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
}

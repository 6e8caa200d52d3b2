//! The program itself: `coffee-mv serve` and `coffee-mv eager`, configured
//! through the environment only, drain and exit 0 on SIGTERM.

use super::common::{TestDb, delete_topics, require_broker, unique};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a stopping process may take: drain, flush, close.
const GRACE: Duration = Duration::from_secs(5);

struct Topics {
    prices: String,
    positions: String,
}

fn coffee_mv(role: &str, db: &TestDb, brokers: &str, topics: &Topics) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_coffee-mv"));
    c.arg(role)
        .env("DATABASE_URL", &db.url)
        .env("KAFKA_BROKERS", brokers)
        .env("COFFEE_RT_MV_PRICE_TOPIC", &topics.prices)
        .env("COFFEE_RT_MV_POSITION_TOPIC", &topics.positions)
        .env("COFFEE_RT_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// Sends SIGTERM (tokio has none to send and mv has no libc; kill(1) is
/// everywhere) and asserts a clean exit within [`GRACE`].
async fn terminate(mut child: Child) {
    let pid = child.id().expect("still running").to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let sent = Instant::now();
    let status = tokio::time::timeout(GRACE, child.wait()).await.expect("exits within the grace period after SIGTERM").unwrap();
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");
    assert!(sent.elapsed() < GRACE);
}

/// Reads the child's log until a line contains `what`; keeps draining it
/// afterwards so the child never blocks on a full pipe.
async fn wait_for_log(child: &mut Child, what: &'static str) {
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let found = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains(what) {
                return true;
            }
        }
        false
    };
    assert!(tokio::time::timeout(Duration::from_secs(30), found).await.expect("logged within 30 s"), "exited before logging {what:?}");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exits_cleanly_on_sigterm() {
    let brokers = require_broker();
    let db = TestDb::new().await;
    let topics = Topics { prices: unique("mv.term.prices"), positions: unique("mv.term.positions") };
    let listen = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let mut child = coffee_mv("serve", &db, &brokers, &topics).env("COFFEE_RT_MV_LISTEN", &listen).spawn().unwrap();
    wait_for_log(&mut child, "serving").await;
    let health = reqwest::get(format!("http://{listen}/api/health")).await.unwrap();
    assert!(health.status().is_success());
    terminate(child).await;
    delete_topics(&brokers, &[&topics.prices, &topics.positions]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eager_exits_cleanly_on_sigterm() {
    let brokers = require_broker();
    let db = TestDb::new().await;
    let topics = Topics { prices: unique("mv.term.prices"), positions: unique("mv.term.positions") };
    let output = unique("mv.term.changes");
    let mut child = coffee_mv("eager", &db, &brokers, &topics).env("COFFEE_RT_MV_OUTPUT_TOPIC", &output).spawn().unwrap();
    wait_for_log(&mut child, "strategy A rebuilt").await;
    terminate(child).await;
    delete_topics(&brokers, &[&topics.prices, &topics.positions, &output]).await;
}

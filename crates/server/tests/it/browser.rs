//! The page in real headless Chromium (Debian's `chromium` + `chromium-driver`), driven over
//! WebDriver with fantoccini.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::time::Instant;

use crate::common::{self, TestApp};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver process of our own and a browser session on it.
pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: PathBuf,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

static BROWSER_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Browser {
    /// One browser at a time per test process: two Chromiums on a small machine would slow each
    /// other far more than the code under test.
    pub async fn start() -> Browser {
        let turn = BROWSER_TURN.lock().await;
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(Path::new(bin).exists(), "{bin} is missing: install Debian's chromium and chromium-driver (scripts/test does)");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = std::env::temp_dir().join(format!("coffee-it-chromium-{}-{port}", std::process::id()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    format!("--user-data-dir={}", profile.display()),
                    "--window-size=1600,1500", "--lang=en-US",
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            match ClientBuilder::new(HttpConnector::new()).capabilities(caps.clone()).connect(&url).await {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no WebDriver session from {CHROMEDRIVER} within 20 s: {e}"),
            }
        };
        Browser { client, driver, profile, _turn: turn }
    }

    /// Opens the dashboard and waits until its socket is live.
    pub async fn open_dashboard(&self, app: &TestApp) {
        self.client.goto(&format!("{}/", app.address)).await.unwrap();
        self.wait_js("return document.body.dataset.conn === 'live' && !!document.body.dataset.seq", Duration::from_secs(10)).await;
    }

    pub async fn text(&self, css: &str) -> String {
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.unwrap()
    }

    pub async fn js(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Polls `script` (which returns a boolean) until it is true.
    pub async fn wait_js(&self, script: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while self.js(script).await != json!(true) {
            assert!(Instant::now() < deadline, "not true within {within:?}: {script}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The workspace's `target/`, where people look for the screenshot.
pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_a_new_order_within_a_second() {
    let app = common::spawn(None).await;
    let browser = Browser::start().await;
    browser.open_dashboard(&app).await;
    assert_eq!(browser.text("#version-v2 .orders").await, "0");

    // The page notes (in its own clock, the same wall clock as ours) when the count changes, so
    // WebDriver's polling round trips are not counted against the page.
    browser
        .js("const el = document.querySelector('#version-v2 .orders'); window.__shownAt = null;\
             new MutationObserver(() => { if (el.textContent === '1' && !window.__shownAt) window.__shownAt = Date.now(); })\
               .observe(el, { childList: true, characterData: true, subtree: true }); return true")
        .await;
    let posted_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    app.order("v2", "cappuccino", "downtown", 450).await;
    browser.wait_js("return window.__shownAt !== null", Duration::from_secs(5)).await;
    let shown = browser.js("return window.__shownAt").await.as_i64().unwrap() - posted_ms;
    eprintln!("order shown on the page {shown} ms after the POST");
    assert!(shown < 1000, "the page showed the order {shown} ms after the POST");
    assert_eq!(browser.text("#version-v2 .revenue").await, "$4.50");
    assert!(browser.text("#version-v2 .recent tbody").await.contains("cappuccino"));

    // Some traffic on v1 and v2 so the screenshot shows every panel at work.
    let drinks = ["cappuccino", "americano", "latte"];
    let stores = ["uptown", "downtown", "central", "southend"];
    for i in 0..60usize {
        let version = if i % 3 == 0 { "v1" } else { "v2" };
        app.order(version, drinks[(i / 3 + i) % 3], stores[i * 5 % 4], 250 + (i as i64 % 7) * 75).await;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    browser.wait_js("return document.querySelector('#version-v1 .orders').textContent === '20'", Duration::from_secs(5)).await;
    browser.wait_js("return document.querySelector('#version-v2 .orders').textContent === '41'", Duration::from_secs(5)).await;
    // v1's freshness comes from the aggregator; it is on the page once that run is recorded.
    browser.wait_js("return document.querySelector('#version-v1 .p50').textContent !== '–'", Duration::from_secs(5)).await;
    assert_eq!(browser.text("#conn-text").await, "live");
    let bars = browser.js("return document.querySelectorAll('#version-v2 .drinks .bar-row').length").await;
    assert_eq!(bars, json!(3));
    tokio::time::sleep(Duration::from_millis(1200)).await; // one more orders/s sample on the chart
    browser.screenshot(&target_dir().join("dashboard.png")).await;
    browser.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_reconnects_by_itself_and_shows_it() {
    let app = common::spawn(None).await;
    let browser = Browser::start().await;
    browser.open_dashboard(&app).await;
    // A server restart: the page sees its socket close, says so, and comes back by itself.
    let stopped = app.stop_only().await;
    browser.wait_js("return document.body.dataset.conn === 'down'", Duration::from_secs(5)).await;
    assert!(browser.text("#conn-text").await.starts_with("disconnected · retrying in"));
    let app = stopped.start_again().await;
    browser.wait_js("return document.body.dataset.conn === 'live'", Duration::from_secs(15)).await;
    app.order("v2", "latte", "central", 320).await;
    browser.wait_js("return document.querySelector('#version-v2 .orders').textContent === '1'", Duration::from_secs(2)).await;
    browser.close().await;
    app.stop().await;
}

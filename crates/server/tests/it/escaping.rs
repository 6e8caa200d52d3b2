//! Names from the catalog are data: a drink called `<img src=x onerror=alert(1)>` is shown as
//! those characters, on the socket and on the page, and runs nothing.

use std::time::Duration;

use serde_json::json;

use crate::{browser::Browser, common};

const EVIL_DRINK: &str = "<img src=x onerror=alert(1)>";
const EVIL_STORE: &str = "<script>alert(2)</script>&amp;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_in_catalog_names_renders_as_text() {
    let dir = std::env::temp_dir().join(format!("coffee-it-catalog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let catalog = dir.join("evil.toml");
    let toml = format!("drinks = [{:?}, \"latte\"]\nstores = [{:?}, \"uptown\"]\n", EVIL_DRINK, EVIL_STORE);
    std::fs::write(&catalog, toml).unwrap();
    let app = common::spawn(Some(&catalog)).await;

    let mut ws = app.ws().await;
    ws.next_snapshot(Duration::from_secs(5)).await.unwrap();
    app.order("v2", EVIL_DRINK, EVIL_STORE, 500).await;
    let snap = ws.until_total("v2", 1, Duration::from_secs(5)).await;
    // On the wire the names are JSON strings, unchanged.
    assert_eq!(snap["versions"]["v2"]["recent"][0]["drink"], EVIL_DRINK);
    assert_eq!(snap["versions"]["v2"]["stores"][0]["name"], EVIL_STORE);

    let browser = Browser::start().await;
    browser.open_dashboard(&app).await;
    browser.wait_js("return document.querySelector('#version-v2 .orders').textContent === '1'", Duration::from_secs(5)).await;
    let shown = browser
        .js("const p = document.querySelector('#version-v2'); return [\
               p.querySelector('.recent tbody td:nth-child(2)').textContent,\
               p.querySelector('.recent tbody td:nth-child(3)').textContent,\
               p.querySelector('.top-drinks li').textContent,\
               p.querySelector('.drinks .bar-row .name').textContent,\
               document.querySelectorAll('#versions img, #versions script').length]")
        .await;
    assert_eq!(shown, json!([EVIL_DRINK, EVIL_STORE, format!("{EVIL_DRINK} — 1"), EVIL_DRINK, 0]));
    // Had the markup run, alert(1) would be open now.
    assert!(browser.client.get_alert_text().await.is_err(), "an alert opened: the page ran data as markup");
    browser.close().await;
    app.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

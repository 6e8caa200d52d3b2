//! `GET /api/history` (its validation, its answer's shape and offsets) and the dashboard's
//! history tab in headless Chromium, on a server whose café is in Europe/Paris.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Datelike, Duration as Days, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::{Europe::Paris, Tz};
use coffee_core::Version;
use coffee_testkit::wait_until;
use fantoccini::Locator;
use serde_json::{Value, json};

use crate::{
    browser::{Browser, target_dir},
    common::{TestApp, TestEnv},
};

async fn paris_app() -> TestApp {
    let mut env = TestEnv::new();
    env.config.timezone = Paris;
    // These tests post orders of a past autumn on purpose (a clock change), older than the
    // API's default window.
    env.config.order_window = coffee_core::OrderWindow::UNBOUNDED;
    TestApp::up(env).await
}

/// Posts each `(version, drink, store, cents, timestamp)` and waits until PostgreSQL has all.
async fn seed(app: &TestApp, orders: &[(&str, &str, &str, i64, String)]) {
    for (version, drink, store, cents, timestamp) in orders {
        let body = json!({"drink": drink, "store": store, "price": *cents as f64 / 100.0, "timestamp": timestamp});
        let (status, reply) = app.post(version, &body).await;
        assert!((200..300).contains(&status), "{status} {reply}");
    }
    let n = orders.len() as i64;
    let env = app.env();
    let all = || async { env.rows(Version::V1).await + env.rows(Version::V2).await + env.rows(Version::V3).await == n };
    assert!(wait_until(Duration::from_secs(20), all).await, "{n} orders reach PostgreSQL");
}

fn buckets(answer: &Value) -> Vec<(String, Option<String>, i64, i64)> {
    answer["buckets"]
        .as_array()
        .unwrap_or_else(|| panic!("no buckets: {answer}"))
        .iter()
        .map(|b| {
            (
                b["start"].as_str().unwrap().to_owned(),
                b.get("key").and_then(Value::as_str).map(str::to_owned),
                b["orders"].as_i64().unwrap(),
                b["revenue_cents"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn bucket(start: &str, key: Option<&str>, orders: i64, cents: i64) -> (String, Option<String>, i64, i64) {
    (start.to_owned(), key.map(str::to_owned), orders, cents)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_in_the_cafés_zone_and_names_bad_parameters() {
    let app = paris_app().await;
    // Around the autumn change in Paris (2025-10-26, 03:00+02:00 becomes 02:00+01:00).
    let orders = [
        ("v1", "latte", "uptown", 450, "2025-10-26T00:30:00Z".to_owned()), // 02:30+02:00
        ("v1", "latte", "downtown", 300, "2025-10-26T01:30:00Z".to_owned()), // 02:30+01:00
        ("v2", "americano", "uptown", 250, "2025-10-26T02:45:00+01:00".to_owned()),
        ("v2", "cappuccino", "central", 100, "2025-10-25T21:59:59.999Z".to_owned()), // 23:59:59.999+02:00 on the 25th
        ("v1", "cappuccino", "central", 125, "2025-10-27T00:15:00+01:00".to_owned()), // the next ISO week
    ];
    seed(&app, &orders).await;

    let (status, a) = app.get("/api/history?from=2025-10-25&to=2025-10-27&bucket=hour").await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["source"], "postgresql");
    assert_eq!(a["timezone"], "Europe/Paris");
    assert_eq!(a["bucket"], "hour");
    assert_eq!(a["from"], "2025-10-25T00:00:00+02:00", "a date is the start of that local day");
    assert_eq!(a["to"], "2025-10-27T00:00:00+01:00");
    assert_eq!(a["group"], Value::Null);
    assert_eq!(
        buckets(&a),
        [
            bucket("2025-10-25T23:00:00+02:00", None, 1, 100),
            bucket("2025-10-26T02:00:00+02:00", None, 1, 450),
            bucket("2025-10-26T02:00:00+01:00", None, 2, 550),
        ],
        "the repeated 02:00 is two buckets; empty hours are omitted"
    );
    assert_eq!(a["totals"], json!({"orders": 4, "revenue_cents": 1100}));
    assert!(a["buckets"][0].get("key").is_none(), "no key when not grouped");

    let (_, a) = app.get("/api/history?from=2025-10-25T00:00:00%2B02:00&to=2025-10-28&bucket=day").await;
    assert_eq!(
        buckets(&a),
        [
            bucket("2025-10-25T00:00:00+02:00", None, 1, 100),
            bucket("2025-10-26T00:00:00+02:00", None, 3, 1000),
            bucket("2025-10-27T00:00:00+01:00", None, 1, 125),
        ]
    );

    let (_, a) = app.get("/api/history?from=2025-10-20&to=2025-11-03&bucket=week&group=store").await;
    assert_eq!(a["group"], "store");
    assert_eq!(
        buckets(&a),
        [
            bucket("2025-10-20T00:00:00+02:00", Some("central"), 1, 100),
            bucket("2025-10-20T00:00:00+02:00", Some("downtown"), 1, 300),
            bucket("2025-10-20T00:00:00+02:00", Some("uptown"), 2, 700),
            bucket("2025-10-27T00:00:00+01:00", Some("central"), 1, 125),
        ]
    );

    let (_, a) = app.get("/api/history?from=2025-10-20&to=2025-11-03&bucket=day&drink=latte&group=store").await;
    assert_eq!(a["drink"], "latte");
    assert_eq!(
        buckets(&a),
        [bucket("2025-10-26T00:00:00+02:00", Some("downtown"), 1, 300), bucket("2025-10-26T00:00:00+02:00", Some("uptown"), 1, 450)]
    );
    let (_, a) = app.get("/api/history?from=2025-10-20&to=2025-11-03&store=central&store=").await;
    assert_eq!(a["error"], "given more than once", "{a}");
    let (_, a) = app.get("/api/history?from=2025-10-20&to=2025-11-03&store=central&drink=&group=").await;
    assert_eq!(a["totals"]["orders"], 2, "empty values are no filter: {a}");

    // The default: the last 30 local days, today's included, in day buckets.
    let (status, a) = app.get("/api/history").await;
    assert_eq!(status, 200);
    assert_eq!(a["bucket"], "day");
    let from = DateTime::parse_from_rfc3339(a["from"].as_str().unwrap()).unwrap();
    let to = DateTime::parse_from_rfc3339(a["to"].as_str().unwrap()).unwrap();
    assert_eq!((from.hour(), from.minute(), from.second()), (0, 0, 0), "from is a local midnight: {from}");
    assert_eq!(from.to_rfc3339(), from.with_timezone(&Paris).to_rfc3339(), "with Paris's offset of that day");
    let today = to.with_timezone(&Paris).date_naive();
    assert_eq!(from.date_naive(), today - Days::days(29));
    assert!((Utc::now() - to.to_utc()).num_seconds().abs() < 30);

    for (query, field) in [
        ("bucket=month", "bucket"),
        ("group=city", "group"),
        ("from=yesterday", "from"),
        ("to=2025-13-01", "to"),
        ("from=2025-10-26T00:00:00", "from"),
        ("from=2025-10-26&to=2025-10-26", "to"),
        ("from=2025-10-27&to=2025-10-26", "to"),
        ("from=2024-01-01&to=2025-03-01&bucket=hour", "from"),
        ("from=1969-12-31&to=1970-01-02", "from"),
        ("store=mars", "store"),
        ("drink=tea", "drink"),
        ("nope=1", "nope"),
        ("bucket=day&bucket=week", "bucket"),
    ] {
        let (status, body) = app.get(&format!("/api/history?{query}")).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["field"], field, "{query}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{query}: {body}");
    }
    // 400 days of hours are fine; ten years of days too.
    assert_eq!(app.get("/api/history?from=2024-01-01&to=2025-01-30&bucket=hour").await.0, 200);
    assert_eq!(app.get("/api/history?from=2016-01-01&to=2025-12-31&bucket=week").await.0, 200);
    app.stop().await;
}

/// The local time `hh:mm` on `date` in Paris, as the RFC 3339 a client sends.
fn paris(date: NaiveDate, hh: u32, mm: u32) -> String {
    Paris.from_local_datetime(&date.and_hms_opt(hh, mm, 0).unwrap()).earliest().unwrap().to_rfc3339()
}

fn monday(date: NaiveDate) -> NaiveDate {
    date - Days::days(i64::from(date.weekday().num_days_from_monday()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_tab_draws_the_three_charts_from_the_orders() {
    let app = paris_app().await;
    let tz: Tz = Paris;
    let today = Utc::now().with_timezone(&tz).date_naive();
    let (d1, d3, d8, d40) = (today - Days::days(1), today - Days::days(3), today - Days::days(8), today - Days::days(40));
    let mut orders = Vec::new();
    for i in 0..5 {
        orders.push(("v1", "latte", "uptown", 300, paris(d1, 8, 10 + i * 10)));
    }
    for i in 0..4 {
        orders.push(("v2", "americano", "downtown", 250, paris(d8, 8, 5 + i)));
    }
    for i in 0..3 {
        orders.push(("v2", "cappuccino", "central", 410, paris(d3, 14, 5 + i)));
    }
    for i in 0..2 {
        orders.push(("v1", "latte", "southend", 500, paris(d40, 11, 30 + i)));
    }
    seed(&app, &orders).await;

    let browser = Browser::start().await;
    browser.open_dashboard(&app).await;
    assert_eq!(browser.js("return document.body.dataset.tab").await, "live", "the live view is the default");
    assert_eq!(browser.js("return document.getElementById('history').hidden").await, true);
    browser.client.find(Locator::Css("#tab-history")).await.unwrap().click().await.unwrap();
    browser.wait_js("return document.body.dataset.history === 'ready'", Duration::from_secs(10)).await;
    assert_eq!(browser.js("return document.getElementById('versions').hidden").await, true);
    let meta = browser.text("#history-meta").await;
    assert!(meta.contains("postgresql") && meta.contains("Europe/Paris"), "{meta}");
    assert!(meta.contains(&(today - Days::days(29)).to_string()) && meta.contains(&today.to_string()), "{meta}");

    // Revenue per store per day: a uPlot chart with a line per store in the last 30 days, and
    // the figures beside it.
    assert_eq!(browser.js("return document.querySelectorAll('#history-revenue .uplot canvas').length").await, 1);
    assert_eq!(browser.js("return document.getElementById('history-revenue').dataset.days").await, "30");
    let legend = browser
        .js("return [...document.querySelectorAll('#history-revenue .legend tbody tr')].map(r => \
               [r.dataset.store, r.querySelector('.revenue').textContent, r.querySelector('.orders').textContent, r.querySelector('.days').textContent])")
        .await;
    assert_eq!(
        legend,
        json!([["central", "$12.30", "3", "1"], ["downtown", "$10.00", "4", "1"], ["uptown", "$15.00", "5", "1"]]),
        "southend's orders are 40 days old"
    );

    // Drink mix per week: 12 weeks, each column's segments as the orders say.
    let weeks = browser
        .js("return [...document.querySelectorAll('#history-mix .week')].map(w => [w.dataset.week, \
               Object.fromEntries([...w.querySelectorAll('.segment')].map(s => [s.dataset.drink, Number(s.dataset.orders)]))])")
        .await;
    let weeks = weeks.as_array().unwrap();
    assert_eq!(weeks.len(), 12, "{weeks:?}");
    assert_eq!(weeks[11][0], monday(today).to_string());
    let mut expected: BTreeMap<String, BTreeMap<&str, i64>> = BTreeMap::new();
    for (_, drink, _, _, ts) in &orders {
        let date = DateTime::parse_from_rfc3339(ts).unwrap().with_timezone(&tz).date_naive();
        *expected.entry(monday(date).to_string()).or_default().entry(drink).or_default() += 1;
    }
    for week in weeks {
        let want = expected.get(week[0].as_str().unwrap()).map(|m| json!(m)).unwrap_or(json!({}));
        assert_eq!(week[1], want, "week of {}", week[0]);
    }
    let mix = browser
        .js("return [...document.querySelectorAll('#history-mix .legend tbody tr')].map(r => \
               [r.dataset.drink, r.querySelector('.orders').textContent, r.querySelector('.share').textContent])")
        .await;
    assert_eq!(mix, json!([["americano", "4", "28.6 %"], ["cappuccino", "3", "21.4 %"], ["latte", "7", "50.0 %"]]));

    // The heat map: 7 × 24 cells, counts where the orders' local weekday and hour are.
    assert_eq!(browser.js("return document.querySelectorAll('#history-heat td.cell').length").await, 168);
    let cells = browser
        .js("return [...document.querySelectorAll('#history-heat td.cell')].filter(c => c.dataset.orders !== '0') \
               .map(c => [c.dataset.weekday, Number(c.dataset.hour), Number(c.dataset.orders), c.textContent])")
        .await;
    let names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let mut heat: BTreeMap<(usize, u32), i64> = BTreeMap::new();
    for (_, _, _, _, ts) in &orders {
        let local = DateTime::parse_from_rfc3339(ts).unwrap().with_timezone(&tz);
        if local.date_naive() >= today - Days::days(27) {
            *heat.entry((local.weekday().num_days_from_monday() as usize, local.hour())).or_default() += 1;
        }
    }
    let want: Vec<Value> = heat.iter().map(|(&(d, h), &n)| json!([names[d], h, n, n.to_string()])).collect();
    assert_eq!(cells, json!(want), "d-1 and d-8 share a weekday and an hour: {heat:?}");

    browser.screenshot(&target_dir().join("dashboard-history.png")).await;
    // Back to the live view.
    browser.client.find(Locator::Css("#tab-live")).await.unwrap().click().await.unwrap();
    assert_eq!(browser.js("return document.body.dataset.tab").await, "live");
    assert_eq!(browser.js("return document.getElementById('versions').hidden").await, false);
    browser.close().await;
    app.stop().await;
}

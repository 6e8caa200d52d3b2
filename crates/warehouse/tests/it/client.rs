//! The ClickHouse client against the shared server: quoting, typed errors, inserts and queries.

use coffee_testkit::free_port;
use coffee_warehouse::{
    ClickHouseConfig,
    clickhouse::{ClickHouse, ClickHouseError, quote},
    schema::{self, ORDERS, orders_final},
};
use serde_json::json;

use crate::support::{ChDatabase, clickhouse_url};

fn id() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

#[tokio::test]
async fn quoted_strings_come_back_as_they_went_in() {
    let ch = ChDatabase::new(&clickhouse_url(), &id());
    let nasty = [
        "plain",
        "",
        "o'clock",
        r"back\slash",
        r"\'",
        "'; DROP DATABASE system; --",
        "tab\tnew\nline\rcr",
        "nul\0byte",
        "café ☕",
        "\u{8}\u{c}",
    ];
    #[derive(serde::Deserialize)]
    struct Row {
        s: String,
    }
    for s in nasty {
        let rows: Vec<Row> = ch.client.query_json(&format!("SELECT {} AS s", quote(s))).await.unwrap();
        assert_eq!(rows[0].s, s, "{s:?} through quote()");
    }
}

#[tokio::test]
async fn errors_say_whether_a_retry_can_help() {
    let ch = ChDatabase::new(&clickhouse_url(), &id());
    ch.client.ping().await.expect("the shared ClickHouse answers /ping (scripts/tools/clickhouse.sh starts it)");

    let unknown = ch.client.execute(&format!("SELECT * FROM {}", ch.client.table("nope"))).await.unwrap_err();
    assert!(matches!(unknown, ClickHouseError::Server { code: Some(81 | 60), .. }), "{unknown:?}");
    assert!(!unknown.is_retriable(), "an unknown database or table stays unknown: {unknown}");
    let syntax = ch.client.execute("SELEC 1").await.unwrap_err();
    assert_eq!(syntax.code(), Some(62), "{syntax}");
    assert!(!syntax.is_retriable());

    let nobody = ClickHouse::new(&ClickHouseConfig { url: format!("http://127.0.0.1:{}", free_port()), database: "x".into() }).unwrap();
    let refused = nobody.ping().await.unwrap_err();
    assert!(matches!(refused, ClickHouseError::Transport { .. }), "{refused:?}");
    assert!(refused.is_retriable(), "a server that does not answer may answer later");
}

#[tokio::test]
async fn the_schema_is_idempotent_and_final_collapses_replays() {
    let ch = ChDatabase::new(&clickhouse_url(), &id());
    schema::ensure_schema(&ch.client).await.unwrap();
    schema::ensure_schema(&ch.client).await.expect("a second ensure_schema is a no-op");
    let version = ch.client.version().await.unwrap();
    assert!(version.major >= 18, "{version}");

    let row = json!({"order_id": "0195c3a4-0000-7000-8000-000000000001", "version": "v2", "store": "o'clock", "drink": "latte",
                     "price_cents": 450, "ordered_at": "2025-01-15 10:00:00", "accepted_at": "2025-01-15 10:00:01"});
    // The same order three times, in two inserts: a replay.
    assert_eq!(ch.client.insert_json_rows(ORDERS, [&row, &row]).await.unwrap(), 2);
    ch.client.insert_json_rows(ORDERS, [&row]).await.unwrap();
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Totals {
        n: u64,
        cents: i64,
        store: String,
    }
    let totals: Vec<Totals> = ch
        .client
        .query_json(&format!("SELECT count() AS n, sum(price_cents) AS cents, any(store) AS store FROM {}", orders_final(&ch.client)))
        .await
        .unwrap();
    assert_eq!(totals, vec![Totals { n: 1, cents: 450, store: "o'clock".into() }]);
    let parts = schema::partitions(&ch.client).await.unwrap();
    assert_eq!(parts, vec![202501], "partitioned by month");
}

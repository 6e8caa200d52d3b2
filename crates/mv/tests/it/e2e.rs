//! End to end at small scale: PostgreSQL snapshot + broker topics → the
//! served engine → HTTP and WebSocket; then a restart rebuilds the same
//! state from PostgreSQL and the topics.

use super::common::{Reference, TestDb, delete_topics, require_broker, unique};
use coffee_mv::api::Health;
use coffee_mv::config::{Services, SourceArgs};
use coffee_mv::dataset::DataSet;
use coffee_mv::kafka;
use coffee_mv::lazy::Overview;
use coffee_mv::model::{Holding, PositionEvent, Price, PriceUpdate};
use coffee_mv::pg;
use coffee_mv::serve;
use futures::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(src: &SourceArgs) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    let src = src.clone();
    let task = tokio::spawn(async move {
        serve::serve(&src, listener, async move {
            let _ = rx.await;
        })
        .await
    });
    Running { addr, stop, task }
}

impl Running {
    /// Polls health until the rebuild finished and the API answers.
    async fn health(&self) -> Health {
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if self.task.is_finished() {
                panic!("server exited during startup");
            }
            if let Ok(r) = http.get(format!("http://{}/api/health", self.addr)).send().await {
                return r.json().await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("server not ready within 30 s");
    }

    async fn overview(&self, a: u32) -> Overview {
        reqwest::get(format!("http://{}/api/accounts/{a}/overview", self.addr)).await.unwrap().json().await.unwrap()
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

async fn next_overview(ws: &mut Ws) -> Overview {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(15), ws.next()).await.expect("push within 15 s").unwrap().unwrap();
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

async fn no_push(ws: &mut Ws, within: Duration) {
    if let Ok(Some(Ok(Message::Text(t)))) = tokio::time::timeout(within, ws.next()).await {
        panic!("unexpected push: {t}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_to_websocket_and_restart() {
    let brokers = require_broker();
    let db = TestDb::new().await;
    let ds = DataSet { seed: 5, accounts: 3, instruments: 4 };
    let mut client = pg::connect(&db.url).await.unwrap();
    pg::copy_in_dataset(&mut client, &ds).await.unwrap();
    let src = SourceArgs {
        services: Services { database_url: db.url.clone(), brokers: brokers.clone() },
        price_topic: unique("mv.e2e.prices"),
        position_topic: unique("mv.e2e.positions"),
        partitions: 4,
    };
    src.ensure_topics().await.unwrap();
    let producer = kafka::producer(&brokers).unwrap();
    let mut reference = Reference::default();
    ds.holdings().for_each(|h| reference.apply(&PositionEvent::Holding(h)));
    ds.orders().for_each(|o| reference.apply(&PositionEvent::Order(o)));
    for u in ds.initial_prices() {
        kafka::send_price(&producer, &src.price_topic, &u).await.unwrap();
        reference.price(&u);
    }

    let server = start(&src).await;
    let h = server.health().await;
    assert_eq!(h.price_version, 4);
    assert_eq!(h.rebuild.pg_rows, 12 + 24);
    assert_eq!(h.rebuild.topic_events, 4);

    let o = server.overview(1).await;
    assert_eq!(o.totals(), reference.totals(1));
    assert_eq!(o.price_version, 4);

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws/accounts?ids=0,1", server.addr)).await.unwrap();
    let mut first = [next_overview(&mut ws).await, next_overview(&mut ws).await];
    first.sort_by_key(|o| o.account);
    assert_eq!(first[0].totals(), reference.totals(0));
    assert_eq!(first[1].totals(), reference.totals(1));
    assert_eq!(server.health().await.subscriptions, 1);

    // A price through the broker reaches both subscribed accounts.
    let u = PriceUpdate { instrument: 2, price: Price(ds.initial_price(2).0 + 12_345), ts_ms: 1_000 };
    kafka::send_price(&producer, &src.price_topic, &u).await.unwrap();
    reference.price(&u);
    let mut pushed = [next_overview(&mut ws).await, next_overview(&mut ws).await];
    pushed.sort_by_key(|o| o.account);
    for (k, o) in pushed.iter().enumerate() {
        assert_eq!(o.account, k as u32);
        assert_eq!(o.price_version, 5);
        assert_eq!(o.price_ts_ms, 1_000);
        assert_eq!(o.totals(), reference.totals(k as u32));
    }

    // Account 1 alone takes up instrument 9; its price concerns account 1 only.
    let ev = PositionEvent::Holding(Holding { account: 1, instrument: 9, qty: 40 });
    pg::write_position(&client, &ev).await.unwrap();
    kafka::send_position(&producer, &src.position_topic, &ev).await.unwrap();
    reference.apply(&ev);
    let o = next_overview(&mut ws).await;
    assert_eq!((o.account, o.unpriced), (1, 1));
    no_push(&mut ws, Duration::from_millis(300)).await;
    let u9 = PriceUpdate { instrument: 9, price: Price(25_000), ts_ms: 2_000 };
    kafka::send_price(&producer, &src.price_topic, &u9).await.unwrap();
    reference.price(&u9);
    let o = next_overview(&mut ws).await;
    assert_eq!((o.account, o.price_version, o.unpriced), (1, 6, 0));
    assert_eq!(o.totals(), reference.totals(1));
    no_push(&mut ws, Duration::from_millis(300)).await;

    // Leaving drops the subscription.
    ws.send(Message::Close(None)).await.unwrap();
    drop(ws);
    let mut subs = 1;
    for _ in 0..50 {
        subs = server.health().await.subscriptions;
        if subs == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(subs, 0, "subscription dropped after the client left");
    let before = server.overview(1).await;
    server.stop().await;

    // Restart: PostgreSQL + both topics rebuild the same valuation.
    let server = start(&src).await;
    let h = server.health().await;
    assert_eq!(h.rebuild.topic_events, 4 + 2 + 1);
    assert!(h.rebuild.total_ms >= h.rebuild.pg_load_ms);
    let after = server.overview(1).await;
    assert_eq!(after.totals(), before.totals());
    assert_eq!(after.totals(), reference.totals(1));
    assert_eq!(after.price_version, 6);
    server.stop().await;

    delete_topics(&brokers, &[&src.price_topic, &src.position_topic]).await;
}

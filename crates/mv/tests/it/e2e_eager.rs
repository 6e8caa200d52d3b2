//! Strategy A as a service through the broker: prices and position events
//! in, exactly one correct account change per affected account out.

use super::common::{Reference, TestDb, delete_topics, require_broker, unique};
use coffee_mv::config::{EagerArgs, Services, SourceArgs};
use coffee_mv::dataset::DataSet;
use coffee_mv::eager::AccountChange;
use coffee_mv::eager_service::serve_eager;
use coffee_mv::kafka::{self, TopicReplay};
use coffee_mv::model::{Holding, PositionEvent, Price, PriceUpdate};
use coffee_mv::pg;
use std::time::Duration;

async fn next_change(out: &mut TopicReplay) -> AccountChange {
    let p = tokio::time::timeout(Duration::from_secs(15), out.next()).await.expect("account change within 15 s");
    serde_json::from_slice(&p).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eager_service_emits_one_change_per_account() {
    let brokers = require_broker();
    let db = TestDb::new().await;
    let ds = DataSet { seed: 9, accounts: 3, instruments: 4 };
    let mut client = pg::connect(&db.url).await.unwrap();
    pg::copy_in_dataset(&mut client, &ds).await.unwrap();
    let args = EagerArgs {
        sources: SourceArgs {
            services: Services { database_url: db.url.clone(), brokers: brokers.clone() },
            price_topic: unique("mv.e2ea.prices"),
            position_topic: unique("mv.e2ea.positions"),
            partitions: 4,
        },
        output_topic: unique("mv.e2ea.changes"),
    };
    args.sources.ensure_topics().await.unwrap();
    kafka::create_topics(&brokers, &[&args.output_topic], 4).await.unwrap();
    let producer = kafka::producer(&brokers).unwrap();
    let mut r = Reference::default();
    ds.holdings().for_each(|h| r.apply(&PositionEvent::Holding(h)));
    ds.orders().for_each(|o| r.apply(&PositionEvent::Order(o)));
    for u in ds.initial_prices() {
        kafka::send_price(&producer, &args.sources.price_topic, &u).await.unwrap();
        r.price(&u);
    }

    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready) = tokio::sync::oneshot::channel::<()>();
    let a2 = args.clone();
    let service = tokio::spawn(async move {
        serve_eager(
            &a2,
            move || {
                let _ = ready_tx.send(());
            },
            async move {
                let _ = rx.await;
            },
        )
        .await
    });
    tokio::time::timeout(Duration::from_secs(30), ready).await.expect("rebuilt within 30 s").expect("service started");
    let mut out = TopicReplay::open(&brokers, &args.output_topic).await.unwrap();

    // The rebuild emits nothing; the first live price emits one change per
    // account (all three hold instrument 3).
    let u = PriceUpdate { instrument: 3, price: Price(ds.initial_price(3).0 * 2), ts_ms: 5 };
    kafka::send_price(&producer, &args.sources.price_topic, &u).await.unwrap();
    r.price(&u);
    let mut got: Vec<AccountChange> = vec![];
    for _ in 0..3 {
        got.push(next_change(&mut out).await);
    }
    got.sort_by_key(|c| c.account);
    for (k, c) in got.iter().enumerate() {
        assert_eq!(c.account, k as u32);
        assert_eq!(c.version, 5);
        assert_eq!(c.totals, r.totals(k as u32));
    }

    // A holding change touches one account.
    let ev = PositionEvent::Holding(Holding { account: 2, instrument: 0, qty: 0 });
    kafka::send_position(&producer, &args.sources.position_topic, &ev).await.unwrap();
    r.apply(&ev);
    let c = next_change(&mut out).await;
    assert_eq!((c.account, c.totals), (2, r.totals(2)));
    assert!(tokio::time::timeout(Duration::from_millis(500), out.next()).await.is_err(), "no other change");

    stop.send(()).unwrap();
    service.await.unwrap().unwrap();
    delete_topics(&brokers, &[&args.sources.price_topic, &args.sources.position_topic, &args.output_topic]).await;
}

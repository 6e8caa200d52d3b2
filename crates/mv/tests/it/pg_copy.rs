//! PostgreSQL COPY round trip: a data set copied in and loaded back out
//! builds exactly the state the in-memory generator builds.

use super::common::TestDb;
use coffee_mv::dataset::DataSet;
use coffee_mv::eager::EagerEngine;
use coffee_mv::lazy::LazyEngine;
use coffee_mv::model::PositionEvent;
use coffee_mv::pg;

#[tokio::test]
async fn copy_in_then_copy_out_rebuilds_the_same_state() {
    let db = TestDb::new().await;
    let ds = DataSet { seed: 3, accounts: 7, instruments: 40 };
    let mut client = pg::connect(&db.url).await.unwrap();
    pg::copy_in_dataset(&mut client, &ds).await.unwrap();
    let sizes = pg::sizes(&client).await.unwrap();
    assert_eq!((sizes.accounts, sizes.instruments, sizes.holdings, sizes.max_order_id), (7, 40, 280, 560));

    let mut from_pg = EagerEngine::with_capacity(sizes.instruments, sizes.accounts, sizes.accounts, sizes.max_order_id);
    let lazy = LazyEngine::default();
    let rows = pg::load_positions(&client, |ev| {
        from_pg.load(ev)?;
        lazy.load(ev)?;
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(rows, 280 + 560);

    let mut from_mem = EagerEngine::new();
    ds.holdings().for_each(|h| from_mem.load(&PositionEvent::Holding(h)).unwrap());
    ds.orders().for_each(|o| from_mem.load(&PositionEvent::Order(o)).unwrap());
    for u in ds.initial_prices() {
        from_pg.apply_price(&u, |_| {});
        from_mem.apply_price(&u, |_| {});
        lazy.apply_price(&u);
    }
    assert_eq!(from_pg.live_orders(), 560);
    for a in 0..ds.accounts {
        assert_eq!(from_pg.totals(a), from_mem.totals(a));
        assert_eq!(lazy.overview(a).unwrap().totals(), from_mem.totals(a));
        assert_ne!(from_mem.totals(a).holdings_mv.0, 0);
    }

    // Changes written the upstream way land in the next COPY.
    pg::write_position(&client, &PositionEvent::OrderCancel { id: 0 }).await.unwrap();
    let n = pg::load_positions(&client, |_| Ok(())).await.unwrap();
    assert_eq!(n, 280 + 559);
}

#[test]
fn interleaved_positions_are_the_same_rows() {
    let ds = DataSet { seed: 4, accounts: 3, instruments: 5 };
    let mut a: Vec<PositionEvent> = ds.positions().collect();
    let mut b: Vec<PositionEvent> = ds.holdings().map(PositionEvent::Holding).chain(ds.orders().map(PositionEvent::Order)).collect();
    let key = |e: &PositionEvent| format!("{e:?}");
    a.sort_by_key(key);
    b.sort_by_key(key);
    assert_eq!(a, b);
}

//! Valuation on hand-computed cases, through the pure functions and both
//! engines.

use coffee_mv::eager::{AccountChange, EagerEngine};
use coffee_mv::lazy::LazyEngine;
use coffee_mv::model::{Holding, Money, Order, PositionEvent, Price, PriceUpdate, Side};
use coffee_mv::valuation::{Totals, holding_mv, order_mv, revalue_delta};

fn m(s: &str) -> Money {
    s.parse().unwrap()
}

#[test]
fn money_is_exact_decimal() {
    assert_eq!(Money(1_502_500).to_string(), "150.2500");
    assert_eq!(Money(-120_500).to_string(), "-12.0500");
    assert_eq!(Money(-5).to_string(), "-0.0005");
    assert_eq!(m("-12.05"), Money(-120_500));
    assert_eq!(m("0.0001"), Money(1));
    assert_eq!(m("7"), Money(70_000));
    assert!("1.00001".parse::<Money>().is_err());
    // Beyond i64: 1e9 units at 10,000,000.0000 each.
    let big = holding_mv(1_000_000_000, Price(100_000_000_000));
    assert_eq!(big.to_string(), "10000000000000000.0000");
    assert_eq!(serde_json::to_string(&big).unwrap(), "\"10000000000000000.0000\"");
}

#[test]
fn position_values_by_hand() {
    // 100 × 150.25 = 15,025.00
    assert_eq!(holding_mv(100, Price(1_502_500)), m("15025"));
    // Buy 10 @ 150.25 = +1,502.50; sell 4 @ 0.0001 = −0.0004
    assert_eq!(order_mv(10, Price(1_502_500)), m("1502.5"));
    let sell = Order { id: 1, account: 1, instrument: 1, side: Side::Sell, qty: 4, limit_price: Price(5) };
    assert_eq!(sell.signed_qty(), -4);
    assert_eq!(order_mv(sell.signed_qty(), Price(1)), m("-0.0004"));
    // 100 shares from 150.25 to 149.00: −125.00
    assert_eq!(revalue_delta(100, Price(1_502_500), Price(1_490_000)), m("-125"));
}

fn account_seven() -> Vec<PositionEvent> {
    vec![
        PositionEvent::Holding(Holding { account: 7, instrument: 1, qty: 100 }),
        PositionEvent::Holding(Holding { account: 7, instrument: 2, qty: 3 }),
        PositionEvent::Order(Order { id: 10, account: 7, instrument: 1, side: Side::Buy, qty: 10, limit_price: Price(1_500_000) }),
        PositionEvent::Order(Order { id: 11, account: 7, instrument: 2, side: Side::Sell, qty: 4, limit_price: Price(2) }),
        // Another account in instrument 1 only.
        PositionEvent::Holding(Holding { account: 3, instrument: 1, qty: 2 }),
    ]
}

fn price(i: u32, p: i64) -> PriceUpdate {
    PriceUpdate { instrument: i, price: Price(p), ts_ms: 1_700_000_000_000 }
}

#[test]
fn both_engines_value_an_account_by_hand() {
    let mut a = EagerEngine::new();
    let b = LazyEngine::default();
    for ev in account_seven() {
        a.load(&ev).unwrap();
        b.load(&ev).unwrap();
    }
    for u in [price(1, 1_502_500), price(2, 1)] {
        a.apply_price(&u, |_| {});
        b.apply_price(&u);
    }
    // Holdings 15,025.0000 + 0.0003; orders 1,502.5000 − 0.0004.
    let want = Totals { holdings_mv: m("15025.0003"), orders_mv: m("1502.4996") };
    assert_eq!(a.totals(7), want);
    let o = b.overview(7).unwrap();
    assert_eq!(o.totals(), want);
    assert_eq!(o.total_mv, m("16527.4999"));
    assert_eq!(o.price_version, 2);
    assert_eq!(o.unpriced, 0);

    // Instrument 1 to 149.00: one message per affected account (7 and 3),
    // carrying the new totals.
    let mut out: Vec<AccountChange> = vec![];
    a.apply_price(&price(1, 1_490_000), |c| out.push(c));
    out.sort_by_key(|c| c.account);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].account, 3);
    assert_eq!(out[0].totals.holdings_mv, m("298"));
    assert_eq!(out[1].account, 7);
    assert_eq!(out[1].version, 3);
    assert_eq!(out[1].totals, Totals { holdings_mv: m("14900.0003"), orders_mv: m("1489.9996") });
    b.apply_price(&price(1, 1_490_000));
    assert_eq!(b.overview(7).unwrap().total_mv, m("16389.9999"));

    // Same price again: nothing changed, nothing emitted.
    out.clear();
    a.apply_price(&price(1, 1_490_000), |c| out.push(c));
    assert!(out.is_empty());

    // Cancel the buy: orders drop by 10 × 149 = 1,490.
    a.apply_position(&PositionEvent::OrderCancel { id: 10 }, |c| out.push(c)).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].totals.orders_mv, m("-0.0004"));
    // Cancelling twice is a no-op.
    out.clear();
    a.apply_position(&PositionEvent::OrderCancel { id: 10 }, |c| out.push(c)).unwrap();
    assert!(out.is_empty());
}

#[test]
fn unpriced_positions_count_as_zero_and_are_flagged() {
    let b = LazyEngine::default();
    for ev in account_seven() {
        b.load(&ev).unwrap();
    }
    b.apply_price(&price(2, 10_000));
    let o = b.overview(7).unwrap();
    assert_eq!(o.unpriced, 1);
    assert_eq!(o.holdings_mv, m("3"));
    assert_eq!(o.orders_mv, m("-4"));
    assert!(b.overview(99).is_none());
}

#[test]
fn order_moving_between_accounts_emits_for_both() {
    let mut a = EagerEngine::new();
    a.apply_price(&price(1, 20_000), |_| {});
    let o = Order { id: 5, account: 1, instrument: 1, side: Side::Buy, qty: 3, limit_price: Price(1) };
    a.load(&PositionEvent::Order(o)).unwrap();
    assert_eq!(a.totals(1).orders_mv, m("6"));
    let mut out = vec![];
    a.apply_position(&PositionEvent::Order(Order { account: 2, side: Side::Sell, ..o }), |c| out.push(c)).unwrap();
    out.sort_by_key(|c| c.account);
    assert_eq!(out.iter().map(|c| (c.account, c.totals.orders_mv)).collect::<Vec<_>>(), vec![(1, m("0")), (2, m("-6"))]);
}

//! Property tests on the pure engines: after any sequence of price, holding
//! and order updates, strategy A's incremental totals equal a full
//! recomputation (its own and a naive reference), every message it emitted
//! was right when emitted, and strategy B agrees on every account.

use super::common::Reference;
use coffee_mv::eager::{AccountChange, EagerEngine};
use coffee_mv::lazy::LazyEngine;
use coffee_mv::model::{Holding, Order, PositionEvent, Price, PriceUpdate, Side};
use proptest::prelude::*;
use std::collections::HashSet;

#[derive(Clone, Debug)]
enum Op {
    Price(PriceUpdate),
    Pos(PositionEvent),
}

fn op() -> impl Strategy<Value = Op> {
    let acct = 0u32..6;
    let ins = 0u32..5;
    prop_oneof![
        3 => (ins.clone(), 0i64..2_000_000).prop_map(|(i, p)| Op::Price(PriceUpdate { instrument: i, price: Price(p), ts_ms: 0 })),
        2 => (acct.clone(), ins.clone(), -50i64..1_000)
            .prop_map(|(a, i, q)| Op::Pos(PositionEvent::Holding(Holding { account: a, instrument: i, qty: q }))),
        2 => (0u64..12, acct, ins, any::<bool>(), 0i64..500, 1i64..2_000_000).prop_map(|(id, a, i, buy, q, l)| {
            Op::Pos(PositionEvent::Order(Order {
                id,
                account: a,
                instrument: i,
                side: if buy { Side::Buy } else { Side::Sell },
                qty: q,
                limit_price: Price(l),
            }))
        }),
        1 => (0u64..12).prop_map(|id| Op::Pos(PositionEvent::OrderCancel { id })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn incremental_equals_recomputation_and_strategies_agree(ops in prop::collection::vec(op(), 0..120)) {
        let mut a = EagerEngine::new();
        let b = LazyEngine::default();
        let mut r = Reference::default();
        // What a WebSocket subscriber holds per account, advanced per update.
        let mut subs: std::collections::BTreeMap<u32, coffee_mv::lazy::Overview> = Default::default();
        for op in &ops {
            let mut out: Vec<AccountChange> = vec![];
            match op {
                Op::Price(u) => {
                    a.apply_price(u, |c| out.push(c));
                    b.apply_price(u);
                    r.price(u);
                }
                Op::Pos(ev) => {
                    a.apply_position(ev, |c| out.push(c)).unwrap();
                    b.apply_position(ev).unwrap();
                    r.apply(ev);
                }
            }
            let snap = b.prices().current();
            for acct in 0..6u32 {
                let full = b.overview_at(acct, &snap);
                let adv = match subs.get(&acct) {
                    Some(prev) => b.advance(prev, &snap),
                    None => full.clone(),
                };
                prop_assert_eq!(&adv, &full, "advanced overview, account {}", acct);
                if let Some(o) = adv {
                    subs.insert(acct, o);
                }
            }
            // One message per account per update, each correct at its version.
            let mut seen = HashSet::new();
            for c in &out {
                prop_assert!(seen.insert(c.account), "two messages for account {}", c.account);
                prop_assert_eq!(c.totals, r.totals(c.account));
                prop_assert_eq!(c.version, a.version());
            }
        }
        let full = a.recompute_all();
        let snap = b.prices().current();
        prop_assert_eq!(snap.version, a.version());
        for acct in r.accounts() {
            let want = r.totals(acct);
            prop_assert_eq!(a.totals(acct), want, "A incremental, account {}", acct);
            prop_assert_eq!(full[acct as usize], want, "A recomputed, account {}", acct);
            let o = b.overview_at(acct, &snap).unwrap();
            prop_assert_eq!(o.totals(), want, "B, account {}", acct);
            prop_assert_eq!(o.total_mv, want.total());
        }
    }

    /// Accounts whose totals did not move get no message.
    #[test]
    fn unchanged_accounts_are_not_emitted(ops in prop::collection::vec(op(), 0..60), u in (0u32..5, 0i64..2_000_000)) {
        let mut a = EagerEngine::new();
        let mut r = Reference::default();
        for op in &ops {
            match op {
                Op::Price(p) => { a.apply_price(p, |_| {}); r.price(p); }
                Op::Pos(ev) => { a.apply_position(ev, |_| {}).unwrap(); r.apply(ev); }
            }
        }
        let before: Vec<_> = r.accounts().into_iter().map(|x| (x, r.totals(x))).collect();
        let upd = PriceUpdate { instrument: u.0, price: Price(u.1), ts_ms: 0 };
        let mut out = vec![];
        a.apply_price(&upd, |c| out.push(c.account));
        r.price(&upd);
        for (x, t) in before {
            let changed = r.totals(x) != t;
            prop_assert_eq!(out.contains(&x), changed, "account {}", x);
        }
    }
}

//! Property tests of the fold and the exactly-once ledger.

use chrono::{DateTime, TimeZone, Utc};
use coffee_core::{Applied, Catalog, Cents, Ledger, MetricsDelta, Order};
use coffee_testkit::arbitrary::{orders as orders_strategy, split};
use proptest::prelude::*;
use uuid::Uuid;

proptest! {
    #[test]
    fn batching_does_not_change_the_result(
        orders in orders_strategy(120),
        cuts in proptest::collection::vec(0usize..120, 0..10),
    ) {
        let whole = MetricsDelta::from_orders(&orders);
        let mut merged = MetricsDelta::default();
        for batch in split(&orders, cuts) {
            merged.merge(&MetricsDelta::from_orders(&batch));
        }
        prop_assert_eq!(merged, whole);
    }

    /// Batches from two sources, applied with replays (a crash between commit and ack makes
    /// the writer send the same batch again) and deliveries out of turn, count every order once.
    #[test]
    fn replayed_batches_count_once(
        orders in orders_strategy(120).prop_filter("non-empty", |v| !v.is_empty()),
        cuts in proptest::collection::vec(0usize..120, 0..12),
        replays in proptest::collection::vec((0usize..24, any::<bool>()), 0..12),
    ) {
        let batches = split(&orders, cuts);
        // Batch i belongs to source (i % 2) and carries that source's next sequence number.
        let mut seqs = [0u64; 2];
        let mut plan = Vec::new();
        for (i, b) in batches.iter().enumerate() {
            let src = i % 2;
            seqs[src] += 1;
            plan.push((src, seqs[src], MetricsDelta::from_orders(b)));
        }
        let mut ledger = Ledger::default();
        let mut applied_upto = 0;
        for (step, (src, seq, delta)) in plan.iter().enumerate() {
            prop_assert_eq!(ledger.apply(&format!("s{src}"), seq - 1, *seq, delta), Applied::Applied);
            applied_upto = step;
            // Replay some earlier batch, or try one from the future (which must be refused).
            for (pick, future) in &replays {
                if *pick % plan.len() == step {
                    let (rsrc, rseq, rdelta) = &plan[*pick % (step + 1)];
                    let res = if *future {
                        // A delta that skips one: refused as a gap, never applied.
                        ledger.apply(&format!("s{rsrc}"), seqs[*rsrc] + 1, seqs[*rsrc] + 2, rdelta)
                    } else {
                        ledger.apply(&format!("s{rsrc}"), rseq - 1, *rseq, rdelta)
                    };
                    prop_assert_ne!(res, Applied::Applied);
                }
            }
        }
        prop_assert_eq!(applied_upto + 1, plan.len());
        prop_assert_eq!(ledger.metrics, MetricsDelta::from_orders(&orders));
    }
}

#[test]
fn recent_keeps_the_newest_twenty() {
    let c = Catalog::default();
    let orders: Vec<Order> = (0..30)
        .map(|i| Order {
            order_id: Uuid::from_u128(i + 1),
            drink: c.drinks[0].clone(),
            store: c.stores[0].clone(),
            price: Cents(100),
            ordered_at: Utc.timestamp_opt(1_736_935_200, 0).unwrap(),
            accepted_at: DateTime::<Utc>::from_timestamp_millis(1_767_225_600_000 + i as i64).unwrap(),
        })
        .collect();
    let d = MetricsDelta::from_orders(&orders);
    assert_eq!(d.recent.len(), 20);
    assert_eq!(d.recent[0].order_id, Uuid::from_u128(30));
    assert_eq!(d.total.count, 30);
    assert_eq!(d.hours.len(), 1);
}

//! proptest strategies for the domain, shared by the core's property tests and the store's
//! contract test.

use chrono::{DateTime, TimeZone, Utc};
use coffee_core::{Catalog, Cents, Order};
use proptest::prelude::*;
use uuid::Uuid;

/// Orders with distinct ids, as PostgreSQL's primary key guarantees downstream.
pub fn orders(max: usize) -> impl Strategy<Value = Vec<Order>> {
    proptest::collection::vec(order(), 0..max).prop_map(|mut v| {
        for (i, o) in v.iter_mut().enumerate() {
            o.order_id = Uuid::from_u128((o.order_id.as_u128() << 16) | i as u128);
        }
        v
    })
}

pub fn order() -> impl Strategy<Value = Order> {
    let c = Catalog::default();
    (any::<u128>(), 0..c.drinks.len(), 0..c.stores.len(), 1i64..=100_000, 0i64..200_000, 0i64..5_000).prop_map(
        move |(id, d, s, cents, ordered_secs, accepted_ms)| Order {
            order_id: Uuid::from_u128(id | 1),
            drink: c.drinks[d].clone(),
            store: c.stores[s].clone(),
            price: Cents(cents),
            ordered_at: Utc.timestamp_opt(1_736_935_200 + ordered_secs, 0).unwrap(),
            accepted_at: DateTime::<Utc>::from_timestamp_millis(1_767_225_600_000 + accepted_ms).unwrap(),
        },
    )
}

/// Splits `orders` at the given cut points into consecutive batches.
pub fn split(orders: &[Order], mut cuts: Vec<usize>) -> Vec<Vec<Order>> {
    cuts.retain(|&c| c > 0 && c < orders.len());
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts.into_iter().chain(std::iter::once(orders.len())) {
        out.push(orders[start..c].to_vec());
        start = c;
    }
    out
}

//! The contract between the exactly-once model and the real projection.
//!
//! The same sequences of deltas (in order, replayed, reordered, with gaps, from several
//! writers, with fences that move by one like an outbox seq or jump like the aggregator's
//! transaction ids) go through the pure model, [`coffee_core::Ledger`], and through the Lua
//! script of [`coffee_store::Projection`] on a real Redis. Every step must answer the same
//! (applied, duplicate, gap), and both must end with the same metrics and fences.

use coffee_core::{Ledger, MetricsDelta, Version};
use coffee_store::Projection;
use coffee_testkit::{
    REDIS,
    arbitrary::{orders, split},
};
use proptest::prelude::*;

/// Per writer, its deltas: delta `i` expects the fence at `bounds[i]` and leaves it at
/// `bounds[i + 1]`.
struct Writer {
    name: String,
    bounds: Vec<u64>,
    deltas: Vec<MetricsDelta>,
}

fn writers(orders: &[coffee_core::Order], cuts: Vec<usize>, steps: &[u64], count: usize) -> Vec<Writer> {
    let mut ws: Vec<Writer> = (0..count).map(|i| Writer { name: format!("v2:w{i}"), bounds: vec![0], deltas: Vec::new() }).collect();
    for (i, batch) in split(orders, cuts).iter().enumerate() {
        let w = &mut ws[i % count];
        let step = steps[i % steps.len()].max(1);
        let last = *w.bounds.last().expect("starts at 0");
        w.bounds.push(last + step);
        w.deltas.push(MetricsDelta::from_orders(batch));
    }
    ws
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_script_obeys_the_model(
        orders in orders(60),
        cuts in proptest::collection::vec(0usize..60, 0..10),
        steps in proptest::collection::vec(1u64..4, 1..4),
        count in 1usize..4,
        // Which (writer, delta) is offered at each step: in order, again, early, or late.
        offers in proptest::collection::vec((0usize..4, 0usize..12), 0..40),
    ) {
        let ws = writers(&orders, cuts, &steps, count);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let conn = coffee_store::redis::connect(REDIS).await.expect("Redis must be running on 127.0.0.1:6379 (scripts/test starts it)");
            let namespace = format!("contract{}:", uuid::Uuid::new_v4().simple());
            let projection = Projection::new(conn.clone(), &namespace);
            let mut model = Ledger::default();
            let mut result = Ok(());
            // The offers, then every delta in order, so that most runs end with everything applied.
            let in_order = ws.iter().enumerate().flat_map(|(w, writer)| (0..writer.deltas.len()).map(move |d| (w, d)));
            for (w, d) in offers.iter().copied().chain(in_order) {
                let Some(writer) = ws.get(w % ws.len()) else { continue };
                let Some(delta) = writer.deltas.get(d) else { continue };
                let (prev, next) = (writer.bounds[d], writer.bounds[d + 1]);
                let expected = model.apply(&writer.name, prev, next, delta);
                let real = projection.apply_delta(Version::V2, &writer.name, prev, next, delta).await.expect("script runs");
                if real != expected {
                    result = Err(format!("{} ({prev}→{next}): script {real:?}, model {expected:?}", writer.name));
                    break;
                }
            }
            if result.is_ok() {
                let metrics = projection.read_all(Version::V2).await.expect("read back");
                let fences = projection.fences(Version::V2).await.expect("fences");
                if metrics != model.metrics {
                    result = Err(format!("metrics differ: script {metrics:?}, model {:?}", model.metrics));
                } else if fences != model.fences {
                    result = Err(format!("fences differ: script {fences:?}, model {:?}", model.fences));
                }
            }
            delete_namespace(conn, &namespace).await;
            result
        }).map_err(TestCaseError::fail)?;
    }
}

async fn delete_namespace(mut conn: redis::aio::ConnectionManager, namespace: &str) {
    coffee_store::redis::delete_prefix(&mut conn, namespace).await.expect("namespace deleted");
}

//! No overview mixes two price versions: readers compute overviews while a
//! writer moves prices as fast as it can; every overview must equal the
//! valuation of its positions at exactly the snapshot it names.

use coffee_mv::dataset::DataSet;
use coffee_mv::lazy::{LazyEngine, Overview};
use coffee_mv::model::PositionEvent;
use coffee_mv::prices::PriceSnapshot;
use coffee_mv::valuation::Totals;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[test]
fn overviews_never_mix_price_versions() {
    let ds = DataSet { seed: 11, accounts: 8, instruments: 300 };
    let engine = Arc::new(LazyEngine::default());
    for h in ds.holdings() {
        engine.load(&PositionEvent::Holding(h)).unwrap();
    }
    for o in ds.orders() {
        engine.load(&PositionEvent::Order(o)).unwrap();
    }
    for u in ds.initial_prices() {
        engine.apply_price(&u);
    }
    let snapshots: Arc<Mutex<Vec<Arc<PriceSnapshot>>>> = Arc::new(Mutex::new(vec![engine.prices().current()]));
    let done = Arc::new(AtomicBool::new(false));

    let writer = {
        let (e, s, done) = (engine.clone(), snapshots.clone(), done.clone());
        std::thread::spawn(move || {
            for n in 0..20_000 {
                // Every update moves a price, so neighbouring versions differ.
                let mut u = ds.price_update(0, n, n as i64);
                u.price.0 += 1 + (n as i64 % 7);
                let snap = e.apply_price(&u);
                s.lock().unwrap().push(snap);
                // Let the readers run between versions even when the machine is busy and the
                // scheduler would otherwise leave this thread on the core for the whole loop.
                if n % 500 == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (e, done) = (engine.clone(), done.clone());
            std::thread::spawn(move || {
                let mut out: Vec<Overview> = vec![];
                let mut k = r;
                while !done.load(Ordering::SeqCst) {
                    out.push(e.overview(k % ds.accounts).unwrap());
                    k += 1;
                }
                out
            })
        })
        .collect();
    writer.join().unwrap();
    let overviews: Vec<Overview> = readers.into_iter().flat_map(|r| r.join().unwrap()).collect();
    assert!(overviews.len() > 100, "readers ran concurrently ({} overviews)", overviews.len());

    let snaps = snapshots.lock().unwrap();
    let first = snaps[0].version;
    let versions: std::collections::HashSet<u64> = overviews.iter().map(|o| o.price_version).collect();
    assert!(versions.len() > 10, "overviews spread over many versions ({})", versions.len());
    for o in &overviews {
        let snap = &snaps[(o.price_version - first) as usize];
        assert_eq!(snap.version, o.price_version);
        // Positions are static here, so the valuation at that snapshot is known.
        let mut want = Totals::default();
        for i in 0..ds.instruments {
            let h = ds.holding(o.account, i).qty;
            let ord: i64 = (0..2u64).map(|j| ds.order((o.account as u64 * ds.instruments as u64 + i as u64) * 2 + j).signed_qty()).sum();
            want.add_position(h, ord, snap.price(i));
        }
        assert_eq!(o.totals(), want, "account {} at version {} mixes prices", o.account, o.price_version);
        assert_eq!(o.total_mv, want.total());
        assert_eq!(o.price_ts_ms, snap.ts_ms);
    }
}

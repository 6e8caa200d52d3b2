//! Versioned, immutable price snapshots.
//!
//! Price consistency rests on this: a reader takes one `Arc<PriceSnapshot>`
//! and computes every number of an overview from it, so an overview can
//! never mix two price versions however many updates land meanwhile.
//! Writers copy-on-write (5,000 instruments ≈ 80 KB a copy, microseconds),
//! readers never block writers.

use crate::model::{InstrumentId, Price, PriceUpdate};
use std::sync::Arc;
use tokio::sync::watch;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PriceSnapshot {
    /// Number of price updates applied; the version an overview carries.
    pub version: u64,
    /// Last price per instrument id; `Price(0)` means not priced yet.
    pub prices: Vec<Price>,
    /// Version at which each instrument last changed, so a subscriber can
    /// tell whether anything it holds moved since the version it last saw.
    pub changed_at: Vec<u64>,
    /// Exchange time of the newest update in this snapshot.
    pub ts_ms: i64,
    /// The update that made this version: (instrument, old, new price).
    /// Lets a subscriber one version behind catch up in O(1).
    pub last: Option<(InstrumentId, Price, Price)>,
}

impl PriceSnapshot {
    pub fn price(&self, i: InstrumentId) -> Price {
        self.prices.get(i as usize).copied().unwrap_or_default()
    }

    pub fn changed_at(&self, i: InstrumentId) -> u64 {
        self.changed_at.get(i as usize).copied().unwrap_or(0)
    }

    /// The next snapshot: a pure function, so both strategies and the tests
    /// agree on what version N means.
    pub fn with_update(&self, u: &PriceUpdate) -> PriceSnapshot {
        let mut next = self.clone();
        next.apply_in_place(u);
        next
    }

    pub fn apply_in_place(&mut self, u: &PriceUpdate) {
        let i = u.instrument as usize;
        if i >= self.prices.len() {
            self.prices.resize(i + 1, Price(0));
            self.changed_at.resize(i + 1, 0);
        }
        self.version += 1;
        self.last = Some((u.instrument, self.prices[i], u.price));
        self.prices[i] = u.price;
        self.changed_at[i] = self.version;
        self.ts_ms = self.ts_ms.max(u.ts_ms);
    }
}

/// The single shared price state of strategy B (and the serve mode): a watch
/// channel holding the current snapshot, which doubles as the change
/// notification for WebSocket subscribers.
pub struct PriceBook {
    tx: watch::Sender<Arc<PriceSnapshot>>,
}

impl Default for PriceBook {
    fn default() -> Self {
        Self::new(0)
    }
}

impl PriceBook {
    pub fn new(instruments: usize) -> Self {
        let snap =
            PriceSnapshot { version: 0, prices: vec![Price(0); instruments], changed_at: vec![0; instruments], ts_ms: 0, last: None };
        PriceBook { tx: watch::Sender::new(Arc::new(snap)) }
    }

    pub fn current(&self) -> Arc<PriceSnapshot> {
        self.tx.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<PriceSnapshot>> {
        self.tx.subscribe()
    }

    /// Publishes the next version and returns it. `send_modify` serialises
    /// concurrent writers, so versions stay gap-free.
    pub fn apply(&self, u: &PriceUpdate) -> Arc<PriceSnapshot> {
        let mut out = None;
        self.tx.send_modify(|cur| {
            let next = Arc::new(cur.with_update(u));
            out = Some(next.clone());
            *cur = next;
        });
        out.expect("send_modify ran the closure")
    }
}

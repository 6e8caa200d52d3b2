//! Strategy B: hybrid lazy. The shared state is the price book plus each
//! account's positions; nothing is revalued when a price moves. An account's
//! overview is computed when someone asks (HTTP) or watches (WebSocket), from
//! exactly one price snapshot whose version it carries.

use crate::model::{AccountId, Money, PositionEvent, PriceUpdate};
use crate::orders::{OrderBook, OrderSlot, SparseOrderId};
use crate::positions::PositionList;
use crate::prices::{PriceBook, PriceSnapshot};
use crate::valuation::{Totals, revalue_delta};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::watch;

/// What a client sees for one account. All money fields come from the
/// snapshot `price_version`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    pub account: AccountId,
    pub price_version: u64,
    /// Exchange time of the newest price in the snapshot used.
    pub price_ts_ms: i64,
    pub holdings_mv: Money,
    pub orders_mv: Money,
    pub total_mv: Money,
    /// Positions (instrument lines) in the account.
    pub positions: u32,
    /// Positions whose instrument has no price yet (valued at zero).
    pub unpriced: u32,
    /// Newest price version that moved an instrument this account holds:
    /// a subscriber pushes only when this passes what it last sent.
    pub last_relevant_version: u64,
    /// Position generation the overview reflects.
    pub positions_generation: u64,
}

impl Overview {
    pub fn totals(&self) -> Totals {
        Totals { holdings_mv: self.holdings_mv, orders_mv: self.orders_mv }
    }
}

#[derive(Default)]
struct AccountBook {
    positions: PositionList,
    /// Global position generation at this account's last change.
    generation: u64,
}

pub struct LazyEngine {
    prices: PriceBook,
    accounts: RwLock<Vec<Arc<RwLock<AccountBook>>>>,
    orders: Mutex<OrderBook>,
    /// Bumped on every position change; subscribers wake on it and compare
    /// against each account's own generation.
    positions_gen: watch::Sender<u64>,
}

impl Default for LazyEngine {
    fn default() -> Self {
        Self::with_capacity(0, 0, 0, 0)
    }
}

impl LazyEngine {
    pub fn with_capacity(instruments: usize, accounts: usize, positions_per_account: usize, orders: usize) -> Self {
        let books = (0..accounts)
            .map(|_| Arc::new(RwLock::new(AccountBook { positions: PositionList::with_capacity(positions_per_account), generation: 0 })))
            .collect();
        LazyEngine {
            prices: PriceBook::new(instruments),
            accounts: RwLock::new(books),
            orders: Mutex::new(OrderBook::with_capacity(orders)),
            positions_gen: watch::Sender::new(0),
        }
    }

    pub fn prices(&self) -> &PriceBook {
        &self.prices
    }

    pub fn subscribe_positions(&self) -> watch::Receiver<u64> {
        self.positions_gen.subscribe()
    }

    pub fn accounts(&self) -> usize {
        self.accounts.read().unwrap().len()
    }

    pub fn live_orders(&self) -> usize {
        self.orders.lock().unwrap().live()
    }

    pub fn apply_price(&self, u: &PriceUpdate) -> Arc<PriceSnapshot> {
        self.prices.apply(u)
    }

    fn book(&self, a: AccountId) -> Option<Arc<RwLock<AccountBook>>> {
        self.accounts.read().unwrap().get(a as usize).cloned()
    }

    fn book_or_create(&self, a: AccountId) -> Arc<RwLock<AccountBook>> {
        if let Some(b) = self.book(a) {
            return b;
        }
        let mut v = self.accounts.write().unwrap();
        if v.len() <= a as usize {
            v.resize_with(a as usize + 1, Default::default);
        }
        v[a as usize].clone()
    }

    fn add(&self, a: AccountId, i: u32, hold: Option<i64>, ord_delta: i64, generation: u64) {
        let book = self.book_or_create(a);
        let mut b = book.write().unwrap();
        let k = b.positions.slot(i);
        if let Some(h) = hold {
            b.positions.hold[k] = h;
        }
        b.positions.ord[k] += ord_delta;
        b.generation = generation;
    }

    /// Applies a holding/order change. The order index lock is held for the
    /// whole event so concurrent callers cannot interleave halves of a move.
    pub fn apply_position(&self, ev: &PositionEvent) -> Result<(), SparseOrderId> {
        let mut orders = self.orders.lock().unwrap();
        let generation = *self.positions_gen.borrow() + 1;
        match *ev {
            PositionEvent::Holding(h) => self.add(h.account, h.instrument, Some(h.qty), 0, generation),
            PositionEvent::Order(o) => {
                let new = OrderSlot { account: o.account, instrument: o.instrument, signed_qty: o.signed_qty() };
                if let Some(p) = orders.upsert(o.id, new)? {
                    self.add(p.account, p.instrument, None, -p.signed_qty, generation);
                }
                self.add(o.account, o.instrument, None, new.signed_qty, generation);
            }
            PositionEvent::OrderCancel { id } => {
                if let Some(p) = orders.remove(id) {
                    self.add(p.account, p.instrument, None, -p.signed_qty, generation);
                }
            }
        }
        self.positions_gen.send_replace(generation);
        Ok(())
    }

    /// Loads without notifying anyone (rebuild path, before serving).
    pub fn load(&self, ev: &PositionEvent) -> Result<(), SparseOrderId> {
        self.apply_position(ev)
    }

    pub fn shrink_to_fit(&self) {
        for b in self.accounts.read().unwrap().iter() {
            b.write().unwrap().positions.shrink_to_fit();
        }
        self.orders.lock().unwrap().shrink_to_fit();
    }

    /// The account overview at the current price snapshot.
    pub fn overview(&self, a: AccountId) -> Option<Overview> {
        self.overview_at(a, &self.prices.current())
    }

    /// The account overview valued at `snap`, and only at `snap`.
    pub fn overview_at(&self, a: AccountId, snap: &PriceSnapshot) -> Option<Overview> {
        let book = self.book(a)?;
        let b = book.read().unwrap();
        let p = &b.positions;
        let mut t = Totals::default();
        let (mut unpriced, mut last_relevant) = (0u32, 0u64);
        for k in 0..p.len() {
            let i = p.keys[k];
            let (h, o) = (p.hold[k], p.ord[k]);
            if h == 0 && o == 0 {
                continue;
            }
            let price = snap.price(i);
            if price.0 == 0 {
                unpriced += 1;
            }
            last_relevant = last_relevant.max(snap.changed_at(i));
            t.add_position(h, o, price);
        }
        Some(Overview {
            account: a,
            price_version: snap.version,
            price_ts_ms: snap.ts_ms,
            holdings_mv: t.holdings_mv,
            orders_mv: t.orders_mv,
            total_mv: t.total(),
            positions: p.len() as u32,
            unpriced,
            last_relevant_version: last_relevant,
            positions_generation: b.generation,
        })
    }

    /// The overview at `snap`, derived from `prev` (the same account one
    /// price version earlier) by revaluing only the instrument that moved.
    /// Exact, because money is integer, and O(log positions) instead of
    /// O(positions), which is what lets many subscribers follow every update.
    /// Falls back to [`Self::overview_at`] when versions were skipped or the
    /// account's positions changed.
    pub fn advance(&self, prev: &Overview, snap: &PriceSnapshot) -> Option<Overview> {
        let book = self.book(prev.account)?;
        let b = book.read().unwrap();
        if b.generation == prev.positions_generation {
            if snap.version == prev.price_version {
                return Some(prev.clone());
            }
            if let Some((i, old, new)) = snap.last
                && snap.version == prev.price_version + 1
            {
                let mut o = prev.clone();
                o.price_version = snap.version;
                o.price_ts_ms = snap.ts_ms;
                if let Some(k) = b.positions.find(i) {
                    let (h, q) = (b.positions.hold[k], b.positions.ord[k]);
                    if h != 0 || q != 0 {
                        o.holdings_mv += revalue_delta(h, old, new);
                        o.orders_mv += revalue_delta(q, old, new);
                        o.total_mv = o.holdings_mv + o.orders_mv;
                        o.unpriced = (o.unpriced as i64 + (new.0 == 0) as i64 - (old.0 == 0) as i64) as u32;
                        o.last_relevant_version = snap.version;
                    }
                }
                return Some(o);
            }
        }
        drop(b);
        self.overview_at(prev.account, snap)
    }

    /// The account's position generation (cheap check before recomputing).
    pub fn generation(&self, a: AccountId) -> Option<u64> {
        Some(self.book(a)?.read().unwrap().generation)
    }

    pub fn heap_bytes(&self) -> usize {
        let books: usize = self.accounts.read().unwrap().iter().map(|b| b.read().unwrap().positions.heap_bytes()).sum();
        let snap = self.prices.current();
        books + self.orders.lock().unwrap().heap_bytes() + snap.prices.capacity() * 16
    }
}

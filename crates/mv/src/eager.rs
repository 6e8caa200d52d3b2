//! Strategy A: eager revaluation with hierarchical aggregation (the paper's
//! Option C done right).
//!
//! State is keyed by instrument: per instrument one [`PositionList`] of
//! (account, net holding qty, net order qty). A price update walks that list
//! once, adds `qty × (new − old)` to each account's running totals and emits
//! one [`AccountChange`] per affected account — never one message per holding
//! or order. Single-threaded and IO-free: the owner feeds it and ships the
//! changes.

use crate::model::{AccountId, Holding, Order, OrderId, PositionEvent, Price, PriceUpdate};
use crate::orders::{OrderBook, OrderSlot, SparseOrderId};
use crate::positions::PositionList;
use crate::valuation::{Totals, holding_mv, order_mv, revalue_delta};
use serde::{Deserialize, Serialize};

/// The only output of strategy A: an account's new totals, valued at price
/// version `version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountChange {
    pub account: AccountId,
    pub version: u64,
    pub totals: Totals,
}

impl AccountChange {
    /// Fixed 44-byte little-endian record: what the bench ships per message.
    pub const WIRE_LEN: usize = 4 + 8 + 16 + 16;

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.account.to_le_bytes());
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.totals.holdings_mv.0.to_le_bytes());
        out.extend_from_slice(&self.totals.orders_mv.0.to_le_bytes());
    }
}

#[derive(Default)]
pub struct EagerEngine {
    version: u64,
    prices: Vec<Price>,
    books: Vec<PositionList>,
    totals: Vec<Totals>,
    orders: OrderBook,
}

impl EagerEngine {
    pub fn new() -> Self {
        Self::default()
    }

    /// Pre-sizes the arrays so loading does not leave doubling slack behind
    /// (which would otherwise be a third of the state at full scale).
    pub fn with_capacity(instruments: usize, accounts: usize, positions_per_instrument: usize, orders: usize) -> Self {
        EagerEngine {
            version: 0,
            prices: vec![Price(0); instruments],
            books: (0..instruments).map(|_| PositionList::with_capacity(positions_per_instrument)).collect(),
            totals: vec![Totals::default(); accounts],
            orders: OrderBook::with_capacity(orders),
        }
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn price(&self, i: u32) -> Price {
        self.prices.get(i as usize).copied().unwrap_or_default()
    }

    pub fn accounts(&self) -> usize {
        self.totals.len()
    }

    pub fn totals(&self, a: AccountId) -> Totals {
        self.totals.get(a as usize).copied().unwrap_or_default()
    }

    pub fn live_orders(&self) -> usize {
        self.orders.live()
    }

    fn ensure_instrument(&mut self, i: u32) {
        let i = i as usize;
        if i >= self.books.len() {
            self.books.resize_with(i + 1, PositionList::default);
            self.prices.resize(i + 1, Price(0));
        }
    }

    fn ensure_account(&mut self, a: AccountId) {
        if a as usize >= self.totals.len() {
            self.totals.resize(a as usize + 1, Totals::default());
        }
    }

    /// Revalues every position in the instrument; calls `out` once per
    /// account whose totals changed.
    pub fn apply_price(&mut self, u: &PriceUpdate, mut out: impl FnMut(AccountChange)) {
        self.ensure_instrument(u.instrument);
        self.version += 1;
        let i = u.instrument as usize;
        let old = std::mem::replace(&mut self.prices[i], u.price);
        if old == u.price {
            return;
        }
        let book = &self.books[i];
        let version = self.version;
        for k in 0..book.keys.len() {
            let (h, o) = (book.hold[k], book.ord[k]);
            if h == 0 && o == 0 {
                continue;
            }
            let a = book.keys[k];
            // Accounts are registered when their first position arrives.
            let t = &mut self.totals[a as usize];
            t.holdings_mv += revalue_delta(h, old, u.price);
            t.orders_mv += revalue_delta(o, old, u.price);
            out(AccountChange { account: a, version, totals: *t });
        }
    }

    /// Applies a holding or order change; calls `out` for each account whose
    /// totals changed (at most two: an order that moved accounts).
    pub fn apply_position(&mut self, ev: &PositionEvent, mut out: impl FnMut(AccountChange)) -> Result<(), SparseOrderId> {
        match *ev {
            PositionEvent::Holding(h) => {
                if let Some(c) = self.set_holding(h) {
                    out(c)
                }
            }
            PositionEvent::Order(o) => {
                let (a, b) = self.upsert_order(&o)?;
                a.into_iter().chain(b).for_each(&mut out);
            }
            PositionEvent::OrderCancel { id } => {
                if let Some(c) = self.cancel_order(id) {
                    out(c)
                }
            }
        }
        Ok(())
    }

    fn set_holding(&mut self, h: Holding) -> Option<AccountChange> {
        self.ensure_instrument(h.instrument);
        self.ensure_account(h.account);
        let book = &mut self.books[h.instrument as usize];
        let k = book.slot(h.account);
        let dq = h.qty - std::mem::replace(&mut book.hold[k], h.qty);
        if dq == 0 {
            return None;
        }
        let t = &mut self.totals[h.account as usize];
        t.holdings_mv += holding_mv(dq, self.prices[h.instrument as usize]);
        Some(AccountChange { account: h.account, version: self.version, totals: *t })
    }

    /// Adds `signed_qty` of open orders to a position and its account total.
    fn add_order_qty(&mut self, s: OrderSlot) -> Option<AccountChange> {
        self.ensure_instrument(s.instrument);
        self.ensure_account(s.account);
        if s.signed_qty == 0 {
            return None;
        }
        let book = &mut self.books[s.instrument as usize];
        let k = book.slot(s.account);
        book.ord[k] += s.signed_qty;
        let t = &mut self.totals[s.account as usize];
        t.orders_mv += order_mv(s.signed_qty, self.prices[s.instrument as usize]);
        Some(AccountChange { account: s.account, version: self.version, totals: *t })
    }

    fn upsert_order(&mut self, o: &Order) -> Result<(Option<AccountChange>, Option<AccountChange>), SparseOrderId> {
        let new = OrderSlot { account: o.account, instrument: o.instrument, signed_qty: o.signed_qty() };
        let prev = self.orders.upsert(o.id, new)?;
        let removed = prev.and_then(|p| self.add_order_qty(OrderSlot { signed_qty: -p.signed_qty, ..p }));
        let added = self.add_order_qty(new);
        // One message per account: if both touched the same account, the
        // later one already carries the final totals.
        Ok(match (removed, added) {
            (Some(r), Some(a)) if r.account == a.account => (None, Some(a)),
            other => other,
        })
    }

    fn cancel_order(&mut self, id: OrderId) -> Option<AccountChange> {
        let p = self.orders.remove(id)?;
        self.add_order_qty(OrderSlot { signed_qty: -p.signed_qty, ..p })
    }

    /// Loads a batch of positions without emitting anything (rebuild path).
    pub fn load(&mut self, ev: &PositionEvent) -> Result<(), SparseOrderId> {
        self.apply_position(ev, |_| {})
    }

    pub fn shrink_to_fit(&mut self) {
        self.books.iter_mut().for_each(PositionList::shrink_to_fit);
        self.orders.shrink_to_fit();
    }

    /// Full recomputation of every account total from the books: the
    /// reference the incremental totals must equal.
    pub fn recompute_all(&self) -> Vec<Totals> {
        let mut t = vec![Totals::default(); self.totals.len()];
        for (i, book) in self.books.iter().enumerate() {
            let p = self.prices[i];
            for k in 0..book.len() {
                t[book.keys[k] as usize].add_position(book.hold[k], book.ord[k], p);
            }
        }
        t
    }

    /// Bytes held by the state arrays (capacity, not length).
    pub fn heap_bytes(&self) -> usize {
        self.books.iter().map(PositionList::heap_bytes).sum::<usize>()
            + self.orders.heap_bytes()
            + self.totals.capacity() * std::mem::size_of::<Totals>()
            + self.prices.capacity() * 8
    }
}

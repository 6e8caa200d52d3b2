//! Deterministic synthetic data set at the paper's shape.
//!
//! Scale 1 is the paper's production scale: 5,000 accounts × 5,000
//! instruments = 25 M holdings (every account holds every instrument), two
//! open orders per holding = 50 M orders, each instrument priced once a
//! minute = 5,000 updates/min. Scale F keeps the instruments and the update
//! rate and scales the accounts, so holdings, orders and the per-update
//! fan-out all grow linearly with F.
//!
//! Everything is a pure function of (seed, index) through splitmix64, so the
//! generator is random-access: no RNG state, no stored rows, identical
//! output in the bench parent, its child processes and PostgreSQL.

use crate::model::{Holding, Order, PositionEvent, Price, PriceUpdate, Side};

pub const FULL_ACCOUNTS: u32 = 5_000;
pub const FULL_INSTRUMENTS: u32 = 5_000;
pub const ORDERS_PER_HOLDING: u32 = 2;
/// 5,000 updates a minute.
pub const PAPER_UPDATES_PER_S: f64 = 5_000.0 / 60.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataSet {
    pub seed: u64,
    pub accounts: u32,
    pub instruments: u32,
}

pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn mix(seed: u64, tag: u64, a: u64, b: u64) -> u64 {
    splitmix64(seed ^ splitmix64(tag ^ splitmix64(a ^ splitmix64(b))))
}

impl DataSet {
    pub fn at_scale(seed: u64, scale: f64) -> DataSet {
        let accounts = ((FULL_ACCOUNTS as f64 * scale).round() as u32).max(1);
        DataSet { seed, accounts, instruments: FULL_INSTRUMENTS }
    }

    pub fn holdings_count(&self) -> u64 {
        self.accounts as u64 * self.instruments as u64
    }

    pub fn orders_count(&self) -> u64 {
        self.holdings_count() * ORDERS_PER_HOLDING as u64
    }

    /// Start-of-day price: 1.0000 to 1,000.0000 currency units.
    pub fn initial_price(&self, i: u32) -> Price {
        Price(10_000 + (mix(self.seed, 1, i as u64, 0) % 9_990_001) as i64)
    }

    pub fn holding(&self, a: u32, i: u32) -> Holding {
        Holding { account: a, instrument: i, qty: 1 + (mix(self.seed, 2, a as u64, i as u64) % 1_000) as i64 }
    }

    /// Holdings in (account, instrument) order, the order COPY returns them.
    pub fn holdings(&self) -> impl Iterator<Item = Holding> + '_ {
        (0..self.accounts).flat_map(move |a| (0..self.instruments).map(move |i| self.holding(a, i)))
    }

    /// Order `id` (ids are dense from 0, grouped by (account, instrument)).
    pub fn order(&self, id: u64) -> Order {
        let pos = id / ORDERS_PER_HOLDING as u64;
        let (a, i) = ((pos / self.instruments as u64) as u32, (pos % self.instruments as u64) as u32);
        let r = mix(self.seed, 3, id, 0);
        let side = if r & 1 == 0 { Side::Buy } else { Side::Sell };
        let p = self.initial_price(i).0;
        // Limit within ±5 % of the opening price.
        let limit = p + (p / 20) * (((r >> 8) % 201) as i64 - 100) / 100;
        Order { id, account: a, instrument: i, side, qty: 1 + ((r >> 32) % 500) as i64, limit_price: Price(limit.max(1)) }
    }

    pub fn orders(&self) -> impl Iterator<Item = Order> + '_ {
        (0..self.orders_count()).map(move |id| self.order(id))
    }

    /// Every position in (account, instrument) order: the holding, then its
    /// orders. How a per-account export would arrive; it lets both engines
    /// append instead of search while loading.
    pub fn positions(&self) -> impl Iterator<Item = PositionEvent> + '_ {
        (0..self.holdings_count()).flat_map(move |pos| {
            let h = self.holding((pos / self.instruments as u64) as u32, (pos % self.instruments as u64) as u32);
            std::iter::once(PositionEvent::Holding(h))
                .chain((0..ORDERS_PER_HOLDING as u64).map(move |j| PositionEvent::Order(self.order(pos * ORDERS_PER_HOLDING as u64 + j))))
        })
    }

    pub fn initial_prices(&self) -> impl Iterator<Item = PriceUpdate> + '_ {
        (0..self.instruments).map(move |i| PriceUpdate { instrument: i, price: self.initial_price(i), ts_ms: 0 })
    }

    /// The n-th intraday update: a random instrument moves up to ±0.5 % from
    /// its opening price. `stream` separates independent feeds.
    pub fn price_update(&self, stream: u64, n: u64, ts_ms: i64) -> PriceUpdate {
        let r = mix(self.seed, 4 + stream, n, 0);
        let i = (r % self.instruments as u64) as u32;
        let p = self.initial_price(i).0;
        let bp = ((r >> 32) % 101) as i64 - 50; // basis points ×10
        PriceUpdate { instrument: i, price: Price((p + p * bp / 10_000).max(1)), ts_ms }
    }
}

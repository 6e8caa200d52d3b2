//! Pure valuation arithmetic shared by both strategies, so that they can only
//! disagree on *which* quantities and prices they use, never on the maths.

use crate::model::{Money, Price, Qty};
use serde::{Deserialize, Serialize};

/// Holding MV = quantity × price.
pub fn holding_mv(qty: Qty, price: Price) -> Money {
    Money(qty as i128 * price.0 as i128)
}

/// Order MV = signed quantity × price (sells are negative).
pub fn order_mv(signed_qty: Qty, price: Price) -> Money {
    Money(signed_qty as i128 * price.0 as i128)
}

/// MV change of a position when its price moves from `old` to `new`.
pub fn revalue_delta(qty: Qty, old: Price, new: Price) -> Money {
    Money(qty as i128 * (new.0 as i128 - old.0 as i128))
}

/// An account's totals: the hierarchical aggregate strategy A maintains and
/// strategy B computes on demand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub holdings_mv: Money,
    pub orders_mv: Money,
}

impl Totals {
    pub fn total(&self) -> Money {
        self.holdings_mv + self.orders_mv
    }

    /// Adds one (account, instrument) position: net holding qty and net
    /// signed open-order qty at one price.
    pub fn add_position(&mut self, hold_qty: Qty, order_qty: Qty, price: Price) {
        self.holdings_mv += holding_mv(hold_qty, price);
        self.orders_mv += order_mv(order_qty, price);
    }
}

/// Full recomputation of one account from its positions; the reference that
/// incremental maintenance is tested against.
pub fn account_totals(positions: impl IntoIterator<Item = (Qty, Qty, Price)>) -> Totals {
    let mut t = Totals::default();
    for (h, o, p) in positions {
        t.add_position(h, o, p);
    }
    t
}

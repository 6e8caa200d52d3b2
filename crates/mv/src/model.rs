//! Domain types. Money is fixed-point so that incremental sums never drift:
//! an account total maintained by deltas must equal a full recomputation bit
//! for bit, which floats cannot promise.

use serde::{Deserialize, Serialize};
use std::fmt;

pub type AccountId = u32;
pub type InstrumentId = u32;
pub type OrderId = u64;
/// Whole units (shares, contracts). Signed so that sells net against buys.
pub type Qty = i64;

/// Price units per currency unit: prices and money carry 4 decimal places.
pub const SCALE: i64 = 10_000;

/// A price in 1e-4 currency units (e.g. 150.25 is `Price(1_502_500)`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Price(pub i64);

/// Market value in 1e-4 currency units. i128 because qty × price of one
/// position already approaches i64's range and accounts sum thousands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(pub i128);

impl Money {
    pub const ZERO: Money = Money(0);
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, o: Money) -> Money {
        Money(self.0 + o.0)
    }
}
impl std::ops::AddAssign for Money {
    fn add_assign(&mut self, o: Money) {
        self.0 += o.0
    }
}
impl std::ops::SubAssign for Money {
    fn sub_assign(&mut self, o: Money) {
        self.0 -= o.0
    }
}

/// Exact decimal rendering, e.g. `-12.0500`: JSON numbers would lose digits
/// in JavaScript clients, strings do not.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let s = SCALE as u128;
        write!(f, "{sign}{}.{:04}", abs / s, abs % s)
    }
}

impl std::str::FromStr for Money {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (neg, body) = match s.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, s),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        if frac.len() > 4 || int.is_empty() {
            return Err(format!("not a 4-decimal amount: {s:?}"));
        }
        let int: i128 = int.parse().map_err(|e| format!("{s:?}: {e}"))?;
        let frac_v: i128 =
            if frac.is_empty() { 0 } else { frac.parse::<i128>().map_err(|e| format!("{s:?}: {e}"))? * 10i128.pow(4 - frac.len() as u32) };
        let v = int * SCALE as i128 + frac_v;
        Ok(Money(if neg { -v } else { v }))
    }
}

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
    pub fn parse(s: &str) -> Option<Side> {
        match s {
            "buy" => Some(Side::Buy),
            "sell" => Some(Side::Sell),
            _ => None,
        }
    }
}

/// Start-of-day holding; `qty` is absolute (the event replaces the old one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holding {
    pub account: AccountId,
    pub instrument: InstrumentId,
    pub qty: Qty,
}

/// An open order. Its MV uses the market price, not the limit price: the
/// limit is kept in PostgreSQL and on the wire, the engines do not need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub account: AccountId,
    pub instrument: InstrumentId,
    pub side: Side,
    pub qty: Qty,
    pub limit_price: Price,
}

impl Order {
    /// Buys add exposure, sells remove it.
    pub fn signed_qty(&self) -> Qty {
        match self.side {
            Side::Buy => self.qty,
            Side::Sell => -self.qty,
        }
    }
}

/// A market price tick. `ts_ms` is the exchange time, carried into overviews.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceUpdate {
    pub instrument: InstrumentId,
    pub price: Price,
    pub ts_ms: i64,
}

/// A change to positions, as published on the positions topic. Every event
/// carries absolute state, so replaying the topic over a newer PostgreSQL
/// snapshot converges to the same state (idempotent per key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PositionEvent {
    Holding(Holding),
    Order(Order),
    OrderCancel { id: OrderId },
}

impl PositionEvent {
    /// Partition key: per-account order is what idempotent replay needs.
    pub fn key(&self) -> String {
        match self {
            PositionEvent::Holding(h) => h.account.to_string(),
            PositionEvent::Order(o) => o.id.to_string(),
            PositionEvent::OrderCancel { id } => id.to_string(),
        }
    }
}

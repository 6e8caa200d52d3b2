//! The pure heart of coffee-rt: no IO, no async.
//!
//! An [`Order`] can only be built by parsing a [`RawOrder`] against a [`Catalog`], so every
//! function downstream holds a valid order. Money is [`Cents`]. [`MetricsDelta`] is the fold
//! every path uses to turn orders into the numbers the dashboard shows, and [`Ledger`] is the
//! exactly-once model of how deltas reach a projection (the Redis Lua scripts implement it).

mod catalog;
mod exactly_once;
mod metrics;
mod money;
mod order;
mod version;
mod window;

pub use catalog::{Catalog, CatalogError};
pub use exactly_once::{Applied, Ledger};
pub use metrics::{Breakdown, MetricsDelta, RECENT_LEN, RecentOrder, hour_bucket};
pub use money::{Cents, MoneyError};
pub use order::{Order, OrderRecord, RawOrder, ValidationError};
pub use version::{ParseVersionError, Version};
pub use window::OrderWindow;

//! Market value engine: values every holding and open order at live
//! prices, two ways, and measures both at the design paper's scale.
//!
//! * [`eager`] — strategy A: state keyed by instrument, account totals kept
//!   incrementally, one message per changed account ([`eager_service`]).
//! * [`lazy`] — strategy B: price snapshots plus positions, account
//!   overviews computed on demand and pushed over WebSocket ([`api`],
//!   [`serve`]).
//!
//! Valuation ([`valuation`], [`model`]) is pure fixed-point arithmetic;
//! [`prices`] gives the versioned snapshots that make overviews consistent.
//! [`config`] holds every flag of the `coffee-mv` program.

pub mod api;
pub mod bench;
pub mod config;
pub mod dataset;
pub mod eager;
pub mod eager_service;
pub mod kafka;
pub mod lazy;
pub mod model;
pub mod orders;
pub mod pg;
pub mod positions;
pub mod prices;
pub mod serve;
pub mod shutdown;
pub mod sources;
pub mod valuation;

pub use config::Cli;

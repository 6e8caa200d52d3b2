//! One integration test binary for coffee-lab (one link step instead of many), against the real
//! services; a missing service fails the test, it never skips.

mod aggregator;
mod analytics;
mod benches;
mod ceilings;
mod cli;
mod common;
mod durability;
mod e2e;
mod load;
mod repair;
mod scale_out;
mod soak;
mod sweep;

//! One integration test binary for coffee-lab (one link step instead of many), against the real
//! services; a missing service fails the test, it never skips.

mod aggregator;
mod analytics;
mod benches;
mod ceilings;
mod cli;
mod common;
mod e2e;
mod load;
mod scale_out;
mod sweep;

//! One integration test binary for coffee-lab (one link step instead of many).

mod aggregator;
mod ceilings;
mod cli;
mod common;
mod e2e;
mod load;
mod sweep;

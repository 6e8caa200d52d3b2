//! Integration tests of the warehouse against the real services: PostgreSQL, Redis, Apache
//! Kafka and ClickHouse (the one `scripts/tools/clickhouse.sh` starts, at `CLICKHOUSE_URL`, and
//! private servers the tests that kill ClickHouse start themselves). Each test has its own
//! PostgreSQL database, Redis namespace, topic and ClickHouse database, all dropped at the end;
//! a missing service fails the test, it never skips.
//!
//! The tests that run `coffee-rt` as a child need it built: `cargo build -p coffee-rt` first
//! (`scripts/test` builds every binary).

mod support;

mod client;
mod faults;
mod sink;

//! The one integration test binary for coffee-mv. Tests that need
//! PostgreSQL (127.0.0.1:5432) or the broker (`KAFKA_BROKERS`, default
//! 127.0.0.1:9092) fail loudly when it is missing; none is skipped.

mod bench_smoke;
mod common;
mod consistency;
mod e2e;
mod e2e_eager;
mod pg_copy;
mod props;
mod sigterm;
mod valuation;

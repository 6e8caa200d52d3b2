//! coffee-server integration tests against real PostgreSQL, Redis and Chromium. A missing
//! service fails the test; nothing is skipped.
//!
//! Every test builds its own `Application` (port 0) with its own database, Redis namespace
//! and Kafka topic, and starts the v2 worker and the v1 aggregator in-process, like `up`.

mod browser;
mod common;
mod edge_auth;
mod edge_overload;
mod edge_slow;
mod edge_support;
mod edge_ws;
mod escaping;
mod history;
mod page;
mod stale;
mod ws;

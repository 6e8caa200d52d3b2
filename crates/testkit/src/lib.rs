//! The one test kit of coffee-rt, shared by every integration-test binary of the workspace.
//!
//! - [`TestEnv`]: one test's private world on the real services (a database, a Redis
//!   namespace, a Kafka topic and group), removed when it is dropped, also on a panic.
//! - [`TestApp`]: the real [`coffee_server::Application`] in-process on port 0, with or without
//!   the background roles, and the HTTP calls tests make.
//! - [`orders`]: valid orders, posting many, and the checks on what the sinks hold.
//! - [`start_processor`]: a v3 processor in the test's process.
//! - [`Proxy`]: a TCP proxy a test cuts to make PostgreSQL (or anything) disappear.
//! - [`ws`]: a dashboard WebSocket client.
//! - [`arbitrary`]: proptest strategies for orders and batches.
//! - [`truth`]: the metrics recomputed from PostgreSQL by SQL of its own, against Redis.
//! - [`config_doc`]: renders clap definitions as the table in `docs/CONFIGURATION.md`.
//!
//! A test that needs a service fails with a message naming it; nothing here skips.

mod app;
pub mod arbitrary;
pub mod bin;
pub mod config_doc;
mod env;
pub mod orders;
mod proxy;
mod roles;
pub mod truth;
mod wait;
pub mod ws;

pub use app::{Stopped, TestApp};
pub use env::{PG_ADMIN, REDIS, TestEnv, brokers};
pub use orders::{assert_no_drift, order, post_all, post_all_within, post_many, stored};
pub use proxy::Proxy;
pub use roles::start_processor;
pub use wait::{free_port, wait_until};

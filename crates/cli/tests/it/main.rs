//! Integration tests of coffee-rt against real PostgreSQL, Redis and Apache Kafka.
//! One binary, one module per capability. Each test has its own database, Redis namespace and
//! topic; a missing service fails the test, it never skips.

mod services;
mod support;

mod api_validation;
mod chaos_postgres;
mod configuration;
mod deploy_manifests;
mod idempotency;
mod observability;
mod openapi;
mod order_time;
mod projection_repair;
mod prometheus_bundle;
mod reconcile;
mod reconcile_live;
mod redis_loss;
mod restarts;
mod shutdown;
mod startup;
mod v1_path;
mod v2_path;
mod v2_recovery;
mod v3_faults;
mod v3_path;

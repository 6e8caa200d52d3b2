//! The sandbox's servers against their own promises: what a kill keeps and loses, what a
//! restart on the same data finds, and that dropping a server leaves nothing running.

mod kafka_broker;
mod postgres_server;
mod redis_server;

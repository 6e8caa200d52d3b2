//! coffee-sandbox: private, disposable real servers for the tests and lab runs that must kill,
//! stop or restart a service. The shared PostgreSQL, Redis and Kafka on the usual ports serve
//! everyone's tests at once and are never disturbed; a fault is injected into a server of one's
//! own instead:
//! * [`RedisServer`]: `redis-server` in a chosen [`Persistence`] mode;
//! * [`PostgresServer`]: a cluster from `initdb`, user `coffee` password `coffee`;
//! * [`KafkaBroker`]: one Apache Kafka KRaft node from the jars `scripts/services.sh` installs.
//!
//! Each runs on free 127.0.0.1 ports with its data in a temp dir, can be SIGKILLed (a crash),
//! stopped cleanly, and started again on the same ports and data; dropping it kills the process
//! and removes the dir. A server whose software is missing fails with an error naming it: the
//! sandbox never stands in for a real server.

mod kafka_broker;
mod postgres_server;
mod process;
mod redis_server;

pub use kafka_broker::KafkaBroker;
pub use postgres_server::PostgresServer;
pub use redis_server::{Persistence, RedisServer};

use std::time::Duration;

use redis::{
    Client,
    aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection},
};

/// A self-reconnecting, multiplexed connection for ordinary commands. Every call fails within
/// a second when Redis is away, so the API can answer 503 instead of hanging.
pub async fn connect(url: &str) -> redis::RedisResult<ConnectionManager> {
    let client = Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    ConnectionManager::new_with_config(client, config).await
}

/// A connection of its own for blocking reads (XREADGROUP BLOCK). A response timeout would cut
/// a legitimate block short and, on a shared connection, a block stalls every other caller.
pub async fn blocking_connection(url: &str) -> redis::RedisResult<MultiplexedConnection> {
    let client = Client::open(url)?;
    let config = redis::AsyncConnectionConfig::new().set_connection_timeout(Some(Duration::from_secs(2))).set_response_timeout(None);
    client.get_multiplexed_async_connection_with_config(&config).await
}

//! RedisServer: a kill keeps what `appendfsync always` acknowledged, loses everything without
//! an AOF, and `start_empty` comes back with nothing.

use coffee_sandbox::{Persistence, RedisServer};

async fn connect(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap()
}

async fn set(url: &str, key: &str, value: &str) {
    let mut c = connect(url).await;
    let () = redis::cmd("SET").arg(key).arg(value).query_async(&mut c).await.unwrap();
}

async fn get(url: &str, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query_async(&mut connect(url).await).await.unwrap()
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn aof_always_keeps_an_acknowledged_write_through_sigkill_and_start_empty_forgets_it() {
    let mut redis = RedisServer::start(Persistence::AofAlways).await.unwrap();
    let (url, port) = (redis.url(), redis.port());
    assert_eq!(url, format!("redis://127.0.0.1:{port}/0"));
    set(&url, "order", "42").await;

    let first = redis.pid().unwrap();
    redis.kill().await.unwrap();
    assert!(!alive(first), "the killed redis-server {first} is gone");
    assert_eq!(redis.pid(), None);

    redis.start_again().await.unwrap();
    assert_ne!(redis.pid().unwrap(), first, "a new process");
    assert_eq!(redis.port(), port, "on the same port");
    assert_eq!(get(&url, "order").await.as_deref(), Some("42"), "replayed from the AOF");

    redis.kill().await.unwrap();
    redis.start_empty().await.unwrap();
    assert_eq!(get(&url, "order").await, None, "the data dir was wiped");
}

#[tokio::test]
async fn without_aof_a_kill_loses_everything_and_a_stop_too() {
    let mut redis = RedisServer::start(Persistence::None).await.unwrap();
    let url = redis.url();
    set(&url, "order", "1").await;
    redis.kill().await.unwrap();
    redis.start_again().await.unwrap();
    assert_eq!(get(&url, "order").await, None, "no AOF, no RDB: nothing survives a kill");

    set(&url, "order", "2").await;
    redis.stop().await.unwrap();
    redis.start_again().await.unwrap();
    assert_eq!(get(&url, "order").await, None, "`save \"\"`: not even a clean stop writes a snapshot");
}

#[tokio::test]
async fn everysec_keeps_a_write_through_a_clean_stop() {
    let mut redis = RedisServer::start(Persistence::AofEverySec).await.unwrap();
    let url = redis.url();
    set(&url, "order", "7").await;
    redis.stop().await.unwrap();
    redis.start_again().await.unwrap();
    assert_eq!(get(&url, "order").await.as_deref(), Some("7"), "SIGTERM fsyncs the AOF");
}

#[tokio::test]
async fn dropping_the_server_kills_it_and_frees_its_port() {
    let redis = RedisServer::start(Persistence::None).await.unwrap();
    let (pid, port) = (redis.pid().unwrap(), redis.port());
    assert!(alive(pid));
    drop(redis);
    assert!(!alive(pid), "redis-server {pid} was killed and reaped on drop");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "nothing listens on {port} any more");
}

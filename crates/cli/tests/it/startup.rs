//! Starting up: roles launched together on a world that does not exist yet.

use std::time::Duration;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn roles_started_together_on_a_new_database_all_come_up() {
    // `serve` and `worker` launched at the same moment both find the database missing and both
    // CREATE it; the loser must take PostgreSQL's "already exists" (42P04, or 23505 when the
    // two CREATEs race inside the catalog) as success, not exit.
    let env = TestEnv::new();
    let connects: Vec<_> = (0..6).map(|_| coffee_store::postgres::create_database_if_missing(&env.database_url)).collect();
    for r in futures::future::join_all(connects).await {
        r.expect("every concurrent starter succeeds");
    }
    let pool = env.pool().await;
    let n: i64 = pool.get().await.unwrap().query_one("SELECT count(*) FROM orders", &[]).await.unwrap().get(0);
    assert_eq!(n, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_new_connections_is_queued_not_dropped() {
    // 300 clients connect while the server has not accepted anyone yet (built, not running):
    // the kernel must hold them all in the accept queue. With std's backlog of 128 it drops the
    // SYNs beyond it, and those clients retry only a second later.
    let env = TestEnv::new();
    let app = coffee_server::Application::build(&env.config).await.expect("app builds");
    let addr = format!("127.0.0.1:{}", app.port());
    let connects = (0..300).map(|_| tokio::time::timeout(Duration::from_millis(500), tokio::net::TcpStream::connect(addr.clone())));
    let results = futures::future::join_all(connects).await;
    let connected = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    assert_eq!(connected, 300, "connections completed within 500 ms before the first accept");
    drop(results);
    drop(app);
}

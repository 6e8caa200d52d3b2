//! Starting up: roles launched together on a world that does not exist yet.

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

//! PostgresServer: `coffee`/`coffee` logs in over TCP, a committed row survives SIGKILL of the
//! postmaster and every backend (crash recovery from the WAL), and a clean stop.

use coffee_sandbox::PostgresServer;

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

async fn count(url: &str) -> i64 {
    client(url).await.query_one("SELECT count(*) FROM orders", &[]).await.unwrap().get(0)
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn a_committed_row_survives_a_sigkill_and_a_clean_stop() {
    let mut pg = PostgresServer::start().await.unwrap();
    let url = pg.url("postgres");
    assert_eq!(url, format!("postgres://coffee:coffee@127.0.0.1:{}/postgres", pg.port()));
    let c = client(&url).await;
    c.batch_execute("CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders VALUES (1)").await.unwrap();

    let postmaster = pg.pid().unwrap();
    pg.kill().await.unwrap();
    assert!(!alive(postmaster), "the killed postmaster {postmaster} is gone");
    assert!(c.simple_query("SELECT 1").await.is_err(), "the backend went with it");

    pg.start_again().await.unwrap();
    assert_eq!(count(&url).await, 1, "recovered from the WAL");
    client(&url).await.batch_execute("INSERT INTO orders VALUES (2)").await.unwrap();
    pg.stop().await.unwrap();
    assert_eq!(pg.pid(), None);
    pg.start_again().await.unwrap();
    assert_eq!(count(&url).await, 2);
}

#[tokio::test]
async fn a_wrong_password_is_refused_over_tcp() {
    let pg = PostgresServer::start().await.unwrap();
    let wrong = pg.url("postgres").replace("coffee:coffee@", "coffee:wrong@");
    let err = tokio_postgres::connect(&wrong, tokio_postgres::NoTls).await.err().expect("a wrong password fails");
    assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD), "{err:?}");
}

#[tokio::test]
async fn dropping_the_server_kills_the_postmaster() {
    let pg = PostgresServer::start().await.unwrap();
    let (pid, port) = (pg.pid().unwrap(), pg.port());
    drop(pg);
    assert!(!alive(pid), "postmaster {pid} was killed on drop");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "nothing listens on {port} any more");
}

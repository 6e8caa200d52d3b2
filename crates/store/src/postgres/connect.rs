use std::{str::FromStr, time::Duration};

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use tokio_postgres::{Config, NoTls};

pub type PgPool = Pool;

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// Builds a pool for `url`, creating the database first when it is missing so that a new
/// user needs no manual step. Waits for a connection at most `timeout`.
pub async fn connect(url: &str, max_size: usize) -> anyhow::Result<PgPool> {
    create_database_if_missing(url).await?;
    let mut config = Config::from_str(url).context("parsing DATABASE_URL")?;
    config.connect_timeout(Duration::from_secs(2));
    let mgr = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    let pool = Pool::builder(mgr)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .timeouts(Timeouts {
            wait: Some(Duration::from_secs(2)),
            create: Some(Duration::from_secs(2)),
            recycle: Some(Duration::from_secs(2)),
        })
        .build()?;
    Ok(pool)
}

/// Connects to the server's `postgres` database and creates the target database if absent.
pub async fn create_database_if_missing(url: &str) -> anyhow::Result<()> {
    let config = Config::from_str(url).context("parsing DATABASE_URL")?;
    let dbname = config.get_dbname().unwrap_or("postgres").to_owned();
    if dbname == "postgres" {
        return Ok(());
    }
    let mut admin = config.clone();
    admin.dbname("postgres").connect_timeout(Duration::from_secs(2));
    let (client, conn) = admin.connect(NoTls).await.with_context(|| format!("connecting to PostgreSQL for {url}"))?;
    let task = tokio::spawn(conn);
    let exists = client.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&dbname]).await?.is_some();
    if !exists {
        let sql = format!("CREATE DATABASE \"{}\"", dbname.replace('"', "\"\""));
        if let Err(e) = client.batch_execute(&sql).await {
            // Another process may have created it in between: PostgreSQL says so with
            // 42P04, or with 23505 from pg_database's unique index when both CREATEs ran at once.
            use tokio_postgres::error::SqlState;
            if !matches!(e.code(), Some(c) if *c == SqlState::DUPLICATE_DATABASE || *c == SqlState::UNIQUE_VIOLATION) {
                return Err(e).context("creating database");
            }
        }
        tracing::info!(%dbname, "created database");
    }
    drop(client);
    task.abort();
    Ok(())
}

/// Runs the embedded migrations under an advisory lock, so concurrent starters don't race.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    let mut obj = pool.get().await.context("connecting for migrations")?;
    let client: &mut tokio_postgres::Client = &mut obj;
    client.batch_execute("SELECT pg_advisory_lock(7262637)").await?;
    let result = embedded::migrations::runner().run_async(client).await;
    client.batch_execute("SELECT pg_advisory_unlock(7262637)").await?;
    result.context("running migrations")?;
    Ok(())
}

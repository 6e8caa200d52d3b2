//! Throw-away databases for tests and benches: one place that names, creates and drops them.
//!
//! Tests, the lab's benches and the market-value engine's bench each need a database of their
//! own on the same server, so that runs never see each other's rows and can be dropped whole.

use std::str::FromStr;

use anyhow::Context;
use tokio_postgres::{Config, NoTls};

/// `url` with its database name replaced by `dbname` (user, host, port and options kept).
pub fn with_dbname(url: &str, dbname: &str) -> anyhow::Result<String> {
    let (head, tail) = match url.split_once('?') {
        Some((h, q)) => (h, format!("?{q}")),
        None => (url, String::new()),
    };
    let base = match head.rsplit_once('/') {
        // `postgres://host` has no path: the slash found is part of the scheme.
        Some((b, _)) if !b.ends_with('/') => b,
        _ => head,
    };
    anyhow::ensure!(base.contains("://"), "not a PostgreSQL URL: {url}");
    Ok(format!("{base}/{dbname}{tail}"))
}

/// A database created for one run and dropped by [`ScratchDatabase::drop_now`] (or by the next
/// run's cleanup: names start with a fixed prefix).
#[derive(Debug, Clone)]
pub struct ScratchDatabase {
    /// The server's maintenance database, where CREATE/DROP DATABASE run.
    admin_url: String,
    name: String,
}

impl ScratchDatabase {
    /// Creates `<prefix><random>` on the server of `server_url` (any database on it).
    pub async fn create(server_url: &str, prefix: &str) -> anyhow::Result<ScratchDatabase> {
        anyhow::ensure!(
            prefix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "scratch prefix {prefix:?} must be lowercase letters, digits and underscores"
        );
        let name = format!("{prefix}{}", uuid::Uuid::new_v4().simple());
        let db = ScratchDatabase { admin_url: with_dbname(server_url, "postgres")?, name };
        db.admin(&format!("CREATE DATABASE \"{}\"", db.name)).await.with_context(|| format!("creating database {}", db.name))?;
        Ok(db)
    }

    /// A database named by `url` that other code creates (the app does on its first
    /// connection), to be dropped by this handle.
    pub fn adopt(url: &str) -> ScratchDatabase {
        let name = url.split('?').next().unwrap_or(url).rsplit('/').next().unwrap_or_default().to_owned();
        ScratchDatabase { admin_url: with_dbname(url, "postgres").expect("a PostgreSQL URL"), name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of the scratch database itself.
    pub fn url(&self) -> String {
        with_dbname(&self.admin_url, &self.name).expect("admin URL was parsed")
    }

    /// Drops the database, closing any connection still open to it.
    pub async fn drop_now(&self) -> anyhow::Result<()> {
        self.admin(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name))
            .await
            .with_context(|| format!("dropping {}", self.name))
    }

    /// Drops from a synchronous context (a `Drop` impl, possibly inside a runtime): on a thread
    /// of its own with its own small runtime. Errors are logged, not returned.
    pub fn drop_blocking(&self) {
        let db = self.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            if let Err(e) = rt.block_on(db.drop_now()) {
                tracing::warn!(error = %e, "scratch database not dropped");
            }
        })
        .join();
    }

    async fn admin(&self, sql: &str) -> anyhow::Result<()> {
        let mut config = Config::from_str(&self.admin_url).context("parsing PostgreSQL URL")?;
        config.connect_timeout(std::time::Duration::from_secs(5));
        let (client, conn) = config.connect(NoTls).await.with_context(|| format!("connecting to {}", self.admin_url))?;
        let task = tokio::spawn(conn);
        let result = client.batch_execute(sql).await;
        drop(client);
        let _ = task.await;
        Ok(result?)
    }
}

#[cfg(test)]
mod tests {
    use super::with_dbname;

    #[test]
    fn replaces_only_the_database_name() {
        assert_eq!(with_dbname("postgres://u:p@h:5432/a", "b").unwrap(), "postgres://u:p@h:5432/b");
        assert_eq!(with_dbname("postgres://u:p@h/a?sslmode=disable", "b").unwrap(), "postgres://u:p@h/b?sslmode=disable");
        assert_eq!(with_dbname("postgres://h:5432", "b").unwrap(), "postgres://h:5432/b");
        assert!(with_dbname("nonsense", "b").is_err());
    }
}

//! A private `redis-server` on a free port, its data in a temp dir, in one of the persistence
//! modes whose durability the lab measures.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio::process::Command;

use crate::process::{Server, free_port, wait_ready};

/// How long a start (and an AOF replay) may take before it fails.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What Redis keeps on disk. RDB snapshots are off in every mode (`save ""`), so what survives
/// a kill is exactly what the append-only file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Persistence {
    /// No AOF: a restart comes back empty.
    None,
    /// `appendfsync everysec`: the AOF is fsynced once a second by a background thread.
    AofEverySec,
    /// `appendfsync always`: every write is fsynced before Redis replies to it.
    AofAlways,
}

impl Persistence {
    fn args(self) -> &'static [&'static str] {
        match self {
            Persistence::None => &["--appendonly", "no"],
            Persistence::AofEverySec => &["--appendonly", "yes", "--appendfsync", "everysec"],
            Persistence::AofAlways => &["--appendonly", "yes", "--appendfsync", "always"],
        }
    }
}

/// A `redis-server` child on 127.0.0.1. Dropping it SIGKILLs the server and removes its dir.
pub struct RedisServer {
    persistence: Persistence,
    port: u16,
    server: Option<Server>,
    // Declared last: removed after the server is gone.
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server in `persistence` mode and waits until it answers PING.
    pub async fn start(persistence: Persistence) -> anyhow::Result<RedisServer> {
        let dir = tempfile::Builder::new().prefix("coffee-sandbox-redis-").tempdir().context("creating the Redis temp dir")?;
        let mut redis = RedisServer { persistence, port: free_port()?, server: None, dir };
        std::fs::create_dir_all(redis.data_dir())?;
        redis.run().await?;
        Ok(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn persistence(&self) -> Persistence {
        self.persistence
    }

    /// The running server's pid (for /proc readings); `None` while it is down.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(Server::pid)
    }

    /// SIGKILL, as a crash: nothing is flushed; waits until the process is gone.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut server) = self.server.take() {
            server.kill().await?;
        }
        Ok(())
    }

    /// SIGTERM: Redis fsyncs its AOF and exits; waits for it.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut server) = self.server.take() {
            server.stop(rustix::process::Signal::TERM).await?;
        }
        Ok(())
    }

    /// Starts again on the same port and data dir: Redis replays its AOF (when it has one).
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.server.is_none(), "start_again of a Redis that is running: kill or stop it first");
        self.run().await
    }

    /// Starts again on the same port with the data dir wiped first: a Redis that lost its data.
    pub async fn start_empty(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.server.is_none(), "start_empty of a Redis that is running: kill or stop it first");
        std::fs::remove_dir_all(self.data_dir()).context("wiping the Redis data dir")?;
        std::fs::create_dir_all(self.data_dir())?;
        self.run().await
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    async fn run(&mut self) -> anyhow::Result<()> {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--port", &self.port.to_string(), "--save", "", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.data_dir())
            .args(self.persistence.args());
        let log = self.dir.path().join("redis.log");
        let mut server = Server::spawn(cmd, "redis-server", &log)?;
        let url = self.url();
        let what = format!("redis-server on port {} ({:?})", self.port, self.persistence);
        // PING answers LOADING while the AOF is replayed: ready is a PONG, after the replay.
        wait_ready(&mut server, READY_TIMEOUT, &what, || ping(url.clone())).await?;
        self.server = Some(server);
        Ok(())
    }
}

async fn ping(url: String) -> bool {
    let Ok(client) = redis::Client::open(url) else { return false };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else { return false };
    redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok_and(|p| p == "PONG")
}

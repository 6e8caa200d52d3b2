//! A private PostgreSQL cluster: `initdb` in a temp dir, then `postgres` itself as the child
//! (not `pg_ctl`, which detaches it), so its pid is the postmaster's and a SIGKILL to its process
//! group is a crash: no checkpoint, recovery from the WAL at the next start.
//!
//! Authentication is what the product meets on Debian: user `coffee` with password `coffee`
//! over TCP on 127.0.0.1 (scram-sha-256), trust only on the cluster's own unix socket dir.
//! PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tokio::process::Command;

use crate::process::{Server, free_port, log_tail, wait_ready};

/// How long a start (with crash recovery) may take before it fails.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

pub struct PostgresServer {
    bin: PathBuf,
    owner: Option<(u32, u32)>,
    port: u16,
    server: Option<Server>,
    // Declared last: removed after the server is gone.
    dir: tempfile::TempDir,
}

impl PostgresServer {
    /// `initdb` a new cluster and start it; ready once `coffee` can log in over TCP.
    pub async fn start() -> anyhow::Result<PostgresServer> {
        let bin = bin_dir()?;
        let owner = if is_root() { Some(postgres_user()?) } else { None };
        let dir = tempfile::Builder::new().prefix("coffee-sandbox-pg-").tempdir().context("creating the PostgreSQL temp dir")?;
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, "coffee\n")?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).context("giving the temp dir to the postgres user")?;
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))?;
        }
        let pg = PostgresServer { bin, owner, port: free_port()?, server: None, dir };
        let log = pg.dir.path().join("initdb.log");
        let file = std::fs::File::create(&log)?;
        let status = pg
            .command("initdb")
            .arg("-D")
            .arg(pg.data_dir())
            .args(["-U", "coffee", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdout(file.try_clone()?)
            .stderr(file)
            .status()
            .await
            .context("running initdb")?;
        anyhow::ensure!(status.success(), "initdb failed ({status}):\n{}", log_tail(&log));
        let mut pg = pg;
        pg.run().await?;
        Ok(pg)
    }

    /// `postgres://coffee:coffee@127.0.0.1:<port>/<dbname>` (the `postgres` database exists;
    /// others are the caller's to create).
    pub fn url(&self, dbname: &str) -> String {
        format!("postgres://coffee:coffee@127.0.0.1:{}/{dbname}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's pid; `None` while it is down.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(Server::pid)
    }

    /// SIGKILL to the postmaster and every backend: a crash.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut server) = self.server.take() {
            server.kill().await?;
        }
        Ok(())
    }

    /// A clean stop: SIGINT, PostgreSQL's "fast" shutdown (SIGTERM's "smart" one would wait for
    /// every client, a pool's idle connections included, to disconnect). It checkpoints first.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut server) = self.server.take() {
            server.stop(rustix::process::Signal::INT).await?;
        }
        Ok(())
    }

    /// Starts again on the same port and data dir (crash recovery after a [`kill`](Self::kill)).
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.server.is_none(), "start_again of a PostgreSQL that is running: kill or stop it first");
        self.run().await
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A PostgreSQL program, as the `postgres` user when this process is root.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.current_dir(self.dir.path());
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    async fn run(&mut self) -> anyhow::Result<()> {
        let mut cmd = self.command("postgres");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1", "-k"])
            .arg(self.dir.path());
        let mut server = Server::spawn(cmd, "postgres", &self.dir.path().join("server.log"))?;
        let url = self.url("postgres");
        let what = format!("PostgreSQL on port {}", self.port);
        wait_ready(&mut server, READY_TIMEOUT, &what, || select_one(url.clone())).await?;
        self.server = Some(server);
        Ok(())
    }
}

async fn select_one(url: String) -> bool {
    let Ok((client, connection)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await else { return false };
    let task = tokio::spawn(connection);
    let ok = client.simple_query("SELECT 1").await.is_ok();
    drop(client);
    let _ = task.await;
    ok
}

/// The newest installed PostgreSQL's binaries: Debian keeps them in /usr/lib/postgresql/<v>/bin,
/// off the PATH; elsewhere `initdb` on the PATH.
fn bin_dir() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file());
    on_path.context("PostgreSQL's server programs are not installed (no initdb in /usr/lib/postgresql/*/bin nor on the PATH)")
}

/// Whether this process runs as root: /proc/self belongs to the process's user.
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// uid and gid of the `postgres` user, from /etc/passwd (the Debian package creates it).
fn postgres_user() -> anyhow::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string(Path::new("/etc/passwd")).context("reading /etc/passwd")?;
    parse_passwd(&passwd, "postgres").context("running as root, but there is no `postgres` user to run PostgreSQL as (it refuses root)")
}

fn parse_passwd(passwd: &str, user: &str) -> Option<(u32, u32)> {
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&user))
        .and_then(|f| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_postgres_user_is_found_by_name_not_by_prefix() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\npostgresql:x:5:5::/:/bin/false\npostgres:x:104:110:PostgreSQL administrator:/var/lib/postgresql:/bin/bash\n";
        assert_eq!(super::parse_passwd(passwd, "postgres"), Some((104, 110)));
        assert_eq!(super::parse_passwd(passwd, "nobody"), None);
    }
}

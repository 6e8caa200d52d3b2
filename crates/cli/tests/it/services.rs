//! Private servers for the tests that kill them: an Apache Kafka broker, a Redis, a PostgreSQL
//! cluster, each on free ports with its own data directory, so a restart disturbs no other test.
//! They are the same programs the scripts run, started the same way.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::process::{Child, Command};

use crate::support::wait_until;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("coffee-rt-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A server process and its scratch directory: killed and removed when dropped.
struct Running {
    dir: PathBuf,
    child: Option<Child>,
}

impl Running {
    async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.start_kill().unwrap(); // SIGKILL
            c.wait().await.unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One KRaft node (broker and controller) from the jars `scripts/test` resolved.
pub struct KafkaBroker {
    pub port: u16,
    process: Running,
}

impl KafkaBroker {
    pub async fn start(id: &str) -> KafkaBroker {
        let (port, controller) = (free_port(), free_port());
        let dir = scratch_dir(&format!("kafka-{id}"));
        let template = include_str!("../../../../deploy/kafka/server.properties");
        let config = template
            .replace("@LOG_DIRS@", dir.join("data").to_str().unwrap())
            .replace("@PORT@", &port.to_string())
            .replace("@CONTROLLER_PORT@", &controller.to_string());
        std::fs::write(dir.join("server.properties"), config).unwrap();
        let format = java()
            .args(["kafka.tools.StorageTool", "format", "-t", "MkU3OEVBNTcwNTJENDM2Qg", "-c"])
            .arg(dir.join("server.properties"))
            .stdout(Stdio::null())
            .status()
            .await
            .unwrap();
        assert!(format.success(), "formatting the private broker's log directory");
        let mut broker = KafkaBroker { port, process: Running { dir, child: None } };
        broker.run().await;
        broker
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the broker on its existing log directory and waits until it answers metadata.
    pub async fn run(&mut self) {
        let log = std::fs::File::create(self.process.dir.join("stdout.log")).unwrap();
        let child = java()
            .args(["-Xms256m", "-Xmx256m", "kafka.Kafka"])
            .arg(self.process.dir.join("server.properties"))
            .stdout(Stdio::from(log))
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.process.child = Some(child);
        let address = self.address();
        let ready = wait_until(Duration::from_secs(60), || {
            let address = address.clone();
            async move { tokio::task::spawn_blocking(move || metadata_answers(&address)).await.unwrap() }
        })
        .await;
        assert!(ready, "the private broker answers metadata (log: {})", self.process.dir.join("stdout.log").display());
    }

    pub async fn kill(&mut self) {
        self.process.kill().await;
    }
}

fn java() -> Command {
    let libs =
        std::env::var("COFFEE_RT_KAFKA_LIBS").expect("COFFEE_RT_KAFKA_LIBS names the Kafka jars (scripts/test resolves them and sets it)");
    assert!(Path::new(&libs).is_dir(), "COFFEE_RT_KAFKA_LIBS={libs} is not a directory of Kafka jars");
    let mut cmd = Command::new("java");
    let log4j = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/kafka/tools-log4j2.yaml");
    cmd.arg(format!("-Dlog4j2.configurationFile={log4j}")).arg("-cp").arg(format!("{libs}/*"));
    cmd
}

fn metadata_answers(address: &str) -> bool {
    use rdkafka::{ClientConfig, consumer::BaseConsumer, consumer::Consumer};
    let Ok(c) = ClientConfig::new().set("bootstrap.servers", address).set("log_level", "0").create::<BaseConsumer>() else { return false };
    c.fetch_metadata(None, Duration::from_secs(1)).is_ok_and(|m| !m.brokers().is_empty())
}

/// A Redis that keeps nothing on disk unless told to (`appendonly`), so a restart comes back empty.
pub struct RedisServer {
    pub port: u16,
    process: Running,
    args: Vec<String>,
}

impl RedisServer {
    pub async fn start(id: &str, extra: &[&str]) -> RedisServer {
        let port = free_port();
        let dir = scratch_dir(&format!("redis-{id}"));
        let mut args: Vec<String> =
            ["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--dir", dir.to_str().unwrap()].map(String::from).to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut r = RedisServer { port, process: Running { dir, child: None }, args };
        r.run().await;
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub async fn run(&mut self) {
        let child = Command::new("redis-server")
            .args(&self.args)
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed");
        self.process.child = Some(child);
        let url = self.url();
        let up = wait_until(Duration::from_secs(20), || {
            let url = url.clone();
            async move {
                let Ok(client) = redis::Client::open(url) else { return false };
                let Ok(mut c) = client.get_multiplexed_async_connection().await else { return false };
                redis::cmd("PING").query_async::<String>(&mut c).await.is_ok()
            }
        })
        .await;
        assert!(up, "the private Redis answers PING");
    }

    pub async fn kill(&mut self) {
        self.process.kill().await;
    }
}

/// A PostgreSQL cluster of its own (initdb, trust on 127.0.0.1, superuser `coffee`). As root,
/// the server runs as the `postgres` user, since PostgreSQL refuses to run as root.
pub struct PgCluster {
    pub port: u16,
    dir: PathBuf,
}

impl PgCluster {
    pub async fn start(id: &str) -> PgCluster {
        let port = free_port();
        let dir = scratch_dir(&format!("pg-{id}"));
        if is_root() {
            let ok = std::process::Command::new("chown").arg("postgres:postgres").arg(&dir).status().unwrap();
            assert!(ok.success(), "chown of the private cluster's directory");
        }
        let data = dir.join("data");
        let status = pg_command("initdb")
            .args(["-A", "trust", "-U", "coffee", "-E", "UTF8", "--no-sync", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .await
            .unwrap();
        assert!(status.success(), "initdb of a private cluster");
        let cluster = PgCluster { port, dir };
        cluster.run().await;
        cluster
    }

    pub async fn run(&self) {
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on", self.port, self.dir.display());
        let status = pg_command("pg_ctl")
            .args(["-w", "-t", "60", "-D"])
            .arg(self.dir.join("data"))
            .args(["-l"])
            .arg(self.dir.join("server.log"))
            .args(["-o", &opts, "start"])
            .stdout(Stdio::null())
            .status()
            .await
            .unwrap();
        assert!(status.success(), "the private PostgreSQL starts (log: {})", self.dir.join("server.log").display());
    }

    /// Stops the server the way a crash does: no checkpoint, recovery from the WAL at the next start.
    pub async fn crash(&self) {
        let status = pg_command("pg_ctl")
            .args(["-D"])
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .status()
            .await
            .unwrap();
        assert!(status.success(), "the private PostgreSQL stops");
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ =
            std::process::Command::new(pg_bin("pg_ctl")).args(["-D"]).arg(self.dir.join("data")).args(["-m", "immediate", "stop"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether this process runs as root: /proc/self belongs to the process's user.
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// The newest installed PostgreSQL's binaries (Debian keeps them off the PATH).
fn pg_bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> =
        std::fs::read_dir("/usr/lib/postgresql").expect("PostgreSQL is installed").map(|e| e.unwrap().path()).collect();
    versions.sort_by_key(|p| p.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse::<u32>().ok()).unwrap_or(0));
    versions.last().expect("a PostgreSQL version").join("bin").join(name)
}

fn pg_command(name: &str) -> Command {
    let bin = pg_bin(name);
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(bin);
        cmd
    } else {
        Command::new(bin)
    }
}

//! The soak's world, all of it private: a PostgreSQL, a Redis and a Kafka broker of its own
//! (`coffee-sandbox`: the shared services on the usual ports serve other people's tests and are
//! never stopped), and the real `coffee-rt` roles pointed at them by environment: `serve`
//! (one or more), `worker` (v2), `processor` (v3) and `aggregate --every 1s` (v1).
//!
//! A role that exits when nobody killed it is a finding: [`Cluster::reap_exits`] names it (with
//! its log) and the soak starts it again, so one crash does not end the run and every crash is
//! reported. Each start of a role logs to a file of its own (`worker-0.3.log`), kept when the
//! soak fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use coffee_sandbox::{KafkaBroker, Persistence, PostgresServer, RedisServer};
use tokio::time::Instant;

use crate::children::{self, Child};
use crate::load::client::HttpClient;

/// The soak's names inside its private servers.
pub const DATABASE: &str = "coffee_soak";
pub const NAMESPACE: &str = "soak:";
pub const TOPIC: &str = "soak_orders";
pub const GROUP: &str = "soak_processors";
/// PostgreSQL connections per role: seven roles at the default 16 would pass the private
/// server's `max_connections` of 100.
const PG_POOL: &str = "8";
/// How long a `serve` may take to answer `/readyz`.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// One `coffee-rt` role instance, started and restarted under the same name.
pub struct Role {
    pub name: String,
    role: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    child: Option<Child>,
    starts: u32,
}

impl Role {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.pid)
    }

    pub fn is(&self, role: &str) -> bool {
        self.role == role
    }
}

pub struct Cluster {
    pub redis: RedisServer,
    pub postgres: PostgresServer,
    pub kafka: KafkaBroker,
    pub roles: Vec<Role>,
    /// The `serve` processes' base URLs.
    pub servers: Vec<String>,
    bin: PathBuf,
    pub logs: PathBuf,
    env: Vec<(&'static str, String)>,
}

/// How many of each role.
pub struct Shape {
    pub servers: usize,
    pub workers: usize,
    pub processors: usize,
    pub persistence: Persistence,
}

impl Cluster {
    /// Starts the three servers (at once: the broker alone takes seconds), then one `serve`
    /// (it creates the database and migrates it, so the others never race on that), the
    /// other servers, and the pipeline roles.
    pub async fn start(bin: PathBuf, logs: PathBuf, shape: &Shape, progress: &dyn Fn(&str)) -> anyhow::Result<Cluster> {
        progress("soak: starting a private PostgreSQL, Redis and Kafka broker");
        let (postgres, redis, kafka) = tokio::try_join!(
            async { PostgresServer::start().await.context("starting the private PostgreSQL") },
            async { RedisServer::start(shape.persistence).await.context("starting the private Redis") },
            async { KafkaBroker::start().await.context("starting the private Kafka broker") },
        )?;
        let env = vec![
            ("DATABASE_URL", postgres.url(DATABASE)),
            ("REDIS_URL", redis.url()),
            ("KAFKA_BROKERS", kafka.brokers()),
            ("COFFEE_RT_KAFKA_TOPIC", TOPIC.to_string()),
            ("COFFEE_RT_KAFKA_GROUP", GROUP.to_string()),
            ("COFFEE_RT_NAMESPACE", NAMESPACE.to_string()),
            ("COFFEE_RT_PG_POOL", PG_POOL.to_string()),
            ("COFFEE_RT_LOG", crate::config::DEFAULT_LOG.to_string()),
        ];
        let mut cluster = Cluster { redis, postgres, kafka, roles: Vec::new(), servers: Vec::new(), bin, logs, env };
        for k in 0..shape.servers {
            let port = free_port()?;
            cluster.servers.push(format!("http://127.0.0.1:{port}"));
            cluster.add(format!("serve-{k}"), "serve", vec![], vec![("COFFEE_RT_LISTEN", format!("127.0.0.1:{port}"))]);
        }
        for k in 0..shape.workers {
            // A stable consumer name: a restarted worker finds its own pending entries.
            cluster.add(format!("worker-{k}"), "worker", vec![], vec![("COFFEE_RT_CONSUMER", format!("soak-worker-{k}"))]);
        }
        for k in 0..shape.processors {
            cluster.add(format!("processor-{k}"), "processor", vec![], vec![]);
        }
        cluster.add("aggregate".into(), "aggregate", vec!["--every".into(), "1s".into()], vec![]);

        progress("soak: starting the coffee-rt roles");
        cluster.start_role(0)?;
        cluster.wait_ready(0).await?;
        for i in 1..cluster.roles.len() {
            cluster.start_role(i)?;
        }
        for i in 1..shape.servers {
            cluster.wait_ready(i).await?;
        }
        Ok(cluster)
    }

    fn add(&mut self, name: String, role: &'static str, args: Vec<String>, env: Vec<(&'static str, String)>) {
        self.roles.push(Role { name, role, args, env, child: None, starts: 0 });
    }

    /// The index of the `instance`-th role `role` (`worker` 1 is the second worker).
    pub fn index_of(&self, role: &str, instance: usize) -> Option<usize> {
        self.roles.iter().enumerate().filter(|(_, r)| r.is(role)).nth(instance).map(|(i, _)| i)
    }

    /// Starts role `i` (again), its output in a log file of this start's own.
    pub fn start_role(&mut self, i: usize) -> anyhow::Result<u32> {
        let (bin, logs, env) = (&self.bin, &self.logs, &self.env);
        let r = &mut self.roles[i];
        anyhow::ensure!(r.child.is_none(), "{} is running already", r.name);
        r.starts += 1;
        let mut cmd = children::command(bin, r.role);
        cmd.args(&r.args).envs(env.iter().map(|(k, v)| (*k, v.as_str()))).envs(r.env.iter().map(|(k, v)| (*k, v.as_str())));
        let child = children::spawn(cmd, logs.join(format!("{}.{}.log", r.name, r.starts)))?;
        let pid = child.pid;
        r.child = Some(child);
        Ok(pid)
    }

    /// SIGKILL to role `i`, and waits until it is gone. Its pid.
    pub async fn kill_role(&mut self, i: usize) -> anyhow::Result<u32> {
        let r = &mut self.roles[i];
        let mut child = r.child.take().with_context(|| format!("{} is not running", r.name))?;
        let pid = child.pid;
        // The lab has no libc; kill(1) is everywhere (as children::stop does for SIGTERM).
        let status = tokio::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().await?;
        anyhow::ensure!(status.success(), "kill -KILL {pid} ({}) failed", r.name);
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.ensure_running().is_ok() {
            anyhow::ensure!(Instant::now() < deadline, "{} (pid {pid}) still runs 10 s after SIGKILL", r.name);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(pid)
    }

    /// The roles that exited although nobody stopped them: (index, what happened). Each is
    /// left stopped, for the caller to start again.
    pub fn reap_exits(&mut self) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for (i, r) in self.roles.iter_mut().enumerate() {
            let Some(child) = r.child.as_mut() else { continue };
            if let Err(e) = child.ensure_running() {
                out.push((i, format!("{e:#}; the end of its log:\n{}", log_tail(&child.log))));
                r.child = None;
            }
        }
        out
    }

    /// Every process the soak watches: name and pid (`None` while it is down).
    pub fn pids(&self) -> Vec<(String, Option<u32>)> {
        let mut out: Vec<(String, Option<u32>)> =
            vec![("postgres".into(), self.postgres.pid()), ("redis".into(), self.redis.pid()), ("kafka".into(), self.kafka.pid())];
        out.extend(self.roles.iter().map(|r| (r.name.clone(), r.pid())));
        out
    }

    /// SIGTERM to every role, SIGKILL after the grace period. Whether all exited cleanly.
    pub async fn stop_roles(&mut self) -> bool {
        let mut running: Vec<Child> = self.roles.iter_mut().filter_map(|r| r.child.take()).collect();
        children::stop(&mut running).await
    }

    async fn wait_ready(&mut self, i: usize) -> anyhow::Result<()> {
        let k = self.roles[..i].iter().filter(|r| r.is("serve")).count();
        let url: http::Uri = format!("{}/readyz", self.servers[k]).parse()?;
        let client = HttpClient::new();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let r = &mut self.roles[i];
            r.child.as_mut().context("not started")?.ensure_running()?;
            if client.get_text(url.clone()).await.is_ok() {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "{} did not answer {url} within {READY_TIMEOUT:?}", r.name);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A free port on 127.0.0.1, released at once for the server to bind.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0").context("binding a free port")?.local_addr()?.port())
}

/// The last lines of a log, for a finding.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

//! A private Apache Kafka broker: one KRaft node (broker and controller) from the jars
//! `scripts/services.sh` resolves, configured from the same `deploy/kafka/server.properties`,
//! on two free ports with its log dir in a temp dir.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::Command;

use crate::process::{Server, free_port, log_tail, wait_ready};

/// The broker's configuration template and log configuration: compiled in, so a lab binary
/// started from anywhere runs the broker the scripts run.
const SERVER_PROPERTIES: &str = include_str!("../../../deploy/kafka/server.properties");
const LOG4J: &str = include_str!("../../../deploy/kafka/log4j2.yaml");
const TOOLS_LOG4J: &str = include_str!("../../../deploy/kafka/tools-log4j2.yaml");
const POM: &str = include_str!("../../../deploy/kafka/pom.xml");

/// A JVM start, log replay and controller election on a busy 2-core machine.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// The KRaft cluster id the log dir is formatted with (any base64 UUID; one per broker dir).
const CLUSTER_ID: &str = "Y29mZmVlLXNhbmRib3gAAA";

pub struct KafkaBroker {
    libs: PathBuf,
    port: u16,
    server: Option<Server>,
    // Declared last: removed after the broker is gone.
    dir: tempfile::TempDir,
}

impl KafkaBroker {
    /// Formats a new log dir and starts the broker; ready once it answers a metadata request
    /// listing itself.
    pub async fn start() -> anyhow::Result<KafkaBroker> {
        let libs = kafka_libs()?;
        let dir = tempfile::Builder::new().prefix("coffee-sandbox-kafka-").tempdir().context("creating the Kafka temp dir")?;
        let (port, controller) = (free_port()?, free_port()?);
        let config = SERVER_PROPERTIES
            .replace("@LOG_DIRS@", dir.path().join("data").to_str().context("a UTF-8 temp dir")?)
            .replace("@PORT@", &port.to_string())
            .replace("@CONTROLLER_PORT@", &controller.to_string());
        std::fs::write(dir.path().join("server.properties"), config)?;
        std::fs::write(dir.path().join("log4j2.yaml"), LOG4J)?;
        std::fs::write(dir.path().join("tools-log4j2.yaml"), TOOLS_LOG4J)?;
        let broker = KafkaBroker { libs, port, server: None, dir };
        let log = broker.dir.path().join("format.log");
        let file = std::fs::File::create(&log)?;
        let status = broker
            .java("tools-log4j2.yaml")
            .args(["kafka.tools.StorageTool", "format", "-t", CLUSTER_ID, "-c"])
            .arg(broker.dir.path().join("server.properties"))
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .status()
            .await;
        let status = match status {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!("java is not installed (needed to run the Kafka broker)"),
            status => status.context("running Kafka's StorageTool")?,
        };
        anyhow::ensure!(status.success(), "formatting the broker's log dir failed ({status}):\n{}", log_tail(&log));
        let mut broker = broker;
        broker.run().await?;
        Ok(broker)
    }

    /// The bootstrap servers: `127.0.0.1:<port>`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JVM's pid; `None` while it is down.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(Server::pid)
    }

    /// SIGKILL: a crash; what the broker had not flushed is recovered (or truncated) from its log.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut server) = self.server.take() {
            server.kill().await?;
        }
        Ok(())
    }

    /// SIGTERM: a controlled shutdown; waits for the JVM to exit.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut server) = self.server.take() {
            server.stop(rustix::process::Signal::TERM).await?;
        }
        Ok(())
    }

    /// Starts again on the same ports and log dir.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.server.is_none(), "start_again of a broker that is running: kill or stop it first");
        self.run().await
    }

    fn java(&self, log4j: &str) -> Command {
        let mut cmd = Command::new("java");
        cmd.arg(format!("-Dlog4j2.configurationFile={}", self.dir.path().join(log4j).display()))
            .arg(format!("-Dkafka.logs.dir={}", self.dir.path().display()))
            .arg("-cp")
            .arg(format!("{}/*", self.libs.display()));
        cmd
    }

    async fn run(&mut self) -> anyhow::Result<()> {
        let mut cmd = self.java("log4j2.yaml");
        // A small heap: the sandbox broker shares the machine with the shared one and the tests.
        cmd.args(["-Xms256m", "-Xmx256m", "-XX:+UseG1GC", "-Djava.awt.headless=true", "kafka.Kafka"])
            .arg(self.dir.path().join("server.properties"));
        let mut server = Server::spawn(cmd, "java", &self.dir.path().join("stdout.log"))?;
        let brokers = self.brokers();
        let what = format!("the Kafka broker on port {} (its log: {})", self.port, self.dir.path().join("server.log").display());
        wait_ready(&mut server, READY_TIMEOUT, &what, || {
            let brokers = brokers.clone();
            async move { tokio::task::spawn_blocking(move || metadata_lists_a_broker(&brokers)).await.unwrap_or(false) }
        })
        .await?;
        self.server = Some(server);
        Ok(())
    }
}

fn metadata_lists_a_broker(brokers: &str) -> bool {
    use rdkafka::{ClientConfig, consumer::BaseConsumer, consumer::Consumer};
    let Ok(c) = ClientConfig::new().set("bootstrap.servers", brokers).set("log_level", "0").create::<BaseConsumer>() else { return false };
    c.fetch_metadata(None, Duration::from_secs(1)).is_ok_and(|m| !m.brokers().is_empty())
}

/// The Kafka jars: `$COFFEE_RT_KAFKA_LIBS`, as `scripts/services.sh` exports it, or else the
/// newest `<cache>/coffee-rt/kafka-<version>-<hash>/libs` it resolved (`<cache>` is
/// `$XDG_CACHE_HOME` or `~/.cache`; the version is deploy/kafka/pom.xml's).
fn kafka_libs() -> anyhow::Result<PathBuf> {
    let version = pom_version(POM).context("deploy/kafka/pom.xml names no <kafka.version>")?;
    let jar = format!("kafka_2.13-{version}.jar");
    if let Some(libs) = std::env::var_os("COFFEE_RT_KAFKA_LIBS") {
        let libs = PathBuf::from(libs);
        anyhow::ensure!(
            libs.join(&jar).is_file(),
            "COFFEE_RT_KAFKA_LIBS={} holds no {jar}: run `. scripts/services.sh; ensure_kafka`",
            libs.display()
        );
        return Ok(libs);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .context("neither COFFEE_RT_KAFKA_LIBS nor HOME is set")?
        .join("coffee-rt");
    let prefix = format!("kafka-{version}-");
    let newest = std::fs::read_dir(&cache)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)))
        .map(|e| e.path().join("libs"))
        .filter(|libs| libs.join(&jar).is_file())
        .max_by_key(|libs| std::fs::metadata(libs).and_then(|m| m.modified()).ok());
    newest.with_context(|| {
        format!(
            "the Kafka {version} jars are not installed: COFFEE_RT_KAFKA_LIBS is unset and no {}/{prefix}*/libs holds {jar}; run `. scripts/services.sh; ensure_kafka`",
            cache.display()
        )
    })
}

fn pom_version(pom: &str) -> Option<&str> {
    let start = pom.find("<kafka.version>")? + "<kafka.version>".len();
    Some(pom[start..].split('<').next()?.trim())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_kafka_version_is_the_poms() {
        assert_eq!(super::pom_version("<properties>\n<kafka.version> 4.1.1 </kafka.version>"), Some("4.1.1"));
        assert!(super::pom_version(super::POM).is_some_and(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit())));
    }
}

use std::time::Duration;

use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    producer::{FutureProducer, Producer},
    types::RDKafkaErrorCode,
};

/// Where the broker is and which topic carries v3 orders.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Kafka bootstrap servers (Apache Kafka, Redpanda or a managed Kafka).
    pub brokers: String,

    /// Topic of v3 orders; created with `partitions` partitions when missing.
    pub topic: String,

    /// Consumer group of the v3 processors.
    pub group: String,

    /// Partitions of a topic this process creates: the most processors that can share the work.
    pub partitions: i32,

    /// Replicas of each partition of a topic this process creates: 1 on a single broker, 3 on
    /// a production cluster (with the brokers' `min.insync.replicas=2`, so `acks=all` means two copies).
    pub replication_factor: i32,

    /// How long the v3 producer holds a record to batch it with others (`linger.ms`): the
    /// floor under every v3 acknowledgement at low rates, and fewer, fuller requests at high
    /// ones. 1 ms measured best overall: 0 ms halves p50 at 1,000/s but costs ~20 % more CPU
    /// per order at 10,000/s; librdkafka's default 5 ms breaks 5 ms p99 at 1,000/s
    /// (docs/PERFORMANCE.md).
    pub producer_linger: std::time::Duration,
}

impl Default for KafkaSettings {
    /// A local broker, and the names the deployment's configuration defaults to.
    fn default() -> Self {
        KafkaSettings {
            brokers: "127.0.0.1:9092".into(),
            topic: "orders".into(),
            group: "coffee-processors".into(),
            partitions: 4,
            replication_factor: 1,
            producer_linger: Duration::from_millis(1),
        }
    }
}

impl KafkaSettings {
    pub fn dead_letter_topic(&self) -> String {
        format!("{}.dead", self.topic)
    }

    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        // Nagle's algorithm would hold a small request back until the previous one is
        // acknowledged; every v3 acknowledgement waits on such small requests.
        c.set("bootstrap.servers", &self.brokers)
            .set("socket.timeout.ms", "2000")
            .set("socket.nagle.disable", "true")
            .set("log_level", "3");
        c
    }
}

fn admin_options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(5))).request_timeout(Some(Duration::from_secs(5)))
}

/// Creates `topic` with `partitions` partitions (and the configured replication factor) unless it exists.
pub async fn ensure_topic(settings: &KafkaSettings, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = settings.client_config().create()?;
    let replication = TopicReplication::Fixed(settings.replication_factor);
    let results = admin.create_topics(&[NewTopic::new(topic, partitions, replication)], &admin_options()).await?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("creating topic {name}: {code}"),
        }
    }
    Ok(())
}

/// Deletes `topics`; one that does not exist is no error. Tests and the lab clean up with it.
pub async fn delete_topics(settings: &KafkaSettings, topics: &[String]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = settings.client_config().create()?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    for r in admin.delete_topics(&names, &admin_options()).await? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) | Err((_, RDKafkaErrorCode::UnknownTopic)) => {}
            Err((name, code)) => anyhow::bail!("deleting topic {name}: {code}"),
        }
    }
    Ok(())
}

/// Asks the broker for the topic's metadata: the readiness check of anything that needs it.
/// Holds one client, made once: a readiness probe every few seconds must not start a new
/// librdkafka client (threads, connections) each time.
#[derive(Clone)]
pub struct TopicProbe {
    producer: FutureProducer,
    topic: String,
}

impl TopicProbe {
    pub fn new(settings: &KafkaSettings) -> anyhow::Result<TopicProbe> {
        Ok(TopicProbe::sharing(settings.client_config().create()?, &settings.topic))
    }

    /// A probe on an existing producer's client.
    pub fn sharing(producer: FutureProducer, topic: &str) -> TopicProbe {
        TopicProbe { producer, topic: topic.to_owned() }
    }

    /// Whether the broker answers and the topic has partitions (within ~800 ms).
    pub async fn check(&self) -> anyhow::Result<()> {
        let (producer, topic) = (self.producer.clone(), self.topic.clone());
        tokio::task::spawn_blocking(move || {
            let md = producer.client().fetch_metadata(Some(&topic), Duration::from_millis(800))?;
            let t = md.topics().first().ok_or_else(|| anyhow::anyhow!("no metadata"))?;
            anyhow::ensure!(t.error().is_none() && !t.partitions().is_empty(), "topic {topic} is missing");
            Ok(())
        })
        .await?
    }
}

use std::time::Duration;

use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    types::RDKafkaErrorCode,
};

/// Where the broker is and which topic carries v3 orders.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaSettings {
    /// Kafka bootstrap servers (any Kafka-protocol broker: Kafka, Redpanda, nisshi).
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,

    /// Topic of v3 orders; created with `--partitions` partitions when missing.
    #[arg(long, env = "KAFKA_TOPIC", default_value = "orders")]
    pub topic: String,

    /// Consumer group of the v3 processors.
    #[arg(long = "group", env = "KAFKA_GROUP", default_value = "coffee-processors")]
    pub group: String,

    /// Partitions of a topic this process creates.
    #[arg(long, env = "KAFKA_PARTITIONS", default_value_t = 4)]
    pub partitions: i32,
}

impl KafkaSettings {
    pub fn dead_letter_topic(&self) -> String {
        format!("{}.dead", self.topic)
    }

    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers).set("socket.timeout.ms", "2000").set("log_level", "3");
        c
    }
}

/// Creates `topic` with `partitions` partitions unless it exists.
pub async fn ensure_topic(settings: &KafkaSettings, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = settings.client_config().create()?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(5))).request_timeout(Some(Duration::from_secs(5)));
    let results = admin.create_topics(&[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))], &opts).await?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("creating topic {name}: {code}"),
        }
    }
    Ok(())
}

//! KafkaBroker: a record produced with acks=all is still there after SIGKILL of the broker and
//! a start on the same log dir, and the broker comes back on the same address.

use std::time::Duration;

use coffee_sandbox::KafkaBroker;
use rdkafka::{
    ClientConfig, Message,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    consumer::{BaseConsumer, Consumer},
    producer::{FutureProducer, FutureRecord},
};

async fn create_topic(brokers: &str, topic: &str) {
    let admin: AdminClient<_> = ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let done = admin.create_topics(&[NewTopic::new(topic, 1, TopicReplication::Fixed(1))], &AdminOptions::new()).await.unwrap();
    done.into_iter().for_each(|r| r.map(|_| ()).unwrap());
}

async fn produce(brokers: &str, topic: &str, payload: &str) {
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", brokers).set("acks", "all").set("message.timeout.ms", "30000").create().unwrap();
    producer.send(FutureRecord::<(), _>::to(topic).payload(payload), Duration::from_secs(30)).await.map_err(|(e, _)| e).unwrap();
}

/// Every payload in the topic from offset 0, read until 3 s pass with nothing new.
fn read_all(brokers: String, topic: String) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "sandbox-test")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let (mut seen, mut idle) = (Vec::new(), 0);
    while idle < 30 {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                seen.push(String::from_utf8_lossy(m.payload().unwrap()).into_owned());
                idle = 0;
            }
            _ => idle += 1,
        }
    }
    seen
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn an_acknowledged_record_survives_a_sigkill_of_the_broker() {
    let mut kafka = KafkaBroker::start().await.unwrap();
    let brokers = kafka.brokers();
    assert_eq!(brokers, format!("127.0.0.1:{}", kafka.port()));
    create_topic(&brokers, "orders").await;
    produce(&brokers, "orders", "order-1").await;

    let jvm = kafka.pid().unwrap();
    kafka.kill().await.unwrap();
    assert!(!alive(jvm), "the killed broker {jvm} is gone");
    assert!(std::net::TcpStream::connect(("127.0.0.1", kafka.port())).is_err(), "nothing listens while it is down");

    kafka.start_again().await.unwrap();
    assert_eq!(kafka.brokers(), brokers, "the same address");
    produce(&brokers, "orders", "order-2").await;
    let seen = tokio::task::spawn_blocking(move || read_all(brokers, "orders".into())).await.unwrap();
    assert_eq!(seen, ["order-1", "order-2"]);

    kafka.stop().await.unwrap();
    assert_eq!(kafka.pid(), None);
}

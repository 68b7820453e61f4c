//! The embedded broker on a stable address: clients bootstrap there, the broker's metadata
//! names that address (not the mock cluster's random port), and after a restart on the same
//! address a producer configured for it works unchanged.

use std::time::Duration;

use dcpilot_background::EmbeddedBroker;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message};

fn free_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

/// Produces one message to `topic` at `brokers` and reads it back.
fn round_trip(brokers: &str, topic: &str, payload: &str) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("producer");
    producer
        .send(BaseRecord::<str, str>::to(topic).payload(payload))
        .expect("send");
    producer.flush(Duration::from_secs(10)).expect("flush");
    let metadata = producer
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let advertised: Vec<String> = metadata
        .brokers()
        .iter()
        .map(|b| format!("{}:{}", b.host(), b.port()))
        .collect();
    assert_eq!(
        advertised,
        [brokers],
        "clients must only learn the stable address"
    );
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("rt-{payload}"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "{payload} not read back"
        );
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            if m.payload() == Some(payload.as_bytes()) {
                break;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stable_address_survives_a_restart() {
    let addr = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = EmbeddedBroker::start_at(Some(addr), &["t"], 2, Some(dir.path())).expect("start");
    assert_eq!(broker.bootstrap_servers(), addr.to_string());
    assert_eq!(
        dcpilot_background::broker::read_broker_address(dir.path()),
        Some(addr.to_string())
    );
    let a = addr.to_string();
    tokio::task::spawn_blocking(move || round_trip(&a, "t", "first"))
        .await
        .expect("first run");
    drop(broker);
    let broker = EmbeddedBroker::start_at(Some(addr), &["t"], 2, None).expect("restart");
    let a = addr.to_string();
    tokio::task::spawn_blocking(move || round_trip(&a, "t", "second"))
        .await
        .expect("after the restart");
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_in_use_is_refused_naming_the_key() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let err = match EmbeddedBroker::start_at(Some(addr), &["t"], 1, None) {
        Ok(_) => panic!("started on a taken address"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("embedded.listen") && err.contains(&addr.to_string()),
        "{err}"
    );
}

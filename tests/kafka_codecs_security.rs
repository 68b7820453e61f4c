//! Production Kafka settings: every compression codec end to end through real
//! Kafka-protocol brokers (the embedded mock cluster and a standalone nisshi); TLS end to
//! end (nisshi behind Debian's stunnel, which terminates TLS with a certificate made for
//! the test); and the SASL client settings production clusters use accepted by every
//! client dcpilot makes (no broker here speaks SASL, so those are shown up to the client).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dcpilot_background::{BackgroundConfig, BackgroundService, EmbeddedBroker};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use tokio::sync::watch;

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
const MESSAGES_PER_CODEC: usize = 200;
const SAMPLES_PER_MESSAGE: usize = 5;

/// Compressible native JSON: five samples of one entity.
fn message(codec: &str, i: usize) -> String {
    let samples: Vec<String> = (0..SAMPLES_PER_MESSAGE)
        .map(|m| {
            format!(
                r#"{{"timestamp_ms":{},"entity":"vm-{codec}-{}","metric":"cpu_usage_pct","value":{}.5,"labels":{{"codec":"{codec}","m":"{m}"}}}}"#,
                1_700_000_000_000i64 + i as i64 * 1000,
                i % 10,
                i % 100
            )
        })
        .collect();
    format!("[{}]", samples.join(","))
}

fn produce_with_every_codec(brokers: &str, topic: &str) {
    for codec in CODECS {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("compression.codec", codec)
            // Batches of many messages, so the codec has something to compress.
            .set("linger.ms", "20")
            .create()
            .unwrap_or_else(|e| panic!("a {codec} producer: {e}"));
        for i in 0..MESSAGES_PER_CODEC {
            let payload = message(codec, i);
            let mut record = BaseRecord::<str, str>::to(topic).payload(&payload);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        record = r;
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
        }
        producer
            .flush(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("flushing {codec}: {e}"));
    }
}

/// Ingests the telemetry topic at `brokers` with the background service until `want`
/// samples are stored; returns what it did.
async fn ingest_until(
    brokers: &str,
    client: BTreeMap<String, String>,
    group: &str,
    want: u64,
) -> dcpilot_background::BackgroundOutcome {
    let mut config = BackgroundConfig::default();
    config.kafka.brokers = Some(brokers.to_string());
    config.kafka.client = client;
    config.kafka.group_id = group.to_string();
    config.http.listen = None;
    config.jobs.enabled = false;
    config.ingest.max_batch_delay_ms = 100;
    let (stop, stopped) = watch::channel(false);
    let service = BackgroundService::start(None, config, stopped)
        .await
        .expect("service");
    let status = service.status();
    let run = tokio::spawn(service.run());
    let deadline = Instant::now() + Duration::from_secs(90);
    while status.progress().rows < want {
        assert!(
            Instant::now() < deadline,
            "{} of {want} samples stored",
            status.progress().rows
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(true);
    let outcome = run.await.expect("joined").expect("ingest");
    assert_eq!(outcome.ingest.dead_letters, 0);
    outcome
}

/// Ingests everything [`produce_with_every_codec`] sent; checks each codec's samples
/// arrived whole.
async fn ingest_all(brokers: &str, group: &str) {
    let want = (CODECS.len() * MESSAGES_PER_CODEC * SAMPLES_PER_MESSAGE) as u64;
    let outcome = ingest_until(brokers, BTreeMap::new(), group, want).await;
    let counts = outcome
        .store
        .sql("SELECT labels['codec'] AS codec, count(*) AS n FROM telemetry GROUP BY 1 ORDER BY 1")
        .await
        .expect("query");
    let text = dcpilot_background::pretty(&counts).expect("pretty");
    for codec in CODECS {
        let line = text
            .lines()
            .find(|l| l.contains(&format!(" {codec} ")))
            .unwrap_or_else(|| panic!("no {codec} rows:\n{text}"));
        assert!(
            line.contains(&(MESSAGES_PER_CODEC * SAMPLES_PER_MESSAGE).to_string()),
            "{codec}: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_through_the_embedded_broker() {
    let broker = EmbeddedBroker::start(&["dcpilot.telemetry", "dcpilot.landscape"], 4, None)
        .expect("broker");
    let brokers = broker.bootstrap_servers();
    let b = brokers.clone();
    tokio::task::spawn_blocking(move || produce_with_every_codec(&b, "dcpilot.telemetry"))
        .await
        .expect("produced");
    ingest_all(&brokers, "codecs-embedded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_through_a_standalone_broker() {
    let (_nisshi, brokers) = common::start_nisshi();
    let b = brokers.clone();
    tokio::task::spawn_blocking(move || produce_with_every_codec(&b, "dcpilot.telemetry"))
        .await
        .expect("produced");
    ingest_all(&brokers, "codecs-nisshi").await;
}

/// The settings of clusters with TLS and SASL, as a user writes them in `[kafka.client]`.
fn security_settings(ca: &str) -> Vec<(&'static str, BTreeMap<String, String>)> {
    let props = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    vec![
        (
            "TLS",
            props(&[("security.protocol", "SSL"), ("ssl.ca.location", ca)]),
        ),
        (
            "SASL PLAIN over TLS",
            props(&[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "PLAIN"),
                ("sasl.username", "dcpilot"),
                ("sasl.password", "secret"),
                ("ssl.ca.location", ca),
            ]),
        ),
        (
            "SCRAM-SHA-256 over TLS",
            props(&[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "SCRAM-SHA-256"),
                ("sasl.username", "dcpilot"),
                ("sasl.password", "secret"),
            ]),
        ),
        (
            "SCRAM-SHA-512 over TLS",
            props(&[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.username", "dcpilot"),
                ("sasl.password", "secret"),
            ]),
        ),
        (
            "OAUTHBEARER (unsecured JWT)",
            props(&[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "OAUTHBEARER"),
                ("enable.sasl.oauthbearer.unsecure.jwt", "true"),
                ("sasl.oauthbearer.config", "principal=dcpilot"),
            ]),
        ),
        (
            "every codec for what dcpilot produces",
            props(&[("compression.codec", "zstd")]),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_sasl_settings_are_accepted_by_every_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = ["/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/cert.pem"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("a CA bundle (Debian's ca-certificates)");
    for (name, client) in security_settings(ca) {
        // The background service creates its consumer and producers from these at start
        // (and refuses what librdkafka refuses, naming `kafka.client`).
        let mut config = BackgroundConfig::default();
        config.kafka.brokers = Some("127.0.0.1:9".into());
        config.kafka.client = client.clone();
        config.http.listen = None;
        config.jobs.enabled = false;
        let (_stop, stopped) = watch::channel(false);
        let service = BackgroundService::start(Some(dir.path()), config, stopped)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        drop(service);
        // The models producer and follower, and the foreground's landscape consumer.
        let store = std::sync::Arc::new(
            dcpilot_info_core::InfoCore::open(
                std::sync::Arc::new(dcpilot_info_core::MemoryStorage::default()),
                5,
            )
            .expect("store"),
        );
        dcpilot_info_core::replication::KafkaSink::with_properties(
            "127.0.0.1:9",
            &client,
            "dcpilot.models",
        )
        .unwrap_or_else(|e| panic!("{name}: models producer: {e}"));
        dcpilot_info_core::replication::Follower::with_properties(
            "127.0.0.1:9",
            &client,
            "dcpilot.models",
            "r",
            store,
        )
        .unwrap_or_else(|e| panic!("{name}: models follower: {e}"));
    }
}

fn run(program: &str, args: &[&str]) {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (scripts/setup.sh installs it)"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_end_to_end_through_a_terminating_proxy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_string();
    let (cert, key) = (path("broker.pem"), path("broker.key"));
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            &key,
            "-out",
            &cert,
        ],
    );
    let tls = common::free_loopback_port().to_string();
    let (_nisshi, plain) = common::start_nisshi_advertising(Some(&tls));
    let conf = path("stunnel.conf");
    std::fs::write(
        &conf,
        format!("foreground = yes\npid =\n[kafka]\naccept = {tls}\nconnect = {plain}\ncert = {cert}\nkey = {key}\n"),
    )
    .expect("stunnel config");
    let _stunnel = common::KillOnDrop(
        std::process::Command::new("stunnel")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("stunnel (scripts/setup.sh installs Debian's stunnel4)"),
    );
    common::eventually(30, "stunnel listening", || {
        std::net::TcpStream::connect(&tls).ok()
    });
    let client: BTreeMap<String, String> = [
        ("security.protocol", "SSL"),
        ("ssl.ca.location", cert.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let (b, c) = (tls.clone(), client.clone());
    tokio::task::spawn_blocking(move || common::create_topics(&b, &c, &[("dcpilot.telemetry", 2)]))
        .await
        .expect("topic");

    // A client that does not trust the broker's certificate gets nowhere.
    let untrusted: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &tls)
        .set("security.protocol", "SSL")
        .set("ssl.ca.location", "/etc/ssl/certs/ca-certificates.crt")
        .create()
        .expect("producer");
    assert!(
        untrusted
            .client()
            .fetch_metadata(None, Duration::from_secs(3))
            .is_err(),
        "a client with the wrong CA must not get through"
    );

    let (b, c) = (tls.clone(), client.clone());
    tokio::task::spawn_blocking(move || {
        let mut config = dcpilot_runtime::kafka::client_config(&b, &c);
        let producer: BaseProducer = config
            .set("compression.codec", "zstd")
            .create()
            .expect("producer");
        for i in 0..MESSAGES_PER_CODEC {
            let payload = message("tls", i);
            producer
                .send(BaseRecord::<str, str>::to("dcpilot.telemetry").payload(&payload))
                .map_err(|(e, _)| e)
                .expect("send");
        }
        producer
            .flush(Duration::from_secs(30))
            .expect("flush over TLS");
    })
    .await
    .expect("produced");

    let want = (MESSAGES_PER_CODEC * SAMPLES_PER_MESSAGE) as u64;
    let outcome = ingest_until(&tls, client, "over-tls", want).await;
    assert_eq!(outcome.ingest.rows, want);
}

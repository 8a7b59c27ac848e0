//! The Kafka log over TLS and with SASL, configured as an operator would (`[log.kafka]`
//! `security_protocol`, `ssl_*`, `sasl_*`), against real Kafka-protocol brokers (tansu).
//!
//! TLS: tansu speaks only plaintext, so it sits behind a TLS-terminating proxy made here
//! (rustls, with certificates from rcgen) that asks every client for a certificate (mutual
//! TLS), and advertises the proxy's address: every connection librdkafka makes, to bootstrap
//! and to the partition leader, goes through TLS. A log configured with the test CA and a
//! client certificate creates its topic, publishes and reads back; one that trusts another CA,
//! or shows no certificate, does not get in, and says why.
//!
//! SASL: tansu requires SCRAM authentication of a user it knows. A log with the user's
//! password publishes and reads back, with SCRAM-SHA-256 and SCRAM-SHA-512; a wrong password
//! is refused, and the error says so.
//!
//! Each test starts a tansu of its own with `scripts/kafka-broker` (`KAFKA_BROKER_ADVERTISED`,
//! `KAFKA_BROKER_SCRAM_USER`); like the other broker tests, they run only when `KAFKA_BROKERS`
//! is set (`.ci/run` sets it once the broker is installed), and otherwise say they are skipped
//! and pass.
#![cfg(feature = "kafka")]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use common::ca::{Ca, write};
use rcgen::ExtendedKeyUsagePurpose;
use rezef_server::{
    LogBackend, SaslMechanism, Secret, SecurityProtocol, ServerConfig, open_partitions,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore};

/// Appends `payload` to `log`, reads it back, and closes the log.
async fn publishes_and_reads_back(log: &Arc<dyn rezef_log::Log>, payload: &'static [u8]) {
    let appended = (log.append(vec![Bytes::from_static(payload)]).await).expect("publish");
    let records = (log.read(appended.first_offset, 10).await).expect("read back");
    assert_eq!(records[0].payload, Bytes::from_static(payload));
    log.close().await;
}

/// A tansu of the test's own; stopped when dropped.
struct Broker {
    run_dir: PathBuf,
    /// Where it listens (plaintext).
    addr: SocketAddr,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kafka-broker")
}

impl Broker {
    /// Starts it in `run_dir` with the `KAFKA_BROKER_*` settings `env`.
    fn start(run_dir: PathBuf, env: &[(&str, String)]) -> Broker {
        let mut command = Command::new(script());
        command.arg("start").env("KAFKA_BROKER_RUN", &run_dir);
        for (name, value) in env {
            command.env(name, value);
        }
        let out = command.output().expect("run scripts/kafka-broker");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "scripts/kafka-broker start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let addr = stdout
            .trim()
            .strip_prefix("KAFKA_BROKERS=")
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no address in {stdout:?}"));
        Broker { run_dir, addr }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let stopped = Command::new(script())
            .arg("stop")
            .env("KAFKA_BROKER_RUN", &self.run_dir)
            .output();
        if let Err(e) = stopped {
            eprintln!("stopping the test's broker: {e}");
        }
    }
}

/// Accepts TLS on `listener` (the server certificate `cert`, client certificates signed by
/// `client_ca` required) and relays each connection to `upstream`. Counts the handshakes
/// that succeeded.
fn proxy(
    listener: TcpListener,
    (cert, key): (String, String),
    client_ca: &Ca,
    upstream: SocketAddr,
) -> Arc<AtomicUsize> {
    // ring, as the server's own TLS (src/tls.rs): aws-lc-rs would need CMake.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(client_ca.der()).expect("the client CA");
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .expect("a client verifier");
    let certs = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("the server certificate");
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("the server key");
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .expect("a server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let handshakes = Arc::new(AtomicUsize::new(0));
    let counted = handshakes.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, counted) = (acceptor.clone(), counted.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut broker) = TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut broker).await;
                }
            });
        }
    });
    handshakes
}

/// A server configuration for a one-partition Kafka log of `topic` at `brokers`.
fn kafka_config(brokers: SocketAddr, topic: &str, protocol: SecurityProtocol) -> ServerConfig {
    let mut config = ServerConfig::default();
    config.log.backend = LogBackend::Kafka;
    let kafka = &mut config.log.kafka;
    kafka.brokers = brokers.to_string();
    kafka.topic = topic.to_owned();
    kafka.partitions = 1;
    kafka.request_timeout_ms = 15_000;
    kafka.security_protocol = protocol;
    config
}

/// A server configuration for the Kafka log at `brokers` over TLS, trusting `ca_file`.
fn tls_config(brokers: SocketAddr, topic: &str, ca_file: PathBuf) -> ServerConfig {
    let mut config = kafka_config(brokers, topic, SecurityProtocol::Ssl);
    let kafka = &mut config.log.kafka;
    kafka.ssl_ca_file = Some(ca_file);
    config
}

/// Whether the broker tests run (see the module docs).
fn brokers_available() -> bool {
    let brokers = std::env::var("KAFKA_BROKERS").unwrap_or_default();
    !brokers.trim().is_empty()
}

fn topic_name(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("rezef-{what}-{nanos}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_log_over_mutual_tls_publishes_and_reads_back_and_a_wrong_ca_is_refused() {
    if !brokers_available() {
        return eprintln!("skipped: KAFKA_BROKERS is not set");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = Ca::new("rezef test Kafka CA");
    let other = Ca::new("some other CA");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let proxy_addr = listener.local_addr().expect("address");
    let advertised = ("KAFKA_BROKER_ADVERTISED", proxy_addr.to_string());
    let broker = Broker::start(dir.path().join("broker"), &[advertised]);
    let server_cert = ca.issue(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth);
    let handshakes = proxy(listener, server_cert, &ca, broker.addr);

    let (client_cert, client_key) = ca.issue(&["rezef"], ExtendedKeyUsagePurpose::ClientAuth);
    let ca_file = ca.write(dir.path(), "ca.pem");
    let topic = topic_name("tls");
    let mut config = tls_config(proxy_addr, &topic, ca_file.clone());
    config.log.kafka.ssl_cert_file = Some(write(dir.path(), "client.pem", &client_cert));
    config.log.kafka.ssl_key_file = Some(write(dir.path(), "client.key", &client_key));
    config.validate().expect("a valid configuration");

    // Through TLS: the topic is created, an event published and read back.
    let partitions = open_partitions(&config).await.expect("open over TLS");
    assert_eq!(partitions.len(), 1);
    publishes_and_reads_back(&partitions[0].log, b"over TLS").await;
    assert!(
        handshakes.load(Ordering::SeqCst) >= 1,
        "the clients came through the TLS proxy"
    );

    // Trusting another CA: the broker's certificate is refused, and the error says so.
    let mut wrong = tls_config(proxy_addr, &topic, other.write(dir.path(), "other.pem"));
    wrong.log.kafka.request_timeout_ms = 3_000;
    wrong.log.kafka.ssl_cert_file = config.log.kafka.ssl_cert_file.clone();
    wrong.log.kafka.ssl_key_file = config.log.kafka.ssl_key_file.clone();
    let refused = open_partitions(&wrong)
        .await
        .expect_err("a CA that did not sign it");
    let said = refused.to_string();
    eprintln!("wrong CA: {said}");
    assert!(said.contains("certificate verify failed"), "{said}");

    // No client certificate: the proxy, like a broker asking for mTLS, turns it away.
    let mut anonymous = tls_config(proxy_addr, &topic, ca_file);
    anonymous.log.kafka.request_timeout_ms = 3_000;
    let refused = open_partitions(&anonymous)
        .await
        .expect_err("no client certificate");
    let said = refused.to_string();
    eprintln!("no client certificate: {said}");
    assert!(said.contains("certificate required"), "{said}");
    drop(broker);
}

/// A server configuration for the Kafka log at `brokers` with SASL over plaintext.
fn sasl_config(
    brokers: SocketAddr,
    topic: &str,
    mechanism: SaslMechanism,
    password: &str,
) -> ServerConfig {
    let mut config = kafka_config(brokers, topic, SecurityProtocol::SaslPlaintext);
    let kafka = &mut config.log.kafka;
    kafka.sasl_mechanism = Some(mechanism);
    kafka.sasl_username = Some("rezef".into());
    kafka.sasl_password = Some(Secret::new(password));
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_log_with_scram_publishes_and_reads_back_and_a_wrong_password_is_refused() {
    if !brokers_available() {
        return eprintln!("skipped: KAFKA_BROKERS is not set");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let user = ("KAFKA_BROKER_SCRAM_USER", "rezef:0123-right".to_owned());
    let broker = Broker::start(dir.path().join("broker"), &[user]);

    for mechanism in [SaslMechanism::ScramSha256, SaslMechanism::ScramSha512] {
        let topic = topic_name("sasl");
        let config = sasl_config(broker.addr, &topic, mechanism, "0123-right");
        config.validate().expect("a valid configuration");
        let partitions = open_partitions(&config)
            .await
            .unwrap_or_else(|e| panic!("open with {mechanism:?}: {e}"));
        publishes_and_reads_back(&partitions[0].log, b"authenticated").await;
    }

    let mut wrong = sasl_config(
        broker.addr,
        &topic_name("sasl"),
        SaslMechanism::ScramSha256,
        "0123-wrong",
    );
    wrong.log.kafka.request_timeout_ms = 3_000;
    let refused = open_partitions(&wrong).await.expect_err("a wrong password");
    let said = refused.to_string();
    assert!(said.contains("SASL SCRAM authentication failed"), "{said}");
    assert!(
        !said.contains("0123-wrong"),
        "the password stays out of errors: {said}"
    );
    drop(broker);
}

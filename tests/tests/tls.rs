//! TLS end to end, with the real binary and certificates made by the test (rcgen): what an
//! operator sets up in `[tls]` and what a client then meets.
//!
//! Given two nodes on a Kafka log, each serving TLS with a key file and the node key, when a
//! client with a tenant's key calls one node about customers whose partitions the other
//! owns, then the call goes node to node over TLS and is answered; without a key it is
//! `UNAUTHENTICATED`, and in plain text it is not served at all. Given a server whose
//! certificate is replaced, then after SIGHUP (or, without one, once it notices the file
//! changed) new connections get the new certificate. Given a client CA, only clients showing
//! a certificate it signed get in, through the SDK as through the CLI.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rezef_adapter::{Client, EventFactory, TlsOptions, proto};
use rezef_scenarios::certs::{Ca, Leaf, write};
use rezef_scenarios::kafka::KafkaTopic;
use rezef_scenarios::{ClientTls, RezefServer, answers_itself, create_key, free_port, rezef};
use tonic::Code;

const TENANT: &str = "tls-test";
const CUSTOMERS: usize = 12;
const PARTITIONS: u32 = 6;

fn customer(id: &str) -> EventFactory {
    EventFactory::new(TENANT, "tls-test")
        .customer(id)
        .on(proto::Channel::Webchat, format!("chat-{id}"))
}

fn customer_ids() -> Vec<String> {
    (0..CUSTOMERS).map(|c| format!("c-{c}")).collect()
}

/// A `rezef serve` configuration file in `dir` with `toml`.
fn config(dir: &Path, toml: &str) -> String {
    write(dir, "rezef.toml", toml).display().to_string()
}

/// `path` as a TOML string.
fn quoted(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_with_keys_forward_calls_to_each_other_over_tls() {
    let Some(topic) = KafkaTopic::fresh("tls") else {
        return eprintln!("skipped: KAFKA_BROKERS is not set");
    };
    let shared = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("Rezef cluster CA");
    // One certificate for every node: they all listen on 127.0.0.1.
    let leaf = ca.server();
    let cert = write(shared.path(), "tls.crt", &leaf.cert_pem);
    let key = write(shared.path(), "tls.key", &leaf.key_pem);
    let ca_file = write(shared.path(), "ca.crt", &ca.pem());
    let keys = shared.path().join("keys.json");
    let keys_text = keys.display().to_string();
    let node_key = create_key(&[
        "--keys-file",
        &keys_text,
        "--all-tenants",
        "--role",
        "node",
        "--name",
        "cluster",
    ]);
    let tenant_key = create_key(&[
        "--keys-file",
        &keys_text,
        "--tenant",
        TENANT,
        "--role",
        "adapter,channel,admin",
    ]);
    let config = config(
        shared.path(),
        &format!(
            "[tls]\ncert_file = {}\nkey_file = {}\npeer_ca_file = {}\n\n\
             [auth]\nkeys_file = {}\nnode_key = {:?}\n",
            quoted(&cert),
            quoted(&key),
            quoted(&ca_file),
            quoted(&keys),
            node_key,
        ),
    );
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().expect("dir")).collect();
    let mut nodes = Vec::new();
    for (node, dir) in dirs.iter().enumerate() {
        let port = free_port();
        let mut flags = topic.flags(PARTITIONS);
        flags.extend([
            "--node-id".into(),
            format!("node-{node}"),
            "--config".into(),
            config.clone(),
            // The other node calls this one over TLS, checking its certificate against
            // `peer_ca_file`.
            "--advertise-url".into(),
            format!("https://127.0.0.1:{port}"),
        ]);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let tls = ClientTls {
            ca_pem: ca.pem(),
            identity: None,
        };
        let server = RezefServer::start_on(port, dir.path(), &flags, Some(tls)).await;
        nodes.push(server.with_token(&tenant_key));
    }
    let refs: Vec<_> = customer_ids()
        .iter()
        .map(|c| customer(c).customer_ref())
        .collect();
    for node in &nodes {
        node.wait_ready(TENANT, &refs).await;
    }

    // Which node answers for which customer, once the group has settled: the same split
    // twice in a row, each customer answered by one node.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut previous = None;
    let (here, there) = loop {
        let split = split(&nodes, &refs).await;
        if let Some(settled) = &split
            && split == previous
        {
            break settled.clone();
        }
        assert!(Instant::now() < deadline, "never settled: {split:?}");
        previous = split;
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // Published and read through node 0, the customer's partition being node 1's: both calls
    // are forwarded over TLS, with the client's key, and answered.
    let mut client = nodes[0].client().await;
    let remote = &there[0];
    let started = customer(remote).interaction_started(proto::Direction::Inbound);
    let offset = publish(&mut client, started).await;
    let reference = customer(remote).customer_ref();
    let read = (client
        .journey(TENANT, reference.clone(), Some(offset))
        .await)
        .expect("read through node 0");
    let journey = read.journey.expect("a journey");
    assert_eq!(&journey.customer_id, remote);
    assert_eq!(journey.counters.map(|c| c.events), Some(1));

    // A merge asked through node 0 of a customer of node 0 into one of node 1: the owner of
    // the survivor reads the absorbed journey from node 1 with the node key, over TLS.
    let local = &here[0];
    let started = customer(local).interaction_started(proto::Direction::Inbound);
    let offset = publish(&mut client, started).await;
    (client.journey(TENANT, customer(local).customer_ref(), Some(offset)))
        .await
        .expect("projected");
    let merge = proto::MergeCustomersRequest {
        tenant_id: TENANT.into(),
        survivor_customer_id: remote.clone(),
        absorbed_customer_id: local.clone(),
        reason: "same person".into(),
        requested_by: "supervisor-1".into(),
    };
    (client.identities().merge_customers(merge).await).expect("merged across nodes");
    let deadline = Instant::now() + Duration::from_secs(60);
    for node in &nodes {
        let mut client = node.client().await;
        loop {
            let read = client.journey(TENANT, customer(local).customer_ref(), None);
            let journey = read.await.ok().and_then(|r| r.journey);
            let events = (journey.as_ref()).and_then(|j| j.counters.as_ref().map(|c| c.events));
            if journey.as_ref().is_some_and(|j| &j.customer_id == remote) && events == Some(2) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{local} through port {} reads {journey:?}",
                node.port
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // Without a key: refused by the node called, before any forwarding.
    let tls = TlsOptions {
        ca_pem: Some(ca.pem().into_bytes()),
        ..TlsOptions::default()
    };
    let mut keyless = (Client::connect_tls(nodes[0].url(), tls).await).expect("TLS connects");
    match keyless.journey(TENANT, reference.clone(), None).await {
        Err(rezef_adapter::Error::Status(status)) => {
            assert_eq!(status.code(), Code::Unauthenticated, "{status:?}")
        }
        other => panic!("a call without a key: {other:?}"),
    }
    // In plain text: not served.
    for node in &nodes {
        let plain = format!("http://127.0.0.1:{}", node.port);
        let answered = match Client::connect(plain).await {
            Ok(client) => {
                let mut client = client.with_token(tenant_key.clone()).expect("a key");
                client
                    .journey(TENANT, reference.clone(), None)
                    .await
                    .is_ok()
            }
            Err(_) => false,
        };
        assert!(!answered, "a plain-text client was served");
    }
    for node in nodes {
        assert!(node.terminate().success());
    }
}

/// The customers node 0 answers for itself and those node 1 does, when each is answered by
/// one of them.
async fn split(
    nodes: &[RezefServer],
    refs: &[proto::CustomerRef],
) -> Option<(Vec<String>, Vec<String>)> {
    let (first, second) = (nodes[0].client().await, nodes[1].client().await);
    let (mut here, mut there) = (Vec::new(), Vec::new());
    for (id, reference) in customer_ids().into_iter().zip(refs) {
        let (a, b) = (
            answers_itself(&first, TENANT, reference.clone()).await,
            answers_itself(&second, TENANT, reference.clone()).await,
        );
        match (a, b) {
            (true, false) => here.push(id),
            (false, true) => there.push(id),
            _ => return None,
        }
    }
    (!here.is_empty() && !there.is_empty()).then_some((here, there))
}

/// Publishes `event`, retried while its partition moves between the nodes; its offset.
async fn publish(client: &mut Client, event: proto::Event) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client.publish(vec![event.clone()]).await {
            Ok(ack) => return ack.positions[0].offset,
            Err(rezef_adapter::Error::Status(status))
                if status.code() == Code::Unavailable && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("publish: {error:?}"),
        }
    }
}

/// Whether a client trusting `ca` (and showing `identity`) gets a journey read answered
/// (found or not) by `server`.
async fn served(server: &RezefServer, ca: &Ca, identity: Option<&Leaf>) -> bool {
    let tls = TlsOptions {
        ca_pem: Some(ca.pem().into_bytes()),
        identity_pem: identity.map(|l| (l.cert_pem.clone().into(), l.key_pem.clone().into())),
        domain: None,
    };
    let Ok(mut client) = Client::connect_tls(server.url(), tls).await else {
        return false;
    };
    match client
        .journey(TENANT, customer("c-0").customer_ref(), None)
        .await
    {
        Ok(_) => true,
        Err(rezef_adapter::Error::Status(status)) => status.code() == Code::NotFound,
        Err(_) => false,
    }
}

/// Waits up to 10 s for `server` to serve clients trusting `ca`.
async fn until_served(server: &RezefServer, ca: &Ca, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !served(server, ca, None).await {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Certificate files whose length never changes: PEM ignores the padding after the last
/// block, so replacing them with the same modification time hides the change from the
/// server's look at the files, and only SIGHUP tells it.
const PADDED: usize = 4096;

fn padded(pem: &str) -> String {
    assert!(pem.len() < PADDED, "a PEM of {} bytes", pem.len());
    format!("{pem}{}", "\n".repeat(PADDED - pem.len()))
}

/// Puts `leaf` in place of `cert` and `key`, keeping their modification times.
fn replace_unnoticed(cert: &Path, key: &Path, leaf: &Leaf) {
    for (path, text) in [(cert, &leaf.cert_pem), (key, &leaf.key_pem)] {
        let modified = (std::fs::metadata(path).and_then(|m| m.modified())).expect("mtime");
        let partial = path.with_extension("partial");
        std::fs::write(&partial, padded(text)).expect("write");
        let file = std::fs::File::options().write(true).open(&partial);
        (file.and_then(|f| f.set_modified(modified))).expect("set the mtime back");
        std::fs::rename(&partial, path).expect("rename");
    }
}

fn tls_files(dir: &Path, leaf: &Leaf) -> (PathBuf, PathBuf) {
    let cert = write(dir, "tls.crt", &padded(&leaf.cert_pem));
    let key = write(dir, "tls.key", &padded(&leaf.key_pem));
    (cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_certificate_is_served_after_sighup_or_once_the_file_changes() {
    let (dir, data) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let (first, second, third) = (Ca::new("CA 1"), Ca::new("CA 2"), Ca::new("CA 3"));
    let (cert, key) = tls_files(dir.path(), &first.server());
    let config = config(
        dir.path(),
        &format!(
            "[tls]\ncert_file = {}\nkey_file = {}\n",
            quoted(&cert),
            quoted(&key)
        ),
    );
    let tls = ClientTls {
        ca_pem: first.pem(),
        identity: None,
    };
    let server =
        RezefServer::start_on(free_port(), data.path(), &["--config", &config], Some(tls)).await;
    assert!(
        served(&server, &first, None).await,
        "a client trusting CA 1"
    );
    assert!(
        !served(&server, &second, None).await,
        "CA 2 before any change"
    );

    // A certificate of CA 2, the files' lengths and times unchanged: the server looks at
    // them every second and sees nothing, until SIGHUP.
    replace_unnoticed(&cert, &key, &second.server());
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(
        served(&server, &first, None).await && !served(&server, &second, None).await,
        "the files were read again without SIGHUP: the test cannot tell SIGHUP apart"
    );
    server.hangup();
    until_served(&server, &second, "SIGHUP did not load CA 2's certificate").await;
    assert!(!served(&server, &first, None).await, "CA 1 after SIGHUP");

    // A file changed, no signal: read again within a second or so.
    let leaf = third.server();
    write(dir.path(), "tls.crt", &leaf.cert_pem);
    write(dir.path(), "tls.key", &leaf.key_pem);
    until_served(&server, &third, "the changed files were not read again").await;
    assert!(
        !served(&server, &second, None).await,
        "CA 2 after the change"
    );
    assert!(server.terminate().success());
}

/// `example` published with `rezef publish` over TLS to `server`, with `flags` besides.
fn publish_with_cli(server: &RezefServer, flags: &[&str]) -> std::process::Output {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/triple-c.jsonl");
    let example = example.display().to_string();
    let url = server.url();
    let mut args = vec!["publish", example.as_str(), "--server", url.as_str()];
    args.extend(flags);
    rezef(&args, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_client_ca_only_clients_showing_its_certificate_get_in() {
    let (dir, data) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let (ca, clients, strangers) = (Ca::new("Rezef CA"), Ca::new("clients"), Ca::new("other"));
    let leaf = ca.server();
    let (cert, key) = tls_files(dir.path(), &leaf);
    let ca_file = write(dir.path(), "ca.crt", &ca.pem());
    let clients_file = write(dir.path(), "clients.crt", &clients.pem());
    let config = config(
        dir.path(),
        &format!(
            "[tls]\ncert_file = {}\nkey_file = {}\nclient_ca_file = {}\n",
            quoted(&cert),
            quoted(&key),
            quoted(&clients_file)
        ),
    );
    let adapter = clients.client("ivr-adapter");
    let tls = ClientTls {
        ca_pem: ca.pem(),
        identity: Some(adapter.clone()),
    };
    let server =
        RezefServer::start_on(free_port(), data.path(), &["--config", &config], Some(tls)).await;

    assert!(
        served(&server, &ca, Some(&adapter)).await,
        "with the client CA's certificate"
    );
    assert!(
        !served(&server, &ca, None).await,
        "without a client certificate"
    );
    let stranger = strangers.client("stranger");
    assert!(
        !served(&server, &ca, Some(&stranger)).await,
        "with another CA's certificate"
    );

    // The CLI: `--ca-cert` alone is refused at the handshake; with `--client-cert` and
    // `--client-key` the events are published and read back.
    let ca_text = ca_file.display().to_string();
    let refused = publish_with_cli(&server, &["--ca-cert", &ca_text]);
    assert!(
        !refused.status.success(),
        "published without a client certificate"
    );
    let files = [
        write(dir.path(), "client.crt", &adapter.cert_pem),
        write(dir.path(), "client.key", &adapter.key_pem),
    ]
    .map(|path| path.display().to_string());
    let mtls = [
        "--ca-cert",
        ca_text.as_str(),
        "--client-cert",
        files[0].as_str(),
        "--client-key",
        files[1].as_str(),
    ];
    let published = publish_with_cli(&server, &mtls);
    let said = |output: &std::process::Output| String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(published.status.success(), "{}", said(&published));
    let url = server.url();
    let mut journey = vec![
        "journey",
        "phone:+972501234567",
        "--tenant",
        "acme",
        "--min-offset",
        "17",
        "--server",
        url.as_str(),
    ];
    journey.extend(mtls);
    let read = rezef(&journey, None);
    assert!(read.status.success(), "{}", said(&read));
    assert!(String::from_utf8_lossy(&read.stdout).contains("internet.outage"));

    // `rezef health`, the Kubernetes probe: the certificate checked for another of its names.
    let mut health = vec![
        "health",
        "--server",
        url.as_str(),
        "--tls-domain",
        "localhost",
    ];
    health.extend(mtls);
    let probed = rezef(&health, None);
    assert!(probed.status.success(), "{}", said(&probed));
    assert_eq!(String::from_utf8_lossy(&probed.stdout).trim(), "SERVING");
    health.push("--service");
    health.push("rezef.v1.Nothing");
    assert!(!rezef(&health, None).status.success(), "an unknown service");
    assert!(server.terminate().success());
}

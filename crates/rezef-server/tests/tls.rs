//! TLS on the gRPC port, with certificates made here (rcgen). Given a server with a
//! certificate, when a client trusts its CA it is served, and a plaintext client is not;
//! with a client CA, only clients showing a certificate it signed get in; and a renewed
//! certificate is served without a restart.

mod common;

use std::path::Path;
use std::time::Duration;

use common::Running;
use common::ca::{Ca, write};
use rcgen::ExtendedKeyUsagePurpose;
use rezef_adapter::{Client, TlsOptions};
use rezef_server::{ServerConfig, TlsSettings};

/// A server with a certificate of `ca` for 127.0.0.1 in `dir`, asking clients for one of
/// `client_ca` if given.
async fn serve_tls(dir: &Path, ca: &Ca, client_ca: Option<&Ca>) -> Running {
    let (cert, key) = ca.issue(
        &["127.0.0.1", "localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let tls = TlsSettings {
        cert_file: Some(write(dir, "server.pem", &cert)),
        key_file: Some(write(dir, "server.key", &key)),
        client_ca_file: client_ca.map(|ca| write(dir, "clients.pem", &ca.pem())),
        peer_ca_file: None,
    };
    Running::start_with(ServerConfig {
        tls,
        ..ServerConfig::default()
    })
    .await
}

/// Whether a client trusting `ca` (and showing `identity`) gets a journey read answered.
async fn served(server: &Running, ca: &Ca, identity: Option<(String, String)>) -> bool {
    let tls = TlsOptions {
        ca_pem: Some(ca.pem().into_bytes()),
        identity_pem: identity.map(|(cert, key)| (cert.into_bytes(), key.into_bytes())),
        domain: None,
    };
    let url = format!("https://{}", server.addr);
    let Ok(mut client) = Client::connect_tls(url, tls).await else {
        return false;
    };
    let customer = rezef_adapter::proto::CustomerRef {
        r#ref: Some(rezef_adapter::proto::customer_ref::Ref::CustomerId(
            "c-1".into(),
        )),
    };
    match client.journey("acme", customer, None).await {
        Ok(_) => true,
        Err(rezef_adapter::Error::Status(status)) => status.code() == tonic::Code::NotFound,
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_client_that_trusts_the_ca_is_served_and_plaintext_is_not() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = Ca::new("Rezef test CA");
    let server = serve_tls(dir.path(), &ca, None).await;
    assert!(served(&server, &ca, None).await, "a client trusting the CA");
    assert!(
        !served(&server, &Ca::new("another CA"), None).await,
        "a client trusting another CA"
    );

    let plain = Client::connect(format!("http://{}", server.addr)).await;
    let answered = match plain {
        Ok(mut client) => {
            let customer = rezef_adapter::identity_ref(
                rezef_adapter::proto::IdentityKind::Phone,
                "+972501234567",
            );
            client.journey("acme", customer, None).await.is_ok()
        }
        Err(_) => false,
    };
    assert!(!answered, "a plaintext client must not be served");
    server.stop().await;
}

#[tokio::test]
async fn with_a_client_ca_only_clients_with_its_certificates_get_in() {
    let dir = tempfile::tempdir().expect("dir");
    let (ca, clients) = (Ca::new("Rezef test CA"), Ca::new("Rezef clients"));
    let server = serve_tls(dir.path(), &ca, Some(&clients)).await;
    let ours = clients.issue(&["ivr-adapter"], ExtendedKeyUsagePurpose::ClientAuth);
    assert!(
        served(&server, &ca, Some(ours)).await,
        "a client with a certificate of the client CA"
    );
    assert!(
        !served(&server, &ca, None).await,
        "a client without a certificate"
    );
    let stranger =
        Ca::new("elsewhere").issue(&["ivr-adapter"], ExtendedKeyUsagePurpose::ClientAuth);
    assert!(
        !served(&server, &ca, Some(stranger)).await,
        "a certificate of another CA"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let (old, new) = (Ca::new("old CA"), Ca::new("new CA"));
    let server = serve_tls(dir.path(), &old, None).await;
    assert!(served(&server, &old, None).await);
    assert!(!served(&server, &new, None).await);

    let (cert, key) = new.issue(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth);
    write(dir.path(), "server.key", &key);
    write(dir.path(), "server.pem", &cert);
    let mut renewed = false;
    for _ in 0..50 {
        if served(&server, &new, None).await {
            renewed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(renewed, "the new certificate was never served");
    assert!(!served(&server, &old, None).await, "the old one is gone");
    server.stop().await;
}

#[tokio::test]
async fn a_server_whose_certificate_cannot_be_read_does_not_start() {
    let dir = tempfile::tempdir().expect("dir");
    let tls = TlsSettings {
        cert_file: Some(write(dir.path(), "server.pem", "not a certificate")),
        key_file: Some(write(dir.path(), "server.key", "not a key")),
        ..TlsSettings::default()
    };
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().join("data"),
        tls,
        ..ServerConfig::default()
    };
    let error = rezef_server::Server::open(config)
        .await
        .expect_err("no certificate");
    assert!(error.to_string().contains("server.pem"), "{error}");
}

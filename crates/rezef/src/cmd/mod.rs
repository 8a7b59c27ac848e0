//! One file per subcommand.

pub mod demo;
pub mod explain;
pub mod forget;
pub mod health;
pub mod journey;
pub mod keys;
pub mod publish;
pub mod rebuild;
pub mod replay;
pub mod resume;
pub mod serve;
pub mod simulate;
pub mod verify;

use anyhow::Context;
use rezef_adapter::{Client, TlsOptions};

use crate::ServerAddr;

/// Connects a client command to the server, with a hint when nothing listens there, and
/// its API key on every call when given.
async fn connect(addr: &ServerAddr) -> anyhow::Result<Client> {
    // Checked before any call, for a clear message (and never echoed: it is a secret).
    if let Some(token) = &addr.token {
        anyhow::ensure!(
            token.parse::<rezef_auth::Token>().is_ok(),
            "--token (or REZEF_TOKEN) is not an API key: keys look like rzf_<id>_<secret>, \
             as `rezef keys create` prints them (a continuation token goes in \
             `rezef resume --continuation-token`)"
        );
    }
    let client = match tls(addr)? {
        Some(tls) => Client::connect_tls(addr.server.clone(), tls).await,
        None => Client::connect(addr.server.clone()).await,
    };
    let client = client.map_err(|error| {
        anyhow::anyhow!("{error}\nhint: start the server with `rezef serve`, or pass --server")
    })?;
    match &addr.token {
        Some(token) => Ok(client.with_token(token.clone())?),
        None => Ok(client),
    }
}

/// TLS for an `https://` server or when certificates are given; the files read.
fn tls(addr: &ServerAddr) -> anyhow::Result<Option<TlsOptions>> {
    let wanted = addr.server.starts_with("https://")
        || addr.ca_cert.is_some()
        || addr.client_cert.is_some()
        || addr.tls_domain.is_some();
    if !wanted {
        return Ok(None);
    }
    anyhow::ensure!(
        addr.server.starts_with("https://"),
        "--ca-cert, --client-cert and --tls-domain are for an https:// server (--server {})",
        addr.server
    );
    let read = |path: &std::path::PathBuf| {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    };
    let identity_pem = match (&addr.client_cert, &addr.client_key) {
        (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
        _ => None,
    };
    Ok(Some(TlsOptions {
        ca_pem: addr.ca_cert.as_ref().map(read).transpose()?,
        identity_pem,
        domain: addr.tls_domain.clone(),
    }))
}

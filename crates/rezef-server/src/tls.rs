//! TLS on the gRPC port, with rustls (ring as its cryptography). The certificate, key and
//! client CA are PEM files, read again when one changes (checked every second) or on SIGHUP:
//! certificates are renewed every few weeks (cert-manager, ACME) and a restart for each
//! would drop every watch and agent session. A file that cannot be read keeps what was read
//! before. Each connection is accepted with the configuration current at its handshake, and
//! handshakes run on tasks of their own, so a slow client holds up nobody else.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use futures::Stream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};
use tracing::{debug, info, warn};

use crate::config::TlsSettings;
use crate::{Error, Result};

const RELOAD_EVERY: Duration = Duration::from_secs(1);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's TLS configuration, as last read from its files.
#[derive(Debug, Clone)]
pub struct Tls(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    files: Vec<PathBuf>,
    settings: TlsSettings,
    config: RwLock<Arc<ServerConfig>>,
    /// Each file's modification time and length when last read.
    stamps: Mutex<Vec<Option<(SystemTime, u64)>>>,
}

impl Tls {
    /// The configuration of `settings`, or `None` without a certificate. Files that cannot
    /// be read refuse the start.
    pub fn open(settings: &TlsSettings) -> Result<Option<Self>> {
        let (Some(cert), Some(key)) = (&settings.cert_file, &settings.key_file) else {
            return Ok(None);
        };
        let mut files = vec![cert.clone(), key.clone()];
        files.extend(settings.client_ca_file.clone());
        let stamps = files.iter().map(|f| stamp(f)).collect();
        let config = load(settings).map_err(|e| Error::Config(format!("tls: {e}")))?;
        info!(mtls = settings.client_ca_file.is_some(), "TLS on");
        Ok(Some(Tls(Arc::new(Inner {
            files,
            settings: settings.clone(),
            config: RwLock::new(Arc::new(config)),
            stamps: Mutex::new(stamps),
        }))))
    }

    fn current(&self) -> Arc<ServerConfig> {
        self.0
            .config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads the files again if `always` or one changed.
    fn reload(&self, always: bool) {
        let now: Vec<_> = self.0.files.iter().map(|f| stamp(f)).collect();
        let mut stamps = self.0.stamps.lock().unwrap_or_else(|p| p.into_inner());
        if !always && now == *stamps {
            return;
        }
        *stamps = now;
        match load(&self.0.settings) {
            Ok(config) => {
                *self.0.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
                info!("TLS certificate read again");
            }
            Err(error) => warn!(%error, "TLS files could not be read; keeping those read before"),
        }
    }

    /// Follows the files until `closing` turns true.
    pub async fn follow(self, mut closing: tokio::sync::watch::Receiver<bool>) {
        let span = tracing::info_span!("tls.reload");
        let _enter = span.enter();
        let mut hangup = hangups();
        loop {
            let asked = tokio::select! {
                () = tokio::time::sleep(RELOAD_EVERY) => false,
                _ = hangup.recv() => true,
                _ = closing.changed() => return,
            };
            let tls = self.clone();
            let _ = tokio::task::spawn_blocking(move || tls.reload(asked)).await;
        }
    }

    /// The connections `listener` accepts, each once its handshake is done.
    pub fn incoming(
        self,
        listener: TcpListener,
    ) -> impl Stream<Item = std::io::Result<TlsStream<TcpStream>>> {
        let (sender, streams) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = sender.closed() => return,
                    accepted = listener.accept() => accepted,
                };
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of descriptors, say: wait a moment rather than spin.
                        warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Small responses must not wait for Nagle's algorithm.
                let _ = tcp.set_nodelay(true);
                let acceptor = TlsAcceptor::from(self.current());
                let sender = sender.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = sender.send(Ok(stream)).await;
                        }
                        Ok(Err(error)) => debug!(%peer, %error, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        ReceiverStream::new(streams)
    }
}

/// How this node calls `https://` nodes: their certificates checked against `peer_ca_file`
/// (else the public web's roots), its own certificate shown if it has one.
pub fn peer_config(settings: &TlsSettings) -> Result<ClientTlsConfig> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|e| Error::Config(format!("tls: {}: {e}", path.display())))
    };
    let mut config = ClientTlsConfig::new();
    config = match &settings.peer_ca_file {
        Some(ca) => config.ca_certificate(Certificate::from_pem(read(ca)?)),
        None => config.with_webpki_roots(),
    };
    if let (Some(cert), Some(key)) = (&settings.cert_file, &settings.key_file) {
        config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(config)
}

/// SIGHUP, where there is one.
fn hangups() -> mpsc::Receiver<()> {
    let (sender, receiver) = mpsc::channel(1);
    #[cfg(unix)]
    if let Ok(mut signal) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        tokio::spawn(async move {
            while signal.recv().await.is_some() {
                let _ = sender.try_send(());
            }
        });
    }
    #[cfg(not(unix))]
    drop(sender);
    receiver
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The rustls configuration `settings` name; what is wrong, naming the file.
fn load(settings: &TlsSettings) -> std::result::Result<ServerConfig, String> {
    let (Some(cert_file), Some(key_file)) = (&settings.cert_file, &settings.key_file) else {
        return Err("tls.cert_file and tls.key_file are both needed".into());
    };
    let shown = |path: &Path| path.display().to_string();
    let certs = certificates(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("{}: no private key: {e}", shown(key_file)))?;
    // ring builds with the C compiler alone; aws-lc-rs, which rustls now prefers for its
    // post-quantum key exchange, needs CMake and far longer builds.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &settings.client_ca_file {
        Some(ca_file) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca_file)? {
                (roots.add(cert)).map_err(|e| format!("{}: {e}", shown(ca_file)))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("{}: {e}", shown(ca_file)))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = (builder.with_single_cert(certs, key))
        .map_err(|e| format!("{} with {}: {e}", shown(cert_file), shown(key_file)))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

fn certificates(path: &Path) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    let certs = (CertificateDer::pem_file_iter(path))
        .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    match certs.is_empty() {
        true => Err(format!("{}: no certificate in it", path.display())),
        false => Ok(certs),
    }
}

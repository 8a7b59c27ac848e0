//! Who may call this node: the [`Guard`] holds the API keys of `[auth] keys_file` (re-read
//! when the file changes, so a revocation needs no restart) and admits or refuses each call
//! before any handler runs ([`layer`]): the key (`UNAUTHENTICATED`), then its roles for the
//! method and its tenant for every tenant the request names (`PERMISSION_DENIED`), by the
//! table in `rezef_auth::access`; then its limits (`RESOURCE_EXHAUSTED` with a `RetryInfo`):
//! calls a second and streams open at once, per key, so that one noisy client cannot starve
//! the others. A server without a key file lets every caller in, and so listens on loopback
//! only unless told `insecure` (docs/security.md).

pub mod layer;
mod named;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rezef_auth::{Bucket, Credential, KeyFile, Keys, Limits, Token};
use tracing::{info, warn};

use crate::config::ServerConfig;
use crate::{Error, Result};
use named::NamedFields;

/// How often the key file is looked at for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// The keys a node accepts, and the call-by-call check.
#[derive(Debug, Clone)]
pub struct Guard(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    file: KeyFile,
    keys: RwLock<Arc<Keys>>,
    /// Set once a key file was seen; never unset (removing the file keys nobody in).
    enforced: AtomicBool,
    /// The file's modification time and length when last read.
    stamp: Mutex<Option<(SystemTime, u64)>>,
    named: NamedFields,
    /// Limits of keys without their own.
    limits: Limits,
    /// Each key's calls, as a token bucket, timed from `origin`.
    buckets: Mutex<HashMap<String, Bucket>>,
    origin: Instant,
    /// Each key's open streams.
    streams: Arc<Mutex<HashMap<String, u32>>>,
}

/// One open stream of a key, given back when dropped (with the response's body).
#[derive(Debug)]
pub struct StreamPermit {
    key: String,
    streams: Arc<Mutex<HashMap<String, u32>>>,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(open) = streams.get_mut(&self.key) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                streams.remove(&self.key);
            }
        }
    }
}

/// A call let in: who makes it, and its stream's permit if it opens one.
#[derive(Debug)]
pub struct Admitted {
    pub caller: Caller,
    pub stream: Option<StreamPermit>,
}

/// The credential a call was admitted with, in the request's extensions.
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<Credential>);

impl Guard {
    /// Reads the key file of `config` (a file that cannot be read refuses the start) and
    /// refuses a keyless server on a non-loopback address unless `[auth] insecure`.
    pub fn open(config: &ServerConfig) -> Result<Self> {
        let file = KeyFile::new(config.auth.keys_file(&config.data_dir));
        let named = NamedFields::from_descriptors(rezef_proto::FILE_DESCRIPTOR_SET)
            .map_err(|e| Error::Config(format!("the service descriptors: {e}")))?;
        let guard = Guard(Arc::new(Inner {
            keys: RwLock::default(),
            enforced: AtomicBool::new(false),
            stamp: Mutex::new(None),
            named,
            limits: config.auth.limits,
            buckets: Mutex::default(),
            origin: Instant::now(),
            streams: Arc::default(),
            file,
        }));
        guard.reload().map_err(|e| Error::Config(e.to_string()))?;
        // The dashboard calls the same services, so it is exposed as much as they are.
        let dashboard = (config.dashboard.enabled).then_some(config.dashboard.listen);
        let exposed = ([config.listen].into_iter().chain(dashboard))
            .find(|listen| !listen.ip().is_loopback())
            .unwrap_or(config.listen);
        guard.check_exposure(exposed, config.auth.insecure)?;
        Ok(guard)
    }

    /// `listen`: the first address served beyond loopback, if any.
    fn check_exposure(&self, listen: SocketAddr, insecure: bool) -> Result<()> {
        let path = self.0.file.path().display();
        match (self.enforced(), listen.ip().is_loopback(), insecure) {
            (true, _, _) => info!(keys = self.keys().active(), file = %path, "API keys required"),
            (false, true, _) => info!(
                file = %path,
                "no API keys: every caller is let in, so only loopback is served \
                 (`rezef keys create` makes one)"
            ),
            (false, false, true) => warn!(
                %listen,
                "no API keys and `insecure`: every caller that reaches {listen} is let in"
            ),
            (false, false, false) => {
                return Err(Error::Config(format!(
                    "refusing to serve {listen} without API keys: anyone reaching it could read \
                     and change every tenant's data. Make a key (`rezef keys create`, file \
                     {path}), listen on loopback, or pass --insecure for development"
                )));
            }
        }
        Ok(())
    }

    /// Whether calls need a key (a key file was found).
    pub fn enforced(&self) -> bool {
        self.0.enforced.load(Ordering::Acquire)
    }

    fn keys(&self) -> Arc<Keys> {
        self.0
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Re-reads the key file if it changed since the last read.
    fn reload(&self) -> std::result::Result<(), rezef_auth::Error> {
        let path = self.0.file.path();
        let stamp = stamp(path);
        let mut last = self.0.stamp.lock().unwrap_or_else(|p| p.into_inner());
        if stamp == *last {
            return Ok(());
        }
        let keys = self.0.file.load()?;
        if stamp.is_some() {
            self.0.enforced.store(true, Ordering::Release);
        }
        info!(keys = keys.active(), "API keys read");
        *self.0.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
        *last = stamp;
        Ok(())
    }

    /// Follows the key file until `closing` turns true. A file that cannot be read keeps
    /// the keys read before (a half-edited file must not open the server).
    pub async fn follow(self, mut closing: tokio::sync::watch::Receiver<bool>) {
        let span = tracing::info_span!("auth.reload");
        loop {
            tokio::select! {
                () = tokio::time::sleep(RELOAD_EVERY) => {}
                _ = closing.changed() => return,
            }
            let guard = self.clone();
            let read = tokio::task::spawn_blocking(move || guard.reload()).await;
            if let Ok(Err(error)) = read {
                span.in_scope(|| warn!(%error, "the key file could not be read; keeping the keys read before"));
            }
        }
    }

    /// The credential `authorization` proves, if calls need one, allowed to call `method`
    /// for the tenants its request will name (checked as they arrive, [`Guard::check_message`])
    /// and within its limits.
    pub fn admit(&self, method: &str, authorization: Option<&str>) -> Result<Option<Admitted>> {
        if !self.enforced() {
            return Ok(None);
        }
        let token = Token::from_header(authorization)?;
        let credential = self.keys().authenticate(&token)?;
        // The tenant is checked message by message; here the role alone.
        rezef_auth::authorize(&credential, method, "")?;
        let limits = credential.limits.unwrap_or(self.0.limits);
        self.take_call(&credential.id, &limits)?;
        let stream = match self.0.named.is_streaming(method) {
            true => Some(self.open_stream(&credential.id, &limits)?),
            false => None,
        };
        Ok(Some(Admitted {
            caller: Caller(credential),
            stream,
        }))
    }

    fn take_call(&self, key: &str, limits: &Limits) -> Result<()> {
        let now = self.0.origin.elapsed();
        let mut buckets = self.0.buckets.lock().unwrap_or_else(|p| p.into_inner());
        // The key's id is copied only for its first call.
        if !buckets.contains_key(key) {
            buckets.insert(key.to_owned(), Bucket::full(limits, now));
        }
        let Some(bucket) = buckets.get_mut(key) else {
            return Ok(());
        };
        bucket
            .take(limits, now)
            .map_err(|retry_after| Error::Exhausted {
                message: format!(
                    "this key made more than {} calls a second (bursts of {}): retry later",
                    limits.calls_per_second, limits.burst
                ),
                retry_after,
            })
    }

    fn open_stream(&self, key: &str, limits: &Limits) -> Result<StreamPermit> {
        let mut streams = self.0.streams.lock().unwrap_or_else(|p| p.into_inner());
        let open = streams.entry(key.to_owned()).or_insert(0);
        if *open >= limits.streams {
            return Err(Error::Exhausted {
                message: format!(
                    "this key has {} streams open, its limit: close one first",
                    limits.streams
                ),
                retry_after: Duration::from_secs(1),
            });
        }
        *open += 1;
        Ok(StreamPermit {
            key: key.to_owned(),
            streams: self.0.streams.clone(),
        })
    }

    /// Checks one encoded request message of `method` against `caller`'s tenant, sources,
    /// agent and `verify` grant.
    pub fn check_message(&self, caller: &Caller, method: &str, message: &[u8]) -> Result<()> {
        let named = (self.0.named.named(method, message))
            .map_err(|_| Error::invalid("request", "is not a valid protobuf message"))?;
        for tenant in &named.tenants {
            rezef_auth::authorize(&caller.0, method, tenant)?;
        }
        for source in &named.sources {
            rezef_auth::speaks_as(&caller.0, source)?;
        }
        for agent in &named.agents {
            rezef_auth::acts_as_agent(&caller.0, agent)?;
        }
        for verification in named.verifications.iter().filter(|v| v.above_low) {
            rezef_auth::verifies(&caller.0, &verification.method)?;
        }
        Ok(())
    }

    /// Whether requests of `method` name tenants or sources to check.
    fn names_any(&self, method: &str) -> bool {
        self.0.named.names_any(method)
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

//! The runtime every reference adapter binary shares (feature `service`): settings layered
//! from defaults, a TOML file and the environment (`config.rs`), the [`Publisher`] on a
//! spool, an HTTP server with the adapter's routes beside `/healthz`, `/readyz` and
//! `/metrics` (`http.rs`, `metrics.rs`), logs (`telemetry.rs`), and a graceful stop on
//! SIGTERM or ctrl-c that closes the publisher (what the server has not acknowledged stays
//! spooled for the next start).
//!
//! An adapter binary:
//!
//! ```no_run
//! # async fn adapter() -> Result<(), rezef_adapter::Error> {
//! use rezef_adapter::service::{self, HttpSettings, RezefSettings, Runtime, SpoolSettings};
//!
//! #[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
//! #[serde(default, deny_unknown_fields)]
//! struct Settings {
//!     rezef: RezefSettings,
//!     spool: SpoolSettings,
//!     http: HttpSettings,
//!     // ... the adapter's own sections
//! }
//!
//! service::telemetry::init(false);
//! let settings: Settings = service::load(None, "REZEF_MYADAPTER_")?;
//! let runtime = Runtime::start(&settings.rezef, &settings.spool).await?;
//! let publisher = runtime.publisher(); // publish through it in the handlers
//! let routes = axum::Router::new(); // .route("/my/webhook", post(handler)).with_state(...)
//! let listener = service::bind(settings.http.listen).await?;
//! runtime.serve(listener, routes, service::shutdown_signal()).await?;
//! # Ok(()) }
//! ```

mod args;
mod config;
mod http;
pub mod metrics;
pub mod telemetry;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::{info, warn};

pub use args::ServiceArgs;
pub use config::{HttpSettings, RezefSettings, SpoolSettings, load, millis};

use crate::{Client, Error, Publisher};
use metrics::Metrics;

/// How long a stopping adapter waits for the server to acknowledge what it accepted.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// What an adapter's handlers use: the client (for reads such as `ResumeConversation`) and
/// the publisher; and what serves them.
#[derive(Debug)]
pub struct Runtime {
    client: Client,
    publisher: Arc<Publisher>,
    metrics: Arc<Metrics>,
}

impl Runtime {
    /// Opens the spool and starts the publisher; Rezef need not be up.
    pub async fn start(rezef: &RezefSettings, spool: &SpoolSettings) -> Result<Self, Error> {
        let client = rezef.client()?;
        let publisher = Publisher::start(client.clone(), spool.publisher_config()).await?;
        let publisher = Arc::new(publisher);
        let metrics = Arc::new(Metrics::new(&publisher));
        Ok(Self {
            client,
            publisher,
            metrics,
        })
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    pub fn publisher(&self) -> Arc<Publisher> {
        self.publisher.clone()
    }

    /// Serves `routes` with health and metrics on `listener` until `shutdown` resolves, lets
    /// requests under way finish, then closes the publisher (waiting a few seconds for the
    /// server's acknowledgements). Handlers must not keep the publisher beyond their router.
    pub async fn serve(
        self,
        listener: TcpListener,
        routes: axum::Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let Self {
            publisher, metrics, ..
        } = self;
        let app = http::router(routes, publisher.clone(), metrics);
        info!(addr = ?listener.local_addr().ok(), "serving");
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(Error::Serve)?;
        match Arc::into_inner(publisher) {
            Some(publisher) => {
                let closed = publisher.close(CLOSE_GRACE).await?;
                info!(
                    unsent = closed.unsent,
                    "stopped; unsent events stay spooled"
                );
            }
            None => warn!("the publisher is still in use; not closed"),
        }
        Ok(())
    }
}

/// Binds the HTTP listener (`[http] listen`; port 0 picks a free one).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Config(format!("http: cannot listen on {addr}: {source}")))
}

/// Resolves on ctrl-c or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    info!("stopping");
}

//! The live web dashboard `rezef serve` shows (`[dashboard]`, on by default at
//! <http://127.0.0.1:8080/>; docs/dashboard.md): queues and agents now, the day's service level
//! both ways with the spread of waits over the day, and one customer's tracker with their
//! events from the audit log, updating live.
//!
//! Its own HTTP/1.1 listener (`crate::http_listener`), not the gRPC port: browsers speak
//! neither HTTP/2 without TLS nor gRPC. It holds no data and reads nothing itself: every read
//! is a call of the gRPC services, in-process, through the same layers as a network call
//! (`gateway`), so what the page shows is what the API answers, to the same key.
//!
//! - `routes`: the paths, and the HTTP status of a refused call.
//! - `gateway`: the calls, the page's key passed on as gRPC's.
//! - `live` and `sse`: the live stream, as server-sent events; its figures are read again
//!   when a projection moved (`insights::Projections`, as `Insights/WatchInterval` does).
//! - `assets`: the embedded page (`assets/`) and the security headers.

mod assets;
mod gateway;
mod live;
mod routes;
mod sse;

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, info_span};

use gateway::Gateway;
pub use gateway::Grpc;

use crate::insights::Projections;
use crate::{Error, Result};

/// Every answer's body: a file, JSON, or an event stream.
type HttpBody = UnsyncBoxBody<Bytes, Infallible>;

/// The dashboard's listener, bound.
#[derive(Debug)]
pub struct Dashboard {
    listener: TcpListener,
}

impl Dashboard {
    /// Binds `addr` (`dashboard.listen`; port 0 picks a free one).
    pub async fn bind(addr: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::DashboardBind { addr, source })?;
        Ok(Self { listener })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves the page over `grpc` in the background until `closing` turns true; the live
    /// figures are read again when `projections` moved.
    pub fn serve(self, grpc: Grpc, projections: Projections, closing: watch::Receiver<bool>) {
        if let Some(addr) = self.local_addr() {
            info!("the dashboard is at http://{addr}/");
        }
        let gateway = Gateway::new(grpc);
        let watch = closing.clone();
        let service = hyper::service::service_fn(move |request| {
            routes::answer(gateway.clone(), projections.clone(), watch.clone(), request)
        });
        crate::http_listener::serve(self.listener, service, closing, info_span!("dashboard"));
    }
}

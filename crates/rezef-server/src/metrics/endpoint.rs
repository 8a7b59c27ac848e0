//! The HTTP side of the metrics: `GET /metrics` answers the registry in Prometheus's text
//! format (0.0.4), anything else `404`, on `crate::http_listener`. A scrape renders on a
//! blocking thread: reading the disk figures walks the data directory.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, info_span, warn};

use crate::{Error, Result};

/// The metrics' listener, bound.
#[derive(Debug)]
pub struct Endpoint {
    listener: TcpListener,
}

impl Endpoint {
    /// Binds `addr` (`metrics.listen`; port 0 picks a free one).
    pub async fn bind(addr: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::MetricsBind { addr, source })?;
        Ok(Self { listener })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Answers scrapes of `registry` in the background until `closing` turns true.
    pub fn serve(self, registry: Registry, closing: watch::Receiver<bool>) {
        let registry = Arc::new(registry);
        info!(addr = ?self.local_addr(), "metrics at /metrics");
        let service = hyper::service::service_fn(move |request| answer(registry.clone(), request));
        crate::http_listener::serve(self.listener, service, closing, info_span!("metrics"));
    }
}

/// One request: the metrics at `GET /metrics`.
async fn answer(
    registry: Arc<Registry>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() != "/metrics" {
        return Ok(plain(
            StatusCode::NOT_FOUND,
            "the metrics are at /metrics\n",
        ));
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Ok(plain(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n"));
    }
    let rendered = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        prometheus_text::encode(&mut text, &registry).map(|()| text)
    })
    .await;
    Ok(match rendered {
        Ok(Ok(text)) => {
            let mut response = Response::new(Full::new(Bytes::from(text)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(prometheus_text::CONTENT_TYPE),
            );
            response
        }
        Ok(Err(_)) | Err(_) => {
            warn!("the metrics could not be rendered");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the metrics could not be rendered\n",
            )
        }
    })
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

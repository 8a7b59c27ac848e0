//! Every gRPC call counted by method and status code and timed, in one tower layer in front
//! of every service, so that no handler can forget it (as `crate::auth::layer` guards them).
//!
//! The status is read where gRPC puts it: the response's headers for a call refused at once
//! (a "trailers-only" response: every error tonic returns from a handler), else the
//! trailers that end the body. A call whose body is dropped before its trailers (the client
//! hung up) counts as `CANCELLED`. A call ends when its response body does, so a stream is
//! timed over its whole life and counted open until then.
//!
//! The label values are the methods the server offers, read once from the services'
//! descriptors: a path no service has is counted as `other`, so a client cannot grow the
//! series by making up paths. Per call the layer looks the path up in a map and counts into
//! handles made the first time each method and code were seen: nothing is allocated.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::Frame;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use prost_reflect::DescriptorPool;
use tonic::Status;
use tonic::body::Body;
use tower::{Layer, Service};

use super::{Histograms, add, names};
use crate::{Error, Result};

/// Which method: the labels of the per-method figures.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MethodLabels {
    service: Arc<str>,
    method: Arc<str>,
}

/// Which method, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallLabels {
    service: Arc<str>,
    method: Arc<str>,
    code: &'static str,
}

/// What is counted of one method, its handles made the first time they are needed.
#[derive(Debug)]
struct Method {
    labels: MethodLabels,
    /// By status code (0 to 16).
    by_code: [OnceLock<Counter>; 17],
    seconds: OnceLock<Histogram>,
    /// For streaming methods: open now.
    open: Option<Gauge>,
}

/// The gRPC figures and the methods they count.
#[derive(Debug)]
struct Inner {
    requests: Family<CallLabels, Counter>,
    seconds: Histograms<MethodLabels>,
    open: Family<MethodLabels, Gauge>,
    /// By path, `/rezef.v1.Journeys/GetJourney`.
    methods: HashMap<String, Arc<Method>>,
    /// Any path no service has.
    other: Arc<Method>,
}

/// Counts and times gRPC calls; cheap to clone.
#[derive(Debug, Clone)]
pub struct Calls(Arc<Inner>);

impl Calls {
    /// The methods of every service the server offers, read from their descriptors.
    pub fn new() -> Result<Self> {
        let open = Family::<MethodLabels, Gauge>::default();
        let method = |service: &str, name: &str, streaming: bool| {
            let labels = MethodLabels {
                service: service.into(),
                method: name.into(),
            };
            Arc::new(Method {
                // Streams show at 0 before the first opens.
                open: streaming.then(|| open.get_or_create_owned(&labels)),
                labels,
                by_code: std::array::from_fn(|_| OnceLock::new()),
                seconds: OnceLock::new(),
            })
        };
        let mut methods = HashMap::new();
        for descriptors in [
            rezef_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ] {
            let pool = DescriptorPool::decode(descriptors)
                .map_err(|e| Error::Config(format!("metrics: the services' descriptors: {e}")))?;
            for service in pool.services() {
                for m in service.methods() {
                    let streaming = m.is_client_streaming() || m.is_server_streaming();
                    let path = format!("/{}/{}", service.full_name(), m.name());
                    methods.insert(path, method(service.full_name(), m.name(), streaming));
                }
            }
        }
        Ok(Self(Arc::new(Inner {
            requests: Family::default(),
            seconds: Family::new_with_constructor(|| Histogram::new(names::GRPC_BUCKETS)),
            open: open.clone(),
            other: method("other", "other", false),
            methods,
        })))
    }

    pub(super) fn register(&self, registry: &mut Registry) {
        add(registry, names::GRPC_REQUESTS, self.0.requests.clone());
        add(registry, names::GRPC_SECONDS, self.0.seconds.clone());
        add(registry, names::GRPC_OPEN_STREAMS, self.0.open.clone());
    }

    /// A call to `path` begins.
    fn start(&self, path: &str) -> Call {
        let method = self.0.methods.get(path).unwrap_or(&self.0.other).clone();
        if let Some(open) = &method.open {
            open.inc();
        }
        Call {
            calls: self.clone(),
            method,
            started: Instant::now(),
            code: None,
            ended: false,
        }
    }

    /// A call ended with `code` after `took` seconds.
    fn finish(&self, method: &Method, code: i32, took: f64) {
        let index = usize::try_from(code).ok().filter(|&code| code < 17);
        let index = index.unwrap_or(tonic::Code::Unknown as usize);
        let requests = method.by_code[index].get_or_init(|| {
            self.0.requests.get_or_create_owned(&CallLabels {
                service: method.labels.service.clone(),
                method: method.labels.method.clone(),
                code: crate::error::code_name(tonic::Code::from_i32(code)),
            })
        });
        requests.inc();
        let seconds =
            (method.seconds).get_or_init(|| self.0.seconds.get_or_create_owned(&method.labels));
        seconds.observe(took);
        if let Some(open) = &method.open {
            open.dec();
        }
    }
}

/// One call under way: counted when dropped, with the status it saw.
#[derive(Debug)]
struct Call {
    calls: Calls,
    method: Arc<Method>,
    started: Instant,
    code: Option<i32>,
    /// The response body ended (else it was dropped first: the client went away).
    ended: bool,
}

impl Call {
    /// The service failed without a response (counted as `UNKNOWN` when dropped).
    fn failed(&mut self) {
        self.code = Some(tonic::Code::Unknown as i32);
    }

    /// Reads the status of a trailers-only response, and follows the body to its end.
    fn follow(mut self, response: http::Response<Body>) -> http::Response<Body> {
        if let Some(code) = grpc_status(response.headers()) {
            self.code = Some(code);
        }
        response.map(|body| Body::new(Observed { body, call: self }))
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let code = self.code.unwrap_or(if self.ended {
            tonic::Code::Unknown as i32
        } else {
            tonic::Code::Cancelled as i32
        });
        let took = self.started.elapsed().as_secs_f64();
        self.calls.finish(&self.method, code, took);
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<i32> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

/// The layer of [`Counted`] services.
#[derive(Debug, Clone)]
pub struct CallsLayer(pub Calls);

impl<S> Layer<S> for CallsLayer {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Counted {
            calls: self.0.clone(),
            inner,
        }
    }
}

/// A service whose calls are counted and timed.
#[derive(Debug, Clone)]
pub struct Counted<S> {
    calls: Calls,
    inner: S,
}

impl<S> Service<http::Request<Body>> for Counted<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let mut call = self.calls.start(request.uri().path());
        let response = self.inner.call(request);
        Box::pin(async move {
            match response.await {
                Ok(response) => Ok(call.follow(response)),
                Err(error) => {
                    call.failed();
                    Err(error)
                }
            }
        })
    }
}

/// A response body passed on as it is, its call counted when it ends or is dropped.
struct Observed {
    body: Body,
    call: Call,
}

impl http_body::Body for Observed {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                    self.call.code = Some(code);
                }
            }
            Poll::Ready(Some(Err(status))) => {
                self.call.code.get_or_insert(status.code() as i32);
            }
            Poll::Ready(None) => self.call.ended = true,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_s_methods_are_known_and_streams_are_told_apart() {
        let calls = Calls::new().expect("descriptors");
        let known = |path: &str| calls.0.methods.get(path).map(|m| m.open.is_some());
        assert_eq!(known("/rezef.v1.Ingest/Publish"), Some(false));
        assert_eq!(known("/rezef.v1.Journeys/WatchJourney"), Some(true));
        assert_eq!(known("/rezef.v1.Routing/AgentSession"), Some(true));
        assert_eq!(known("/rezef.v1.Insights/GetReport"), Some(false));
        assert_eq!(known("/rezef.v1.Insights/TrackCustomer"), Some(true));
        assert_eq!(known("/rezef.v1.Insights/WatchInterval"), Some(true));
        assert_eq!(
            known("/rezef.cluster.v1.Partitions/ReadJourney"),
            Some(false)
        );
        assert_eq!(
            known("/rezef.cluster.v1.Partitions/ReadFigures"),
            Some(false)
        );
        assert_eq!(known("/grpc.health.v1.Health/Check"), Some(false));
        assert!(known("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo").is_some());
        assert!(known("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo").is_some());
        assert_eq!(known("/made.Up/Path"), None);
    }

    #[test]
    fn a_call_is_counted_once_with_its_code_and_a_made_up_path_as_other() {
        let calls = Calls::new().expect("descriptors");
        let mut call = calls.start("/made.Up/Path");
        call.code = Some(tonic::Code::Unimplemented as i32);
        drop(call);
        drop(calls.start("/rezef.v1.Ingest/Publish"));
        let count = |service: &str, method: &str, code: &'static str| {
            let labels = CallLabels {
                service: service.into(),
                method: method.into(),
                code,
            };
            calls.0.requests.get(&labels).map(|c| c.get())
        };
        assert_eq!(count("other", "other", "UNIMPLEMENTED"), Some(1));
        assert_eq!(count("rezef.v1.Ingest", "Publish", "CANCELLED"), Some(1));
        assert_eq!(count("rezef.v1.Ingest", "Publish", "OK"), None);
    }
}

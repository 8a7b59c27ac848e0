//! The [`Guard`] in front of every service: one tower layer, so that no handler can forget
//! it. A call to `rezef.*` is admitted by its key and role from its headers; its request
//! messages then pass through [`Checked`], which reads the tenants (and sources) each names as it
//! arrives (unary and streaming calls alike) and ends the call with `PERMISSION_DENIED`
//! at the first one outside the key's scope, before the handler decodes it. Health and
//! reflection stay open (probes, tooling): they serve no tenant's data.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures::future::BoxFuture;
use http_body::Frame;
use tonic::Status;
use tonic::body::Body;
use tower::{Layer, Service};

use super::{Caller, Guard, StreamPermit};

/// The gRPC message prefix: a compression flag and a 4-byte length.
const PREFIX: usize = 5;

#[derive(Debug, Clone)]
pub struct GuardLayer(pub Guard);

impl<S> Layer<S> for GuardLayer {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guarded {
            guard: self.0.clone(),
            inner,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Guarded<S> {
    guard: Guard,
    inner: S,
}

impl<S> Service<http::Request<Body>> for Guarded<S>
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

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let method = request.uri().path().to_owned();
        if !method.starts_with("/rezef.") {
            return Box::pin(self.inner.call(request));
        }
        let authorization = (request.headers().get(http::header::AUTHORIZATION))
            .and_then(|value| value.to_str().ok());
        let (caller, permit) = match self.guard.admit(&method, authorization) {
            Ok(Some(admitted)) => (admitted.caller, admitted.stream),
            Ok(None) => return Box::pin(self.inner.call(request)),
            Err(error) => {
                tracing::debug!(%method, %error, "call refused");
                let response = Status::from(error).into_http();
                return Box::pin(async move { Ok(response) });
            }
        };
        if self.guard.names_any(&method) {
            let body = std::mem::take(request.body_mut());
            *request.body_mut() = Body::new(Checked {
                inner: body,
                guard: self.guard.clone(),
                caller: caller.clone(),
                method,
                pending: BytesMut::new(),
            });
        }
        request.extensions_mut().insert(caller);
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            // A stream's permit goes back when its response ends.
            Ok(match permit {
                Some(permit) => response.map(|body| {
                    Body::new(Holding {
                        body,
                        _permit: permit,
                    })
                }),
                None => response,
            })
        })
    }
}

/// A response body that holds its call's stream permit until it is done or dropped.
struct Holding {
    body: Body,
    _permit: StreamPermit,
}

impl http_body::Body for Holding {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A request body passed on as it arrives, each whole message checked on the way.
struct Checked {
    inner: Body,
    guard: Guard,
    caller: Caller,
    method: String,
    /// Bytes of a message not yet whole.
    pending: BytesMut,
}

impl Checked {
    /// Checks every message now whole in `pending`.
    fn check_whole(&mut self) -> Result<(), Status> {
        loop {
            let Some(header) = self.pending.get(..PREFIX) else {
                return Ok(());
            };
            if header[0] != 0 {
                return Err(Status::unimplemented(
                    "compressed requests are not accepted",
                ));
            }
            let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
            if self.pending.len() < PREFIX + len {
                return Ok(());
            }
            let message = &self.pending[PREFIX..PREFIX + len];
            (self
                .guard
                .check_message(&self.caller, &self.method, message))
            .map_err(Status::from)?;
            self.pending.advance(PREFIX + len);
        }
    }
}

impl http_body::Body for Checked {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(status))) => return Poll::Ready(Some(Err(status))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref() {
            this.pending.extend_from_slice(data);
            if let Err(status) = this.check_whole() {
                tracing::debug!(method = %this.method, key = %this.caller.0.id, "request refused");
                return Poll::Ready(Some(Err(status)));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

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
    /// Checks every whole message of `data` (after what `pending` holds), keeping the part
    /// of a message not yet whole. A frame of whole messages, the usual case, is read where
    /// it is, not copied.
    fn check(&mut self, data: &Bytes) -> Result<(), Status> {
        if self.pending.is_empty() {
            let used = self.check_whole(data)?;
            self.pending.extend_from_slice(&data[used..]);
            return Ok(());
        }
        self.pending.extend_from_slice(data);
        let pending = std::mem::take(&mut self.pending);
        let used = self.check_whole(&pending)?;
        self.pending = pending;
        self.pending.advance(used);
        Ok(())
    }

    /// Checks the whole messages at the start of `bytes`: how many bytes they take.
    fn check_whole(&self, bytes: &[u8]) -> Result<usize, Status> {
        let mut used = 0;
        loop {
            let rest = &bytes[used..];
            let Some(header) = rest.get(..PREFIX) else {
                return Ok(used);
            };
            if header[0] != 0 {
                return Err(Status::unimplemented(
                    "compressed requests are not accepted",
                ));
            }
            let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
            let Some(message) = rest.get(PREFIX..PREFIX + len) else {
                return Ok(used);
            };
            (self
                .guard
                .check_message(&self.caller, &self.method, message))
            .map_err(Status::from)?;
            used += PREFIX + len;
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
        if let Some(data) = frame.data_ref()
            && let Err(status) = this.check(data)
        {
            tracing::debug!(method = %this.method, key = %this.caller.0.id, "request refused");
            return Poll::Ready(Some(Err(status)));
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

#[cfg(test)]
mod tests {
    use prost::Message;
    use rezef_auth::{KeyFile, NewKey, Role, Scope};
    use rezef_proto::v1;

    use super::*;
    use crate::config::ServerConfig;

    /// A request body checker for `Publish`, with an adapter key of `acme`.
    fn checker(dir: &std::path::Path) -> Checked {
        let key = NewKey::new(Scope::Tenant("acme".into()), [Role::Adapter]);
        let (credential, _) = (KeyFile::new(dir.join("keys.json")).create(key, 0)).expect("a key");
        let config = ServerConfig {
            data_dir: dir.to_path_buf(),
            ..ServerConfig::default()
        };
        Checked {
            inner: Body::empty(),
            guard: Guard::open(&config).expect("a guard"),
            caller: Caller(std::sync::Arc::new(credential)),
            method: "/rezef.v1.Ingest/Publish".into(),
            pending: BytesMut::new(),
        }
    }

    fn framed(tenant: &str) -> Vec<u8> {
        let request = v1::PublishRequest {
            events: vec![v1::Event {
                tenant_id: tenant.into(),
                ..Default::default()
            }],
            sequence: 0,
        };
        let message = request.encode_to_vec();
        let mut framed = vec![0];
        framed.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
        framed.extend_from_slice(&message);
        framed
    }

    #[test]
    fn a_message_is_checked_however_its_bytes_are_split_into_frames() {
        let dir = tempfile::tempdir().expect("dir");
        let ours = [framed("acme"), framed("acme")].concat();
        let theirs = [framed("acme"), framed("globex")].concat();
        for split in 0..=ours.len() {
            let mut checked = checker(dir.path());
            let (first, second) = ours.split_at(split);
            checked
                .check(&Bytes::copy_from_slice(first))
                .expect("acme's");
            checked
                .check(&Bytes::copy_from_slice(second))
                .expect("acme's");
            assert!(checked.pending.is_empty(), "split at {split}");
        }
        for split in 0..=theirs.len() {
            let mut checked = checker(dir.path());
            let (first, second) = theirs.split_at(split);
            let both = (checked.check(&Bytes::copy_from_slice(first)))
                .and_then(|()| checked.check(&Bytes::copy_from_slice(second)));
            let status = both.expect_err("globex is not the key's");
            assert_eq!(
                status.code(),
                tonic::Code::PermissionDenied,
                "split at {split}"
            );
        }
    }
}

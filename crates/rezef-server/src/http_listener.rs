//! The HTTP/1.1 listeners beside gRPC (`/metrics`, the dashboard): hyper 1's server, already
//! under tonic, one task per connection, accepting until the server shuts down. One loop, so
//! that both stop, log and survive a failed connection the same way.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{Instrument, Span, debug, warn};

/// Answers each connection to `listener` with `answer`, in the background, until `closing`
/// turns true; `span` names the listener in the log.
pub fn serve<S, B>(listener: TcpListener, answer: S, mut closing: watch::Receiver<bool>, span: Span)
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let serving = async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = closing.wait_for(|closing| *closing) => return,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    warn!(%error, "a connection failed");
                    continue;
                }
            };
            let answer = answer.clone();
            tokio::spawn(
                async move {
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), answer);
                    if let Err(error) = connection.await {
                        debug!(%error, "a connection ended");
                    }
                }
                .in_current_span(),
            );
        }
    };
    tokio::spawn(serving.instrument(span));
}

//! The HTTP/1.1 listeners beside gRPC (`/metrics`, the dashboard): hyper 1's server, already
//! under tonic, one task per connection, accepting until the server shuts down and then
//! closing the connections. One loop, so that both stop, log and survive a failed connection
//! the same way.

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
            let (answer, mut closing) = (answer.clone(), closing.clone());
            tokio::spawn(
                async move {
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), answer);
                    let mut connection = std::pin::pin!(connection);
                    // At shutdown a kept-alive connection closes once its answer is sent
                    // (streams end then), so that nothing holds the services any longer.
                    let ended = tokio::select! {
                        ended = connection.as_mut() => ended,
                        () = async { drop(closing.wait_for(|closing| *closing).await) } => {
                            connection.as_mut().graceful_shutdown();
                            connection.await
                        }
                    };
                    if let Err(error) = ended {
                        debug!(%error, "a connection ended");
                    }
                }
                .in_current_span(),
            );
        }
    };
    tokio::spawn(serving.instrument(span));
}

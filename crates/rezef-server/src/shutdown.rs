//! How streams end when the server shuts down under them. A replay or a watch cut short by
//! a shutdown must not look complete: it ends `UNAVAILABLE`, so a client reconnects (to
//! another node, or this one restarted) and goes on from the last offset it received. And
//! the shutdown itself is bounded: clients that stop reading do not hold it up.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tonic::Status;

use crate::Error;

/// How long open connections get to take their last messages once shutdown begins.
pub const GRACE: Duration = Duration::from_secs(5);

/// The status a stream ends with when the server shuts down under it.
pub fn status() -> Status {
    Error::Unavailable(
        "the server is shutting down: reconnect and go on from the last offset received".into(),
    )
    .into()
}

/// Resolves once the server is shutting down (`closing` turned true).
pub async fn begun(closing: &watch::Receiver<bool>) {
    let mut closing = closing.clone();
    let _ = closing.wait_for(|closing| *closing).await;
}

/// Ends a server stream with [`status`], after what the client has yet to read; a client
/// that reads nothing more within the grace loses its connection instead (an error too).
pub async fn end<T>(sender: &mpsc::Sender<Result<T, Status>>) {
    let _ = tokio::time::timeout(GRACE, sender.send(Err(status()))).await;
}

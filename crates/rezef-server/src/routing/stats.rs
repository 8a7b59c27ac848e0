//! `GetQueueStats`, and the watches of queues and agents: figures read from the tenant's
//! engine now, and again as routing changes.

use std::pin::Pin;

use futures::Stream;
use rezef_proto::v1::{GetQueueStatsRequest, GetQueueStatsResponse};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Response, Status};
use tracing::Instrument;

use super::Local;
use crate::Result;
use crate::convert::Check;
use crate::convert::routing as convert;
use crate::shutdown;

/// A watch's updates.
pub(super) type Watched<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

impl Local {
    pub(super) fn stats(&self, request: GetQueueStatsRequest) -> Result<GetQueueStatsResponse> {
        let mut check = Check::default();
        let tenant = check.tenant("tenant_id", request.tenant_id);
        let tenant = check.finish(|| tenant)?;
        self.desk.with_tenant(&tenant, |t| {
            let now = self.desk.now();
            let queues = t.engine.stats(now).into_iter().map(convert::queue_stats);
            Ok(GetQueueStatsResponse {
                queues: queues.collect(),
                config_version: t.engine.routing().version,
            })
        })
    }

    /// `read` now, then again whenever the tenant's routing changes (at most every 100 ms:
    /// figures, not a change feed), until the client cancels.
    pub(super) fn watch<T: Send + 'static>(
        &self,
        span: tracing::Span,
        read: impl Fn(&Local) -> Result<T> + Send + 'static,
    ) -> Result<Response<Watched<T>>, Status> {
        let first = read(self)?;
        let (sender, receiver) = mpsc::channel(4);
        let service = self.clone();
        let mut changes = self.desk.changes();
        tokio::spawn(
            async move {
                let mut update = Ok(first);
                loop {
                    if sender.send(update.map_err(Status::from)).await.is_err() {
                        return;
                    }
                    tokio::select! {
                        changed = changes.changed() => if changed.is_err() { return },
                        () = sender.closed() => return,
                        () = service.backbone().closed() => return shutdown::end(&sender).await,
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    changes.borrow_and_update();
                    update = read(&service);
                }
            }
            .instrument(span),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

//! `WatchInterval`: the current interval's report rows, live, for wall screens: every
//! partition's figures, read as GetReport reads them (`cluster::figures`). The rows are read
//! again when a projection moved (`projections`: no polling, at most once a second, every
//! second while other nodes serve some partitions, again when the partitions served here
//! change) and sent when they differ from the last ones sent. A read that fails (an owner
//! that does not answer) ends the stream with its status: a part is never sent as the whole.
//! But a partition moving (no owner yet, or its new owner catching up) is what every
//! rebalance passes through, and a node joining must not end every open screen: such a read
//! is tried again every second, for up to [`MOVING_AT_MOST`].
//! The server's clock (a test's manual one) says which interval is current and when it ends.

use std::time::Duration;

use rezef_events::Timestamp;
use rezef_proto::v1::{IntervalUpdate, ReportRow};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tracing::{Instrument, debug, info_span};

use super::projections::Projections;
use super::request::Watch;
use super::{InsightsService, rows};
use crate::convert::timestamp;
use crate::journeys::WatchStream;
use crate::shutdown;

/// The longest a partition may be moving before the stream ends: longer than a rebalance.
const MOVING_AT_MOST: Duration = Duration::from_secs(30);

/// Streams the current interval's rows now, on every change and at every new interval,
/// until the client hangs up or the server shuts down.
pub(super) fn watch(service: InsightsService, asked: Watch) -> WatchStream<IntervalUpdate> {
    let (sender, receiver) = mpsc::channel(4);
    let span = info_span!("watch_interval", tenant = %asked.tenant);
    tokio::spawn(
        async move {
            // The start and rows of the last message sent.
            let mut sent: Option<(Timestamp, Vec<ReportRow>)> = None;
            let projections = Projections::new(service.topology.clone());
            // Since when the reads have found a partition moving.
            let mut moving_since: Option<Instant> = None;
            loop {
                // Positions first: the rows then hold at least every record below them.
                let mark = projections.mark();
                let read_at = service.clock.now();
                let interval = asked.width.around(read_at);
                // Every partition's figures, as GetReport reads them.
                let read = rows(
                    &service.topology,
                    &asked.tenant,
                    interval.clone(),
                    asked.grouping,
                );
                let rows = match read.await {
                    Ok(rows) => kept(rows, &asked),
                    Err(error) => {
                        let since = *moving_since.get_or_insert_with(Instant::now);
                        if !error.is_moving() || since.elapsed() >= MOVING_AT_MOST {
                            let _ = sender.send(Err(Status::from(error))).await;
                            return;
                        }
                        debug!(%error, "a partition is moving; reading again");
                        tokio::select! {
                            () = mark.coalesced() => continue,
                            () = sender.closed() => return,
                            () = shutdown::begun(&service.closing) => {
                                return shutdown::end(&sender).await;
                            }
                        }
                    }
                };
                moving_since = None;
                let rolled_over = sent.as_ref().is_some_and(|(s, _)| *s != interval.start);
                let changed = sent.as_ref().is_none_or(|(_, r)| rolled_over || *r != rows);
                if changed {
                    let update = IntervalUpdate {
                        start: Some(timestamp(interval.start)),
                        end: Some(timestamp(interval.end)),
                        rolled_over,
                        rows: rows.clone(),
                        read_at: Some(timestamp(read_at)),
                    };
                    if sender.send(Ok(update)).await.is_err() {
                        return;
                    }
                    sent = Some((interval.start, rows));
                }
                tokio::select! {
                    () = mark.moved() => {}
                    () = service.clock.sleep_until(interval.end) => {}
                    () = sender.closed() => return,
                    () = shutdown::begun(&service.closing) => return shutdown::end(&sender).await,
                }
                tokio::select! {
                    () = mark.coalesced() => {}
                    () = sender.closed() => return,
                    () = shutdown::begun(&service.closing) => return shutdown::end(&sender).await,
                }
            }
        }
        .instrument(span),
    );
    Box::pin(ReceiverStream::new(receiver))
}

/// The rows of the queues asked for (every row when none were named).
fn kept(rows: Vec<ReportRow>, asked: &Watch) -> Vec<ReportRow> {
    if asked.queues.is_empty() {
        return rows;
    }
    (rows.into_iter())
        .filter(|row| {
            row.queue_id
                .as_ref()
                .is_some_and(|q| asked.queues.contains(q))
        })
        .collect()
}

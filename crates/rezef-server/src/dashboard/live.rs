//! `POST /api/live`: what the live panels show, on one event stream (a browser opens at most
//! six connections to a host): `queues` and `agents` from Routing's WatchQueues and
//! WatchAgents as they change, and from Insights' GetReport `report` (the range as asked) and
//! `spread` (the same range by quarter hour, for the percentile chart): both first, then
//! asked again when a projection moved, as `Insights/WatchInterval` reads its rows again
//! (`insights::Projections`: no polling, at most once a second, every second while other
//! nodes serve some partitions, again when the partitions served here change), and sent
//! when they changed. Routing's streams fail on their own (a tenant without routing
//! configuration, a key without the role) as `problem` events.

use std::collections::VecDeque;

use bytes::Bytes;
use futures::{Stream, StreamExt, stream};
use http::Response;
use rezef_proto::json::{JsonMessage, to_json};
use rezef_proto::v1::{GetReportRequest, ReportInterval};
use tokio::sync::watch;
use tonic::{Status, Streaming};

use super::HttpBody;
use super::gateway::{Gateway, Refusal};
use super::sse::{self, event, problem};
use crate::insights::{Mark, Projections};

/// The live stream for `request`; refused at once, as an HTTP status, when its figures are
/// (a bad range, a key that may not read them).
pub async fn live(
    gateway: Gateway,
    projections: Projections,
    request: GetReportRequest,
    closing: watch::Receiver<bool>,
) -> Result<Response<HttpBody>, Refusal> {
    let spread = GetReportRequest {
        interval: ReportInterval::QuarterHour.into(),
        by_queue: false,
        by_channel: false,
        by_intent: false,
        ..request.clone()
    };
    let tenant = request.tenant_id.clone();
    let mut figures = Figures {
        gateway: gateway.clone(),
        asked: [("report", request), ("spread", spread)],
        last: [Bytes::new(), Bytes::new()],
        pending: VecDeque::new(),
        mark: projections.mark(),
        projections,
    };
    for (n, (name, request)) in figures.asked.iter().enumerate() {
        let answer = gateway.report(request.clone()).await?;
        figures.last[n] = event(name, &to_json(&answer));
    }
    let first = stream::iter(figures.last.clone());
    let (routing, agents_tenant) = (gateway.clone(), tenant.clone());
    let queues = watched("queues", async move { routing.queues(tenant).await });
    let agents = watched("agents", async move { gateway.agents(agents_tenant).await });
    let sources = [figures.stream().boxed(), queues.boxed(), agents.boxed()];
    let events = first.chain(stream::select_all(sources));
    Ok(sse::response(events, closing))
}

/// A Routing watch's updates, once `opened`, as events named `name`.
fn watched<M: JsonMessage + Send + 'static>(
    name: &'static str,
    opened: impl Future<Output = Result<Streaming<M>, Status>> + Send,
) -> impl Stream<Item = Bytes> + Send {
    stream::once(opened).flat_map(move |opened| match opened {
        Ok(updates) => sse::messages(name, updates).left_stream(),
        Err(status) => stream::iter([problem(name, &status)]).right_stream(),
    })
}

/// The figures, asked again when a projection moved and sent when they changed.
struct Figures {
    gateway: Gateway,
    asked: [(&'static str, GetReportRequest); 2],
    /// The last event sent of each.
    last: [Bytes; 2],
    /// Changed, not sent yet.
    pending: VecDeque<Bytes>,
    projections: Projections,
    /// Where the projections stood before the last read.
    mark: Mark,
}

impl Figures {
    fn stream(self) -> impl Stream<Item = Bytes> + Send {
        stream::unfold(self, |mut figures| async move {
            loop {
                if let Some(event) = figures.pending.pop_front() {
                    return Some((event, figures));
                }
                figures.mark.moved().await;
                figures.mark.coalesced().await;
                figures.mark = figures.projections.mark();
                figures.ask().await;
            }
        })
    }

    async fn ask(&mut self) {
        for (n, (name, request)) in self.asked.iter().enumerate() {
            let now = match self.gateway.report(request.clone()).await {
                Ok(answer) => event(name, &to_json(&answer)),
                Err(status) => problem(name, &status),
            };
            if now != self.last[n] {
                self.last[n] = now.clone();
                self.pending.push_back(now);
            }
        }
    }
}

//! `rezef.v1.Journeys`: a customer's journey, read once or watched live.

use std::pin::Pin;

use futures::Stream;
use rezef_proto::v1::{
    GetJourneyRequest, GetJourneyResponse, JourneyUpdate, WatchJourneyRequest,
    journeys_server::Journeys,
};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::{Instrument, debug, info_span};

use crate::Result;
use crate::backbone::Backbone;
use crate::convert::journey_to_proto;

#[derive(Debug, Clone)]
pub struct JourneysService {
    backbone: Backbone,
}

impl JourneysService {
    pub fn new(backbone: Backbone) -> Self {
        Self { backbone }
    }

    async fn get(&self, request: Request<GetJourneyRequest>) -> Result<GetJourneyResponse> {
        let wait = self.backbone.max_wait(&request);
        let request = request.into_inner();
        let (tenant, customer) = Backbone::parse_customer(request.tenant_id, request.customer)?;
        if let Some(offset) = request.min_offset {
            self.backbone.wait_projected(offset, wait).await?;
        }
        // Read the position first: the journey then reflects at least every record below it.
        let projected_offset = self.backbone.projection.position();
        let journey = self.backbone.journey(&tenant, &customer)?;
        Ok(GetJourneyResponse {
            journey: Some(journey_to_proto(&journey)),
            projected_offset,
        })
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<JourneyUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl Journeys for JourneysService {
    async fn get_journey(
        &self,
        request: Request<GetJourneyRequest>,
    ) -> Result<Response<GetJourneyResponse>, Status> {
        let span = info_span!("get_journey", tenant = %request.get_ref().tenant_id);
        Ok(Response::new(self.get(request).instrument(span).await?))
    }

    type WatchJourneyStream = WatchStream;

    async fn watch_journey(
        &self,
        request: Request<WatchJourneyRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let request = request.into_inner();
        let (tenant, customer) = Backbone::parse_customer(request.tenant_id, request.customer)?;
        // Subscribe before reading, so no change falls between the read and the feed.
        let mut changes = self.backbone.projection.subscribe();
        // Watch the customer the reference names now, by id, even if links change later.
        let customer_id = self.backbone.journey(&tenant, &customer)?.customer_id;
        let customer = rezef_events::CustomerRef::Id(customer_id.clone());
        let (sender, receiver) = mpsc::channel(16);
        let backbone = self.backbone.clone();
        let span = info_span!("watch_journey", %tenant, customer = %customer_id);
        tokio::spawn(
            async move {
                let send_state = || {
                    let position = backbone.projection.position();
                    backbone
                        .journey(&tenant, &customer)
                        .map(|journey| JourneyUpdate {
                            journey: Some(journey_to_proto(&journey)),
                            projected_offset: position,
                        })
                };
                let first = send_state().map_err(Status::from);
                if sender.send(first).await.is_err() {
                    return;
                }
                loop {
                    let changed = tokio::select! {
                        change = changes.recv() => change,
                        () = sender.closed() => break,
                        () = backbone.closed() => break,
                    };
                    match changed {
                        Ok(change) if change.tenant != tenant || change.customer != customer_id => {
                            continue;
                        }
                        // A changed journey, or we fell behind the feed: either way the
                        // current state says everything (updates are states, not deltas).
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => break,
                    }
                    if sender
                        .send(send_state().map_err(Status::from))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                debug!("watch ended");
            }
            .instrument(span),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

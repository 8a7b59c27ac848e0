//! Contacts that no longer need an agent: the customer hung up, the interaction ended, or
//! self service resolved the need. Such a contact leaves its queue, and an offer of it is
//! withdrawn from the agent's session (the agent is free for the next contact at once).
//!
//! Both on request (`WithdrawContact`) and by itself: routing reads the log it writes to
//! ([`follow`]), and on a partitioned log ingest sends it the ends it appends to other
//! partitions ([`RoutingService::withdraw_ended`]), so an adapter that publishes
//! `ContactAbandoned` or `InteractionEnded` has nothing more to do. Calls whose answer depends on it (queue figures, a login's first
//! offers, an accept) first wait until routing has read everything logged before them
//! ([`Desk::followed_up`]), so an acknowledged hang-up is never counted as waiting nor
//! accepted by an agent. A contact already assigned stays the agent's until they complete it
//! (a warm transfer of it still pending is withdrawn, though).

use std::sync::Arc;
use std::time::Duration;

use rezef_events::event::StepOutcome;
use rezef_events::{InteractionId, Payload, TenantId, Timestamp};
use rezef_proto::v1::routing_server::Routing;
use rezef_proto::v1::{WithdrawContactRequest, WithdrawContactResponse};
use rezef_routing::Withdrawn;
use tonic::{Code, Request};
use tracing::{Instrument, debug, info_span, warn};

use super::desk::{Desk, Effects, Outgoing, Tenant};
use super::{Local, RoutingService};
use crate::convert::Check;
use crate::{Error, Result};

/// How many log records routing reads at once.
const BATCH: usize = 1024;

/// Why the event means its contact no longer needs an agent, if it does.
pub fn ends_contact(payload: &Payload) -> Option<&'static str> {
    match payload {
        Payload::ContactAbandoned { .. } => Some("the customer left"),
        Payload::InteractionEnded { .. } => Some("the interaction ended"),
        Payload::SelfServiceStepCompleted {
            outcome: Some(StepOutcome::Contained),
            ..
        } => Some("self service resolved the need"),
        _ => None,
    }
}

impl Tenant {
    /// Withdraws the contact (`why` goes to the agent whose offer is withdrawn), then offers
    /// what the freed agent may take.
    pub fn withdraw(
        &mut self,
        tenant: &TenantId,
        contact: &InteractionId,
        why: &'static str,
        now: Timestamp,
    ) -> Result<(Withdrawn, Effects)> {
        let withdrawn = self.engine.withdraw(contact, now)?;
        self.forget_contact(contact);
        let mut effects = Effects::default();
        if let Withdrawn::Offered(offer) = &withdrawn {
            effects
                .messages
                .push((offer.agent.clone(), Outgoing::Withdrawn(offer.clone(), why)));
        }
        self.dispatch(tenant, now, &mut effects);
        Ok((withdrawn, effects))
    }
}

impl Local {
    pub(super) async fn withdraw(
        &self,
        request: WithdrawContactRequest,
    ) -> Result<WithdrawContactResponse> {
        let mut check = Check::default();
        let tenant = check.tenant("tenant_id", request.tenant_id);
        let contact = check.id(
            "interaction_id",
            request.interaction_id,
            true,
            InteractionId::new,
        );
        let violations = check.into_violations();
        let (Some(tenant), Some(contact), true) = (tenant, contact, violations.is_empty()) else {
            return Err(Error::InvalidArgument(violations));
        };
        let now = self.desk.now();
        let (withdrawn, effects) = self.desk.with_tenant(&tenant, |t| {
            t.withdraw(&tenant, &contact, "withdrawn by request", now)
        })?;
        self.desk.apply(&tenant, effects).await?;
        Ok(match withdrawn {
            Withdrawn::Waiting { queue } => WithdrawContactResponse {
                queue_id: queue,
                ..Default::default()
            },
            Withdrawn::Offered(offer) => WithdrawContactResponse {
                queue_id: offer.queue,
                agent_id: offer.agent.to_string(),
                offer_id: offer.id.0,
            },
        })
    }
}

impl RoutingService {
    /// Withdraws, in the background, contacts that events appended to partitions other than
    /// their tenant's routing partition ended (`crate::ingest`): routing does not read those.
    /// As the adapter's own `WithdrawContact`, placed on the routing desk wherever it runs; a
    /// contact routing does not hold (`NOT_FOUND`) or that is assigned
    /// (`FAILED_PRECONDITION`) stays as it is.
    pub fn withdraw_ended(&self, tenant: &str, contacts: Vec<String>) {
        if contacts.is_empty() {
            return;
        }
        let (routing, tenant) = (self.clone(), tenant.to_owned());
        let span = info_span!("withdraw_ended", %tenant);
        let withdraw = async move {
            for contact in contacts {
                let request = Request::new(WithdrawContactRequest {
                    tenant_id: tenant.clone(),
                    interaction_id: contact,
                });
                match routing.withdraw_contact(request).await {
                    Ok(_) => debug!("a contact ended on another partition was withdrawn"),
                    Err(status)
                        if matches!(status.code(), Code::NotFound | Code::FailedPrecondition) => {}
                    Err(status) => {
                        warn!(%status, "a contact ended on another partition was not withdrawn")
                    }
                }
            }
        };
        tokio::spawn(withdraw.instrument(span));
    }
}

/// Reads the log from where the desk started, and withdraws every routed contact an event
/// says ended, until the log closes or the server shuts down.
pub async fn follow(desk: Arc<Desk>) {
    let log = desk.backbone().log.clone();
    let mut next = *desk.followed().borrow();
    loop {
        tokio::select! {
            waited = log.wait_for(next) => if waited.is_err() { return },
            () = desk.backbone().closed() => return,
        }
        let records = match log.read(next, BATCH).await {
            Ok(records) => records,
            Err(error) => {
                warn!(%error, offset = next, "routing cannot read the log; retrying");
                next = next.max(log.start_offset());
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(last) = records.last() else {
            continue;
        };
        let end = last.offset + 1;
        // Most records end nothing routing holds: decode them only when it holds something.
        if desk.routes_any() {
            for record in &records {
                let Ok(event) = rezef_record::decode(&record.payload) else {
                    continue;
                };
                if let (Some(why), Some(contact)) =
                    (ends_contact(&event.payload), &event.interaction_id)
                {
                    ended(&desk, &event.tenant_id, contact, why).await;
                }
            }
        }
        next = end;
        desk.followed().send_replace(next);
    }
}

/// Withdraws a contact the log says ended, if routing holds it and it is not assigned; an
/// assigned one stays its agent's, but a warm transfer of it is withdrawn (nobody is to take
/// a call that is over).
async fn ended(desk: &Desk, tenant: &TenantId, contact: &InteractionId, why: &'static str) {
    if !desk.routes(tenant, contact) {
        return;
    }
    let now = desk.now();
    let effects = desk.with_tenant(tenant, |t| {
        if let Some(offer) = t.engine.cancel_transfer(contact) {
            let mut effects = Effects::default();
            effects
                .messages
                .push((offer.agent.clone(), Outgoing::Withdrawn(offer, why)));
            t.dispatch(tenant, now, &mut effects);
            return Ok(effects);
        }
        t.withdraw(tenant, contact, why, now)
            .map(|(_, effects)| effects)
    });
    match effects {
        Ok(effects) => {
            debug!(%tenant, %contact, why, "contact withdrawn");
            if let Err(error) = desk.apply(tenant, effects).await {
                warn!(%tenant, %error, "routing effects failed");
            }
        }
        // Assigned: the agent completes it.
        Err(error) => debug!(%tenant, %contact, %error, "contact not withdrawn"),
    }
}

#[cfg(test)]
mod tests {
    use rezef_events::event::{AbandonPoint, EndReason};

    use super::*;

    #[test]
    fn a_hang_up_an_end_and_self_service_resolving_the_need_end_the_contact() {
        let abandoned = Payload::ContactAbandoned {
            point: AbandonPoint::Queue,
        };
        let ended = Payload::InteractionEnded {
            reason: Some(EndReason::CustomerLeft),
        };
        let contained = |outcome| Payload::SelfServiceStepCompleted {
            step_id: "billing-menu".into(),
            prompt: String::new(),
            customer_input: String::new(),
            outcome: Some(outcome),
        };
        assert_eq!(ends_contact(&abandoned), Some("the customer left"));
        assert_eq!(ends_contact(&ended), Some("the interaction ended"));
        assert_eq!(
            ends_contact(&contained(StepOutcome::Contained)),
            Some("self service resolved the need")
        );
        assert_eq!(ends_contact(&contained(StepOutcome::Escalated)), None);
        let intent = Payload::IntentDetected {
            intent: "billing.dispute".into(),
            confidence: 0.9,
            detected_by: "bot".into(),
        };
        assert_eq!(ends_contact(&intent), None);
    }
}

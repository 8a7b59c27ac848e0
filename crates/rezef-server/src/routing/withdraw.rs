//! Contacts that no longer need an agent: the customer hung up, the interaction ended, or
//! self service resolved the need. Such a contact leaves its queue, and an offer of it is
//! withdrawn from the agent's session (the agent is free for the next contact at once).
//!
//! Both on request (`WithdrawContact`) and by itself: routing reads the log it writes to
//! ([`follow`]), where such events land, and on a partitioned log the `ContactEnded`
//! handovers the other partitions' projectors append there for the ones they took
//! (`rezef_store`'s step), so an adapter that publishes `ContactAbandoned` or
//! `InteractionEnded` has nothing more to do. Calls whose answer depends on it (queue
//! figures, a login's first offers, an accept) first wait until routing has read everything
//! logged before them ([`Desk::followed_up`]), so an acknowledged hang-up is never counted as
//! waiting nor accepted by an agent. A contact already assigned stays the agent's until they
//! complete it (a warm transfer of it still pending is withdrawn, though).
//!
//! A route reads the journey as of the request, then queues the contact: an end logged in
//! between reaches routing before the contact does. Routing keeps the latest such ends
//! ([`RecentEnds`]: abandoned or ended) and refuses to route them, as it refuses one the
//! journey shows ended; a callback (`callback_at`) is routed after its contact ended, and is
//! not refused.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rezef_events::event::ContactEnd;
use rezef_events::handover::Handover;
use rezef_events::{InteractionId, Payload, TenantId, Timestamp};
use rezef_proto::v1::{WithdrawContactRequest, WithdrawContactResponse};
use rezef_routing::Withdrawn;
use tracing::{debug, warn};

use super::Local;
use super::desk::{Desk, Effects, Outgoing};
use super::tenant::Tenant;
use crate::convert::Check;
use crate::{Error, Result};

/// How many log records routing reads at once.
const BATCH: usize = 1024;

/// How many ends of contacts it did not hold a tenant's routing remembers: far more than can
/// be logged between a route's journey read and its queueing.
const RECENT_ENDS: usize = 4096;

/// The latest contacts the log said ended while routing did not hold them, oldest first.
#[derive(Debug, Default)]
pub struct RecentEnds {
    order: VecDeque<InteractionId>,
    known: HashSet<InteractionId>,
}

impl RecentEnds {
    fn note(&mut self, contact: &InteractionId) {
        if !self.known.insert(contact.clone()) {
            return;
        }
        self.order.push_back(contact.clone());
        if self.order.len() > RECENT_ENDS
            && let Some(oldest) = self.order.pop_front()
        {
            self.known.remove(&oldest);
        }
    }

    pub fn contains(&self, contact: &InteractionId) -> bool {
        self.known.contains(contact)
    }
}

/// The refusal of a route for a contact that is over.
pub fn over(contact: &InteractionId) -> Error {
    Error::FailedPrecondition(format!(
        "interaction {contact} is over (the customer left, or it ended): nothing to route"
    ))
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
        let (tenant, contact) = check.finish(|| Some((tenant?, contact?)))?;
        self.desk.recovered(self.desk.max_wait()).await?;
        let now = self.desk.now();
        let (withdrawn, effects) = self.desk.with_tenant(&tenant, |t| {
            let about = t.customer_of(&contact);
            let (withdrawn, mut effects) =
                t.withdraw(&tenant, &contact, "withdrawn by request", now)?;
            // Logged, so that routing starting again does not hold it again.
            if let Some((customer, channel)) = about {
                let queue_id = match &withdrawn {
                    Withdrawn::Waiting { queue } => queue.clone(),
                    Withdrawn::Offered(offer) => offer.queue.clone(),
                };
                let payload = Payload::ContactWithdrawn { queue_id };
                let event = Tenant::about(&tenant, &contact, &customer, channel, payload, now);
                effects.events.insert(0, event);
            }
            Ok((withdrawn, effects))
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

/// Reads the log from where the desk started, and withdraws every routed contact an event
/// says ended, until the log closes or the server shuts down.
pub async fn follow(desk: Arc<Desk>) {
    let log = desk.backbone().log.clone();
    let mut next = *desk.followed().borrow();
    if !super::recover::recover(&desk, next).await {
        return;
    }
    desk.set_recovered();
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
        // Most records end nothing routing holds: decode them only when it holds something,
        // and only those whose keys show they may end a contact (not its own decisions).
        if desk.has_tenants() {
            for record in &records {
                if !rezef_record::may_end_contact(&record.payload) {
                    continue;
                }
                let Ok(event) = rezef_record::decode(&record.payload) else {
                    continue;
                };
                let end = match &event.payload {
                    Payload::Handover(Handover::ContactEnded { end }) => Some(*end),
                    payload => payload.contact_end(),
                };
                if let (Some(end), Some(contact)) = (end, &event.interaction_id) {
                    ended(&desk, &event.tenant_id, contact, end).await;
                }
            }
        }
        next = end;
        desk.followed().send_replace(next);
    }
}

/// Withdraws a contact the log says ended, if routing holds it and it is not assigned; an
/// assigned one stays its agent's, but a warm transfer of it is withdrawn (nobody is to take
/// a call that is over). One routing does not hold and that is over (abandoned or ended, as
/// the journey would show it) is remembered, in case its route is under way.
async fn ended(desk: &Desk, tenant: &TenantId, contact: &InteractionId, end: ContactEnd) {
    let (now, why) = (desk.now(), end.why());
    let effects = desk.with_tenant(tenant, |t| {
        if !t.routes(contact) {
            if end != ContactEnd::Contained {
                t.ended.note(contact);
            }
            return Ok(Effects::default());
        }
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
            debug!(%tenant, %contact, why, "a contact ended");
            if let Err(error) = desk.apply(tenant, effects).await {
                warn!(%tenant, %error, "routing effects failed");
            }
        }
        // Assigned: the agent completes it.
        Err(error) => debug!(%tenant, %contact, %error, "contact not withdrawn"),
    }
}

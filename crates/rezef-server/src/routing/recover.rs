//! Routing starting again: a restart, `kill -9`, or (on Kafka) its routing partition moved
//! to this node. The engine lives in memory, but every contact it held and no agent had
//! taken (waiting, offered, or a callback held until its time) is in the log, with what it
//! was routed on (`RoutingDecided.input`), and the projection of routing's partition keeps
//! them (`rezef_events::routed`). Before routing answers anything that depends on them, it
//! waits for the projection to reach the log's end as of its start and routes each again:
//! back in its queue with its original arrival (its priority keeps the time waited; its
//! escalation steps start again), a callback held until its time. Offers made before are
//! gone with the sessions they went to: agents log in again and are offered anew.

use std::collections::BTreeMap;

use rezef_events::routed::{RoutedContact, RoutingInput};
use rezef_events::{Channel, InteractionId, TenantId, Timestamp};
use rezef_routing::{ContactRequest, Target};
use tracing::{info, warn};

use super::desk::{Desk, Effects};

/// What a contact is routed on, to log with the decision: the request, its arrival as the
/// engine takes it.
pub fn input_of(request: &ContactRequest, now: Timestamp) -> RoutingInput {
    RoutingInput {
        arrived_at: Some(request.arrived_at.unwrap_or(now).min(now)),
        callback_at: request.not_before,
        intent: request.intent.clone(),
        language: request.language.clone(),
        tier: request.tier.clone(),
        customer_since: request.customer_since,
        repeat: request.repeat,
        preferred_agent: request.preferred_agent.clone(),
        context: request.context.clone(),
        human_requested: request.human_requested,
        bot_failures: request.bot_failures,
    }
}

/// The request a held contact is routed again with.
fn request_of(contact: &InteractionId, routed: RoutedContact) -> ContactRequest {
    request_from(contact, routed.channel, routed.input)
}

/// The request a contact was routed on, from what its decision recorded.
pub(super) fn request_from(
    contact: &InteractionId,
    channel: Channel,
    input: RoutingInput,
) -> ContactRequest {
    ContactRequest {
        id: Some(contact.clone()),
        channel: Some(channel),
        arrived_at: input.arrived_at,
        intent: input.intent,
        language: input.language,
        tier: input.tier,
        customer_since: input.customer_since,
        repeat: input.repeat,
        preferred_agent: input.preferred_agent,
        context: input.context,
        human_requested: input.human_requested,
        bot_failures: input.bot_failures,
        not_before: input.callback_at,
    }
}

/// Waits until the projection has folded the log as of the desk's start (`start`: the log's
/// end then), then routes again every contact it keeps as held. `false` if the server shut
/// down first.
pub async fn recover(desk: &Desk, start: u64) -> bool {
    let backbone = desk.backbone();
    if let Some(last) = start.checked_sub(1) {
        tokio::select! {
            projected = backbone.projection.wait_past(last) => if !projected { return false },
            () = backbone.closed() => return false,
        }
    }
    let held = match backbone.store.routed_contacts() {
        Ok(held) => held,
        Err(error) => {
            // The contacts are in the log still: a restart tries again.
            warn!(%error, "routing cannot read the contacts it held; it starts without them");
            Vec::new()
        }
    };
    let mut by_tenant: BTreeMap<TenantId, Vec<(InteractionId, RoutedContact)>> = BTreeMap::new();
    for (tenant, contact, routed) in held {
        by_tenant.entry(tenant).or_default().push((contact, routed));
    }
    for (tenant, contacts) in by_tenant {
        let count = contacts.len();
        let now = desk.now();
        let effects = desk.with_tenant(&tenant, |t| {
            let mut effects = Effects::default();
            for (contact, routed) in contacts {
                t.remember_contact(contact.clone(), routed.customer.clone(), routed.channel);
                match t.engine.route(request_of(&contact, routed), now) {
                    Ok(decision) => {
                        if let Target::Offered(offer) = decision.target {
                            t.offered(&tenant, vec![offer], now, &mut effects);
                        }
                    }
                    Err(error) => {
                        warn!(%tenant, %contact, %error, "a held contact cannot be routed again");
                        t.forget_contact(&contact);
                    }
                }
            }
            t.dispatch(&tenant, now, &mut effects);
            Ok(effects)
        });
        match effects {
            Ok(effects) => {
                info!(%tenant, contacts = count, "routing holds again the contacts it held");
                if let Err(error) = desk.apply(&tenant, effects).await {
                    warn!(%tenant, %error, "routing effects failed");
                }
            }
            Err(error) => warn!(%tenant, contacts = count, %error,
                "the contacts routing held cannot be routed again"),
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use rezef_events::Channel;
    use rezef_events::ids::{AgentId, CustomerId};

    #[test]
    fn a_request_routed_again_is_the_request_routed_with_its_arrival() {
        let now = Timestamp::from_unix_millis(1_700_000_060_000);
        let request = ContactRequest {
            id: Some(InteractionId::new("i-1").expect("valid")),
            channel: Some(Channel::Voice),
            arrived_at: Some(Timestamp::from_unix_millis(1_700_000_000_000)),
            intent: Some("billing.dispute".into()),
            language: Some("he".into()),
            tier: Some("gold".into()),
            customer_since: Some(Timestamp::from_unix_millis(1_600_000_000_000)),
            repeat: true,
            preferred_agent: Some(AgentId::new("agent-1").expect("valid")),
            context: [("account".to_owned(), "business".to_owned())].into(),
            human_requested: true,
            bot_failures: 1,
            not_before: Some(Timestamp::from_unix_millis(1_700_000_900_000)),
        };
        let routed = RoutedContact {
            customer: CustomerId::new("c-1").expect("valid"),
            channel: Channel::Voice,
            queue_id: "billing".into(),
            input: input_of(&request, now),
        };
        let contact = request.id.clone().expect("set");
        assert_eq!(request_of(&contact, routed), request);
    }

    #[test]
    fn a_request_without_arrival_arrived_when_it_was_routed() {
        let now = Timestamp::from_unix_millis(1_700_000_060_000);
        let input = input_of(&ContactRequest::default(), now);
        assert_eq!(input.arrived_at, Some(now));
    }
}

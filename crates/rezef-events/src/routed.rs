//! Contacts routing holds and has not handed to an agent, as the log records them: so that
//! routing starting again (a restart, `kill -9`, its partition moved to another node) finds
//! every caller still waiting, every callback still scheduled, in its place.
//!
//! A decision to queue a contact (or to offer it to an agent) is logged with what it was
//! decided on ([`RoutingInput`], `RoutingDecided.input`); the projection of routing's
//! partition keeps the contact ([`RoutedContact`]) until the log says it left routing: an
//! agent took it (`ContactAssigned`), it ended ([`Payload::contact_end`], or the
//! `ContactEnded` handover on a partitioned log), or it was withdrawn by request
//! (`ContactWithdrawn`). [`change`] is that rule, as pure code.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{Channel, Payload, RoutingTarget};
use crate::handover::Handover;
use crate::ids::{AgentId, CustomerId};
use crate::time::Timestamp;

/// What a contact was routed on: the request, with what the journey filled in.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RoutingInput {
    /// When the customer first arrived (a callback keeps the original arrival).
    pub arrived_at: Option<Timestamp>,
    /// A scheduled callback: not offered to an agent before then.
    pub callback_at: Option<Timestamp>,
    pub intent: Option<String>,
    pub language: Option<String>,
    pub tier: Option<String>,
    /// When the customer was first known.
    pub customer_since: Option<Timestamp>,
    /// A repeat contact about an open conversation.
    pub repeat: bool,
    /// The agent tried first (affinity).
    pub preferred_agent: Option<AgentId>,
    /// The request's context, for rules.
    pub context: BTreeMap<String, String>,
    pub human_requested: bool,
    pub bot_failures: u32,
}

/// A contact routing holds and no agent has taken yet (waiting, offered, or a callback
/// held until its time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutedContact {
    pub customer: CustomerId,
    pub channel: Channel,
    /// The queue it was routed to.
    pub queue_id: String,
    pub input: RoutingInput,
}

impl RoutedContact {
    /// Its stored form (postcard, as the projection's other state).
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("a routed contact has only serializable fields")
    }

    pub fn from_bytes(bytes: &[u8]) -> crate::Result<Self> {
        postcard::from_bytes(bytes).map_err(crate::Error::DecodeState)
    }
}

/// How an event of routing's log changes the contacts it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The contact is routing's to place: it waits, or is offered.
    Holds(Box<RoutedContact>),
    /// The contact left routing: an agent took it, it ended or was withdrawn.
    Left,
}

/// What the event (about `customer`'s contact, on `channel`) means for the contact routing
/// holds; `None`: nothing. A decision without its input (logged before inputs were), or
/// without its customer, holds nothing: it cannot be routed again as it was.
pub fn change(
    payload: &Payload,
    customer: Option<&CustomerId>,
    channel: Option<Channel>,
) -> Option<Change> {
    match payload {
        Payload::RoutingDecided {
            target: RoutingTarget::Queue | RoutingTarget::Agent,
            queue_id,
            input: Some(input),
            ..
        } if customer.is_some() && channel.is_some() => {
            Some(Change::Holds(Box::new(RoutedContact {
                customer: customer?.clone(),
                channel: channel?,
                queue_id: queue_id.clone(),
                input: (**input).clone(),
            })))
        }
        Payload::RoutingDecided { .. } => Some(Change::Left),
        Payload::ContactAssigned { .. }
        | Payload::ContactWithdrawn { .. }
        | Payload::Handover(Handover::ContactEnded { .. }) => Some(Change::Left),
        payload => payload.contact_end().map(|_| Change::Left),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AbandonPoint, ContactEnd, StepOutcome};

    fn customer() -> CustomerId {
        CustomerId::new("c-1").expect("valid")
    }

    fn decided(target: RoutingTarget, input: Option<RoutingInput>) -> Payload {
        Payload::RoutingDecided {
            target,
            bot_id: String::new(),
            queue_id: "billing".into(),
            agent_id: None,
            rule: String::new(),
            step: 0,
            priority: 1.0,
            candidates: Vec::new(),
            estimated_wait_ms: None,
            offer_callback: false,
            config_version: 1,
            input: input.map(Box::new),
            explanation: None,
        }
    }

    #[test]
    fn given_a_decision_to_queue_when_folded_then_routing_holds_the_contact_as_decided() {
        let input = RoutingInput {
            intent: Some("billing.dispute".into()),
            callback_at: Some(Timestamp::from_unix_millis(1_900_000_000_000)),
            ..RoutingInput::default()
        };
        for target in [RoutingTarget::Queue, RoutingTarget::Agent] {
            let held = change(
                &decided(target, Some(input.clone())),
                Some(&customer()),
                Some(Channel::Voice),
            );
            assert_eq!(
                held,
                Some(Change::Holds(Box::new(RoutedContact {
                    customer: customer(),
                    channel: Channel::Voice,
                    queue_id: "billing".into(),
                    input: input.clone(),
                })))
            );
        }
    }

    #[test]
    fn given_a_bot_or_an_old_decision_when_folded_then_routing_holds_nothing() {
        let bot = decided(RoutingTarget::Bot, Some(RoutingInput::default()));
        let old = decided(RoutingTarget::Queue, None);
        for payload in [bot, old] {
            assert_eq!(
                change(&payload, Some(&customer()), Some(Channel::Voice)),
                Some(Change::Left)
            );
        }
    }

    #[test]
    fn given_an_assignment_an_end_or_a_withdrawal_then_the_contact_left_routing() {
        let agent = AgentId::new("agent-1").expect("valid");
        for payload in [
            Payload::ContactAssigned {
                agent_id: agent,
                queue_id: "billing".into(),
            },
            Payload::ContactWithdrawn {
                queue_id: "billing".into(),
            },
            Payload::ContactAbandoned {
                point: AbandonPoint::Queue,
            },
            Payload::InteractionEnded { reason: None },
            Payload::SelfServiceStepCompleted {
                step_id: "s".into(),
                prompt: String::new(),
                customer_input: String::new(),
                outcome: Some(StepOutcome::Contained),
            },
            Payload::Handover(Handover::ContactEnded {
                end: ContactEnd::Abandoned,
            }),
        ] {
            assert_eq!(
                change(&payload, Some(&customer()), Some(Channel::Voice)),
                Some(Change::Left),
                "{payload:?}"
            );
        }
    }

    #[test]
    fn a_routed_contact_reads_back_as_stored() {
        let contact = RoutedContact {
            customer: customer(),
            channel: Channel::Voice,
            queue_id: "billing".into(),
            input: RoutingInput {
                arrived_at: Some(Timestamp::from_unix_millis(1_700_000_000_000)),
                language: Some("he".into()),
                context: [("account".to_owned(), "business".to_owned())].into(),
                bot_failures: 2,
                ..RoutingInput::default()
            },
        };
        let read = RoutedContact::from_bytes(&contact.to_bytes()).expect("reads");
        assert_eq!(read, contact);
        assert!(RoutedContact::from_bytes(&[0xff]).is_err());
    }

    #[test]
    fn given_other_events_then_nothing_changes() {
        let intent = Payload::IntentDetected {
            intent: "billing".into(),
            confidence: 0.9,
            detected_by: "nlu".into(),
        };
        assert_eq!(
            change(&intent, Some(&customer()), Some(Channel::Voice)),
            None
        );
    }
}

//! What the partitions of a partitioned log tell each other, so that a person whose
//! identities live on several partitions still ends with one journey on one partition.
//!
//! On one partition the projector sees every identity link and decides every merge itself.
//! Over Kafka, a journey lives on its customer's partition and an identity's owner is
//! decided on the identity's *home* partition (that of `customer_id_for(identity)`, where
//! events naming the identity land). A partition that learns something another must decide
//! appends a [`Handover`] event there; the receiving projector folds it like any event, so
//! a replay of the log reaches the same state (docs/scale-out.md §2).
//!
//! Handover events are written by projectors, never by adapters. Their ids derive from the
//! event that caused them ([`Handover::event`]), so a projector that crashes and sends again
//! is deduplicated like any retried publish.

use serde::{Deserialize, Serialize};

use crate::event::{AssuranceLevel, ContactEnd, CustomerRef, Event, Payload, VerificationMethod};
use crate::identity::ChannelIdentity;
use crate::ids::{CustomerId, EventId, stable_hash};
use crate::journey::{IdentityConflict, Journey, MAX_CONFLICTS, MergeRecord};
use crate::policy::MergeRefusal;
use crate::snapshot::JourneySnapshot;
use crate::time::Timestamp;

/// The source name of events projectors write.
pub const SOURCE: &str = "rezef";

/// How many times an event may be forwarded before it is given up (a cycle of pointers).
pub const MAX_HOPS: u8 = 16;

/// An event moved on to the partition of the journey it belongs to: its customer was merged
/// into a customer on another partition, or its identity is linked to one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forward {
    /// The customer the event was resolved to (the one it is attributed to).
    pub member: CustomerId,
    /// The customer whose journey holds it; the event goes to this customer's partition.
    pub journey: CustomerId,
    /// How many partitions forwarded it so far.
    pub hops: u8,
}

/// A message from one partition's projector to another's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Handover {
    /// `claimant` showed or proved `identity`. Sent to the identity's home, which links it
    /// if nobody owns it; or, with `owner`, to the partition of the owner's journey, which
    /// decides the merge under the tenant's policy.
    IdentityClaimed {
        identity: ChannelIdentity,
        claimant: CustomerId,
        claimant_first_seen: Timestamp,
        verified: Option<(VerificationMethod, AssuranceLevel)>,
        owner: Option<CustomerId>,
    },
    /// The claim of `claimant` to `identity` was refused: `owner` keeps it. The claimant's
    /// journey drops the link and records the conflict.
    ClaimRefused {
        identity: ChannelIdentity,
        claimant: CustomerId,
        owner: CustomerId,
        refusal: MergeRefusal,
    },
    /// `absorbed`, whose journey is on the receiving partition, is merged into `survivor`:
    /// ship the journey there and leave a pointer.
    MergeRequested {
        absorbed: CustomerId,
        survivor: CustomerId,
        record: MergeRecord,
    },
    /// A journey arrives: merged into `into` (survivor, why), or restored by an unmerge
    /// (`None`) to the partition of its own customer. It travels as a versioned snapshot,
    /// not as projection state: the record must decode forever.
    JourneyMoved {
        journey: JourneySnapshot,
        into: Option<(CustomerId, MergeRecord)>,
    },
    /// The contact (the event's interaction) needs no agent any more. Sent to the tenant's
    /// routing partition, whose routing reads that partition only, by the partition where the
    /// event that ended it was appended (docs/scale-out.md §5).
    ContactEnded { end: ContactEnd },
}

impl Handover {
    /// What the message is, as `rezef.v1.Handover.kind` names it (its event's id hashes it).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::IdentityClaimed { .. } => "identity_claimed",
            Self::ClaimRefused { .. } => "claim_refused",
            Self::MergeRequested { .. } => "merge_requested",
            Self::JourneyMoved { .. } => "journey_moved",
            Self::ContactEnded { .. } => "contact_ended",
        }
    }

    /// The customer the message is about, on the receiving partition; `None` for one to the
    /// tenant's routing partition (an event without a customer goes there).
    pub fn subject(&self) -> Option<CustomerRef> {
        Some(match self {
            Self::IdentityClaimed {
                identity, owner, ..
            } => match owner {
                Some(owner) => CustomerRef::Id(owner.clone()),
                None => CustomerRef::Identity(identity.clone()),
            },
            Self::ClaimRefused { claimant, .. } => CustomerRef::Id(claimant.clone()),
            Self::MergeRequested { absorbed, .. } => CustomerRef::Id(absorbed.clone()),
            Self::JourneyMoved { journey, into } => CustomerRef::Id(match into {
                Some((survivor, _)) => survivor.clone(),
                None => journey.customer_id().clone(),
            }),
            Self::ContactEnded { .. } => return None,
        })
    }

    /// The event that carries this message, caused by `cause`. Its id is derived from the
    /// cause's, so sending it again is a duplicate, not a second message.
    pub fn event(self, cause: &Event) -> Event {
        let customer = self.subject();
        let subject = match &customer {
            Some(CustomerRef::Id(id)) => id.to_string(),
            Some(CustomerRef::Identity(identity)) => identity.index_key(),
            None => String::new(),
        };
        let hash = stable_hash(&[cause.event_id.as_str(), self.kind(), &subject]);
        // What routing withdraws is the cause's contact.
        let interaction_id = match self {
            Self::ContactEnded { .. } => cause.interaction_id.clone(),
            _ => None,
        };
        Event {
            event_id: EventId::new(format!("rz-{}", &hash[..30])).expect("a hex id is valid"),
            tenant_id: cause.tenant_id.clone(),
            occurred_at: cause.occurred_at,
            source: SOURCE.to_owned(),
            schema_version: cause.schema_version,
            customer,
            conversation_id: None,
            interaction_id,
            channel: None,
            forward: None,
            erased: false,
            payload: Payload::Handover(self),
        }
    }
}

impl Event {
    /// This event moved on towards `journey`, attributed to `member`. `None` once it was
    /// forwarded [`MAX_HOPS`] times.
    pub fn forwarded(&self, member: CustomerId, journey: CustomerId) -> Option<Event> {
        let hops = self.forward.as_ref().map_or(0, |f| f.hops) + 1;
        (hops <= MAX_HOPS).then(|| Event {
            forward: Some(Forward {
                member,
                journey,
                hops,
            }),
            ..self.clone()
        })
    }
}

impl Journey {
    /// Another customer keeps `identity`: the link this journey made while it did not know
    /// becomes a conflict for a person to review, as if it had been refused at once.
    pub fn refuse_link(
        &mut self,
        identity: &ChannelIdentity,
        owner: CustomerId,
        refusal: MergeRefusal,
        at: Timestamp,
        offset: u64,
    ) {
        self.identities
            .retain(|linked| &linked.identity != identity);
        if self.conflicts.len() == MAX_CONFLICTS {
            self.conflicts.remove(0);
        }
        self.conflicts.push(IdentityConflict {
            identity: identity.clone(),
            owner,
            at,
            offset,
            refusal,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::EventBuilder;

    fn claim(cause: &Event) -> Event {
        Handover::IdentityClaimed {
            identity: ChannelIdentity::new(crate::IdentityKind::Phone, "+972501234567", None)
                .expect("valid"),
            claimant: CustomerId::new("c-1").expect("valid"),
            claimant_first_seen: cause.occurred_at,
            verified: None,
            owner: None,
        }
        .event(cause)
    }

    #[test]
    fn a_handover_sent_twice_is_one_event() {
        let mut chat = EventBuilder::visitor("acme", "v-1");
        let (first, second) = (chat.started(), chat.intent("billing", 0.5));
        assert_eq!(claim(&first).event_id, claim(&first).event_id);
        assert_ne!(claim(&first).event_id, claim(&second).event_id);
        let event = claim(&first);
        assert_eq!(event.source, SOURCE);
        assert!(matches!(event.customer, Some(CustomerRef::Identity(_))));
        assert_eq!(
            crate::codec::decode(&crate::codec::encode(&event)).expect("decodes"),
            event
        );
    }

    #[test]
    fn a_contact_ended_goes_to_the_routing_partition_about_the_causes_contact() {
        // Given a caller's hang-up
        let mut call = EventBuilder::visitor("acme", "v-1");
        let _ = call.started();
        let hang_up = call.event(Payload::ContactAbandoned {
            point: crate::event::AbandonPoint::Queue,
        });
        let end = hang_up
            .payload
            .contact_end()
            .expect("a hang-up ends the contact");
        // When it is handed over
        let event = Handover::ContactEnded { end }.event(&hang_up);
        // Then it names no customer (the tenant's routing partition takes it), keeps the
        // contact, is the same event when sent again, and stays readable
        let partitioner =
            crate::partition::Partitioner::new(std::num::NonZeroU32::new(8).expect("8"));
        assert_eq!(event.customer, None);
        assert_eq!(
            partitioner.event(&event),
            partitioner.routing(&event.tenant_id)
        );
        assert_eq!(event.interaction_id, hang_up.interaction_id);
        assert!(event.interaction_id.is_some());
        assert_eq!(
            Handover::ContactEnded { end }.event(&hang_up).event_id,
            event.event_id
        );
        assert_eq!(
            crate::codec::decode(&crate::codec::encode(&event)).expect("decodes"),
            event
        );
    }

    #[test]
    fn only_hang_ups_ends_and_contained_self_service_end_a_contact() {
        use crate::event::{AbandonPoint, EndReason, StepOutcome};
        let abandoned = Payload::ContactAbandoned {
            point: AbandonPoint::Queue,
        };
        let ended = Payload::InteractionEnded {
            reason: Some(EndReason::CustomerLeft),
        };
        let step = |outcome| Payload::SelfServiceStepCompleted {
            step_id: "billing-menu".into(),
            prompt: String::new(),
            customer_input: String::new(),
            outcome: Some(outcome),
        };
        assert_eq!(abandoned.contact_end(), Some(ContactEnd::Abandoned));
        assert_eq!(ended.contact_end(), Some(ContactEnd::Ended));
        assert_eq!(
            step(StepOutcome::Contained).contact_end(),
            Some(ContactEnd::Contained)
        );
        assert_eq!(step(StepOutcome::Escalated).contact_end(), None);
        let intent = Payload::IntentDetected {
            intent: "billing.dispute".into(),
            confidence: 0.9,
            detected_by: "bot".into(),
        };
        assert_eq!(intent.contact_end(), None);
    }

    #[test]
    fn forwarding_stops_after_max_hops() {
        let mut event = EventBuilder::visitor("acme", "v-1").started();
        let id = |s: &str| CustomerId::new(s).expect("valid");
        let (member, journey) = (id("a"), id("b"));
        for hop in 1..=MAX_HOPS {
            event = event
                .forwarded(member.clone(), journey.clone())
                .expect("below the limit");
            assert_eq!(event.forward.as_ref().map(|f| f.hops), Some(hop));
        }
        assert!(event.forwarded(member, journey).is_none());
    }
}

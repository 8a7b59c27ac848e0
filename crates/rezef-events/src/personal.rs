//! What in an event is personal, taken out to be sealed and put back when it is opened.
//!
//! Crypto-shredding (docs/audit.md, "Forgetting a customer") keeps each event's *skeleton*
//! in the clear (kinds, times, channels, ids, queues, outcomes: what measurement and
//! routing read) and seals its personal values under a key that forgetting destroys.
//! [`split`] takes the personal values out, leaving in their place what an erased event
//! shows; [`restore`] puts one back. Both walk the same [`slots`] in the same order, so a
//! value is put back by its slot's number.
//!
//! Personal: identity values (the customer reference, the identity an interaction started
//! with, the ones a verification proved, a callback's number), message text and its
//! attachments' names and addresses, context values, self-service inputs, bot summaries,
//! wrap-up notes and survey comments. An erased identity keeps its kind and network, and
//! its value becomes `erased:` and the pseudonym its customer id is derived from
//! ([`ChannelIdentity::erased`]): a rebuild after forgetting groups events into the same
//! customers as before, so measurements over them do not change.
//!
//! On partitioned logs, the identity of a claim between partitions (`Handover::IdentityClaimed`,
//! `ClaimRefused`) and of a merge's proof (`MergeCause::Verified`) is personal as any identity, and a journey moving between partitions
//! (`Handover::JourneyMoved`) is personal as a whole: its snapshot is taken out as one value, its customer's, and the
//! skeleton carries the journey erased (`Journey::erase`), as a rebuild after forgetting
//! would fold it.

use crate::event::{CustomerRef, Event, Payload};
use crate::handover::Handover;
use crate::identity::ChannelIdentity;
use crate::ids::CustomerId;
use crate::journey::{MergeCause, MergeRecord};
use crate::snapshot::JourneySnapshot;

/// One personal place in an event.
#[derive(Debug)]
pub enum Slot<'a> {
    Identity(&'a mut ChannelIdentity),
    Text(&'a mut String),
    /// A moved journey, as its snapshot's JSON document.
    Journey(&'a mut JourneySnapshot),
}

/// A personal value taken out of an event: its slot's number, whose it is (the key it is
/// sealed under belongs to that customer or identity), and the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub slot: u16,
    pub owner: Owner,
    pub value: String,
}

/// Whose a personal value is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The customer the event is about, as its `customer` reference named it before the
    /// split (which erases that reference when it is an identity).
    Customer,
    /// An identity the event names besides: its own owner.
    Identity(ChannelIdentity),
    /// A moved journey: its own customer's (the absorbed one of a merge, not the survivor
    /// the event is about), so that forgetting that customer later, merged or not, erases it.
    Journey(CustomerId),
}

/// Every personal place of the event, in a fixed order.
pub fn slots(event: &mut Event) -> Vec<Slot<'_>> {
    let mut slots = Vec::new();
    if let Some(CustomerRef::Identity(identity)) = &mut event.customer {
        slots.push(Slot::Identity(identity));
    }
    match &mut event.payload {
        Payload::InteractionStarted { identity, .. } => {
            slots.extend(identity.as_mut().map(Slot::Identity));
        }
        Payload::SelfServiceStepCompleted { customer_input, .. } => {
            slots.push(Slot::Text(customer_input));
        }
        Payload::CustomerIdentified { identities, .. } => {
            slots.extend(identities.iter_mut().map(Slot::Identity));
        }
        Payload::MessageSent {
            text, attachments, ..
        } => {
            slots.push(Slot::Text(text));
            for attachment in attachments {
                slots.push(Slot::Text(&mut attachment.uri));
                slots.push(Slot::Text(&mut attachment.name));
            }
        }
        Payload::ContextSet { value, .. } => slots.push(Slot::Text(value)),
        Payload::HandoffRequested { summary, .. } => slots.push(Slot::Text(summary)),
        Payload::CallbackRequested { callback_to, .. } => {
            slots.push(Slot::Identity(callback_to));
        }
        Payload::WrapUpRecorded { notes, .. } => slots.push(Slot::Text(notes)),
        Payload::SurveyAnswered { comment, .. } => slots.push(Slot::Text(comment)),
        Payload::Handover(Handover::JourneyMoved { journey, into }) => {
            slots.push(Slot::Journey(journey));
            slots.extend(into.as_mut().and_then(|(_, record)| proved(record)));
        }
        Payload::Handover(Handover::MergeRequested { record, .. }) => {
            slots.extend(proved(record));
        }
        Payload::Handover(
            Handover::IdentityClaimed { identity, .. } | Handover::ClaimRefused { identity, .. },
        ) => slots.push(Slot::Identity(identity)),
        _ => {}
    }
    slots
}

/// The identity whose proof caused a merge, if one did.
fn proved(record: &mut MergeRecord) -> Option<Slot<'_>> {
    match &mut record.cause {
        MergeCause::Verified { identity, .. } => Some(Slot::Identity(identity)),
        MergeCause::Requested { .. } => None,
    }
}

/// Takes the personal values out of an event about a customer, leaving what an erased
/// event shows: identities [`ChannelIdentity::erased`], texts empty. The customer reference
/// and texts are the customer's; any other identity is its own owner. Events about no
/// customer (an agent's) and empty texts give nothing.
pub fn split(event: &mut Event) -> Vec<Taken> {
    if event.customer.is_none() {
        return Vec::new();
    }
    let customer_is_identity = matches!(event.customer, Some(CustomerRef::Identity(_)));
    let tenant = event.tenant_id.clone();
    let mut taken = Vec::new();
    for (slot, place) in (0u16..).zip(slots(event)) {
        match place {
            Slot::Identity(identity) => {
                let erased = identity.erased(&tenant);
                let original = std::mem::replace(identity, erased);
                taken.push(if slot == 0 && customer_is_identity {
                    Taken {
                        slot,
                        owner: Owner::Customer,
                        value: original.into_value(),
                    }
                } else {
                    Taken {
                        slot,
                        value: original.value().to_owned(),
                        owner: Owner::Identity(original),
                    }
                });
            }
            Slot::Text(text) if !text.is_empty() => taken.push(Taken {
                slot,
                owner: Owner::Customer,
                value: std::mem::take(text),
            }),
            Slot::Text(_) => {}
            Slot::Journey(snapshot) => {
                let mut erased = snapshot.clone().into_journey();
                erased.erase();
                let original = std::mem::replace(snapshot, JourneySnapshot::from(erased));
                taken.push(Taken {
                    slot,
                    owner: Owner::Journey(original.customer_id().clone()),
                    value: original.to_json(),
                });
            }
        }
    }
    taken
}

/// Puts a value [`split`] took back in its slot; `false` when the event has no such slot.
pub fn restore(event: &mut Event, slot: u16, value: String) -> bool {
    match slots(event).into_iter().nth(usize::from(slot)) {
        Some(Slot::Identity(identity)) => {
            *identity = ChannelIdentity::stored(
                identity.kind(),
                value,
                identity.network().map(str::to_owned),
            );
            true
        }
        Some(Slot::Text(text)) => {
            *text = value;
            true
        }
        Some(Slot::Journey(snapshot)) => match JourneySnapshot::from_bytes(value.as_bytes()) {
            Ok(original) => {
                *snapshot = original;
                true
            }
            Err(_) => false,
        },
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::IdentityKind;
    use crate::event::Participant;
    use crate::testing::EventBuilder;

    fn identified_chat(text: &str) -> Vec<Event> {
        let mut chat = EventBuilder::visitor("acme", "v-1");
        let phone = ChannelIdentity::phone("+972501234567").expect("valid");
        vec![
            chat.started(),
            chat.message(Participant::Customer, text),
            chat.context("account", text),
            chat.identified(vec![phone]),
            chat.wrapped_up(true),
        ]
    }

    #[test]
    fn given_a_message_when_split_then_the_skeleton_keeps_no_personal_value() {
        let mut chat = EventBuilder::visitor("acme", "v-1");
        let original = chat.message(Participant::Customer, "my card is 4580");
        let mut skeleton = original.clone();
        let taken = split(&mut skeleton);
        assert_eq!(taken.len(), 2, "the visitor id and the text: {taken:?}");
        assert_eq!(taken[1].value, "my card is 4580");
        assert_eq!(taken[0].owner, Owner::Customer, "the visitor's identity");
        assert_eq!(taken[1].owner, Owner::Customer, "the visitor's text");
        let Payload::MessageSent { text, .. } = &skeleton.payload else {
            panic!("a message");
        };
        assert!(text.is_empty());
        let Some(CustomerRef::Identity(identity)) = &skeleton.customer else {
            panic!("an identity");
        };
        assert_eq!(identity.kind(), IdentityKind::ChatVisitor);
        assert!(identity.is_erased());
        assert_eq!(
            skeleton.occurred_at, original.occurred_at,
            "the skeleton stays"
        );
    }

    #[test]
    fn given_a_claim_between_partitions_when_split_then_its_identity_is_taken() {
        let cause = EventBuilder::visitor("acme", "v-1").started();
        let phone = ChannelIdentity::phone("+972501234567").expect("valid");
        let claim = Handover::IdentityClaimed {
            identity: phone.clone(),
            claimant: CustomerId::new("cus-claimant").expect("valid"),
            claimant_first_seen: cause.occurred_at,
            verified: None,
            owner: Some(CustomerId::new("cus-owner").expect("valid")),
        }
        .event(&cause);
        let mut event = claim.clone();
        let taken = split(&mut event);
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].owner, Owner::Identity(phone));
        let Payload::Handover(Handover::IdentityClaimed { identity, .. }) = &event.payload else {
            panic!("the claim");
        };
        assert!(identity.is_erased());
        assert!(restore(&mut event, taken[0].slot, taken[0].value.clone()));
        assert_eq!(event, claim);
    }

    #[test]
    fn given_a_merge_a_verification_caused_when_split_then_its_proof_is_taken() {
        use crate::event::{AssuranceLevel, VerificationMethod};
        use crate::journey::{MergeCause, MergeRecord};
        let cause = EventBuilder::visitor("acme", "v-1").started();
        let phone = ChannelIdentity::phone("+972501234567").expect("valid");
        let merge = Handover::MergeRequested {
            absorbed: CustomerId::new("cus-absorbed").expect("valid"),
            survivor: CustomerId::new("cus-survivor").expect("valid"),
            record: MergeRecord {
                at: cause.occurred_at,
                offset: 3,
                cause: MergeCause::Verified {
                    method: VerificationMethod::OneTimeCode,
                    assurance: AssuranceLevel::Substantial,
                    identity: phone.clone(),
                },
            },
        }
        .event(&cause);
        let mut event = merge.clone();
        let taken = split(&mut event);
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].owner, Owner::Identity(phone));
        assert_ne!(event, merge, "the skeleton names the proof erased");
        assert!(restore(&mut event, taken[0].slot, taken[0].value.clone()));
        assert_eq!(event, merge);
    }

    #[test]
    fn given_an_agent_event_when_split_then_nothing_is_taken() {
        let mut event = EventBuilder::visitor("acme", "v-1").started();
        event.customer = None;
        assert!(split(&mut event).is_empty());
    }

    #[test]
    fn a_slot_that_is_not_there_is_not_restored() {
        let mut event = EventBuilder::visitor("acme", "v-1").started();
        assert!(!restore(&mut event, 9, "x".into()));
    }

    proptest! {
        #[test]
        fn putting_back_what_was_split_gives_the_event(text in "(?s).{1,80}") {
            for original in identified_chat(&text) {
                let mut event = original.clone();
                let taken = split(&mut event);
                for place in slots(&mut event.clone()) {
                    match place {
                        Slot::Identity(identity) => prop_assert!(identity.is_erased()),
                        Slot::Text(text) => prop_assert!(text.is_empty()),
                        Slot::Journey(_) => prop_assert!(false, "no journey moved here"),
                    }
                }
                for Taken { slot, value, .. } in taken {
                    prop_assert!(restore(&mut event, slot, value));
                }
                prop_assert_eq!(event, original);
            }
        }
    }
}

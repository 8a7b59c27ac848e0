//! What forgetting a customer does to the journey the projection holds: what folding the
//! same events read erased would have made of it (`personal`), so that the live projection
//! and a rebuild after forgetting agree (a property test holds it).
//!
//! Identities keep their kind and network and read erased (those linked, refused, and proved
//! by the verification that caused a merge); context values, transcript texts and the
//! handoff summary are emptied. Everything else (times, counters, stages, queues,
//! agents, intents) stays, as the events' skeletons keep it.

use std::sync::Arc;

use crate::identity::ChannelIdentity;
use crate::journey::{Journey, MergeCause};

impl Journey {
    /// Erases the personal values the journey holds; the identities it held until now, for
    /// the projector to take out of its index.
    pub fn erase(&mut self) -> Vec<ChannelIdentity> {
        let tenant = self.tenant_id.clone();
        let mut held = Vec::new();
        for linked in &mut self.identities {
            if !linked.identity.is_erased() {
                let erased = linked.identity.erased(&tenant);
                held.push(std::mem::replace(&mut linked.identity, erased));
            }
        }
        for conflict in &mut self.conflicts {
            conflict.identity = conflict.identity.erased(&tenant);
        }
        // A merge a verification caused names the identity it proved.
        for share in &mut self.shares {
            if let Some(MergeCause::Verified { identity, .. }) =
                share.merge.as_mut().map(|merge| &mut merge.cause)
            {
                *identity = identity.erased(&tenant);
            }
        }
        for conversation in &mut self.conversations {
            let conversation = Arc::make_mut(conversation);
            for entry in conversation.context.values_mut() {
                entry.value.clear();
            }
            for entry in &mut conversation.transcript {
                entry.text.clear();
            }
            conversation.handoff_summary = None;
        }
        held
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::event::{HandoffReason, Participant, Payload};
    use crate::fold::customer_id_for;
    use crate::personal;
    use crate::testing::EventBuilder;
    use crate::{ChannelIdentity, CustomerRef, Event, Journey};

    /// One step of a customer's chat.
    #[derive(Debug, Clone)]
    enum Step {
        Start,
        Message(String),
        Context(String, String),
        Identified(u32),
        Handoff(String),
        End,
    }

    #[test]
    fn given_a_merge_a_verification_caused_when_erased_then_its_proof_reads_erased() {
        use crate::event::{AssuranceLevel, VerificationMethod};
        use crate::journey::{Counters, MergeCause, MergeRecord, Share};
        let call = EventBuilder::phone("acme", "+972501234567").started();
        let Some(CustomerRef::Identity(phone)) = &call.customer else {
            panic!("a phone");
        };
        let customer = customer_id_for(&call.tenant_id, phone);
        let mut journey = Journey::new(call.tenant_id.clone(), customer.clone(), call.occurred_at);
        journey.shares.push(Share {
            customer_id: customer_id_for(
                &call.tenant_id,
                &ChannelIdentity::email("d@x.test").expect("valid"),
            ),
            parent: Some(customer),
            merge: Some(MergeRecord {
                at: call.occurred_at,
                offset: 7,
                cause: MergeCause::Verified {
                    method: VerificationMethod::OneTimeCode,
                    assurance: AssuranceLevel::Substantial,
                    identity: phone.clone(),
                },
            }),
            counters: Counters::default(),
            first_seen_at: call.occurred_at,
            last_seen_at: call.occurred_at,
            last_agent_id: None,
            last_event_offset: None,
            attributes: Default::default(),
        });
        journey.erase();
        let Some(MergeCause::Verified { identity, .. }) =
            journey.shares[0].merge.as_ref().map(|m| &m.cause)
        else {
            panic!("the merge");
        };
        assert_eq!(identity, &phone.erased(&call.tenant_id));
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            Just(Step::Start),
            "[a-z 0-9]{0,12}".prop_map(Step::Message),
            ("[a-z]{1,3}", "[a-z0-9]{0,8}").prop_map(|(k, v)| Step::Context(k, v)),
            (0u32..3).prop_map(Step::Identified),
            "[a-z ]{0,12}".prop_map(Step::Handoff),
            Just(Step::End),
        ]
    }

    fn events(steps: &[Step]) -> Vec<Event> {
        let mut chat = EventBuilder::visitor("acme", "v-1");
        let mut events = vec![chat.started()];
        for step in steps {
            events.push(match step {
                Step::Start => chat.started(),
                Step::Message(text) => chat.message(Participant::Customer, text),
                Step::Context(key, value) => chat.context(key, value),
                Step::Identified(n) => {
                    let phone = format!("+97250123456{n}");
                    chat.identified(vec![ChannelIdentity::phone(&phone).expect("valid")])
                }
                Step::Handoff(summary) => chat.event(Payload::HandoffRequested {
                    bot_id: "bot".into(),
                    reason: HandoffReason::CustomerAsked,
                    target_queue_id: "billing".into(),
                    summary: summary.clone(),
                }),
                Step::End => chat.ended(),
            });
        }
        events
    }

    fn folded(events: &[Event]) -> Journey {
        let Some(CustomerRef::Identity(identity)) = &events[0].customer else {
            panic!("by identity");
        };
        let id = customer_id_for(&events[0].tenant_id, identity);
        let mut journey = Journey::new(events[0].tenant_id.clone(), id, events[0].occurred_at);
        for (offset, event) in (0..).zip(events) {
            journey.apply(offset, event);
        }
        journey
    }

    proptest! {
        #[test]
        fn erasing_a_journey_is_folding_its_events_erased(steps in prop::collection::vec(step(), 0..25)) {
            let events = events(&steps);
            let mut live = folded(&events);
            let held = live.erase();
            prop_assert!(held.iter().all(|identity| !identity.is_erased()));
            prop_assert_eq!(held.len(), live.identities.len());
            let skeletons: Vec<Event> = events
                .iter()
                .map(|event| {
                    let mut skeleton = event.clone();
                    personal::split(&mut skeleton);
                    skeleton
                })
                .collect();
            prop_assert_eq!(live, folded(&skeletons));
        }
    }

    #[test]
    fn erasing_twice_changes_nothing_more() {
        let mut chat = EventBuilder::visitor("acme", "v-1");
        let mut journey = folded(&[chat.started(), chat.message(Participant::Customer, "hi")]);
        assert_eq!(journey.erase().len(), 1);
        let once = journey.clone();
        assert!(journey.erase().is_empty());
        assert_eq!(journey, once);
    }
}

//! A journey as of an earlier offset, through the real log and sled: it equals what a
//! projection stopped at that offset holds, identities and merges included.

mod common;

use std::sync::Arc;

use proptest::prelude::*;
use rezef_events::event::Participant;
use rezef_events::fold::customer_id_for;
use rezef_events::testing::EventBuilder;
use rezef_events::{Channel, ChannelIdentity, CustomerRef, IdentityKind, Journey};
use rezef_log::Log;
use rezef_record::sealed::Sealing;
use rezef_store::{CachedStore, JourneyStore, Projector, journey_as_of};

use common::identity_log::{acme, arb_identity_events, crm, identity_events};
use common::{Fixture, project};

fn visitor(n: usize) -> ChannelIdentity {
    ChannelIdentity::new(IdentityKind::ChatVisitor, &format!("v-{n}"), None).expect("valid")
}

/// Every way the 4 customers can be named: by id, by their visitor id, by their CRM id.
fn references() -> Vec<CustomerRef> {
    (0..4)
        .flat_map(|n| {
            [
                CustomerRef::Id(customer_id_for(&acme(), &visitor(n))),
                CustomerRef::Identity(visitor(n)),
                CustomerRef::Identity(crm(&format!("C-{n}"))),
            ]
        })
        .collect()
}

/// What a projection stopped at its offset answers for `customer`: the journey holding it.
fn stopped_at(store: &Arc<CachedStore>, customer: &CustomerRef) -> Option<Journey> {
    let mut id = match customer {
        CustomerRef::Id(id) => Some(id.clone()),
        CustomerRef::Identity(identity) => store.resolve(&acme(), identity).expect("resolve"),
    };
    let mut hops = 0;
    while let Some(current) = id.take() {
        let journey: Option<Journey> = store.journey(&acme(), &current).expect("journey");
        match journey {
            Some(Journey {
                merged_into: Some(next),
                ..
            }) if hops < 16 => {
                hops += 1;
                id = Some(next);
            }
            found => return found,
        }
    }
    None
}

async fn as_of(
    fixture: &Fixture,
    live: &Arc<CachedStore>,
    customer: &CustomerRef,
    until: u64,
) -> Option<Journey> {
    journey_as_of(
        (fixture.log.as_ref(), &Sealing::default()),
        live.as_ref(),
        Arc::default(),
        &acme(),
        customer,
        until,
    )
    .await
    .expect("as of")
}

#[tokio::test]
async fn a_journey_as_of_an_offset_has_only_what_came_before() {
    let fixture = Fixture::new();
    let mut chat = EventBuilder::visitor("acme", "v-0").on(Channel::Webchat, "chat-1");
    let events = vec![
        chat.started(),
        chat.message(Participant::Customer, "my card was charged twice"),
        chat.intent("billing", 0.9),
        chat.ended(),
    ];
    fixture.publish(&events).await;
    let live = fixture.store("live");
    project(&fixture, &live).await;
    let customer = CustomerRef::Identity(visitor(0));

    assert_eq!(
        as_of(&fixture, &live, &customer, 0).await,
        None,
        "not seen yet"
    );
    let early = as_of(&fixture, &live, &customer, 2).await.expect("seen");
    assert_eq!(early.counters.events, 2);
    assert_eq!(early.conversations[0].intent, None, "the intent came later");
    let now = as_of(&fixture, &live, &customer, fixture.log.end_offset()).await;
    assert_eq!(
        now,
        stopped_at(&live, &customer),
        "as of the end: the journey now"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever links, merges and unmerges happen, the journey as of any offset equals what
    /// a projection that stopped there holds, for every way of naming the customer.
    #[test]
    fn a_journey_as_of_any_offset_equals_the_projection_stopped_there(
        specs in arb_identity_events(),
        cut in 0.0f64..=1.0,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let fixture = Fixture::new();
            fixture.publish(&identity_events(&specs)).await;
            let live = fixture.store("live");
            project(&fixture, &live).await;
            let end = fixture.log.end_offset();
            let until = ((end as f64) * cut).round() as u64;
            let stopped = fixture.store("stopped");
            Projector::new(fixture.log(), stopped.clone()).expect("projector")
                .catch_up(until, |_| {}).await.expect("catch up");
            for customer in references() {
                let expected = stopped_at(&stopped, &customer);
                prop_assert_eq!(as_of(&fixture, &live, &customer, until).await, expected, "{:?} as of {}", customer, until);
            }
            Ok(())
        })?;
    }
}

//! An event cannot have happened after the log recorded it: the fold takes no event as
//! later than its record, so an adapter's clock running ahead (or a record dated 2100)
//! neither closes a live conversation nor stretches a verification or a token.

use std::time::Duration;

use proptest::prelude::*;
use rezef_events::event::{AssuranceLevel, Payload, VerificationMethod};
use rezef_events::fold::{Context, customer_id_for};
use rezef_events::journey::ConversationStatus;
use rezef_events::policy::ContinuityPolicy;
use rezef_events::resume::{Caller, resume};
use rezef_events::testing::EventBuilder;
use rezef_events::{Channel, CustomerRef, Event, Journey, Timestamp};

const DAY: Duration = Duration::from_secs(24 * 3600);

fn journey_for(first: &Event) -> Journey {
    let Some(CustomerRef::Identity(identity)) = &first.customer else {
        unreachable!("the builder names a visitor")
    };
    let customer = customer_id_for(&first.tenant_id, identity);
    Journey::new(first.tenant_id.clone(), customer, first.occurred_at)
}

/// Folds `events`, each recorded at the paired time.
fn fold(events: &[(Event, Timestamp)]) -> Journey {
    let policy = ContinuityPolicy::default();
    let mut journey = journey_for(&events[0].0);
    for (offset, (event, recorded_at)) in (0u64..).zip(events) {
        let cx = Context {
            policy: &policy,
            origin: None,
            foreign: &[],
            recorded_at: Some(*recorded_at),
        };
        journey.apply_with(offset, event, &cx);
    }
    journey
}

fn identified(chat: &mut EventBuilder, expires_at: Option<Timestamp>) -> Event {
    chat.event(Payload::CustomerIdentified {
        method: VerificationMethod::OneTimeCode,
        assurance: AssuranceLevel::Substantial,
        identities: Vec::new(),
        expires_at,
    })
}

/// Given a chat active a minute ago, when a verification dated 30 days ahead is recorded
/// now, then the chat stays open and the verification holds for the policy's hour from now.
#[test]
fn a_verification_dated_a_month_ahead_neither_closes_the_chat_nor_holds_a_month() {
    let mut chat = EventBuilder::visitor("acme", "v-1");
    let started = chat.started();
    let now = chat.clock().plus(Duration::from_secs(60));
    chat.wait(30 * DAY);
    let ahead = identified(&mut chat, None);
    let journey = fold(&[(started.clone(), started.occurred_at), (ahead, now)]);

    let conversation = &journey.conversations[0];
    assert_eq!(conversation.status, ConversationStatus::Open);
    assert_eq!(
        conversation.last_activity_at,
        now.plus(Duration::from_nanos(999_999))
    );
    let caller = CustomerRef::Id(journey.customer_id.clone());
    let policy = ContinuityPolicy::default();
    let at = |t| {
        resume(
            &journey,
            Caller::Shown(&caller),
            Channel::Voice,
            t,
            &policy,
            None,
        )
    };
    let answer = at(now.plus(Duration::from_secs(60)));
    let (_, how) = answer.conversation.expect("the chat continues");
    assert_eq!(how, rezef_events::resume::Continuation::WithinWindow);
    assert!(answer.verified.expect("verified").skip_verification);
    let later = at(now.plus(2 * Duration::from_secs(3600)));
    assert!(
        !later.verified.expect("reported").skip_verification,
        "an hour, not a month"
    );
}

proptest! {
    /// An event dated after its record folds exactly as the same event dated at its record,
    /// with the expiries it carries moved back as far.
    #[test]
    fn an_event_dated_after_its_record_folds_as_if_dated_then(
        ahead_ms in 1u64..(400 * 24 * 3600 * 1000),
        valid_ms in 1u64..(2 * 24 * 3600 * 1000),
        token in any::<bool>(),
    ) {
        let mut chat = EventBuilder::visitor("acme", "v-1").in_conversation("cnv-1");
        let started = chat.started();
        let message = chat.message(rezef_events::event::Participant::Customer, "hi");
        let recorded = chat.clock().plus(Duration::from_secs(5));
        let end_of_ms = recorded.plus(Duration::from_nanos(999_999));
        let valid = Duration::from_millis(valid_ms);
        let at = |when: Timestamp, chat: &mut EventBuilder| {
            let mut event = if token {
                chat.event(Payload::ContinuationTokenIssued {
                    token: "482913".into(),
                    expires_at: when.plus(valid),
                    redeem_on: Vec::new(),
                })
            } else {
                identified(chat, Some(when.plus(valid)))
            };
            event.occurred_at = when;
            event
        };
        let ahead = at(end_of_ms.plus(Duration::from_millis(ahead_ms)), &mut chat.clone());
        let then = at(end_of_ms, &mut chat.clone());
        let before = [
            (started.clone(), started.occurred_at),
            (message.clone(), message.occurred_at),
        ];
        let mut dated_ahead = before.to_vec();
        dated_ahead.push((ahead, recorded));
        let mut dated_then = before.to_vec();
        dated_then.push((then, recorded));
        prop_assert_eq!(fold(&dated_ahead), fold(&dated_then));
    }
}

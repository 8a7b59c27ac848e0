//! Journeys in handovers are versioned snapshots: a record written before snapshots existed
//! still decodes into the journey it carried, and any journey survives the trip through a
//! handover record.

use std::time::Duration;

use proptest::prelude::*;
use rezef_events::event::{AbandonPoint, AssuranceLevel, Participant, VerificationMethod};
use rezef_events::handover::Handover;
use rezef_events::journey::{ConversationStatus, JoinReason, MergeCause, MergeRecord, Stage};
use rezef_events::policy::MergeRefusal;
use rezef_events::testing::{EventBuilder, rich_journey};
use rezef_events::{
    Channel, ChannelIdentity, CustomerId, Event, Journey, JourneySnapshot, Payload, TenantId,
    Timestamp, codec,
};
use serde_json::Value;

/// `codec::encode` of a `JourneyMoved` handover carrying `testing::rich_journey()` into
/// `c-z`, written by the code before snapshots (commit 6494be5). Never regenerate it.
const WRITTEN_BEFORE_SNAPSHOTS: &[u8] = include_bytes!("fixtures/journey_moved_v1.json");

fn customer(id: &str) -> CustomerId {
    CustomerId::new(id).expect("valid")
}

/// The moved journey and where it went.
fn moved(event: Event) -> (JourneySnapshot, Option<(CustomerId, MergeRecord)>) {
    match event.payload {
        Payload::Handover(Handover::JourneyMoved { journey, into }) => (journey, into),
        other => panic!("a journey_moved handover, not {}", other.name()),
    }
}

/// The path of the first field of `written` that `read` lacks or holds another value in;
/// `read` may have fields `written` has not (added with a default since).
fn first_difference(read: &Value, written: &Value, path: &str) -> Option<String> {
    match (read, written) {
        (Value::Object(read), Value::Object(written)) => written.iter().find_map(|(key, value)| {
            let path = format!("{path}.{key}");
            match read.get(key) {
                Some(read) => first_difference(read, value, &path),
                None => Some(path),
            }
        }),
        (Value::Array(read), Value::Array(written)) if read.len() == written.len() => read
            .iter()
            .zip(written)
            .enumerate()
            .find_map(|(n, (read, value))| first_difference(read, value, &format!("{path}[{n}]"))),
        _ => (read != written).then(|| path.to_owned()),
    }
}

#[test]
fn a_journey_moved_record_written_before_snapshots_still_decodes() {
    let event = codec::decode(WRITTEN_BEFORE_SNAPSHOTS).expect("the old record decodes");
    assert_eq!(event.event_id.as_str(), "rz-29b719100273221057bce1eab69c4f");
    let (snapshot, into) = moved(event);
    assert_eq!(
        snapshot.version(),
        1,
        "a journey without a version is version 1"
    );
    let (survivor, record) = into.expect("moved into a survivor");
    assert_eq!(survivor, customer("c-z"));
    assert_eq!(record.offset, 4711);
    assert!(
        matches!(record.cause, MergeCause::Requested { ref requested_by, .. } if requested_by == "agent-12")
    );
    let journey = snapshot.into_journey();

    // Every field as written: the journey, written again, holds everything the record did.
    let stored: Value = serde_json::from_slice(WRITTEN_BEFORE_SNAPSHOTS).expect("json");
    let written = &stored["payload"]["handover"]["journey_moved"]["journey"];
    // Through text, as f32 fields are written (`to_value` would widen them to f64 first).
    let read = serde_json::to_vec(&journey).expect("serializes");
    let read: Value = serde_json::from_slice(&read).expect("json");
    assert_eq!(first_difference(&read, written, "journey"), None);

    // And the parts, read back as the fold made them.
    assert_eq!(journey.customer_id, customer("c-a"));
    assert_eq!(journey.counters.events, 44);
    assert_eq!(journey.last_event_offset, Some(302));
    let statuses: Vec<_> = journey.conversations.iter().map(|c| c.status).collect();
    for status in [
        ConversationStatus::Open,
        ConversationStatus::Resolved,
        ConversationStatus::Inactive,
    ] {
        assert!(statuses.contains(&status), "{status:?}");
    }
    let interactions = || journey.conversations.iter().flat_map(|c| &c.interactions);
    assert!(interactions().any(|i| i.joined == JoinReason::Token));
    assert!(interactions().any(|i| i.joined == JoinReason::SameIntent));
    assert_eq!(interactions().map(|i| i.stages.len()).sum::<usize>(), 23);
    assert!(interactions().any(|i| i.stage == Stage::CallbackPending));
    let first = &journey.conversations[0];
    assert_eq!(first.intent.as_ref().map(|i| i.confidence), Some(0.88));
    assert_eq!(first.transcript.len(), 3);
    assert!(first.context["card"].sensitive);
    assert_eq!(first.tokens.len(), 1);
    assert_eq!(first.aliases.len(), 1);
    assert_eq!(first.repeat_contacts, 1);
    assert_eq!(
        journey.identities[0]
            .verification
            .as_ref()
            .map(|v| v.method),
        Some(VerificationMethod::OneTimeCode)
    );
    assert_eq!(journey.shares.len(), 3);
    assert!(matches!(
        journey.shares[1].merge.as_ref().map(|m| &m.cause),
        Some(MergeCause::Verified { .. })
    ));
    assert_eq!(journey.conflicts[0].refusal, MergeRefusal::SharedIdentity);
}

#[test]
fn the_rich_journey_survives_a_handover_record() {
    let journey = rich_journey();
    let cause = EventBuilder::customer("acme", "c-a").started();
    let event = Handover::JourneyMoved {
        journey: JourneySnapshot::of(&journey),
        into: None,
    }
    .event(&cause);
    let (snapshot, into) = moved(codec::decode(&codec::encode(&event)).expect("decodes"));
    assert_eq!(into, None);
    assert_eq!(snapshot.into_journey(), journey);
}

/// Random histories of three customers: (customer, channel, payload kind, hours waited).
fn arb_history() -> impl Strategy<Value = Vec<(usize, u8, u8, u8)>> {
    prop::collection::vec((0usize..3, 0u8..3, 0u8..12, 0u8..100), 1..50)
}

fn fold(specs: &[(usize, u8, u8, u8)]) -> Vec<Journey> {
    let tenant = TenantId::new("acme").expect("valid");
    let start = Timestamp::from_unix_millis(1_700_000_000_000);
    let mut journeys: Vec<Journey> = (0..3)
        .map(|n| Journey::new(tenant.clone(), customer(&format!("c-{n}")), start))
        .collect();
    let channels = [Channel::Webchat, Channel::Voice, Channel::Sms];
    let mut waited = Duration::ZERO;
    for (offset, (who, channel, kind, hours)) in specs.iter().enumerate() {
        waited += Duration::from_secs(u64::from(*hours) * 3600);
        let mut b = EventBuilder::customer("acme", &format!("c-{who}"))
            .on(channels[*channel as usize], &format!("i-{who}-{channel}"))
            .ids(&format!("x{offset}"));
        b.wait(waited);
        let phone = ChannelIdentity::phone(&format!("+97250123456{who}")).expect("valid");
        let event = match kind {
            0 => b.started(),
            1 => b.started_with_token("t-1"),
            2 => b.intent(["billing", "moving"][offset % 2], 0.9),
            3 => b.message(Participant::Customer, "hello"),
            4 => b.context("k", &offset.to_string()),
            5 => b.assigned("agent-1"),
            6 => b.wrapped_up(offset % 2 == 0),
            7 => b.event(Payload::ContinuationTokenIssued {
                token: "t-1".into(),
                expires_at: b.clock().plus(Duration::from_secs(86_400)),
                redeem_on: Vec::new(),
            }),
            8 => b.identified(vec![phone]),
            9 => b.event(Payload::ContactAbandoned {
                point: AbandonPoint::Queue,
            }),
            10 => b.event(Payload::SurveyAnswered {
                csat: Some(5),
                nps: None,
                effort: Some(2),
                comment: String::new(),
            }),
            _ => b.event(Payload::CallbackRequested {
                callback_to: phone,
                preferred_at: None,
                queue_id: "q".into(),
                original_arrival_at: None,
            }),
        };
        journeys[*who].apply(offset as u64, &event);
    }
    journeys
}

proptest! {
    /// Whatever the fold made, merged or not, comes back from a handover record unchanged.
    #[test]
    fn any_journey_survives_a_handover_record(specs in arb_history(), merges in 0usize..3, refused in any::<bool>()) {
        let mut journeys = fold(&specs);
        let record = MergeRecord {
            at: Timestamp::from_unix_millis(1_800_000_000_000),
            offset: 1000,
            cause: MergeCause::Verified {
                method: VerificationMethod::Document,
                assurance: AssuranceLevel::High,
                identity: ChannelIdentity::phone("+972501234561").expect("valid"),
            },
        };
        for absorbed in journeys.split_off(3 - merges) {
            journeys[0].absorb(absorbed, record.clone());
        }
        let mut journey = journeys.swap_remove(0);
        if refused {
            let phone = ChannelIdentity::phone("+972501234560").expect("valid");
            journey.refuse_link(&phone, customer("c-9"), MergeRefusal::Unverified, record.at, 1001);
        }
        let cause = EventBuilder::customer("acme", "c-0").started();
        let event = Handover::JourneyMoved {
            journey: JourneySnapshot::of(&journey),
            into: Some((customer("c-9"), record)),
        }
        .event(&cause);
        let (snapshot, _) = moved(codec::decode(&codec::encode(&event)).expect("decodes"));
        prop_assert_eq!(snapshot.into_journey(), journey);
    }
}

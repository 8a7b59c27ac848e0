//! Journeys stay bounded (`rezef_events::bound`): long histories, given event by event, and
//! then the journey's size and counts; with the bound as a property of random histories.

use std::collections::HashSet;
use std::time::Duration;

use proptest::prelude::*;
use rezef_events::bound::{MAX_CONVERSATIONS, MAX_INTERACTIONS, MAX_SUMMARIES};
use rezef_events::event::{Direction, EndReason, Participant, Payload, VerificationMethod};
use rezef_events::fold::Applied;
use rezef_events::journey::{ConversationStatus, JoinReason, MergeCause, MergeRecord};
use rezef_events::policy::ContinuityPolicy;
use rezef_events::resume::{Caller, Continuation, resume};
use rezef_events::testing::EventBuilder;
use rezef_events::{
    Channel, ChannelIdentity, ConversationId, CustomerId, Event, InteractionId, Journey, TenantId,
    Timestamp,
};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

fn conversation_id(id: &str) -> ConversationId {
    ConversationId::new(id).expect("valid")
}

/// One customer's history, folded event by event as it is told.
struct History {
    builder: EventBuilder,
    journey: Journey,
    offset: u64,
    /// Interactions started so far (each gets a fresh id).
    contacts: u64,
    /// The customer's id, which its case names start with.
    id: String,
    interaction: InteractionId,
    conversation: Option<ConversationId>,
}

impl History {
    /// Customer `id`, whose event ids start with `id` (two histories never share one).
    fn new(id: &str) -> Self {
        let builder = EventBuilder::customer("acme", id).ids(id);
        let journey = Journey::new(
            TenantId::new("acme").expect("valid"),
            CustomerId::new(id).expect("valid"),
            builder.clock(),
        );
        Self {
            builder,
            journey,
            offset: 0,
            contacts: 0,
            id: id.to_owned(),
            interaction: InteractionId::new("none").expect("valid"),
            conversation: None,
        }
    }

    /// The next event with this payload, on the current interaction (and conversation, if
    /// one was named), folded.
    fn tell(&mut self, payload: Payload) -> Applied {
        let mut event = self.builder.event(payload);
        event.interaction_id = Some(self.interaction.clone());
        event.conversation_id.clone_from(&self.conversation);
        self.fold(&event)
    }

    fn fold(&mut self, event: &Event) -> Applied {
        self.offset += 1;
        self.journey.apply(self.offset, event)
    }

    /// A message naming `conversation`, in no interaction.
    fn message_in(&mut self, conversation: &str) -> Applied {
        let mut event = self.builder.message(Participant::Customer, "thanks!");
        event.interaction_id = None;
        event.conversation_id = Some(conversation_id(conversation));
        self.fold(&event)
    }

    /// A new contact starts, in `conversation` if it names one.
    fn contact(&mut self, conversation: Option<&str>) -> Applied {
        self.contacts += 1;
        self.interaction = InteractionId::new(format!("i-{}", self.contacts)).expect("valid");
        self.conversation = conversation.map(conversation_id);
        self.tell(Payload::InteractionStarted {
            direction: Direction::Inbound,
            identity: None,
            entry_point: String::new(),
            language: None,
            continuation_token: None,
        })
    }

    fn intent(&mut self, intent: &str) -> Applied {
        self.tell(Payload::IntentDetected {
            intent: intent.into(),
            confidence: 0.9,
            detected_by: "bot".into(),
        })
    }

    fn say(&mut self, text: &str) -> Applied {
        self.tell(Payload::MessageSent {
            from: Participant::Customer,
            sender_id: String::new(),
            text: text.into(),
            attachments: Vec::new(),
            sensitive: false,
        })
    }

    fn end(&mut self) -> Applied {
        self.tell(Payload::InteractionEnded {
            reason: Some(EndReason::Completed),
        })
    }

    fn wrap_up(&mut self, resolved: bool) -> Applied {
        self.tell(Payload::WrapUpRecorded {
            agent_id: None,
            disposition: "done".into(),
            need_resolved: resolved,
            notes: String::new(),
        })
    }

    /// A need handled and resolved in `contacts` contacts (the first opens the conversation,
    /// the others continue it within the window), about `intent`.
    fn resolved_need(&mut self, conversation: Option<&str>, intent: &str, contacts: usize) {
        for n in 0..contacts {
            self.contact(conversation);
            if n == 0 {
                self.intent(intent);
            }
            self.end();
        }
        self.wrap_up(true);
    }
}

/// Every bound of `bound` holds, and the conversations are all counted.
fn assert_bounded(journey: &Journey) {
    let open = journey.conversations.iter().filter(|c| !c.is_closed());
    assert!(
        journey.conversations.len() <= MAX_CONVERSATIONS.max(open.count()),
        "{} whole conversations",
        journey.conversations.len()
    );
    assert!(journey.past.len() <= MAX_SUMMARIES);
    assert!(
        journey
            .conversations
            .iter()
            .all(|c| c.interactions.len() <= MAX_INTERACTIONS)
    );
    assert!(
        journey
            .past
            .iter()
            .all(|s| s.status != ConversationStatus::Open)
    );
    assert_eq!(
        journey.counters.conversations as usize,
        journey.conversations.len()
            + journey.past.len()
            + journey.counters.conversations_forgotten as usize
    );
}

/// Every id (and alias) names one conversation, whole or compacted.
fn assert_ids_unique(journey: &Journey) {
    let mut seen = HashSet::new();
    let whole = journey.conversations.iter().map(|c| (&c.id, &c.aliases));
    let past = journey.past.iter().map(|s| (&s.id, &s.aliases));
    for (id, aliases) in whole.chain(past) {
        for id in std::iter::once(id).chain(aliases) {
            assert!(seen.insert(id.clone()), "{id} twice");
        }
    }
}

/// All interactions the journey accounts for, whole, counted in a conversation or in a
/// summary (exact while no summary was forgotten).
fn interactions_kept(journey: &Journey) -> u32 {
    let whole: u32 = (journey.conversations.iter())
        .map(|c| c.interaction_count())
        .sum();
    whole + journey.past.iter().map(|s| s.interactions).sum::<u32>()
}

#[test]
fn a_customer_with_ten_thousand_interactions_keeps_a_bounded_journey() {
    // Given a customer with 2,000 needs over the years, five contacts each.
    let mut history = History::new("c-1");
    for n in 0..2_000 {
        history.resolved_need(None, &format!("need-{n}"), 5);
        history.builder.wait(DAY);
    }
    let journey = &history.journey;

    // Then the journey keeps 20 conversations whole and 200 summaries, and counts the rest.
    assert_eq!(journey.counters.interactions, 10_000);
    assert_eq!(journey.counters.conversations, 2_000);
    assert_eq!(journey.conversations.len(), MAX_CONVERSATIONS);
    assert_eq!(journey.past.len(), MAX_SUMMARIES);
    assert_eq!(journey.counters.conversations_forgotten, 2_000 - 220);
    assert_bounded(journey);
    assert_ids_unique(journey);
    // The newest whole, the older summarised, least recently active first.
    let intent = |c: Option<&rezef_events::journey::DetectedIntent>| {
        c.map(|i| i.intent.clone()).unwrap_or_default()
    };
    assert_eq!(
        intent(journey.conversations.last().and_then(|c| c.intent.as_ref())),
        "need-1999"
    );
    assert_eq!(intent(journey.past[0].intent.as_ref()), "need-1780");
    assert_eq!(intent(journey.past[199].intent.as_ref()), "need-1979");
    assert!(journey.past.iter().all(|s| s.interactions == 5
        && s.status == ConversationStatus::Resolved
        && s.disposition.as_deref() == Some("done")));
    // Small enough to store and cache (200 summaries and 100 interactions, a few kB each).
    assert!(
        journey.to_bytes().len() < 64 * 1024,
        "{}",
        journey.to_bytes().len()
    );

    // When the customer calls again soon after, the latest need is still there to reopen.
    let now = history.builder.clock().plus(HOUR);
    let caller = rezef_events::CustomerRef::Id(journey.customer_id.clone());
    let answer = resume(
        journey,
        Caller::Shown(&caller),
        Channel::Voice,
        now,
        &ContinuityPolicy::default(),
        None,
    );
    let (conversation, how) = answer.conversation.expect("a recent conversation");
    assert_eq!(how, Continuation::Recent);
    assert_eq!(intent(conversation.intent.as_ref()), "need-1999");
}

#[test]
fn a_conversation_held_open_for_years_keeps_its_latest_interactions() {
    // Given a case the adapter names on every contact, never resolved, 10,000 contacts.
    let mut history = History::new("c-1");
    for _ in 0..10_000 {
        history.contact(Some("case-1"));
        history.end();
    }
    // Then it keeps the latest 50 interactions and counts the rest.
    let journey = &history.journey;
    let case = journey
        .conversation(&conversation_id("case-1"))
        .expect("whole");
    assert_eq!(case.interactions.len(), MAX_INTERACTIONS);
    assert_eq!(case.earlier_interactions, 10_000 - 50);
    assert_eq!(case.interaction_count(), 10_000);
    assert_eq!(
        case.interactions.first().map(|i| i.id.as_str()),
        Some("i-9951")
    );
    assert_eq!(journey.counters.interactions, 10_000);
}

#[test]
fn interactions_still_going_are_kept_before_ended_ones() {
    // Given a conversation whose first contact never ended, then 60 that did.
    let mut history = History::new("c-1");
    history.contact(Some("case-1"));
    for _ in 0..60 {
        history.contact(Some("case-1"));
        history.end();
    }
    // Then the live one is kept; the oldest ended ones are counted.
    let case = &history.journey.conversations[0];
    assert_eq!(case.interactions.len(), MAX_INTERACTIONS);
    assert_eq!(case.interactions[0].id.as_str(), "i-1");
    assert_eq!(case.earlier_interactions, 11);
}

#[test]
fn an_open_conversation_is_never_compacted() {
    // Given an open case, then 30 cases opened and resolved after it.
    let mut history = History::new("c-1");
    history.contact(Some("case-open"));
    history.intent("moving");
    for n in 0..30 {
        history.resolved_need(Some(&format!("case-{n}")), "billing", 1);
    }
    // Then the open case, the least recently active, is still whole.
    let journey = &history.journey;
    let open = journey
        .conversation(&conversation_id("case-open"))
        .expect("kept whole");
    assert_eq!(open.status, ConversationStatus::Open);
    assert_eq!(journey.conversations.len(), MAX_CONVERSATIONS);
    assert_eq!(journey.past.len(), 11);
    assert_bounded(journey);

    // When it closes as inactive (the next event a week later), it is compacted then.
    history.builder.wait(8 * DAY);
    history.resolved_need(Some("case-late"), "billing", 1);
    let journey = &history.journey;
    let summary = journey
        .past_conversation(&conversation_id("case-open"))
        .expect("compacted");
    assert_eq!(summary.status, ConversationStatus::Inactive);
    assert_eq!(
        summary.intent.as_ref().map(|i| i.intent.as_str()),
        Some("moving")
    );
    assert!(
        journey
            .conversation(&conversation_id("case-open"))
            .is_none()
    );
    assert_bounded(journey);
}

#[test]
fn an_event_naming_a_compacted_conversation_brings_it_back_whole() {
    // Given case-0, resolved in three contacts, then compacted behind 25 newer cases.
    let mut history = History::new("c-1");
    history.resolved_need(Some("case-0"), "billing", 3);
    for n in 1..=25 {
        history.resolved_need(Some(&format!("case-{n}")), &format!("need-{n}"), 1);
    }
    let case_0 = conversation_id("case-0");
    assert!(history.journey.conversation(&case_0).is_none());
    let summary = history
        .journey
        .past_conversation(&case_0)
        .expect("compacted")
        .clone();
    assert_eq!(summary.interactions, 3);

    // When the customer writes about it again.
    let applied = history.contact(Some("case-0"));

    // Then it is whole again, reopened as a repeat contact, and counted once.
    let journey = &history.journey;
    assert!(applied.opened.is_empty(), "no new conversation");
    assert!(journey.past_conversation(&case_0).is_none());
    let case = journey.conversation(&case_0).expect("whole again");
    assert_eq!(case.status, ConversationStatus::Open);
    assert_eq!(case.repeat_contacts, 1);
    assert_eq!(case.opened_at, summary.opened_at);
    assert_eq!(case.earlier_interactions, 3);
    assert_eq!(case.interaction_count(), 4);
    assert_eq!(
        case.interactions
            .iter()
            .map(|i| i.joined)
            .collect::<Vec<_>>(),
        [JoinReason::Reopened]
    );
    assert_eq!(case.disposition.as_deref(), Some("done"));
    assert_eq!(journey.counters.conversations, 26);
    assert_eq!(journey.counters.interactions, 29);
    assert_eq!(interactions_kept(journey), 29);
    assert_ids_unique(journey);
    assert_bounded(journey);
}

#[test]
fn a_message_naming_a_compacted_conversation_brings_it_back_closed() {
    // Given case-0 compacted.
    let mut history = History::new("c-1");
    history.resolved_need(Some("case-0"), "billing", 1);
    for n in 1..=25 {
        history.resolved_need(Some(&format!("case-{n}")), &format!("need-{n}"), 1);
    }
    let before = history.journey.past.len();
    // When a late message names it (no interaction starts).
    history.message_in("case-0");
    // Then it is whole, still resolved, with the message; another case took its place.
    let journey = &history.journey;
    let case = journey
        .conversation(&conversation_id("case-0"))
        .expect("whole");
    assert_eq!(case.status, ConversationStatus::Resolved);
    assert_eq!(case.transcript.len(), 1);
    assert_eq!(journey.past.len(), before);
    assert_ids_unique(journey);
    assert_bounded(journey);
}

#[test]
fn a_forgotten_conversation_named_again_opens_anew() {
    // Given case-0 compacted and then forgotten behind 230 newer needs.
    let mut history = History::new("c-1");
    history.resolved_need(Some("case-0"), "billing", 1);
    for n in 1..=230 {
        history.resolved_need(None, &format!("need-{n}"), 1);
    }
    let case_0 = conversation_id("case-0");
    assert!(history.journey.conversation_id(&case_0).is_none());
    assert_eq!(history.journey.counters.conversations_forgotten, 11);
    // When it is named again, a conversation of that id opens, counted as new.
    let applied = history.contact(Some("case-0"));
    assert_eq!(applied.opened, std::slice::from_ref(&case_0));
    let case = history.journey.conversation(&case_0).expect("new");
    assert_eq!(case.interaction_count(), 1);
    assert_eq!(history.journey.counters.conversations, 232);
    assert_ids_unique(&history.journey);
    assert_bounded(&history.journey);
}

fn merge_record() -> MergeRecord {
    MergeRecord {
        at: Timestamp::from_unix_millis(1_900_000_000_000),
        offset: 1_000_000,
        cause: MergeCause::Verified {
            method: VerificationMethod::Document,
            assurance: rezef_events::event::AssuranceLevel::High,
            identity: ChannelIdentity::phone("+972501234567").expect("valid"),
        },
    }
}

/// A customer with `needs` resolved needs of two contacts each, then one open need.
fn long_history(id: &str, needs: usize) -> Journey {
    let mut history = History::new(id);
    for n in 0..needs {
        history.resolved_need(None, &format!("{id}-need-{n}"), 2);
        history.builder.wait(DAY);
    }
    history.contact(None);
    history.journey
}

/// What a journey keeps of each member: whole conversations, summaries, forgotten.
fn kept_of(journey: &Journey, member: Option<&CustomerId>) -> (usize, usize) {
    let whole = journey.conversations.iter();
    let whole = whole.filter(|c| c.owner.as_ref() == member).count();
    let past = journey.past.iter();
    (whole, past.filter(|s| s.owner.as_ref() == member).count())
}

#[test]
fn merging_two_long_journeys_stays_bounded_and_unmerging_gives_each_its_history() {
    // Given two customers with 150 needs each (and one open need each).
    let a = long_history("c-a", 150);
    let b = long_history("c-b", 150);
    let b_id = b.customer_id.clone();

    // When they merge.
    let mut merged = a.clone();
    merged.absorb(b.clone(), merge_record());

    // Then the merged journey is within the bounds, with everything counted.
    assert_eq!(merged.counters.conversations, 302);
    assert_eq!(merged.conversations.len(), MAX_CONVERSATIONS);
    assert_eq!(merged.past.len(), MAX_SUMMARIES);
    assert_eq!(merged.counters.conversations_forgotten, 302 - 220);
    assert_eq!(merged.counters.interactions, 602);
    assert!(
        merged
            .conversations
            .iter()
            .filter(|c| !c.is_closed())
            .count()
            == 2,
        "both open needs stay whole"
    );
    assert_bounded(&merged);
    assert_ids_unique(&merged);
    // Each member's share counts what it forgot.
    let forgotten: u32 = merged
        .shares
        .iter()
        .map(|s| s.counters.conversations_forgotten)
        .sum();
    assert_eq!(forgotten, merged.counters.conversations_forgotten);
    for share in &merged.shares {
        let member = (share.customer_id != merged.customer_id).then_some(&share.customer_id);
        let (whole, past) = kept_of(&merged, member);
        assert_eq!(
            share.counters.conversations as usize,
            whole + past + share.counters.conversations_forgotten as usize
        );
    }

    // When they are unmerged, each gets its own conversations and summaries back.
    let restored = merged.split(&b_id).expect("member");
    for (journey, before) in [(&merged, &a), (&restored, &b)] {
        assert_eq!(journey.counters, before.counters_with_forgotten(journey));
        assert!(journey.conversations.iter().all(|c| c.owner.is_none()));
        assert!(journey.past.iter().all(|s| s.owner.is_none()));
        assert_bounded(journey);
    }
}

/// `counters` with the forgotten count of `after` (what a merge forgot stays forgotten).
trait WithForgotten {
    fn counters_with_forgotten(&self, after: &Journey) -> rezef_events::journey::Counters;
}

impl WithForgotten for Journey {
    fn counters_with_forgotten(&self, after: &Journey) -> rezef_events::journey::Counters {
        rezef_events::journey::Counters {
            conversations_forgotten: after.counters.conversations_forgotten,
            ..self.counters.clone()
        }
    }
}

/// One step of a random history: what kind of event, and how long before it.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// A new contact; `Some(n)`: naming case `n`.
    Contact(Option<u8>),
    Intent(u8),
    Say,
    End,
    WrapUp(bool),
    /// Time passes (days).
    Wait(u8),
    /// A whole need, resolved in one contact (what makes histories long).
    Need(u8),
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => prop::option::of(0u8..4).prop_map(Step::Contact),
        1 => (0u8..3).prop_map(Step::Intent),
        2 => Just(Step::Say),
        2 => Just(Step::End),
        3 => any::<bool>().prop_map(Step::WrapUp),
        1 => (0u8..10).prop_map(Step::Wait),
        4 => (0u8..50).prop_map(Step::Need),
    ]
}

fn tell(history: &mut History, step: Step) {
    match step {
        Step::Contact(case) => {
            let case = case.map(|n| format!("{}-case-{n}", history.id));
            history.contact(case.as_deref());
        }
        Step::Intent(n) => {
            history.intent(&format!("need-{n}"));
        }
        Step::Say => {
            history.say("hello");
        }
        Step::End => {
            history.end();
        }
        Step::WrapUp(resolved) => {
            history.wrap_up(resolved);
        }
        Step::Wait(days) => history.builder.wait(u32::from(days) * DAY),
        Step::Need(n) => history.resolved_need(None, &format!("need-{n}"), 1),
    }
}

/// The bound, after every event, and the counts at the end.
fn check(history: &History) -> Result<(), TestCaseError> {
    let journey = &history.journey;
    let open = journey.conversations.iter().filter(|c| !c.is_closed());
    prop_assert!(journey.conversations.len() <= MAX_CONVERSATIONS.max(open.count()));
    prop_assert!(journey.past.len() <= MAX_SUMMARIES);
    prop_assert!(
        journey
            .conversations
            .iter()
            .all(|c| c.interactions.len() <= MAX_INTERACTIONS)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever the history, the journey stays within its bounds and counts everything.
    #[test]
    fn the_bound_always_holds(steps in prop::collection::vec(arb_step(), 200..2_000)) {
        let mut history = History::new("c-1");
        for step in steps {
            tell(&mut history, step);
            check(&history)?;
        }
        let journey = &history.journey;
        assert_bounded(journey);
        assert_ids_unique(journey);
        if journey.counters.conversations_forgotten == 0 {
            prop_assert_eq!(interactions_kept(journey), journey.counters.interactions);
        }
        prop_assert_eq!(Journey::from_bytes(&journey.to_bytes()).expect("decodes"), journey.clone());
    }

    /// Two random histories merged stay within the bounds; unmerged, each keeps its counts.
    #[test]
    fn a_merge_stays_bounded(
        a in prop::collection::vec(arb_step(), 50..800),
        b in prop::collection::vec(arb_step(), 50..800),
    ) {
        let fold = |id: &str, steps: &[Step]| {
            let mut history = History::new(id);
            for step in steps {
                tell(&mut history, *step);
            }
            history.journey
        };
        let a = fold("c-a", &a);
        let b = fold("c-b", &b);
        let mut merged = a.clone();
        merged.absorb(b.clone(), merge_record());
        assert_bounded(&merged);
        assert_ids_unique(&merged);
        let restored = merged.split(&b.customer_id).expect("member");
        for (journey, before) in [(&merged, &a), (&restored, &b)] {
            assert_bounded(journey);
            prop_assert_eq!(&journey.counters, &before.counters_with_forgotten(journey));
        }
    }
}

//! Continuity end to end: each test starts the real `rezef serve` on a fresh data directory,
//! plays one complaint from the customers' list in `DOMAIN.md` (or the Triple C's, tokens,
//! identities, bad input, live watching) over gRPC, and checks what the next channel or
//! agent gets back. Read-your-writes goes through `min_offset`, never through sleeps.

use std::fmt::Debug;
use std::time::{Duration, SystemTime};

use rezef_adapter::proto::{
    self, AssuranceLevel, Channel, Continuation, Direction, IdentityKind, JoinReason, Participant,
    Stage, VerificationMethod, event::Payload,
};
use rezef_adapter::{Client, EventFactory, identity_ref};
use rezef_scenarios::RezefServer;
use tonic::Code;

const TENANT: &str = "acme";

// ── Helpers ────────────────────────────────────────────────────────────────────────────

/// Keeps a server and its data directory until dropped.
struct Running {
    _server: RezefServer,
    _dir: tempfile::TempDir,
}

/// A fresh server on a temporary data directory, and a client to it.
async fn backbone() -> (Client, Running) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = RezefServer::start(dir.path()).await;
    let client = server.client().await;
    (
        client,
        Running {
            _server: server,
            _dir: dir,
        },
    )
}

fn identity(kind: IdentityKind, value: &str) -> proto::ChannelIdentity {
    proto::ChannelIdentity {
        kind: kind as i32,
        value: value.into(),
        network: String::new(),
    }
}

fn phone(value: &str) -> proto::ChannelIdentity {
    identity(IdentityKind::Phone, value)
}

fn email(value: &str) -> proto::ChannelIdentity {
    identity(IdentityKind::Email, value)
}

fn by_id(customer_id: &str) -> proto::CustomerRef {
    proto::CustomerRef {
        r#ref: Some(proto::customer_ref::Ref::CustomerId(customer_id.into())),
    }
}

/// An adapter's view of one contact: who, on which channel, which interaction.
fn contact(kind: IdentityKind, who: &str, channel: Channel, interaction: &str) -> EventFactory {
    EventFactory::new(TENANT, "scenario")
        .identity(kind, who)
        .on(channel, interaction)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Says when the event happened (the factory stamps "now").
fn at(mut event: proto::Event, when: SystemTime) -> proto::Event {
    event.occurred_at = Some(when.into());
    event
}

/// A served timestamp as a `SystemTime`.
fn time<T: TryInto<SystemTime, Error: Debug>>(value: Option<T>) -> SystemTime {
    value
        .expect("timestamp set")
        .try_into()
        .expect("timestamp in range")
}

/// A served duration as a `Duration`.
fn duration<T: TryInto<Duration, Error: Debug>>(value: Option<T>) -> Duration {
    value
        .expect("duration set")
        .try_into()
        .expect("non-negative duration")
}

/// Publishes a batch; returns the offset of its last event, for `min_offset`.
async fn publish(client: &mut Client, events: Vec<proto::Event>) -> u64 {
    let ack = client.publish(events).await.expect("batch accepted");
    ack.first_offset + u64::from(ack.count) - 1
}

async fn journey(client: &mut Client, who: proto::CustomerRef, min_offset: u64) -> proto::Journey {
    client
        .journey(TENANT, who, Some(min_offset))
        .await
        .expect("GetJourney")
        .journey
        .expect("a journey")
}

async fn resume(
    client: &mut Client,
    who: proto::CustomerRef,
    channel: Channel,
    min_offset: u64,
) -> proto::ResumeConversationResponse {
    client
        .resume(TENANT, who, channel, Some(min_offset))
        .await
        .expect("ResumeConversation")
}

/// The gRPC status of a refused call.
fn refused<T: Debug>(result: Result<T, rezef_adapter::Error>) -> tonic::Status {
    match result {
        Err(rezef_adapter::Error::Status(status)) => status,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn assert_status(status: &tonic::Status, code: Code, says: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(says),
        "{:?} should mention {says:?}",
        status.message()
    );
}

// Events the factory has no shortcut for.

fn arrives(f: &EventFactory, details: proto::InteractionStarted) -> proto::Event {
    f.event(Payload::InteractionStarted(proto::InteractionStarted {
        direction: Direction::Inbound as i32,
        ..details
    }))
}

fn says(f: &EventFactory, from: Participant, sender: &str, text: &str) -> proto::Event {
    f.event(Payload::MessageSent(proto::MessageSent {
        from: from as i32,
        sender_id: sender.into(),
        text: text.into(),
        attachments: Vec::new(),
        sensitive: false,
    }))
}

fn verified(
    f: &EventFactory,
    method: VerificationMethod,
    assurance: AssuranceLevel,
    identities: Vec<proto::ChannelIdentity>,
    expires_at: Option<SystemTime>,
) -> proto::Event {
    f.event(Payload::CustomerIdentified(proto::CustomerIdentified {
        method: method as i32,
        assurance: assurance as i32,
        identities,
        expires_at: expires_at.map(Into::into),
    }))
}

fn step(f: &EventFactory, step_id: &str, input: &str) -> proto::Event {
    f.event(Payload::SelfServiceStepCompleted(
        proto::SelfServiceStepCompleted {
            step_id: step_id.into(),
            customer_input: input.into(),
            outcome: proto::StepOutcome::Continued as i32,
            ..Default::default()
        },
    ))
}

fn queued(f: &EventFactory, queue: &str) -> proto::Event {
    f.event(Payload::ContactQueued(proto::ContactQueued {
        queue_id: queue.into(),
        ..Default::default()
    }))
}

fn offered(f: &EventFactory, agent: &str) -> proto::Event {
    f.event(Payload::ContactOffered(proto::ContactOffered {
        agent_id: agent.into(),
        queue_id: String::new(),
    }))
}

fn assigned(f: &EventFactory, agent: &str) -> proto::Event {
    f.event(Payload::ContactAssigned(proto::ContactAssigned {
        agent_id: agent.into(),
        queue_id: String::new(),
    }))
}

fn transferred(f: &EventFactory, from: &str, to_agent: &str, to_queue: &str) -> proto::Event {
    f.event(Payload::ContactTransferred(proto::ContactTransferred {
        from_agent_id: from.into(),
        to_agent_id: to_agent.into(),
        to_queue_id: to_queue.into(),
        reason: "needs another team".into(),
    }))
}

fn handoff(f: &EventFactory, bot: &str, queue: &str, summary: &str) -> proto::Event {
    f.event(Payload::HandoffRequested(proto::HandoffRequested {
        bot_id: bot.into(),
        reason: proto::HandoffReason::CustomerAsked as i32,
        target_queue_id: queue.into(),
        summary: summary.into(),
    }))
}

fn ended(f: &EventFactory) -> proto::Event {
    f.event(Payload::InteractionEnded(proto::InteractionEnded {
        reason: proto::EndReason::Completed as i32,
    }))
}

fn wrap_up(f: &EventFactory, agent: &str, disposition: &str, resolved: bool) -> proto::Event {
    f.event(Payload::WrapUpRecorded(proto::WrapUpRecorded {
        agent_id: agent.into(),
        disposition: disposition.into(),
        need_resolved: resolved,
        notes: String::new(),
    }))
}

// Reading answers.

fn conversation_of(answer: &proto::ResumeConversationResponse) -> &proto::Conversation {
    answer
        .conversation
        .as_ref()
        .expect("a conversation to continue")
}

fn intent(c: &proto::Conversation) -> &str {
    c.intent.as_ref().map_or("", |i| i.intent.as_str())
}

fn context<'a>(c: &'a proto::Conversation, key: &str) -> &'a proto::ContextEntry {
    c.context
        .iter()
        .find(|entry| entry.key == key)
        .unwrap_or_else(|| panic!("context {key} missing from {:?}", c.context))
}

fn transcript(c: &proto::Conversation) -> Vec<&str> {
    c.transcript.iter().map(|m| m.text.as_str()).collect()
}

fn channels(c: &proto::Conversation) -> Vec<Channel> {
    c.channels().collect()
}

/// Each interaction's id and why it joined the conversation.
fn joined(c: &proto::Conversation) -> Vec<(&str, JoinReason)> {
    c.interactions
        .iter()
        .map(|i| (i.interaction_id.as_str(), i.joined()))
        .collect()
}

fn interaction<'a>(c: &'a proto::Conversation, id: &str) -> &'a proto::Interaction {
    c.interactions
        .iter()
        .find(|i| i.interaction_id == id)
        .unwrap_or_else(|| panic!("interaction {id} missing"))
}

/// The stages an interaction went through, with when each began.
fn stages(i: &proto::Interaction) -> Vec<(Stage, SystemTime)> {
    i.stages
        .iter()
        .map(|s| (s.stage(), time(s.entered_at)))
        .collect()
}

// ── The complaints ─────────────────────────────────────────────────────────────────────

/// "Having to repeat themselves": the call gets everything the chat collected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn having_to_repeat_themselves() {
    const PHONE: &str = "+972545550123";
    let (mut client, _running) = backbone().await;
    let chat = contact(
        IdentityKind::ChatVisitor,
        "visitor-7f3a",
        Channel::Webchat,
        "chat-1",
    );
    let last = publish(
        &mut client,
        vec![
            chat.interaction_started(Direction::Inbound),
            says(
                &chat,
                Participant::Bot,
                "billing-bot",
                "Hi, I am a bot. How can I help?",
            ),
            chat.message(Participant::Customer, "I was charged twice in March"),
            chat.intent_detected("billing.double_charge", 0.93, "billing-bot"),
            chat.context("invoice", "INV-2024-03", false),
            chat.context("card_last4", "4242", true),
            // The visitor proves the phone number by a code sent to it.
            verified(
                &chat,
                VerificationMethod::OneTimeCode,
                AssuranceLevel::Substantial,
                vec![phone(PHONE)],
                None,
            ),
            handoff(
                &chat,
                "billing-bot",
                "billing",
                "double charge on INV-2024-03",
            ),
            assigned(&chat, "agent-dana"),
            says(
                &chat,
                Participant::Agent,
                "agent-dana",
                "I see both charges; please call us to confirm the refund",
            ),
            ended(&chat),
        ],
    )
    .await;

    // The customer calls: the voice channel asks before answering.
    let answer = resume(
        &mut client,
        identity_ref(IdentityKind::Phone, PHONE),
        Channel::Voice,
        last,
    )
    .await;
    let visitor = journey(&mut client, chat.customer_ref(), last).await;
    assert!(answer.known);
    assert_eq!(answer.customer_id, visitor.customer_id, "the same customer");
    assert_eq!(answer.continuation(), Continuation::WithinWindow);
    let conversation = conversation_of(&answer);
    assert_eq!(
        conversation.conversation_id,
        visitor.conversations[0].conversation_id
    );
    assert_eq!(intent(conversation), "billing.double_charge");
    let invoice = context(conversation, "invoice");
    assert_eq!(
        (invoice.value.as_str(), invoice.masked),
        ("INV-2024-03", false)
    );
    let card = context(conversation, "card_last4");
    assert_eq!(
        (card.value.as_str(), card.sensitive, card.masked),
        ("****", true, true),
        "a sensitive value is masked"
    );
    assert_eq!(
        transcript(conversation),
        [
            "Hi, I am a bot. How can I help?",
            "I was charged twice in March",
            "I see both charges; please call us to confirm the refund",
        ]
    );
    assert!(
        conversation
            .transcript
            .iter()
            .all(|m| m.channel() == Channel::Webchat)
    );
    assert_eq!(channels(conversation), [Channel::Webchat]);
    assert_eq!(conversation.last_agent_id, "agent-dana");
    assert_eq!(conversation.handoff_summary, "double charge on INV-2024-03");
    let proof = answer.verified.as_ref().expect("the chat's verification");
    assert_eq!(proof.identity, Some(phone(PHONE)));
    assert!(proof.skip_verification);
    assert!(answer.skip_self_service, "nothing left for the IVR to ask");
    let identities: Vec<_> = answer
        .identities
        .iter()
        .filter_map(|l| l.identity.clone())
        .collect();
    assert!(identities.contains(&phone(PHONE)), "{identities:?}");
    assert!(
        identities.contains(&identity(IdentityKind::ChatVisitor, "visitor-7f3a")),
        "{identities:?}"
    );

    // The call joins the chat's conversation.
    let call = contact(IdentityKind::Phone, PHONE, Channel::Voice, "call-1");
    let last = publish(
        &mut client,
        vec![call.interaction_started(Direction::Inbound)],
    )
    .await;
    let after = journey(&mut client, call.customer_ref(), last).await;
    assert_eq!(after.customer_id, visitor.customer_id);
    assert_eq!(after.conversations.len(), 1);
    let conversation = &after.conversations[0];
    assert_eq!(
        joined(conversation),
        [
            ("chat-1", JoinReason::Opened),
            ("call-1", JoinReason::WithinWindow)
        ]
    );
    assert_eq!(channels(conversation), [Channel::Webchat, Channel::Voice]);
}

/// "Being transferred from one party to another": the context goes along, transfers count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn being_transferred_from_one_party_to_another() {
    const PHONE: &str = "+972501112233";
    let (mut client, _running) = backbone().await;
    let call = contact(IdentityKind::Phone, PHONE, Channel::Voice, "call-2");
    let last = publish(
        &mut client,
        vec![
            call.interaction_started(Direction::Inbound),
            call.intent_detected("internet.slow", 0.8, "ivr-asr"),
            queued(&call, "support"),
            assigned(&call, "agent-a"),
            call.context("router", "TP-Link AX55", false),
            // A sends the call to a queue; B takes it, then hands it to C directly.
            transferred(&call, "agent-a", "", "tier2"),
            assigned(&call, "agent-b"),
            transferred(&call, "agent-b", "agent-c", ""),
            assigned(&call, "agent-c"),
        ],
    )
    .await;

    let seen = journey(&mut client, call.customer_ref(), last).await;
    let conversation = &seen.conversations[0];
    assert_eq!(conversation.transfer_count, 2);
    assert_eq!(context(conversation, "router").value, "TP-Link AX55");
    assert_eq!(intent(conversation), "internet.slow");
    assert_eq!(conversation.last_agent_id, "agent-c");
    assert_eq!(seen.last_agent_id, "agent-c");
    assert_eq!(seen.counters.as_ref().expect("counters").transfers, 2);
    let leg = interaction(conversation, "call-2");
    assert_eq!(leg.transfers, 2);
    assert_eq!(
        (leg.agent_id.as_str(), leg.queue_id.as_str()),
        ("agent-c", "tier2")
    );
    let path: Vec<_> = stages(leg).into_iter().map(|(stage, _)| stage).collect();
    assert_eq!(
        path,
        [
            Stage::Started,
            Stage::Queued,
            Stage::Connected,
            Stage::Queued,
            Stage::Connected,
            Stage::Offered,
            Stage::Connected
        ]
    );

    // The next contact finds the last agent and the context.
    let answer = resume(&mut client, call.customer_ref(), Channel::Voice, last).await;
    let conversation = conversation_of(&answer);
    assert_eq!(conversation.last_agent_id, "agent-c");
    assert_eq!(conversation.transfer_count, 2);
    assert_eq!(context(conversation, "router").value, "TP-Link AX55");
    assert_eq!(answer.current_stage(), Stage::Connected);
}

/// "Agents who do not speak their language": the chat's language routes the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_who_do_not_speak_their_language() {
    const PHONE: &str = "+972527654321";
    let (mut client, _running) = backbone().await;
    let chat = contact(
        IdentityKind::ChatVisitor,
        "visitor-ar",
        Channel::Webchat,
        "chat-3",
    );
    let last = publish(
        &mut client,
        vec![
            arrives(
                &chat,
                proto::InteractionStarted {
                    language: "ar".into(),
                    ..Default::default()
                },
            ),
            chat.intent_detected("billing.question", 0.7, "bot"),
            verified(
                &chat,
                VerificationMethod::OneTimeCode,
                AssuranceLevel::Substantial,
                vec![phone(PHONE)],
                None,
            ),
        ],
    )
    .await;
    let by_phone = identity_ref(IdentityKind::Phone, PHONE);
    let answer = resume(&mut client, by_phone.clone(), Channel::Voice, last).await;
    assert_eq!(answer.language, "ar");

    // The call itself says nothing about language: the chat's still counts.
    let call = contact(IdentityKind::Phone, PHONE, Channel::Voice, "call-3");
    let last = publish(
        &mut client,
        vec![call.interaction_started(Direction::Inbound)],
    )
    .await;
    let answer = resume(&mut client, by_phone, Channel::Voice, last).await;
    assert_eq!(answer.language, "ar");

    // Someone who never said is not given a language.
    let other = contact(
        IdentityKind::Phone,
        "+972520000001",
        Channel::Voice,
        "call-x",
    );
    let last = publish(
        &mut client,
        vec![other.interaction_started(Direction::Inbound)],
    )
    .await;
    let answer = resume(&mut client, other.customer_ref(), Channel::Voice, last).await;
    assert!(answer.known);
    assert_eq!(answer.language, "");
}

/// "A long IVR": time in the IVR and waiting is measured; a known, continuing customer
/// skips the menus next time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_ivr_and_a_struggle_to_reach_a_human() {
    const PHONE: &str = "+972509998877";
    let (mut client, _running) = backbone().await;
    let by_phone = identity_ref(IdentityKind::Phone, PHONE);
    let unknown = client
        .resume(TENANT, by_phone.clone(), Channel::Ivr, None)
        .await
        .expect("ResumeConversation");
    assert!(!unknown.known && !unknown.skip_self_service);

    let ivr = contact(IdentityKind::Phone, PHONE, Channel::Ivr, "ivr-1");
    let t0 = SystemTime::now() - secs(15 * 60);
    let last = publish(
        &mut client,
        vec![
            at(ivr.interaction_started(Direction::Inbound), t0),
            at(step(&ivr, "main-menu", "2"), t0 + secs(20)),
        ],
    )
    .await;
    // Known, but the need is not yet: the menus still have something to ask.
    let answer = resume(&mut client, by_phone.clone(), Channel::Ivr, last).await;
    assert!(answer.known && !answer.skip_self_service);

    let last = publish(
        &mut client,
        vec![
            at(step(&ivr, "billing-menu", "1"), t0 + secs(45)),
            at(
                ivr.intent_detected("billing.payment_plan", 0.8, "ivr-asr"),
                t0 + secs(50),
            ),
            at(queued(&ivr, "billing"), t0 + secs(60)),
            at(offered(&ivr, "agent-x"), t0 + secs(140)),
            at(assigned(&ivr, "agent-x"), t0 + secs(150)),
            at(ended(&ivr), t0 + secs(400)),
        ],
    )
    .await;
    let seen = journey(&mut client, by_phone.clone(), last).await;
    let leg = interaction(&seen.conversations[0], "ivr-1");
    assert_eq!(leg.self_service_steps, 2);
    assert_eq!(
        duration(leg.self_service_time),
        secs(60),
        "menus until the queue"
    );
    assert_eq!(duration(leg.wait_time), secs(90), "queued and offered");
    assert_eq!(
        stages(leg),
        [
            (Stage::Started, t0),
            (Stage::SelfService, t0),
            (Stage::Queued, t0 + secs(60)),
            (Stage::Offered, t0 + secs(140)),
            (Stage::Connected, t0 + secs(150)),
            (Stage::Ended, t0 + secs(400)),
        ]
    );

    // The customer calls again: the IVR knows who and why, and skips its menus.
    let answer = resume(&mut client, by_phone, Channel::Ivr, last).await;
    assert_eq!(answer.continuation(), Continuation::WithinWindow);
    assert_eq!(intent(conversation_of(&answer)), "billing.payment_plan");
    assert!(answer.skip_self_service);
}

/// "A struggle to reach a human", the bot side: the handoff gives the human the bot's intent,
/// slots, transcript and summary, and the time in the bot and waiting is measured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_hands_off_to_a_human_with_what_it_learned() {
    let (mut client, _running) = backbone().await;
    let bot = contact(
        IdentityKind::ChatVisitor,
        "visitor-trip",
        Channel::Bot,
        "bot-1",
    );
    let t0 = SystemTime::now() - secs(5 * 60);
    let summary = "Wants to move booking XK42LM to next Sunday; asked for a person";
    let last = publish(
        &mut client,
        vec![
            at(bot.interaction_started(Direction::Inbound), t0),
            at(
                says(
                    &bot,
                    Participant::Bot,
                    "trip-bot",
                    "Hi, I am TripBot, a bot.",
                ),
                t0 + secs(1),
            ),
            at(
                bot.message(Participant::Customer, "I need to rebook my flight"),
                t0 + secs(15),
            ),
            at(
                bot.intent_detected("travel.rebook", 0.88, "trip-bot"),
                t0 + secs(16),
            ),
            at(bot.context("booking_ref", "XK42LM", false), t0 + secs(30)),
            at(bot.context("passport", "P1234567", true), t0 + secs(40)),
            at(step(&bot, "collect-dates", "next Sunday"), t0 + secs(50)),
            at(
                bot.message(Participant::Customer, "Can I talk to a person?"),
                t0 + secs(70),
            ),
            at(
                handoff(&bot, "trip-bot", "rebooking", summary),
                t0 + secs(90),
            ),
        ],
    )
    .await;

    // The agent's desktop asks when the chat reaches it.
    let asked_at = SystemTime::now();
    let answer = resume(&mut client, bot.customer_ref(), Channel::Webchat, last).await;
    assert_eq!(answer.current_stage(), Stage::HandoffRequested);
    assert!(answer.skip_self_service, "no second triage");
    let conversation = conversation_of(&answer);
    assert_eq!(conversation.handoff_summary, summary);
    assert_eq!(intent(conversation), "travel.rebook");
    assert_eq!(context(conversation, "booking_ref").value, "XK42LM");
    assert_eq!(context(conversation, "passport").value, "****");
    assert_eq!(
        transcript(conversation),
        [
            "Hi, I am TripBot, a bot.",
            "I need to rebook my flight",
            "Can I talk to a person?"
        ]
    );
    let leg = interaction(conversation, "bot-1");
    assert_eq!(leg.self_service_steps, 1);
    assert_eq!(
        duration(leg.self_service_time),
        secs(90),
        "in the bot until the handoff"
    );
    let waiting_at_least = asked_at
        .duration_since(t0 + secs(90))
        .expect("the handoff is in the past");
    assert!(
        duration(leg.wait_time) >= waiting_at_least,
        "waiting since the handoff: {:?} < {waiting_at_least:?}",
        leg.wait_time
    );
}

/// "Not getting the information needed": the agent sees the whole journey, every contact
/// with its stages and when each began.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_getting_the_information_needed() {
    const PHONE: &str = "+972533334444";
    const EMAIL: &str = "noa.cohen@example.com";
    let (mut client, _running) = backbone().await;
    let t0 = SystemTime::now() - secs(3 * 3600);
    let chat = contact(
        IdentityKind::ChatVisitor,
        "visitor-5",
        Channel::Webchat,
        "chat-5",
    );
    let call = contact(IdentityKind::Phone, PHONE, Channel::Voice, "call-5");
    let mail = contact(IdentityKind::Email, EMAIL, Channel::Email, "mail-5");
    let last = publish(
        &mut client,
        vec![
            at(chat.interaction_started(Direction::Inbound), t0),
            at(
                chat.intent_detected("order.missing", 0.9, "bot"),
                t0 + secs(10),
            ),
            at(
                chat.message(Participant::Customer, "My parcel never came"),
                t0 + secs(20),
            ),
            at(
                verified(
                    &chat,
                    VerificationMethod::OneTimeCode,
                    AssuranceLevel::Substantial,
                    vec![phone(PHONE), email(EMAIL)],
                    None,
                ),
                t0 + secs(30),
            ),
            at(ended(&chat), t0 + secs(300)),
            at(call.interaction_started(Direction::Inbound), t0 + secs(600)),
            at(queued(&call, "orders"), t0 + secs(610)),
            at(assigned(&call, "agent-lior"), t0 + secs(700)),
            at(
                says(
                    &call,
                    Participant::Agent,
                    "agent-lior",
                    "I will reship it today",
                ),
                t0 + secs(710),
            ),
            at(ended(&call), t0 + secs(900)),
            at(
                wrap_up(&call, "agent-lior", "reshipped", true),
                t0 + secs(910),
            ),
            // A new need, by email, an hour later.
            at(
                mail.interaction_started(Direction::Inbound),
                t0 + secs(3600),
            ),
            at(
                mail.intent_detected("invoice.copy", 0.9, "mail-classifier"),
                t0 + secs(3610),
            ),
            at(
                mail.message(Participant::Customer, "Please send me the invoice"),
                t0 + secs(3620),
            ),
        ],
    )
    .await;

    let seen = journey(&mut client, mail.customer_ref(), last).await;
    let counters = seen.counters.as_ref().expect("counters");
    assert_eq!(
        (
            counters.events,
            counters.conversations,
            counters.interactions,
            counters.messages,
            counters.transfers
        ),
        (14, 2, 3, 3, 0)
    );
    assert_eq!(time(seen.first_seen_at), t0);
    assert_eq!(time(seen.last_seen_at), t0 + secs(3620));
    assert_eq!(seen.last_agent_id, "agent-lior");

    let [order, invoice] = seen.conversations.as_slice() else {
        panic!("two conversations: {:?}", seen.conversations);
    };
    assert_eq!(intent(order), "order.missing");
    assert_eq!(order.status(), proto::ConversationStatus::Resolved);
    assert_eq!(time(order.closed_at), t0 + secs(910));
    assert_eq!(order.disposition, "reshipped");
    assert_eq!(channels(order), [Channel::Webchat, Channel::Voice]);
    assert_eq!(
        stages(interaction(order, "chat-5")),
        [(Stage::Started, t0), (Stage::Ended, t0 + secs(300))]
    );
    let voice = interaction(order, "call-5");
    assert_eq!(time(voice.started_at), t0 + secs(600));
    assert_eq!(
        stages(voice),
        [
            (Stage::Started, t0 + secs(600)),
            (Stage::Queued, t0 + secs(610)),
            (Stage::Connected, t0 + secs(700)),
            (Stage::Ended, t0 + secs(900)),
        ]
    );
    assert_eq!(duration(voice.wait_time), secs(90));

    assert_eq!(intent(invoice), "invoice.copy");
    assert_eq!(invoice.status(), proto::ConversationStatus::Open);
    assert_eq!(channels(invoice), [Channel::Email]);
    assert_eq!(joined(invoice), [("mail-5", JoinReason::Opened)]);
    assert_eq!(
        stages(interaction(invoice, "mail-5")),
        [(Stage::Started, t0 + secs(3600))]
    );
}

/// "Having to give personal details again": the chat's verification travels to the call
/// with its method, assurance and expiry, and stops sparing the customer when it expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn having_to_give_personal_details_again() {
    let (mut client, _running) = backbone().await;
    let now = SystemTime::now();

    // Verified five minutes ago on chat, for an hour.
    let fresh = contact(
        IdentityKind::ChatVisitor,
        "visitor-6a",
        Channel::Webchat,
        "chat-6a",
    );
    let verified_at = now - secs(5 * 60);
    let expires_at = verified_at + secs(3600);
    let proof = verified(
        &fresh,
        VerificationMethod::OneTimeCode,
        AssuranceLevel::Substantial,
        vec![phone("+972541110001")],
        Some(expires_at),
    );
    // Verified three hours ago, for an hour.
    let stale = contact(
        IdentityKind::ChatVisitor,
        "visitor-6b",
        Channel::Webchat,
        "chat-6b",
    );
    let old_proof = verified(
        &stale,
        VerificationMethod::OneTimeCode,
        AssuranceLevel::Substantial,
        vec![phone("+972541110002")],
        Some(now - secs(2 * 3600)),
    );
    // Verified by caller id only: weak.
    let weak = contact(
        IdentityKind::Phone,
        "+972541110003",
        Channel::Voice,
        "call-6c",
    );
    let last = publish(
        &mut client,
        vec![
            at(
                fresh.interaction_started(Direction::Inbound),
                verified_at - secs(60),
            ),
            at(proof, verified_at),
            at(
                stale.interaction_started(Direction::Inbound),
                now - secs(3 * 3600 + 60),
            ),
            at(old_proof, now - secs(3 * 3600)),
            weak.interaction_started(Direction::Inbound),
            verified(
                &weak,
                VerificationMethod::CallerId,
                AssuranceLevel::Low,
                Vec::new(),
                None,
            ),
        ],
    )
    .await;

    let answer = resume(
        &mut client,
        identity_ref(IdentityKind::Phone, "+972541110001"),
        Channel::Voice,
        last,
    )
    .await;
    let held = answer.verified.as_ref().expect("verified");
    assert_eq!(held.identity, Some(phone("+972541110001")));
    assert_eq!(held.method(), VerificationMethod::OneTimeCode);
    assert_eq!(held.assurance(), AssuranceLevel::Substantial);
    assert_eq!(held.verified_on(), Channel::Webchat);
    assert_eq!(time(held.verified_at), verified_at);
    assert_eq!(time(held.expires_at), expires_at);
    assert_eq!(held.required_assurance(), AssuranceLevel::Substantial);
    assert!(held.skip_verification, "no second identity check");

    let answer = resume(
        &mut client,
        identity_ref(IdentityKind::Phone, "+972541110002"),
        Channel::Voice,
        last,
    )
    .await;
    let expired = answer.verified.as_ref().expect("the latest verification");
    assert_eq!(time(expired.expires_at), now - secs(2 * 3600));
    assert!(!expired.skip_verification, "expired: verify again");

    let answer = resume(&mut client, weak.customer_ref(), Channel::Voice, last).await;
    let caller_id = answer.verified.as_ref().expect("the caller-id check");
    assert_eq!(caller_id.method(), VerificationMethod::CallerId);
    assert!(!caller_id.skip_verification, "low assurance is not enough");
}

/// The Triple C's: start on web chat, continue on voice, get the answer by email — one
/// conversation, its context there at every step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_triple_cs_chat_then_call_then_email() {
    const PHONE: &str = "+972501234567";
    const EMAIL: &str = "dana.levi@example.com";
    let (mut client, _running) = backbone().await;

    // 1. Chat.
    let chat = contact(
        IdentityKind::ChatVisitor,
        "visitor-dana",
        Channel::Webchat,
        "chat-7",
    );
    let last = publish(
        &mut client,
        vec![
            chat.interaction_started(Direction::Inbound),
            chat.message(
                Participant::Customer,
                "My internet has been down since noon",
            ),
            chat.intent_detected("internet.outage", 0.95, "support-bot"),
            chat.context("address", "Herzl 12, Haifa", false),
            verified(
                &chat,
                VerificationMethod::OneTimeCode,
                AssuranceLevel::Substantial,
                vec![phone(PHONE), email(EMAIL)],
                None,
            ),
            ended(&chat),
        ],
    )
    .await;
    let on_chat = resume(&mut client, chat.customer_ref(), Channel::Webchat, last).await;
    let conversation_id = conversation_of(&on_chat).conversation_id.clone();
    assert_eq!(
        context(conversation_of(&on_chat), "address").value,
        "Herzl 12, Haifa"
    );

    // 2. Voice: the same conversation, with the chat's context.
    let call = contact(IdentityKind::Phone, PHONE, Channel::Voice, "call-7");
    let on_voice = resume(&mut client, call.customer_ref(), Channel::Voice, last).await;
    assert_eq!(conversation_of(&on_voice).conversation_id, conversation_id);
    assert_eq!(on_voice.continuation(), Continuation::WithinWindow);
    assert_eq!(intent(conversation_of(&on_voice)), "internet.outage");
    assert_eq!(
        context(conversation_of(&on_voice), "address").value,
        "Herzl 12, Haifa"
    );
    let last = publish(
        &mut client,
        vec![
            call.interaction_started(Direction::Inbound),
            assigned(&call, "agent-moshe"),
            call.context("ticket", "T-889", false),
            ended(&call),
        ],
    )
    .await;

    // 3. Email: the answer goes out in the same conversation, with both contexts.
    let mail = contact(IdentityKind::Email, EMAIL, Channel::Email, "mail-7");
    let on_email = resume(&mut client, mail.customer_ref(), Channel::Email, last).await;
    let conversation = conversation_of(&on_email);
    assert_eq!(conversation.conversation_id, conversation_id);
    assert_eq!(context(conversation, "address").value, "Herzl 12, Haifa");
    assert_eq!(context(conversation, "ticket").value, "T-889");
    assert_eq!(conversation.last_agent_id, "agent-moshe");
    let last = publish(
        &mut client,
        vec![
            mail.interaction_started(Direction::Outbound),
            says(
                &mail,
                Participant::Agent,
                "agent-moshe",
                "A technician comes on Tuesday",
            ),
        ],
    )
    .await;

    let seen = journey(&mut client, mail.customer_ref(), last).await;
    let [conversation] = seen.conversations.as_slice() else {
        panic!("one conversation: {:?}", seen.conversations);
    };
    assert_eq!(conversation.conversation_id, conversation_id);
    assert_eq!(
        channels(conversation),
        [Channel::Webchat, Channel::Voice, Channel::Email]
    );
    assert_eq!(
        joined(conversation),
        [
            ("chat-7", JoinReason::Opened),
            ("call-7", JoinReason::WithinWindow),
            ("mail-7", JoinReason::WithinWindow),
        ]
    );
    assert_eq!(
        transcript(conversation),
        [
            "My internet has been down since noon",
            "A technician comes on Tuesday"
        ]
    );
}

fn token_request(
    customer: proto::CustomerRef,
    ttl: Option<Duration>,
) -> proto::IssueContinuationTokenRequest {
    proto::IssueContinuationTokenRequest {
        tenant_id: TENANT.into(),
        customer: Some(customer),
        conversation_id: String::new(),
        ttl: ttl.map(|ttl| ttl.try_into().expect("a short ttl")),
        channel: Channel::Webchat as i32,
        ..Default::default()
    }
}

async fn resume_with_token(
    client: &mut Client,
    who: proto::CustomerRef,
    token: &str,
    min_offset: u64,
) -> proto::ResumeConversationResponse {
    client
        .journeys()
        .resume_conversation(proto::ResumeConversationRequest {
            tenant_id: TENANT.into(),
            customer: Some(who),
            channel: Channel::Voice as i32,
            continuation_token: token.into(),
            min_offset: Some(min_offset),
            ..Default::default()
        })
        .await
        .expect("ResumeConversation")
        .into_inner()
}

fn started_with_token(f: &EventFactory, token: &str) -> proto::Event {
    arrives(
        f,
        proto::InteractionStarted {
            continuation_token: token.into(),
            ..Default::default()
        },
    )
}

/// A continuation token carries the chat to a call from a number nobody knows, once. It
/// grants continuity, not verification: the caller verifies again, though the chat did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continuation_token_continues_the_chat_from_an_unknown_number_once() {
    let (mut client, _running) = backbone().await;
    let chat = contact(
        IdentityKind::ChatVisitor,
        "visitor-8",
        Channel::Webchat,
        "chat-8",
    );
    let last = publish(
        &mut client,
        vec![
            chat.interaction_started(Direction::Inbound),
            chat.intent_detected("loan.application", 0.9, "bot"),
            chat.context("amount", "50000", false),
            chat.identified(
                proto::VerificationMethod::OneTimeCode,
                proto::AssuranceLevel::Substantial,
                Vec::new(),
            ),
        ],
    )
    .await;
    let chat_again = resume(&mut client, chat.customer_ref(), Channel::Webchat, last).await;
    let chat_verified = chat_again.verified.expect("the chat verified");
    assert!(
        chat_verified.skip_verification,
        "the chat's visitor is spared"
    );
    let visitor = journey(&mut client, chat.customer_ref(), last).await;
    let issued = client
        .journeys()
        .issue_continuation_token(token_request(chat.customer_ref(), None))
        .await
        .expect("IssueContinuationToken")
        .into_inner();
    assert_eq!(issued.token.len(), 8);
    assert!(issued.token.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(
        issued.conversation_id,
        visitor.conversations[0].conversation_id
    );
    let validity = time(issued.expires_at)
        .duration_since(SystemTime::now())
        .expect("expires in the future");
    assert!(
        validity > secs(14 * 60) && validity <= secs(15 * 60),
        "a code lives 15 minutes by default: {validity:?}"
    );

    // A caller from a number nobody knows says the code to the IVR.
    let stranger = contact(
        IdentityKind::Phone,
        "+15551230001",
        Channel::Voice,
        "call-8",
    );
    let answer = resume_with_token(
        &mut client,
        stranger.customer_ref(),
        &issued.token,
        issued.offset,
    )
    .await;
    assert!(answer.known);
    assert_eq!(answer.customer_id, visitor.customer_id);
    assert_eq!(answer.continuation(), Continuation::Token);
    assert_eq!(
        conversation_of(&answer).conversation_id,
        issued.conversation_id
    );
    assert_eq!(context(conversation_of(&answer), "amount").value, "50000");
    let verified = answer
        .verified
        .expect("the chat's verification is reported");
    assert!(
        !verified.skip_verification,
        "a token is no proof of who the caller is"
    );

    let last = publish(
        &mut client,
        vec![started_with_token(&stranger, &issued.token)],
    )
    .await;
    // Once the call is in the journey, its number is the customer's, still unverified.
    let during = resume(&mut client, stranger.customer_ref(), Channel::Voice, last).await;
    assert_eq!(during.customer_id, visitor.customer_id);
    assert!(!during.verified.expect("reported").skip_verification);
    let seen = journey(&mut client, stranger.customer_ref(), last).await;
    assert_eq!(
        seen.customer_id, visitor.customer_id,
        "the number joins the customer"
    );
    assert_eq!(
        joined(&seen.conversations[0]),
        [
            ("chat-8", JoinReason::Opened),
            ("call-8", JoinReason::Token)
        ]
    );

    // Used once, the token continues nothing more.
    let second = contact(
        IdentityKind::Phone,
        "+15551230002",
        Channel::Voice,
        "call-8b",
    );
    let answer = resume_with_token(&mut client, second.customer_ref(), &issued.token, last).await;
    assert!(!answer.known, "a used token names nobody");
    let last = publish(
        &mut client,
        vec![started_with_token(&second, &issued.token)],
    )
    .await;
    let other = journey(&mut client, second.customer_ref(), last).await;
    assert_ne!(other.customer_id, visitor.customer_id);
    assert_eq!(
        joined(&other.conversations[0]),
        [("call-8b", JoinReason::Opened)]
    );
}

/// A token past its ttl is no longer valid: it neither names the customer nor links the
/// caller's number to them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_continuation_token_continues_nothing() {
    let (mut client, _running) = backbone().await;
    let chat = contact(
        IdentityKind::ChatVisitor,
        "visitor-8x",
        Channel::Webchat,
        "chat-8x",
    );
    let last = publish(
        &mut client,
        vec![
            chat.interaction_started(Direction::Inbound),
            chat.intent_detected("loan.application", 0.9, "bot"),
        ],
    )
    .await;
    let visitor = journey(&mut client, chat.customer_ref(), last).await;
    let issued = client
        .journeys()
        .issue_continuation_token(token_request(chat.customer_ref(), Some(secs(1))))
        .await
        .expect("IssueContinuationToken")
        .into_inner();
    // Waiting out the token's one-second life is the point of this test.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let stranger = contact(
        IdentityKind::Phone,
        "+15551239999",
        Channel::Voice,
        "call-8x",
    );
    let answer = resume_with_token(
        &mut client,
        stranger.customer_ref(),
        &issued.token,
        issued.offset,
    )
    .await;
    // Whom the token still names when asked, and whom the call is filed under.
    let named = answer.known.then(|| answer.customer_id.clone());
    let last = publish(
        &mut client,
        vec![started_with_token(&stranger, &issued.token)],
    )
    .await;
    let seen = journey(&mut client, stranger.customer_ref(), last).await;
    let linked = seen.customer_id == visitor.customer_id;
    assert!(
        named.is_none() && !linked,
        "an expired token must neither name its customer (ResumeConversation named {named:?}) \
         nor link the caller's number to them (linked: {linked})"
    );
}

/// Identities: resolve, refuse weak links, merge on strong evidence, unmerge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_resolve_merge_and_unmerge() {
    const CRM: &str = "CRM-1001";
    const PHONE_B: &str = "+972502223344";
    const EMAIL_B: &str = "family@example.com";
    let (mut client, _running) = backbone().await;
    let mut identities = client.identities();
    let t0 = SystemTime::now() - secs(3600);

    // A: a logged-in chat visitor whose CRM id is known. B, later: a caller with an email.
    let a = contact(
        IdentityKind::ChatVisitor,
        "visitor-a",
        Channel::Webchat,
        "chat-a",
    );
    let b = contact(IdentityKind::Phone, PHONE_B, Channel::Voice, "call-b");
    let last = publish(
        &mut client,
        vec![
            at(a.interaction_started(Direction::Inbound), t0),
            at(a.intent_detected("mortgage.rate", 0.9, "bot"), t0 + secs(5)),
            at(
                verified(
                    &a,
                    VerificationMethod::AuthenticatedSession,
                    AssuranceLevel::Substantial,
                    vec![identity(IdentityKind::CrmId, CRM)],
                    None,
                ),
                t0 + secs(10),
            ),
            at(b.interaction_started(Direction::Inbound), t0 + secs(600)),
            at(
                b.intent_detected("mortgage.documents", 0.9, "ivr-asr"),
                t0 + secs(610),
            ),
            at(
                verified(
                    &b,
                    VerificationMethod::OneTimeCode,
                    AssuranceLevel::Substantial,
                    vec![email(EMAIL_B)],
                    None,
                ),
                t0 + secs(620),
            ),
        ],
    )
    .await;
    let id_a = client
        .resolve(TENANT, identity(IdentityKind::CrmId, CRM), Some(last))
        .await
        .expect("CRM id resolves")
        .customer_id;
    let resolved_b = client
        .resolve(TENANT, phone(PHONE_B), Some(last))
        .await
        .expect("phone resolves");
    let id_b = resolved_b.customer_id.clone();
    assert_ne!(id_a, id_b);
    assert!(resolved_b.merged_customer_id.is_empty());
    assert!(
        resolved_b
            .identities
            .iter()
            .any(|l| l.identity == Some(email(EMAIL_B)))
    );
    let unknown = refused(
        client
            .resolve(TENANT, phone("+15550000000"), Some(last))
            .await,
    );
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");

    // An email code does not make A the owner of B's (perhaps family) mailbox.
    let link = |customer: &str, proven: proto::ChannelIdentity| proto::LinkIdentityRequest {
        tenant_id: TENANT.into(),
        customer_id: customer.into(),
        identity: Some(proven),
        method: VerificationMethod::OneTimeCode as i32,
        assurance: AssuranceLevel::Substantial as i32,
        expires_at: None,
        channel: Channel::Webchat as i32,
        source: "web-chat".into(),
    };
    let status = identities
        .link_identity(link(&id_a, email(EMAIL_B)))
        .await
        .expect_err("a shared kind of identity needs high assurance");
    assert_status(&status, Code::FailedPrecondition, "people share");
    assert!(status.message().contains(&id_b), "{}", status.message());

    // Merges that make no sense.
    let merge = |survivor: &str, absorbed: &str| proto::MergeCustomersRequest {
        tenant_id: TENANT.into(),
        survivor_customer_id: survivor.into(),
        absorbed_customer_id: absorbed.into(),
        reason: "same person".into(),
        requested_by: "supervisor-1".into(),
    };
    let status = identities
        .merge_customers(merge(&id_a, &id_a))
        .await
        .expect_err("a customer is already one with itself");
    assert_status(&status, Code::FailedPrecondition, "already one");
    let status = identities
        .merge_customers(merge(&id_a, "cus-nobody"))
        .await
        .expect_err("unknown customer");
    assert_status(&status, Code::NotFound, "cus-nobody");

    // B proves A's CRM id with high assurance: they are one person, A (the elder) survives.
    let last = publish(
        &mut client,
        vec![at(
            verified(
                &b,
                VerificationMethod::Knowledge,
                AssuranceLevel::High,
                vec![identity(IdentityKind::CrmId, CRM)],
                None,
            ),
            t0 + secs(630),
        )],
    )
    .await;
    let merged = journey(&mut client, by_id(&id_b), last).await;
    assert_eq!(merged.customer_id, id_a);
    assert_eq!(merged.conversations.len(), 2);
    let [record] = merged.merges.as_slice() else {
        panic!("one merge: {:?}", merged.merges);
    };
    assert_eq!(
        (record.customer_id.as_str(), record.merged_into.as_str()),
        (id_b.as_str(), id_a.as_str())
    );
    assert_eq!(
        record.proven_identity,
        Some(identity(IdentityKind::CrmId, CRM))
    );
    let proof = record.verification.as_ref().expect("the proof");
    assert_eq!(
        (proof.method(), proof.assurance()),
        (VerificationMethod::Knowledge, AssuranceLevel::High)
    );
    let resolved = client
        .resolve(TENANT, phone(PHONE_B), Some(last))
        .await
        .expect("resolves after the merge");
    assert_eq!(
        (
            resolved.customer_id.as_str(),
            resolved.merged_customer_id.as_str()
        ),
        (id_a.as_str(), id_b.as_str())
    );
    let status = identities
        .merge_customers(merge(&id_a, &id_b))
        .await
        .expect_err("already merged");
    assert_status(&status, Code::FailedPrecondition, "already one");

    // Undo: each gets their own conversation back.
    let unmerged = identities
        .unmerge_customers(proto::UnmergeCustomersRequest {
            tenant_id: TENANT.into(),
            customer_id: id_a.clone(),
            absorbed_customer_id: id_b.clone(),
            reason: "two people".into(),
            requested_by: "supervisor-1".into(),
        })
        .await
        .expect("UnmergeCustomers")
        .into_inner();
    let journey_b = journey(&mut client, by_id(&id_b), unmerged.offset).await;
    assert_eq!(journey_b.customer_id, id_b);
    let intents: Vec<_> = journey_b.conversations.iter().map(intent).collect();
    assert_eq!(intents, ["mortgage.documents"]);
    let journey_a = journey(&mut client, by_id(&id_a), unmerged.offset).await;
    let intents: Vec<_> = journey_a.conversations.iter().map(intent).collect();
    assert_eq!(intents, ["mortgage.rate"]);
    assert!(journey_a.merges.is_empty());
    let resolved = client
        .resolve(TENANT, phone(PHONE_B), Some(unmerged.offset))
        .await
        .expect("resolves after the unmerge");
    assert_eq!(resolved.customer_id, id_b);
    let status = identities
        .unmerge_customers(proto::UnmergeCustomersRequest {
            tenant_id: TENANT.into(),
            customer_id: id_a.clone(),
            absorbed_customer_id: id_b.clone(),
            reason: "twice".into(),
            requested_by: "supervisor-1".into(),
        })
        .await
        .expect_err("no longer merged");
    assert_status(&status, Code::FailedPrecondition, "is not merged into");
}

/// Bad input is refused with INVALID_ARGUMENT naming the field, and writes nothing;
/// sensitive values need an allowed key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_naming_the_field() {
    let (mut client, _running) = backbone().await;
    let bad_phone = || identity_ref(IdentityKind::Phone, "050-123");
    let bad_email = || identity_ref(IdentityKind::Email, "not-an-email");

    for who in [bad_phone(), bad_email()] {
        let status = refused(client.resume(TENANT, who, Channel::Voice, None).await);
        assert_status(&status, Code::InvalidArgument, "customer.identity.value");
    }
    for bad in [phone("050-123"), email("not-an-email")] {
        let status = refused(client.resolve(TENANT, bad, None).await);
        assert_status(&status, Code::InvalidArgument, "identity.value");
    }

    let good = contact(
        IdentityKind::Phone,
        "+972501230000",
        Channel::Voice,
        "call-10",
    );
    let bad = EventFactory::new(TENANT, "scenario")
        .identity(IdentityKind::Phone, "050-123")
        .on(Channel::Voice, "call-10b");
    let status = refused(
        client
            .publish(vec![
                good.interaction_started(Direction::Inbound),
                bad.interaction_started(Direction::Inbound),
            ])
            .await,
    );
    assert_status(
        &status,
        Code::InvalidArgument,
        "events[1].customer.identity.value",
    );
    let status = refused(
        client
            .publish(vec![verified(
                &good,
                VerificationMethod::OneTimeCode,
                AssuranceLevel::Substantial,
                vec![email("not-an-email")],
                None,
            )])
            .await,
    );
    assert_status(
        &status,
        Code::InvalidArgument,
        "events[0].customer_identified.identities[0].value",
    );
    // Nothing of the refused batches was written: the next event is the log's first.
    let ack = client
        .publish(vec![good.interaction_started(Direction::Inbound)])
        .await
        .expect("a good batch");
    assert_eq!(ack.first_offset, 0);

    // Revealing sensitive values needs a key the server allows (it allows none here).
    let reveal = || proto::ResumeConversationRequest {
        tenant_id: TENANT.into(),
        customer: Some(good.customer_ref()),
        channel: Channel::Voice as i32,
        reveal_sensitive: true,
        min_offset: Some(ack.first_offset),
        ..Default::default()
    };
    let mut journeys = client.journeys();
    let status = journeys
        .resume_conversation(reveal())
        .await
        .expect_err("no key");
    assert_status(&status, Code::PermissionDenied, "reveal_sensitive");
    let mut with_key = tonic::Request::new(reveal());
    with_key.metadata_mut().insert(
        "authorization",
        "Bearer guessed-key".parse().expect("ascii header"),
    );
    let status = journeys
        .resume_conversation(with_key)
        .await
        .expect_err("a key the server does not allow");
    assert_status(&status, Code::PermissionDenied, "reveal_sensitive");
}

/// The next update of a watch, within ten seconds.
async fn next_update<T>(stream: &mut tonic::Streaming<T>) -> T {
    tokio::time::timeout(secs(10), stream.message())
        .await
        .expect("an update within 10 s")
        .expect("the stream is healthy")
        .expect("the stream goes on")
}

/// A live view of one conversation: an update per change, and a watcher that reconnects
/// from its last update's offset gets the next change, not the last one again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_is_watched_live_without_repeats() {
    let (mut client, _running) = backbone().await;
    let mut journeys = client.journeys();
    let status = journeys
        .watch_conversation(proto::WatchConversationRequest {
            tenant_id: TENANT.into(),
            conversation_id: "cnv-nobody".into(),
            from_offset: None,
        })
        .await
        .expect_err("unknown conversation");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    let call = contact(
        IdentityKind::Phone,
        "+972508887766",
        Channel::Voice,
        "call-11",
    );
    let first = publish(
        &mut client,
        vec![call.interaction_started(Direction::Inbound)],
    )
    .await;
    let last = publish(&mut client, vec![queued(&call, "support")]).await;
    let conversation_id = journey(&mut client, call.customer_ref(), last)
        .await
        .conversations[0]
        .conversation_id
        .clone();
    let watch = |from_offset| proto::WatchConversationRequest {
        tenant_id: TENANT.into(),
        conversation_id: conversation_id.clone(),
        from_offset: Some(from_offset),
    };
    let stage = |update: &proto::ConversationUpdate| {
        update
            .conversation
            .as_ref()
            .and_then(|c| c.interactions.first())
            .map(proto::Interaction::stage)
    };

    // From the start of the call: the state now, then each change.
    let mut stream = journeys
        .watch_conversation(watch(first))
        .await
        .expect("WatchConversation")
        .into_inner();
    let update = next_update(&mut stream).await;
    assert_eq!(stage(&update), Some(Stage::Queued));
    assert_eq!(update.projected_offset, last + 1);
    let assigned_at = publish(&mut client, vec![assigned(&call, "agent-z")]).await;
    let update = next_update(&mut stream).await;
    assert_eq!(stage(&update), Some(Stage::Connected));
    assert!(update.projected_offset > assigned_at);
    drop(stream);

    // Reconnect from the last update: nothing stale, then the next change.
    let mut stream = journeys
        .watch_conversation(watch(update.projected_offset))
        .await
        .expect("WatchConversation")
        .into_inner();
    let quiet = tokio::time::timeout(Duration::from_millis(300), stream.message()).await;
    assert!(quiet.is_err(), "a stale repeat: {quiet:?}");
    publish(&mut client, vec![ended(&call)]).await;
    let update = next_update(&mut stream).await;
    assert_eq!(stage(&update), Some(Stage::Ended));
}

/// An adapter whose clock is a month ahead: its verification dated 30 days on is refused,
/// naming the field, so it neither spares re-verification for a month nor closes the live
/// chat as inactive. One a few minutes ahead (within the allowed skew) is taken as of the
/// server's time: it holds for the policy's hour from when it was recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_dated_in_the_future_changes_nothing_ahead_of_the_server() {
    let (mut client, _running) = backbone().await;
    let chat = contact(
        IdentityKind::ChatVisitor,
        "visitor-clock",
        Channel::Webchat,
        "chat-clock",
    );
    let last = publish(
        &mut client,
        vec![
            chat.interaction_started(Direction::Inbound),
            chat.intent_detected("billing.dispute", 0.9, "bot"),
        ],
    )
    .await;
    let verify = || {
        chat.identified(
            VerificationMethod::OneTimeCode,
            AssuranceLevel::Substantial,
            Vec::new(),
        )
    };
    let next_month = at(verify(), SystemTime::now() + secs(30 * 24 * 3600));
    let status = refused(client.publish(vec![next_month]).await);
    assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
    assert!(
        status.message().contains("events[0].occurred_at"),
        "{}",
        status.message()
    );
    let answer = resume(&mut client, chat.customer_ref(), Channel::Voice, last).await;
    assert_eq!(answer.continuation(), Continuation::WithinWindow);
    assert!(answer.verified.is_none(), "nothing was verified");

    let fast_clock = at(verify(), SystemTime::now() + secs(240));
    let last = publish(&mut client, vec![fast_clock]).await;
    let recorded_by = SystemTime::now();
    let answer = resume(&mut client, chat.customer_ref(), Channel::Voice, last).await;
    assert_eq!(answer.continuation(), Continuation::WithinWindow);
    let verified = answer.verified.expect("verified");
    assert!(verified.skip_verification);
    // Log records are timed to the millisecond; an event is taken as no later than the end
    // of its record's millisecond, which may end after the ack arrived.
    let record_precision = Duration::from_millis(1);
    assert!(
        time(verified.verified_at) <= recorded_by + record_precision,
        "as of the server's time"
    );
    assert!(time(verified.expires_at) <= recorded_by + record_precision + secs(3600));
}

/// The customer types the code they were sent into the chat, then calls: the agent's view
/// of the chat (ResumeConversation) and an auditor's replay show the code masked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_typed_in_the_chat_reaches_no_channel_and_no_auditor() {
    use futures::StreamExt;
    let (mut client, _running) = backbone().await;
    let chat = contact(
        IdentityKind::ChatVisitor,
        "visitor-code",
        Channel::Webchat,
        "chat-code",
    );
    let last = publish(
        &mut client,
        vec![
            chat.interaction_started(Direction::Inbound),
            says(
                &chat,
                Participant::Bot,
                "bot",
                "I've sent a code to your phone",
            ),
            says(&chat, Participant::Customer, "", "482913"),
            chat.context("card", "4111111111111111", true),
        ],
    )
    .await;
    let answer = resume(&mut client, chat.customer_ref(), Channel::Voice, last).await;
    let transcript: Vec<_> = (conversation_of(&answer).transcript.iter())
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(transcript, ["I've sent a code to your phone", "****"]);

    let replay = proto::ReplayHistoryRequest {
        tenant_id: TENANT.into(),
        customer: Some(chat.customer_ref()),
        ..Default::default()
    };
    let events: Vec<_> = client.replay(replay).await.expect("replay").collect().await;
    let served: Vec<String> = events
        .into_iter()
        .map(|e| e.expect("replayed").event.expect("event").payload)
        .filter_map(|payload| match payload? {
            Payload::MessageSent(m) => Some(m.text),
            Payload::ContextSet(c) => Some(c.value),
            _ => None,
        })
        .collect();
    assert_eq!(served, ["I've sent a code to your phone", "****", "****"]);
}

//! The demo's first part: a web chat with a bot, then the customer calls. The voice
//! adapter asks the backbone `ResumeConversation` over gRPC, exactly as a real IVR
//! integration would, and prints what it gets: the same customer, the conversation to
//! continue and why, the intent, the context, the verified identity and whether it still
//! holds. The customer repeats nothing.

use std::time::{Duration, SystemTime};

use anyhow::Context;
use rezef_adapter::proto::{self, event::Payload};
use rezef_adapter::{Client, EventFactory};

use super::{TENANT, label};

const PHONE: &str = "+972 54-555-0123";
const EMAIL: &str = "dana.levi@example.com";
/// The call's interaction id.
pub(super) const CALL: &str = "call-88120";

/// The call, once it joined the conversation: who calls, and the offset of its start.
pub(super) struct Call {
    pub factory: EventFactory,
    pub offset: u64,
}

/// The web chat with a bot; returns the offset of its last event.
pub(super) async fn web_chat(client: &mut Client) -> anyhow::Result<u64> {
    println!("── 1. Web chat ─ a visitor opens the chat on the website");
    let chat = EventFactory::new(TENANT, "web-chat-widget")
        .identity(proto::IdentityKind::ChatVisitor, "visitor-7f3a")
        .on(proto::Channel::Webchat, "chat-5521");
    let bot = |text: &str| {
        println!("   bot:      {text}");
        let mut event = chat.message(proto::Participant::Bot, text);
        if let Some(Payload::MessageSent(message)) = &mut event.payload {
            message.sender_id = "billing-bot".into();
        }
        event
    };
    let customer = |text: &str| {
        println!("   customer: {text}");
        chat.message(proto::Participant::Customer, text)
    };
    let sensitive = |mut event: proto::Event| {
        if let Some(Payload::MessageSent(message)) = &mut event.payload {
            message.sensitive = true;
        }
        event
    };
    let expires = SystemTime::now() + Duration::from_secs(8 * 3600);
    let mut identified = chat.identified(
        proto::VerificationMethod::OneTimeCode,
        proto::AssuranceLevel::Substantial,
        vec![proto::ChannelIdentity {
            kind: proto::IdentityKind::Phone as i32,
            value: PHONE.into(),
            network: String::new(),
        }],
    );
    if let Some(Payload::CustomerIdentified(proof)) = &mut identified.payload {
        proof.expires_at = Some(expires.into());
    }
    // The website is in Hebrew: the chat says so, and routing will look for a Hebrew speaker.
    let mut started = chat.interaction_started(proto::Direction::Inbound);
    if let Some(Payload::InteractionStarted(start)) = &mut started.payload {
        start.language = "he-IL".into();
    }
    let events = vec![
        started,
        bot("Hi, I'm the bank's virtual assistant (a bot). How can I help?"),
        customer("I was charged twice for my March card bill"),
        chat.intent_detected("billing.double_charge", 0.93, "billing-bot"),
        chat.context("statement", "2026-03", false),
        chat.context("email", EMAIL, false),
        chat.context("amount", "₪1,249.00", false),
        bot("I can check that. I've sent a code to your phone ending 0123."),
        // The widget asked for the code, so it marks the answer sensitive: no channel or
        // agent is ever shown it (the backbone would mask a six-digit run anyway).
        sensitive(customer("482913")),
        identified,
        chat.context("card_last4", "0417", true),
        bot("Thanks, you're verified. A specialist needs to reverse the charge."),
        customer("I'll call you, I'm driving"),
        chat.event(Payload::InteractionEnded(proto::InteractionEnded {
            reason: proto::EndReason::CustomerLeft as i32,
        })),
    ];
    let ack = client.publish(events).await?;
    println!(
        "   → {} events published, durable at offsets {}..{}\n",
        ack.count,
        ack.first_offset,
        ack.first_offset + u64::from(ack.count)
    );
    Ok(ack.first_offset + u64::from(ack.count) - 1)
}

/// The call: the voice channel asks the backbone who is calling, then joins the
/// conversation it is told to continue.
pub(super) async fn voice_call(client: &mut Client, after: u64) -> anyhow::Result<Call> {
    println!("── 2. Voice, twenty minutes later ─ {PHONE} calls the contact centre");
    let call = EventFactory::new(TENANT, "voice-gateway")
        .identity(proto::IdentityKind::Phone, PHONE)
        .on(proto::Channel::Voice, CALL);
    // Read-your-writes: the answer reflects everything the chat published.
    let answer = client
        .resume(
            TENANT,
            call.customer_ref(),
            proto::Channel::Voice,
            Some(after),
        )
        .await?;
    anyhow::ensure!(answer.known, "the backbone does not know the caller");
    let conversation = answer
        .conversation
        .as_ref()
        .context("no conversation to continue")?;

    println!("   The IVR asks the backbone (ResumeConversation, by caller number) and gets:\n");
    println!("   customer          {}", answer.customer_id);
    println!(
        "   continues         conversation {} ({})",
        conversation.conversation_id,
        label(
            proto::Continuation::try_from(answer.continuation).map(|c| c.as_str_name()),
            "CONTINUATION_"
        )
    );
    if let Some(v) = &answer.verified {
        let identity = v.identity.clone().unwrap_or_default();
        println!(
            "   verified          {} {} — verified by {} ({}) on {}, valid until {}",
            label(
                proto::IdentityKind::try_from(identity.kind).map(|k| k.as_str_name()),
                "IDENTITY_KIND_",
            ),
            identity.value,
            label(
                proto::VerificationMethod::try_from(v.method).map(|m| m.as_str_name()),
                "VERIFICATION_METHOD_"
            ),
            label(
                proto::AssuranceLevel::try_from(v.assurance).map(|a| a.as_str_name()),
                "ASSURANCE_LEVEL_"
            ),
            label(
                proto::Channel::try_from(v.verified_on).map(|c| c.as_str_name()),
                "CHANNEL_"
            ),
            v.expires_at.map_or("?".into(), |t| t.to_string()),
        );
        println!(
            "   re-verify?        {}",
            if v.skip_verification {
                "no: the verification still holds for voice"
            } else {
                "yes"
            }
        );
    }
    if let Some(intent) = &conversation.intent {
        println!(
            "   intent            {} (confidence {:.2}, by {})",
            intent.intent, intent.confidence, intent.detected_by
        );
    }
    for entry in &conversation.context {
        let note = if entry.masked {
            "  (sensitive, masked)"
        } else {
            ""
        };
        println!("   context           {} = {}{note}", entry.key, entry.value);
    }
    println!(
        "   transcript        last {} messages:",
        conversation.transcript.len().min(4)
    );
    let skip = conversation.transcript.len().saturating_sub(4);
    for message in conversation.transcript.iter().skip(skip) {
        let from = label(
            proto::Participant::try_from(message.from).map(|p| p.as_str_name()),
            "PARTICIPANT_",
        );
        println!("                       {from}: {}", message.text);
    }
    println!(
        "   IVR menus         {}",
        if answer.skip_self_service {
            "skipped: the need is already known"
        } else {
            "needed"
        }
    );

    // The call joins the conversation it continues.
    let call = call.conversation(conversation.conversation_id.clone());
    let ack = client
        .publish(vec![call.interaction_started(proto::Direction::Inbound)])
        .await?;
    let journey = client
        .journey(TENANT, call.customer_ref(), Some(ack.first_offset))
        .await?
        .journey
        .context("the backbone returned no journey")?;
    let joined = journey
        .conversations
        .iter()
        .find(|c| c.conversation_id == conversation.conversation_id)
        .context("the conversation is gone")?;
    let channels: Vec<_> = joined
        .channels
        .iter()
        .map(|c| {
            label(
                proto::Channel::try_from(*c).map(|c| c.as_str_name()),
                "CHANNEL_",
            )
        })
        .collect();
    println!("\n   The call joins the conversation.");
    println!("   channels so far   {}", channels.join(" → "));
    println!(
        "\n   The IVR skips identification and the menus, and the agent sees the whole story.\n   \
         The customer repeats nothing. ({} events in this journey)",
        journey.counters.map_or(0, |c| c.events)
    );
    Ok(Call {
        factory: call,
        offset: ack.first_offset,
    })
}

//! Journey state served: the domain journey shaped as `rezef.v1.Journey`, with sensitive
//! values masked unless the caller may see them, and the answer of `ResumeConversation`.

use rezef_events::fold::TRANSCRIPT_LEN;
use rezef_events::journey::{self, MergeCause, Stage};
use rezef_events::resume::{Resume, VerifiedIdentity};
use rezef_events::{Journey, Timestamp};
use rezef_proto::v1;

use super::{ProtoEnum, duration, enum_or_unspecified, id_string, identity_to_proto, timestamp};

/// What a sensitive context value is served as when the caller may not see it.
pub use rezef_events::mask::MASK;

/// How journey state is served to one caller.
#[derive(Debug, Clone, Copy)]
pub struct View {
    /// Whether the caller may see sensitive context values.
    pub reveal: bool,
    /// How many transcript messages a conversation shows, newest kept.
    pub transcript: usize,
    /// The time ongoing stages are measured to.
    pub now: Timestamp,
}

impl View {
    /// Everything but sensitive values, measured to now.
    pub fn masked() -> Self {
        Self {
            reveal: false,
            transcript: TRANSCRIPT_LEN,
            now: Timestamp::now(),
        }
    }
}

/// The served form of a journey.
pub fn journey_to_proto(journey: &Journey, view: &View) -> v1::Journey {
    let c = &journey.counters;
    v1::Journey {
        tenant_id: journey.tenant_id.to_string(),
        customer_id: journey.customer_id.to_string(),
        identities: journey
            .identities
            .iter()
            .map(linked_identity_to_proto)
            .collect(),
        conversations: journey
            .conversations
            .iter()
            .map(|c| conversation_to_proto(c, view))
            .collect(),
        last_agent_id: id_string(&journey.last_agent_id),
        counters: Some(v1::JourneyCounters {
            events: c.events,
            conversations: c.conversations,
            interactions: c.interactions,
            messages: c.messages,
            transfers: c.transfers,
            abandons: c.abandons,
            callbacks_requested: c.callbacks_requested,
            duplicates_ignored: c.duplicates_ignored,
            repeat_contacts: c.repeat_contacts,
            conversations_forgotten: c.conversations_forgotten,
        }),
        first_seen_at: Some(timestamp(journey.first_seen_at)),
        last_seen_at: Some(timestamp(journey.last_seen_at)),
        last_event_offset: journey.last_event_offset.unwrap_or_default(),
        merges: journey
            .shares
            .iter()
            .filter_map(|share| {
                let merge = share.merge.as_ref()?;
                let mut served = v1::Merge {
                    customer_id: share.customer_id.to_string(),
                    merged_into: id_string(&share.parent),
                    merged_at: Some(timestamp(merge.at)),
                    offset: merge.offset,
                    ..Default::default()
                };
                match &merge.cause {
                    MergeCause::Verified {
                        method,
                        assurance,
                        identity,
                    } => {
                        served.verification = Some(v1::Verification {
                            method: method.to_proto(),
                            assurance: assurance.to_proto(),
                            verified_at: Some(timestamp(merge.at)),
                            ..Default::default()
                        });
                        served.proven_identity = Some(identity_to_proto(identity));
                    }
                    MergeCause::Requested {
                        reason,
                        requested_by,
                    } => {
                        served.reason.clone_from(reason);
                        served.requested_by.clone_from(requested_by);
                    }
                }
                Some(served)
            })
            .collect(),
        identity_conflicts: journey
            .conflicts
            .iter()
            .map(|c| v1::IdentityConflict {
                identity: Some(identity_to_proto(&c.identity)),
                owner_customer_id: c.owner.to_string(),
                at: Some(timestamp(c.at)),
                offset: c.offset,
                refusal: c.refusal.to_proto(),
            })
            .collect(),
        past_conversations: journey.past.iter().map(summary_to_proto).collect(),
    }
}

pub fn linked_identity_to_proto(linked: &journey::LinkedIdentity) -> v1::LinkedIdentity {
    v1::LinkedIdentity {
        identity: Some(identity_to_proto(&linked.identity)),
        first_seen_at: Some(timestamp(linked.first_seen_at)),
        verification: linked.verification.as_ref().map(|v| v1::Verification {
            method: v.method.to_proto(),
            assurance: v.assurance.to_proto(),
            verified_at: Some(timestamp(v.verified_at)),
            expires_at: v.expires_at.map(timestamp),
            channel: enum_or_unspecified(v.channel),
        }),
        owner_customer_id: id_string(&linked.owner),
    }
}

/// The stages where a customer serves themselves, and those where they wait for a human.
const SELF_SERVICE: &[Stage] = &[Stage::SelfService];
const WAITING: &[Stage] = &[
    Stage::HandoffRequested,
    Stage::Queued,
    Stage::Offered,
    Stage::CallbackPending,
];

pub fn conversation_to_proto(c: &journey::Conversation, view: &View) -> v1::Conversation {
    let time = |t: Option<Timestamp>| t.map(timestamp);
    let skip = c.transcript.len().saturating_sub(view.transcript);
    v1::Conversation {
        conversation_id: c.id.to_string(),
        status: c.status.to_proto(),
        opened_at: Some(timestamp(c.opened_at)),
        last_activity_at: Some(timestamp(c.last_activity_at)),
        closed_at: time(c.closed_at),
        intent: c.intent.as_ref().map(intent_to_proto),
        context: c
            .context
            .iter()
            .map(|(key, entry)| {
                let masked = entry.sensitive && !view.reveal;
                v1::ContextEntry {
                    key: key.clone(),
                    value: if masked {
                        MASK.to_owned()
                    } else {
                        entry.value.clone()
                    },
                    sensitive: entry.sensitive,
                    masked,
                    set_at: Some(timestamp(entry.set_at)),
                    channel: enum_or_unspecified(entry.channel),
                }
            })
            .collect(),
        channels: c.channels.iter().map(|ch| ch.to_proto()).collect(),
        interactions: c
            .interactions
            .iter()
            .map(|i| v1::Interaction {
                interaction_id: i.id.to_string(),
                channel: enum_or_unspecified(i.channel),
                direction: enum_or_unspecified(i.direction),
                started_at: Some(timestamp(i.started_at)),
                ended_at: time(i.ended_at),
                stage: i.stage.to_proto(),
                stages: i
                    .stages
                    .iter()
                    .map(|s| v1::StageVisit {
                        stage: s.stage.to_proto(),
                        entered_at: Some(timestamp(s.entered_at)),
                    })
                    .collect(),
                queue_id: i.queue_id.clone().unwrap_or_default(),
                agent_id: id_string(&i.agent_id),
                self_service_steps: i.self_service_steps,
                transfers: i.transfers,
                abandoned_at: enum_or_unspecified(i.abandoned_at),
                end_reason: enum_or_unspecified(i.end_reason),
                language: i.language.clone().unwrap_or_default(),
                joined: i.joined.to_proto(),
                self_service_time: Some(duration(i.time_in(SELF_SERVICE, view.now))),
                wait_time: Some(duration(i.time_in(WAITING, view.now))),
            })
            .collect(),
        transcript: c
            .transcript
            .iter()
            .skip(skip)
            .map(|m| v1::TranscriptEntry {
                from: m.from.to_proto(),
                sender_id: m.sender_id.clone(),
                text: m.text.clone(),
                attachment_count: m.attachment_count,
                channel: enum_or_unspecified(m.channel),
                sent_at: Some(timestamp(m.sent_at)),
            })
            .collect(),
        last_agent_id: id_string(&c.last_agent_id),
        transfer_count: c.transfer_count,
        callback_pending: c.callback_pending,
        disposition: c.disposition.clone().unwrap_or_default(),
        survey: Some(survey_to_proto(&c.survey)),
        handoff_summary: c.handoff_summary.clone().unwrap_or_default(),
        repeat_contacts: c.repeat_contacts,
        alias_ids: c.aliases.iter().map(ToString::to_string).collect(),
        owner_customer_id: id_string(&c.owner),
        earlier_interactions: c.earlier_interactions,
    }
}

/// A compacted conversation (`Journey.past_conversations`).
pub fn summary_to_proto(s: &journey::ConversationSummary) -> v1::ConversationSummary {
    v1::ConversationSummary {
        conversation_id: s.id.to_string(),
        alias_ids: s.aliases.iter().map(ToString::to_string).collect(),
        status: s.status.to_proto(),
        opened_at: Some(timestamp(s.opened_at)),
        last_activity_at: Some(timestamp(s.last_activity_at)),
        closed_at: s.closed_at.map(timestamp),
        intent: s.intent.as_ref().map(intent_to_proto),
        channels: s.channels.iter().map(|ch| ch.to_proto()).collect(),
        interaction_count: s.interactions,
        transfer_count: s.transfer_count,
        repeat_contacts: s.repeat_contacts,
        last_agent_id: id_string(&s.last_agent_id),
        disposition: s.disposition.clone().unwrap_or_default(),
        survey: Some(survey_to_proto(&s.survey)),
        owner_customer_id: id_string(&s.owner),
    }
}

fn intent_to_proto(i: &journey::DetectedIntent) -> v1::DetectedIntent {
    v1::DetectedIntent {
        intent: i.intent.clone(),
        confidence: i.confidence,
        detected_by: i.detected_by.clone(),
        detected_at: Some(timestamp(i.detected_at)),
    }
}

fn survey_to_proto(s: &journey::SurveyScores) -> v1::SurveyScores {
    v1::SurveyScores {
        csat: s.csat,
        nps: s.nps,
        effort: s.effort,
    }
}

fn verified_to_proto(v: &VerifiedIdentity) -> v1::VerifiedIdentity {
    v1::VerifiedIdentity {
        identity: Some(identity_to_proto(&v.identity)),
        method: v.method.to_proto(),
        assurance: v.assurance.to_proto(),
        verified_at: Some(timestamp(v.verified_at)),
        expires_at: Some(timestamp(v.expires_at)),
        verified_on: enum_or_unspecified(v.verified_on),
        skip_verification: v.skip_verification,
        required_assurance: v.required_assurance.to_proto(),
    }
}

/// The answer of `ResumeConversation` for a known customer.
pub fn resume_to_proto(
    journey: &Journey,
    resume: &Resume<'_>,
    view: &View,
    projected_offset: u64,
) -> v1::ResumeConversationResponse {
    let chosen = resume.conversation.map(|(c, _)| &c.id);
    v1::ResumeConversationResponse {
        known: true,
        customer_id: journey.customer_id.to_string(),
        conversation: resume
            .conversation
            .map(|(c, _)| conversation_to_proto(c, view)),
        continuation: enum_or_unspecified(resume.conversation.map(|(_, how)| how)),
        current_stage: enum_or_unspecified(
            resume
                .conversation
                .and_then(|(c, _)| c.latest_interaction())
                .map(|i| i.stage),
        ),
        verified: resume.verified.as_ref().map(verified_to_proto),
        language: resume.language.unwrap_or_default().to_owned(),
        skip_self_service: resume.skip_self_service,
        identities: journey
            .identities
            .iter()
            .map(linked_identity_to_proto)
            .collect(),
        other_open_conversation_ids: journey
            .conversations
            .iter()
            .rev()
            .filter(|c| !c.is_closed() && Some(&c.id) != chosen)
            .map(|c| c.id.to_string())
            .collect(),
        projected_offset,
        journey_offset: journey.last_event_offset.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use rezef_events::event::{Participant, Payload};
    use rezef_events::testing::EventBuilder;
    use rezef_events::{CustomerId, Journey};

    use super::*;

    fn journey_with_a_card() -> Journey {
        let mut b = EventBuilder::customer("acme", "c-1");
        let events = [
            b.event(Payload::ContextSet {
                key: "card".into(),
                value: "4111111111111111".into(),
                sensitive: true,
            }),
            b.message(Participant::Customer, "one"),
            b.message(Participant::Customer, "two"),
        ];
        let mut journey = Journey::new(
            events[0].tenant_id.clone(),
            CustomerId::new("c-1").expect("valid"),
            events[0].occurred_at,
        );
        for (offset, event) in events.iter().enumerate() {
            journey.apply(offset as u64, event);
        }
        journey
    }

    #[test]
    fn sensitive_context_is_masked_unless_revealed() {
        let journey = journey_with_a_card();
        let served = journey_to_proto(&journey, &View::masked());
        let entry = &served.conversations[0].context[0];
        assert_eq!((entry.value.as_str(), entry.masked), (MASK, true));
        let revealed = View {
            reveal: true,
            ..View::masked()
        };
        let served = journey_to_proto(&journey, &revealed);
        let entry = &served.conversations[0].context[0];
        assert_eq!(
            (entry.value.as_str(), entry.masked),
            ("4111111111111111", false)
        );
    }

    #[test]
    fn older_closed_conversations_are_served_as_summaries() {
        let mut b = EventBuilder::customer("acme", "c-1");
        let mut events = Vec::new();
        for n in 0..25 {
            b = b.in_conversation(&format!("case-{n}"));
            events.extend([b.started(), b.wrapped_up(true)]);
        }
        let mut journey = Journey::new(
            events[0].tenant_id.clone(),
            CustomerId::new("c-1").expect("valid"),
            events[0].occurred_at,
        );
        for (offset, event) in events.iter().enumerate() {
            journey.apply(offset as u64, event);
        }
        let served = journey_to_proto(&journey, &View::masked());
        assert_eq!(served.conversations.len(), 20);
        let past: Vec<_> = (served.past_conversations.iter())
            .map(|s| (s.conversation_id.clone(), s.interaction_count, s.status))
            .collect();
        let resolved = v1::ConversationStatus::Resolved as i32;
        let oldest: Vec<_> = (0..5).map(|n| (format!("case-{n}"), 1, resolved)).collect();
        assert_eq!(past, oldest, "the five least recently active");
        assert_eq!(served.past_conversations[0].disposition.as_str(), "done");
        let counters = served.counters.expect("counters");
        assert_eq!(
            (counters.conversations, counters.conversations_forgotten),
            (25, 0)
        );
    }

    #[test]
    fn the_transcript_excerpt_keeps_the_newest() {
        let journey = journey_with_a_card();
        let view = View {
            transcript: 1,
            ..View::masked()
        };
        let served = conversation_to_proto(&journey.conversations[0], &view);
        let texts: Vec<_> = served.transcript.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["two"]);
    }
}

//! The rules an event must follow beyond its types: which fields a payload needs, ranges,
//! sizes. The gRPC edge checks types and formats while converting; these rules apply to
//! every domain event, wherever it came from. Paths use the protobuf field names.

use crate::error::Violation;
use crate::event::{CustomerRef, Event, Payload, SCHEMA_VERSION};
use crate::ids::check_id;

/// The largest message text, in bytes.
pub const MAX_TEXT_LEN: usize = 64 * 1024;
/// The largest context value, in bytes.
pub const MAX_CONTEXT_VALUE_LEN: usize = 4 * 1024;
/// The largest free-text field (prompts, notes, summaries), in bytes.
pub const MAX_NOTE_LEN: usize = 16 * 1024;
const MAX_NAME_LEN: usize = 128;

impl Event {
    /// Checks the event's rules; every violation is reported, not only the first.
    pub fn validate(&self) -> Result<(), Vec<Violation>> {
        let mut v = Rules::default();
        v.name("source", &self.source, true);
        if self.schema_version > SCHEMA_VERSION {
            v.fail(
                "schema_version",
                format!(
                    "{} is newer than this server's {SCHEMA_VERSION}",
                    self.schema_version
                ),
            );
        }
        if self.payload.is_customer_event() {
            // A reveal in a replay of a whole partition concerns no one customer.
            let optional = matches!(self.payload, Payload::SensitiveRevealed { .. });
            if self.customer.is_none() && !optional {
                v.fail("customer", "is required");
            }
            if self.channel.is_none() && self.payload.needs_channel() {
                v.fail("channel", "is required");
            }
        } else if self.customer.is_some() {
            v.fail("customer", "must be unset for agent events");
        }
        if self.payload.needs_interaction() && self.interaction_id.is_none() {
            v.fail("interaction_id", "is required for this payload");
        }
        match (&self.payload, &self.customer) {
            (
                Payload::CustomersMerged { absorbed, .. }
                | Payload::CustomersUnmerged { absorbed, .. },
                Some(customer),
            ) => match customer {
                CustomerRef::Id(survivor) if survivor == absorbed => v.fail(
                    format!("{}.absorbed", self.payload.name()),
                    "must differ from the event's customer",
                ),
                CustomerRef::Id(_) => {}
                CustomerRef::Identity(_) => {
                    v.fail(
                        "customer.customer_id",
                        "is required: merges name customers by id",
                    );
                }
            },
            (Payload::ContinuationTokenIssued { expires_at, .. }, _) => {
                if self.conversation_id.is_none() {
                    v.fail(
                        "conversation_id",
                        "is required: a token continues a conversation",
                    );
                }
                if *expires_at <= self.occurred_at {
                    v.fail(
                        "continuation_token_issued.expires_at",
                        "must follow occurred_at",
                    );
                }
            }
            _ => {}
        }
        v.payload(&self.payload);
        v.finish()
    }
}

#[derive(Default)]
struct Rules(Vec<Violation>);

impl Rules {
    fn fail(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(Violation::new(field, description));
    }

    fn finish(self) -> Result<(), Vec<Violation>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }

    /// A short name (source, intent, queue, key): printable, bounded, required or not.
    fn name(&mut self, field: &str, value: &str, required: bool) {
        if value.is_empty() {
            if required {
                self.fail(field, "is required");
            }
        } else if value.len() > MAX_NAME_LEN {
            self.fail(field, format!("is longer than {MAX_NAME_LEN} bytes"));
        } else if value.chars().any(char::is_control) {
            self.fail(field, "must not contain control characters");
        }
    }

    fn id(&mut self, field: &str, value: &str) {
        if let Err(reason) = check_id(value) {
            self.fail(field, reason);
        }
    }

    fn token(&mut self, field: &str, token: &str) {
        if !is_continuation_token(token) {
            self.fail(
                field,
                "must be 4 to 64 ASCII letters, digits or '-' (such as \"482913\")",
            );
        }
    }

    fn text(&mut self, field: &str, value: &str, limit: usize) {
        if value.len() > limit {
            self.fail(field, format!("is longer than {limit} bytes"));
        }
    }

    /// A reference to content elsewhere: required, at most 2 KiB, and (as RFC 3986 says)
    /// without spaces or control characters, which no store of attachments would serve.
    fn uri(&mut self, field: &str, value: &str) {
        if value.is_empty() {
            self.fail(field, "is required");
        } else if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
            self.fail(field, "must not contain spaces or control characters");
        }
        self.text(field, value, 2048);
    }

    fn language(&mut self, field: &str, tag: Option<&str>) {
        if let Some(tag) = tag
            && !is_language_tag(tag)
        {
            self.fail(
                field,
                "must be a BCP 47 language tag such as \"he\" or \"en-GB\"",
            );
        }
    }

    fn score(&mut self, field: &str, value: Option<u32>, range: std::ops::RangeInclusive<u32>) {
        if let Some(score) = value
            && !range.contains(&score)
        {
            self.fail(
                field,
                format!("must be between {} and {}", range.start(), range.end()),
            );
        }
    }

    fn payload(&mut self, payload: &Payload) {
        let at = |field: &str| format!("{}.{field}", payload.name());
        match payload {
            Payload::InteractionStarted {
                entry_point,
                language,
                continuation_token,
                ..
            } => {
                self.text(&at("entry_point"), entry_point, MAX_NAME_LEN * 2);
                self.language(&at("language"), language.as_deref());
                if let Some(token) = continuation_token {
                    self.token(&at("continuation_token"), token);
                }
            }
            Payload::SelfServiceStepCompleted {
                step_id,
                prompt,
                customer_input,
                ..
            } => {
                self.name(&at("step_id"), step_id, true);
                self.text(&at("prompt"), prompt, MAX_NOTE_LEN);
                self.text(&at("customer_input"), customer_input, MAX_NOTE_LEN);
            }
            Payload::IntentDetected {
                intent,
                confidence,
                detected_by,
            } => {
                self.name(&at("intent"), intent, true);
                self.name(&at("detected_by"), detected_by, false);
                if !(0.0..=1.0).contains(confidence) {
                    self.fail(at("confidence"), "must be between 0 and 1");
                }
            }
            Payload::CustomerIdentified { identities, .. } => {
                if identities.len() > 32 {
                    self.fail(at("identities"), "holds more than 32 identities");
                }
            }
            Payload::MessageSent {
                sender_id,
                text,
                attachments,
                ..
            } => {
                if text.is_empty() && attachments.is_empty() {
                    self.fail(at("text"), "is required when there is no attachment");
                }
                self.text(&at("text"), text, MAX_TEXT_LEN);
                self.name(&at("sender_id"), sender_id, false);
                if attachments.len() > 32 {
                    self.fail(at("attachments"), "holds more than 32 attachments");
                }
                for (i, attachment) in attachments.iter().enumerate() {
                    self.uri(&at(&format!("attachments[{i}].uri")), &attachment.uri);
                }
            }
            Payload::ContextSet { key, value, .. } => {
                self.name(&at("key"), key, true);
                self.text(&at("value"), value, MAX_CONTEXT_VALUE_LEN);
            }
            Payload::ContactQueued {
                queue_id,
                required_skills,
                language,
                ..
            } => {
                self.id(&at("queue_id"), queue_id);
                for (i, skill) in required_skills.iter().enumerate() {
                    self.name(&at(&format!("required_skills[{i}]")), skill, true);
                }
                self.language(&at("language"), language.as_deref());
            }
            Payload::ContactOffered { queue_id, .. }
            | Payload::ContactAssigned { queue_id, .. }
            | Payload::ContactWithdrawn { queue_id } => {
                if !queue_id.is_empty() {
                    self.id(&at("queue_id"), queue_id);
                }
            }
            Payload::ContactTransferred {
                to_agent_id,
                to_queue_id,
                reason,
                ..
            } => {
                if to_agent_id.is_none() && to_queue_id.is_empty() {
                    self.fail(at("to_agent_id"), "or to_queue_id is required");
                }
                if !to_queue_id.is_empty() {
                    self.id(&at("to_queue_id"), to_queue_id);
                }
                self.text(&at("reason"), reason, MAX_NOTE_LEN);
            }
            Payload::HandoffRequested {
                bot_id,
                target_queue_id,
                summary,
                ..
            } => {
                self.id(&at("bot_id"), bot_id);
                if !target_queue_id.is_empty() {
                    self.id(&at("target_queue_id"), target_queue_id);
                }
                self.text(&at("summary"), summary, MAX_NOTE_LEN);
            }
            Payload::CallbackRequested { queue_id, .. } => {
                if !queue_id.is_empty() {
                    self.id(&at("queue_id"), queue_id);
                }
            }
            Payload::WrapUpRecorded {
                disposition, notes, ..
            } => {
                self.name(&at("disposition"), disposition, true);
                self.text(&at("notes"), notes, MAX_NOTE_LEN);
            }
            Payload::SurveyAnswered {
                csat,
                nps,
                effort,
                comment,
            } => {
                if csat.is_none() && nps.is_none() && effort.is_none() {
                    self.fail(at("csat"), "or nps or effort is required");
                }
                self.score(&at("csat"), *csat, 1..=5);
                self.score(&at("nps"), *nps, 0..=10);
                self.score(&at("effort"), *effort, 1..=7);
                self.text(&at("comment"), comment, MAX_NOTE_LEN);
            }
            Payload::AgentPresenceChanged { custom_status, .. } => {
                self.name(&at("custom_status"), custom_status, false);
            }
            Payload::CustomersMerged {
                reason,
                requested_by,
                ..
            }
            | Payload::CustomersUnmerged {
                reason,
                requested_by,
                ..
            } => {
                self.text(&at("reason"), reason, MAX_NOTE_LEN);
                self.name(&at("requested_by"), requested_by, false);
            }
            Payload::ContinuationTokenIssued { token, .. } => self.token(&at("token"), token),
            Payload::RoutingDecided {
                bot_id,
                queue_id,
                rule,
                candidates,
                input,
                priority,
                explanation,
                ..
            } => {
                self.name(&at("bot_id"), bot_id, false);
                self.name(&at("queue_id"), queue_id, false);
                self.name(&at("rule"), rule, false);
                // NaN equals nothing, and JSON (forwarded copies, handovers) cannot carry it.
                if !priority.is_finite() {
                    self.fail(at("priority"), "must be a finite number");
                }
                if candidates.len() > 10 {
                    self.fail(at("candidates"), "holds more than 10 agents");
                }
                if let Some(explanation) = explanation {
                    let at = |field: &str| at(&format!("explanation.{field}"));
                    let numbers = [
                        ("base_priority", explanation.base_priority),
                        ("ageing_per_minute", explanation.ageing_per_minute),
                    ];
                    for (name, number) in numbers {
                        if !number.is_finite() {
                            self.fail(at(name), "must be a finite number");
                        }
                    }
                    if explanation.agents.len() > crate::explained::MAX_LISTED {
                        let most = crate::explained::MAX_LISTED;
                        self.fail(at("agents"), format!("holds more than {most} agents"));
                    }
                }
                if let Some(input) = input {
                    let at = |field: &str| at(&format!("input.{field}"));
                    self.language(&at("language"), input.language.as_deref());
                    for (name, value) in [("intent", &input.intent), ("tier", &input.tier)] {
                        self.text(
                            &at(name),
                            value.as_deref().unwrap_or_default(),
                            MAX_NOTE_LEN,
                        );
                    }
                    for (key, value) in &input.context {
                        let at = at(&format!("context[{key}]"));
                        self.name(&at, key, true);
                        self.text(&at, value, MAX_CONTEXT_VALUE_LEN);
                    }
                }
            }
            Payload::RoutingConfigChanged { config, .. } => {
                self.text(&at("config"), config, MAX_TEXT_LEN);
            }
            Payload::ConsultStarted {
                agent_id,
                consulted_agent_id,
            }
            | Payload::ConsultEnded {
                agent_id,
                consulted_agent_id,
            } => {
                if agent_id == consulted_agent_id {
                    self.fail(at("consulted_agent_id"), "is the agent who consults");
                }
            }
            Payload::CustomerAttributesSet {
                tier,
                preferred_language,
            } => {
                if tier.is_none() && preferred_language.is_none() {
                    self.fail(at("tier"), "or preferred_language is required");
                }
                self.name(&at("tier"), tier.as_deref().unwrap_or_default(), false);
                let language = preferred_language.as_deref().filter(|l| !l.is_empty());
                self.language(&at("preferred_language"), language);
            }
            Payload::Handover(_) => {
                self.fail(
                    at("kind"),
                    "is written by Rezef's projectors, never published",
                );
            }
            Payload::SensitiveRevealed {
                key_id,
                method,
                from_offset,
                to_offset,
            } => {
                self.name(&at("key_id"), key_id, true);
                self.name(&at("method"), method, true);
                if from_offset
                    .zip(*to_offset)
                    .is_some_and(|(from, to)| from > to)
                {
                    self.fail(at("from_offset"), "must not be greater than to_offset");
                }
            }
            Payload::CustomerForgotten {
                key_ids,
                requested_by,
                reason,
            } => {
                for (i, key_id) in key_ids.iter().enumerate() {
                    let hex = key_id.len() == 32
                        && key_id
                            .bytes()
                            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
                    if !hex {
                        self.fail(
                            at(&format!("key_ids[{i}]")),
                            "must be 32 lower-case hex digits",
                        );
                    }
                }
                self.name(&at("requested_by"), requested_by, true);
                self.name(&at("reason"), reason, true);
            }
            Payload::CallbackCompleted { .. }
            | Payload::ContactAbandoned { .. }
            | Payload::InteractionEnded { .. } => {}
        }
    }
}

/// A continuation token: 4 to 64 ASCII letters, digits or `-` (short enough to say to an IVR,
/// long enough for a deep link).
pub fn is_continuation_token(token: &str) -> bool {
    (4..=64).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Whether `tag` is a BCP 47 language tag in its canonical form (`he-IL`, not `iw-il`): the
/// edge canonicalises what it is given ([`crate::language::canonical`]).
pub fn is_language_tag(tag: &str) -> bool {
    crate::language::canonical(tag).is_ok_and(|canonical| canonical == tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::EventBuilder;

    fn fields(result: Result<(), Vec<Violation>>) -> Vec<String> {
        result
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn a_well_formed_event_passes() {
        let event = EventBuilder::visitor("acme", "v-1").intent("billing", 0.9);
        assert_eq!(event.validate(), Ok(()));
    }

    #[test]
    fn an_attachment_uri_is_a_uri() {
        let mut chat = EventBuilder::visitor("acme", "v-1");
        let mut with = |uri: &str| {
            let attachment = crate::event::Attachment {
                uri: uri.into(),
                content_type: "application/pdf".into(),
                name: "invoice.pdf".into(),
                size_bytes: 1,
            };
            chat.event(Payload::MessageSent {
                from: crate::event::Participant::Customer,
                sender_id: String::new(),
                text: String::new(),
                attachments: vec![attachment],
                sensitive: false,
            })
        };
        assert_eq!(with("s3://bucket/invoice.pdf").validate(), Ok(()));
        for bad in ["s3://bucket/a\0b.pdf", "s3://bucket/my invoice.pdf", ""] {
            assert_eq!(
                fields(with(bad).validate()),
                ["message_sent.attachments[0].uri"],
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_routing_priority_is_a_finite_number() {
        let decided = |priority: f64| {
            let payload = Payload::RoutingDecided {
                target: crate::event::RoutingTarget::Queue,
                bot_id: String::new(),
                queue_id: "billing".into(),
                agent_id: None,
                rule: String::new(),
                step: 1,
                priority,
                candidates: Vec::new(),
                estimated_wait_ms: None,
                offer_callback: false,
                config_version: 1,
                input: None,
                explanation: None,
            };
            EventBuilder::visitor("acme", "v-1").with_payload(payload)
        };
        assert_eq!(decided(12.5).validate(), Ok(()));
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                fields(decided(bad).validate()),
                ["routing_decided.priority"]
            );
        }
    }

    #[test]
    fn customer_events_need_customer_channel_and_interaction() {
        let mut event = EventBuilder::visitor("acme", "v-1").started();
        event.customer = None;
        event.channel = None;
        event.interaction_id = None;
        assert_eq!(
            fields(event.validate()),
            ["customer", "channel", "interaction_id"]
        );
    }

    #[test]
    fn ranges_are_checked_and_every_violation_reported() {
        let mut event = EventBuilder::visitor("acme", "v-1").intent("", 1.5);
        event.source.clear();
        assert_eq!(
            fields(event.validate()),
            [
                "source",
                "intent_detected.intent",
                "intent_detected.confidence"
            ]
        );
        let survey = EventBuilder::visitor("acme", "v-1").with_payload(Payload::SurveyAnswered {
            csat: Some(6),
            nps: Some(11),
            effort: None,
            comment: String::new(),
        });
        assert_eq!(
            fields(survey.validate()),
            ["survey_answered.csat", "survey_answered.nps"]
        );
    }

    #[test]
    fn agent_events_carry_no_customer() {
        let mut builder = EventBuilder::visitor("acme", "v-1");
        let mut event = builder.presence("agent-7");
        assert_eq!(event.validate(), Ok(()));
        event.customer = builder.started().customer;
        assert_eq!(fields(event.validate()), ["customer"]);
    }

    #[test]
    fn language_tags() {
        for good in ["he", "ar", "ru", "en-GB", "zh-Hant-TW"] {
            assert!(is_language_tag(good), "{good}");
        }
        for bad in [
            "",
            "e",
            "english1",
            "en_GB",
            "iw",
            "en-gb",
            "en-",
            "en-toolongsubtag",
        ] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }
}

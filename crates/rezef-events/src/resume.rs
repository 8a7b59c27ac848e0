//! What a channel learns when a contact arrives: the conversation the contact continues (and
//! why), the identity already verified (and whether this channel may skip re-verifying), and
//! whether the customer can skip self service. Pure: the same journey, time and policy give
//! the same answer; the gRPC edge only shapes it.
//!
//! A continuation token grants continuity, not verification: a verification made before a
//! caller came with a token does not spare that caller from verifying (see [`Caller`]).
//!
//! It looks only at the conversations the journey keeps whole (`bound`): the open ones and
//! the most recent closed ones, which are those a contact can continue or reopen. So its
//! cost does not grow with the customer's history.

use crate::event::{AssuranceLevel, Channel, CustomerRef, VerificationMethod};
use crate::identity::ChannelIdentity;
use crate::ids::InteractionId;
use crate::journey::{Conversation, ConversationStatus, JoinReason, Journey};
use crate::policy::ContinuityPolicy;
use crate::time::Timestamp;

/// Why a conversation is offered for the contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuation {
    /// The customer gave a continuation token for it.
    Token,
    /// It is open and the contact comes within the continuation window.
    WithinWindow,
    /// It is open but idle for longer than the window: the contact joins it once its intent
    /// turns out the same.
    IfSameIntent,
    /// It closed recently: a contact about the same intent reopens it (a repeat contact).
    Recent,
}

impl Continuation {
    /// Whether a new interaction joins the conversation as soon as it starts.
    pub fn joins_now(self) -> bool {
        matches!(self, Self::Token | Self::WithinWindow)
    }
}

/// The verification that holds for the customer now, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedIdentity {
    pub identity: ChannelIdentity,
    pub method: VerificationMethod,
    pub assurance: AssuranceLevel,
    pub verified_at: Timestamp,
    /// When it stops holding (the adapter's expiry under the policy's cap, or the default).
    pub expires_at: Timestamp,
    pub verified_on: Option<Channel>,
    /// Whether the arriving channel may skip re-verification.
    pub skip_verification: bool,
    /// The policy's requirement for the arriving channel.
    pub required_assurance: AssuranceLevel,
}

/// Who is arriving, as the channel knows them: what decides which verifications spare them.
///
/// A caller who came with a continuation token (from a number nobody knew, say) is the
/// customer's for continuity, but the token proves only that they hold it: verifications
/// made before they came do not spare them. Verifications hold at most a day
/// (`verification_max_ttl`), so the contact they came with is always among the interactions
/// the journey keeps.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    /// The reference the channel sees: the caller's number, the visitor id, a customer id.
    Shown(&'a CustomerRef),
    /// A contact already in the journey (routing offering it to an agent).
    Contact(&'a InteractionId),
}

impl Caller<'_> {
    /// The earliest verification that spares this caller: `None` for any, `Some(t)` for
    /// those made at or after `t` (when the caller came with a token), `Some(MAX)` for none
    /// (a caller the journey does not know, come with a token).
    fn verified_since(self, journey: &Journey) -> Option<Timestamp> {
        let came_with_token = |at: Timestamp| {
            journey
                .conversations
                .iter()
                .flat_map(|c| &c.interactions)
                .any(|i| i.joined == JoinReason::Token && i.started_at == at)
        };
        match self {
            Self::Shown(CustomerRef::Id(id)) => {
                let member =
                    *id == journey.customer_id || journey.merged_customers().any(|m| m == id);
                (!member).then_some(Timestamp::MAX)
            }
            // An identity first seen as its interaction joined by token came with the token.
            Self::Shown(CustomerRef::Identity(identity)) => match journey.identity(identity) {
                Some(linked) => {
                    came_with_token(linked.first_seen_at).then_some(linked.first_seen_at)
                }
                None => Some(Timestamp::MAX),
            },
            Self::Contact(id) => journey
                .conversations
                .iter()
                .find_map(|c| c.interaction(id))
                .filter(|i| i.joined == JoinReason::Token)
                .map(|i| i.started_at),
        }
    }
}

/// The answer for one arriving contact.
#[derive(Debug, Clone)]
pub struct Resume<'a> {
    pub conversation: Option<(&'a Conversation, Continuation)>,
    pub verified: Option<VerifiedIdentity>,
    /// The language the customer last used, when known.
    pub language: Option<&'a str>,
    /// A known customer continuing a conversation whose intent is known: self service (IVR
    /// menus, bot triage) has nothing left to ask.
    pub skip_self_service: bool,
}

/// Decides what a contact of `caller` arriving on `channel` at `now` continues. `token` is a
/// continuation token the customer gave, if any.
pub fn resume<'a>(
    journey: &'a Journey,
    caller: Caller<'_>,
    channel: Channel,
    now: Timestamp,
    policy: &ContinuityPolicy,
    token: Option<&str>,
) -> Resume<'a> {
    let conversation = continuation(journey, channel, now, policy, token);
    let since = caller.verified_since(journey);
    let verified = verified_identity(journey, channel, now, policy, since);
    let language = journey
        .conversations
        .iter()
        .flat_map(|c| &c.interactions)
        .filter(|i| i.language.is_some())
        .max_by_key(|i| i.started_at)
        .and_then(|i| i.language.as_deref());
    let skip_self_service =
        conversation.is_some_and(|(c, how)| how.joins_now() && c.intent.is_some());
    Resume {
        conversation,
        verified,
        language,
        skip_self_service,
    }
}

fn continuation<'a>(
    journey: &'a Journey,
    channel: Channel,
    now: Timestamp,
    policy: &ContinuityPolicy,
    token: Option<&str>,
) -> Option<(&'a Conversation, Continuation)> {
    let conversations = &journey.conversations;
    if let Some(token) = token
        && let Some(c) = conversations.iter().rfind(|c| {
            c.tokens
                .iter()
                .any(|t| t.token == token && t.admits(Some(channel), now))
        })
    {
        return Some((c.as_ref(), Continuation::Token));
    }
    let open = conversations.iter().rfind(|c| {
        c.status == ConversationStatus::Open
            && now <= c.last_activity_at.plus(policy.inactivity_timeout)
    });
    if let Some(c) = open.map(AsRef::as_ref) {
        if now <= c.last_activity_at.plus(policy.continuation_window) {
            return Some((c, Continuation::WithinWindow));
        }
        if policy.join_same_intent && c.intent.is_some() {
            return Some((c, Continuation::IfSameIntent));
        }
    }
    conversations
        .iter()
        .filter(|c| c.intent.is_some())
        .map(AsRef::as_ref)
        .filter_map(|c| {
            let closed = match c.status {
                ConversationStatus::Open => c.last_activity_at.plus(policy.inactivity_timeout),
                _ => c.closed_at?,
            };
            (closed < now && now <= closed.plus(policy.reopen_window)).then_some((closed, c))
        })
        .max_by_key(|(closed, _)| *closed)
        .map(|(_, c)| (c, Continuation::Recent))
}

/// The strongest verification sparing the caller, else the strongest still holding (the
/// latest among equals); if none holds, the latest one, reported as not sparing
/// re-verification. Only verifications made at or after `since` (when set) spare the caller.
fn verified_identity(
    journey: &Journey,
    channel: Channel,
    now: Timestamp,
    policy: &ContinuityPolicy,
    since: Option<Timestamp>,
) -> Option<VerifiedIdentity> {
    let required = policy.required_assurance(channel);
    journey
        .identities
        .iter()
        .filter_map(|linked| {
            let v = linked.verification.as_ref()?;
            let expires_at = policy.verification_expiry(v.verified_at, v.expires_at);
            Some(VerifiedIdentity {
                identity: linked.identity.clone(),
                method: v.method,
                assurance: v.assurance,
                verified_at: v.verified_at,
                expires_at,
                verified_on: v.channel,
                skip_verification: now < expires_at
                    && v.assurance >= required
                    && since.is_none_or(|since| v.verified_at >= since),
                required_assurance: required,
            })
        })
        .max_by_key(|v| {
            let holds = now < v.expires_at;
            let strength = holds.then_some(v.assurance);
            (v.skip_verification, holds, strength, v.verified_at)
        })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::event::Payload;
    use crate::fold::customer_id_for;
    use crate::testing::EventBuilder;

    /// The journey's customer, by id.
    fn own(journey: &Journey) -> CustomerRef {
        CustomerRef::Id(journey.customer_id.clone())
    }

    fn journey_of(events: &[crate::Event]) -> Journey {
        let first = &events[0];
        let identity = match &first.customer {
            Some(crate::CustomerRef::Identity(identity)) => identity.clone(),
            _ => unreachable!("tests start from an identity"),
        };
        let mut journey = Journey::new(
            first.tenant_id.clone(),
            customer_id_for(&first.tenant_id, &identity),
            first.occurred_at,
        );
        for (offset, event) in events.iter().enumerate() {
            journey.apply(offset as u64, event);
        }
        journey
    }

    #[test]
    fn an_open_conversation_within_the_window_continues_and_skips_the_ivr() {
        let mut chat = EventBuilder::visitor("acme", "v-1");
        let events = [chat.started(), chat.intent("billing.dispute", 0.9)];
        let journey = journey_of(&events);
        let policy = ContinuityPolicy::default();
        let now = chat.clock().plus(Duration::from_secs(3600));
        let answer = resume(
            &journey,
            Caller::Shown(&own(&journey)),
            Channel::Voice,
            now,
            &policy,
            None,
        );
        let (conversation, how) = answer.conversation.expect("continues");
        assert_eq!(how, Continuation::WithinWindow);
        assert_eq!(
            conversation.intent.as_ref().map(|i| i.intent.as_str()),
            Some("billing.dispute")
        );
        assert!(answer.skip_self_service);

        let later = chat.clock().plus(Duration::from_secs(4 * 24 * 3600));
        let answer = resume(
            &journey,
            Caller::Shown(&own(&journey)),
            Channel::Voice,
            later,
            &policy,
            None,
        );
        assert_eq!(
            answer.conversation.map(|(_, how)| how),
            Some(Continuation::IfSameIntent)
        );
        assert!(!answer.skip_self_service);

        let much_later = chat.clock().plus(Duration::from_secs(10 * 24 * 3600));
        let answer = resume(
            &journey,
            Caller::Shown(&own(&journey)),
            Channel::Voice,
            much_later,
            &policy,
            None,
        );
        assert_eq!(
            answer.conversation.map(|(_, how)| how),
            Some(Continuation::Recent)
        );
        let gone = chat.clock().plus(Duration::from_secs(30 * 24 * 3600));
        assert!(
            resume(
                &journey,
                Caller::Shown(&own(&journey)),
                Channel::Voice,
                gone,
                &policy,
                None
            )
            .conversation
            .is_none()
        );
    }

    #[test]
    fn a_verification_spares_re_verification_until_it_expires_and_per_channel_policy() {
        let mut chat = EventBuilder::visitor("acme", "v-1");
        let crm = ChannelIdentity::new(crate::IdentityKind::CrmId, "C-1", None).expect("valid");
        let events = [chat.started(), chat.identified(vec![crm.clone()])];
        let journey = journey_of(&events);
        let mut policy = ContinuityPolicy::default();
        policy
            .channel_required_assurance
            .insert(Channel::Branch, AssuranceLevel::High);
        let soon = chat.clock().plus(Duration::from_secs(60));
        let voice = resume(
            &journey,
            Caller::Shown(&own(&journey)),
            Channel::Voice,
            soon,
            &policy,
            None,
        )
        .verified
        .expect("verified");
        assert!(voice.skip_verification);
        assert_eq!(voice.expires_at, chat.clock().plus(policy.verification_ttl));
        let branch = resume(
            &journey,
            Caller::Shown(&own(&journey)),
            Channel::Branch,
            soon,
            &policy,
            None,
        )
        .verified
        .expect("verified");
        assert!(!branch.skip_verification, "the branch needs high assurance");
        let late = chat.clock().plus(Duration::from_secs(2 * 3600));
        let expired = resume(
            &journey,
            Caller::Shown(&own(&journey)),
            Channel::Voice,
            late,
            &policy,
            None,
        )
        .verified
        .expect("reported");
        assert!(!expired.skip_verification, "expired after the default hour");
    }

    #[test]
    fn a_token_names_its_conversation_until_it_expires() {
        let mut chat = EventBuilder::visitor("acme", "v-1").in_conversation("cnv-1");
        let started = chat.started();
        let expires_at = chat.clock().plus(Duration::from_secs(600));
        let issued = chat.event(Payload::ContinuationTokenIssued {
            token: "482913".into(),
            expires_at,
            redeem_on: Vec::new(),
        });
        let journey = journey_of(&[started, issued]);
        let policy = ContinuityPolicy::default();
        let answer = resume(
            &journey,
            Caller::Shown(&own(&journey)),
            Channel::Voice,
            chat.clock(),
            &policy,
            Some("482913"),
        );
        assert_eq!(
            answer.conversation.map(|(c, how)| (c.id.as_str(), how)),
            Some(("cnv-1", Continuation::Token))
        );
        let answer = resume(
            &journey,
            Caller::Shown(&own(&journey)),
            Channel::Voice,
            expires_at,
            &policy,
            Some("482913"),
        );
        assert_eq!(
            answer.conversation.map(|(_, how)| how),
            Some(Continuation::WithinWindow)
        );
    }

    /// Given a code issued for the IVR, when it is given on the chat, then it names
    /// nothing there, and on the IVR it names its conversation.
    #[test]
    fn a_token_names_its_conversation_only_on_its_channels() {
        let mut chat = EventBuilder::visitor("acme", "v-1").in_conversation("cnv-1");
        let started = chat.started();
        let issued = chat.event(Payload::ContinuationTokenIssued {
            token: "48291377".into(),
            expires_at: chat.clock().plus(Duration::from_secs(600)),
            redeem_on: vec![Channel::Voice, Channel::Ivr],
        });
        let journey = journey_of(&[started, issued]);
        let policy = ContinuityPolicy::default();
        let how = |channel| {
            let answer = resume(
                &journey,
                Caller::Shown(&own(&journey)),
                channel,
                chat.clock(),
                &policy,
                Some("48291377"),
            );
            answer.conversation.map(|(_, how)| how)
        };
        assert_eq!(how(Channel::Ivr), Some(Continuation::Token));
        assert_eq!(how(Channel::Webchat), Some(Continuation::WithinWindow));
    }

    /// Given a chat verified by one-time code and a token issued for it, when a caller from
    /// a number nobody knows comes with the token, then the chat continues but the caller
    /// verifies again; the same holds for that call once it is in the journey, until the
    /// caller verifies on it.
    #[test]
    fn a_token_grants_continuity_not_verification() {
        let mut chat = EventBuilder::visitor("acme", "v-1").in_conversation("cnv-1");
        let crm = ChannelIdentity::new(crate::IdentityKind::CrmId, "C-1", None).expect("valid");
        let mut events = vec![chat.started(), chat.identified(vec![crm])];
        let expires_at = chat.clock().plus(Duration::from_secs(600));
        events.push(chat.event(Payload::ContinuationTokenIssued {
            token: "482913".into(),
            expires_at,
            redeem_on: Vec::new(),
        }));
        let policy = ContinuityPolicy::default();
        let stranger = ChannelIdentity::phone("+15551230001").expect("valid");
        let caller = CustomerRef::Identity(stranger.clone());
        let journey = journey_of(&events);
        let now = chat.clock().plus(Duration::from_secs(60));
        let token = Some("482913");
        let answer = resume(
            &journey,
            Caller::Shown(&caller),
            Channel::Voice,
            now,
            &policy,
            token,
        );
        assert_eq!(
            answer.conversation.map(|(_, how)| how),
            Some(Continuation::Token)
        );
        let verified = answer
            .verified
            .expect("the chat's verification is reported");
        assert!(
            !verified.skip_verification,
            "the token is no proof of identity"
        );
        let own = resume(
            &journey,
            Caller::Shown(&own(&journey)),
            Channel::Voice,
            now,
            &policy,
            None,
        );
        assert!(
            own.verified.expect("verified").skip_verification,
            "the chat's own customer"
        );

        // The call starts with the token: the number joins the customer, the call the chat.
        let mut call = EventBuilder::phone("acme", "+15551230001").ids("call");
        call.wait(chat.clock().since(call.clock()));
        events.push(call.started_with_token("482913"));
        let journey = journey_of(&events);
        let call_id = InteractionId::new("call-1").expect("valid");
        let now = call.clock().plus(Duration::from_secs(60));
        for arriving in [Caller::Shown(&caller), Caller::Contact(&call_id)] {
            let answer = resume(&journey, arriving, Channel::Voice, now, &policy, None);
            assert!(
                !answer.verified.expect("reported").skip_verification,
                "{arriving:?}"
            );
        }

        // The caller proves who they are on the call: that spares them from then on.
        events.push(call.identified(vec![stranger]));
        let journey = journey_of(&events);
        let now = call.clock().plus(Duration::from_secs(60));
        for arriving in [Caller::Shown(&caller), Caller::Contact(&call_id)] {
            let answer = resume(&journey, arriving, Channel::Voice, now, &policy, None);
            assert!(
                answer.verified.expect("verified").skip_verification,
                "{arriving:?}"
            );
        }
    }
}

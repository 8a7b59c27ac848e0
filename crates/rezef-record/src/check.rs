//! Checking a `rezef.v1` message into domain types: every problem becomes a [`Violation`]
//! naming the field by its protobuf path, and all of them are reported at once. The server
//! checks requests with it; the record codec reads stored events back with it (in
//! [`Check::stored`] mode, which takes identities as stored instead of normalising them again:
//! a change to normalisation must never change what an old record says). A check made
//! [`Check::under`] the tenants' continuity rules reads national phone numbers in the region of
//! the tenant (and of the adapter's `source`) it has checked.

use std::sync::Arc;

use prost_types::Timestamp as ProtoTimestamp;
use rezef_events::event::{
    AbandonPoint, AssuranceLevel, Channel, Direction, EndReason, HandoffReason, Participant,
    Presence, RoutingTarget, StepOutcome, VerificationMethod,
};
use rezef_events::journey::{ConversationStatus, JoinReason, Stage};
use rezef_events::policy::{MergeRefusal, Policies};
use rezef_events::resume::Continuation;
use rezef_events::token::TokenFormat;
use rezef_events::{
    ChannelIdentity, CustomerId, CustomerRef, IdentityKind, TenantId, Timestamp, Violation,
};
use rezef_proto::v1;

/// A domain enum and its `rezef.v1` twin (prost represents enum fields as `i32`).
pub trait ProtoEnum: Sized + Copy {
    /// `Ok(None)` for the `UNSPECIFIED` value, `Err` for a number the contract lacks.
    fn from_proto(value: i32) -> Result<Option<Self>, String>;
    fn to_proto(self) -> i32;
}

macro_rules! proto_enum {
    ($domain:ty => $proto:ident { $($variant:ident),* $(,)? }) => {
        impl ProtoEnum for $domain {
            fn from_proto(value: i32) -> Result<Option<Self>, String> {
                match v1::$proto::try_from(value) {
                    Ok(v1::$proto::Unspecified) => Ok(None),
                    $(Ok(v1::$proto::$variant) => Ok(Some(Self::$variant)),)*
                    Err(_) => Err(format!("{value} is not a {} value", stringify!($proto))),
                }
            }
            fn to_proto(self) -> i32 {
                match self { $(Self::$variant => v1::$proto::$variant as i32,)* }
            }
        }
    };
}

proto_enum!(TokenFormat => TokenFormat { Code, Link });
proto_enum!(Channel => Channel { Voice, Ivr, Webchat, Video, Bot, Email, Sms, Whatsapp, Social, App, WebForm, Branch, Callback });
proto_enum!(IdentityKind => IdentityKind { Phone, Email, ChatVisitor, SocialHandle, MessagingId, AppUser, CrmId });
proto_enum!(Direction => Direction { Inbound, Outbound, Proactive });
proto_enum!(StepOutcome => StepOutcome { Continued, Contained, Failed, Escalated });
proto_enum!(VerificationMethod => VerificationMethod { CallerId, Knowledge, OneTimeCode, Pin, AuthenticatedSession, VoiceBiometrics, Document });
proto_enum!(AssuranceLevel => AssuranceLevel { Low, Substantial, High });
proto_enum!(Participant => Participant { Customer, Agent, Bot, System });
proto_enum!(HandoffReason => HandoffReason { CustomerAsked, BotFailed, BotCannotHelp, Policy });
proto_enum!(AbandonPoint => AbandonPoint { Ivr, Bot, Queue, Callback });
proto_enum!(EndReason => EndReason { Completed, CustomerLeft, AgentEnded, TransferredOut, TimedOut, Failed });
proto_enum!(Presence => Presence { Available, Away, Busy, AfterContactWork, Offline });
proto_enum!(RoutingTarget => RoutingTarget { Bot, Agent, Queue });
proto_enum!(Stage => Stage { Started, SelfService, HandoffRequested, Queued, Offered, Connected, CallbackPending, Abandoned, Ended, Consulting });
proto_enum!(ConversationStatus => ConversationStatus { Open, Resolved, Inactive });
proto_enum!(JoinReason => JoinReason { Opened, Named, Token, WithinWindow, SameIntent, Reopened });
proto_enum!(MergeRefusal => LinkRefusal { Unverified, ExcludedMethod, WeakAssurance, SharedIdentity });
proto_enum!(Continuation => Continuation { Token, WithinWindow, IfSameIntent, Recent });

/// Collects violations while converting one message.
#[derive(Debug, Default)]
pub struct Check {
    violations: Vec<Violation>,
    /// Reading a stored record back: identities were normalised when it was published.
    stored: bool,
    /// The tenants' rules, for the region phone numbers are read in.
    policies: Option<Arc<Policies>>,
    /// The tenant checked last, and the adapter source named, whose region applies.
    tenant: Option<TenantId>,
    source: Option<String>,
}

impl Check {
    /// A check that reads phone numbers in the region `policies` give the tenant it checks.
    pub fn under(policies: Arc<Policies>) -> Self {
        Self {
            policies: Some(policies),
            ..Self::default()
        }
    }

    /// The tenants' rules this check reads identities under, if any.
    pub fn policies(&self) -> Option<&Policies> {
        self.policies.as_deref()
    }

    /// The adapter `source` whose region applies to the identities checked next.
    pub fn source(&mut self, source: &str) {
        self.source = (!source.is_empty()).then(|| source.to_owned());
    }

    /// A check of a stored record: identities are taken as they were stored.
    pub fn stored() -> Self {
        Self {
            stored: true,
            ..Self::default()
        }
    }

    pub fn fail(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.violations.push(Violation::new(field, description));
    }

    /// Whether this checks a stored record.
    pub fn is_stored(&self) -> bool {
        self.stored
    }

    /// Whether nothing failed so far.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn into_violations(self) -> Vec<Violation> {
        self.violations
    }

    /// The checked values if nothing failed, else every violation. `values` gives `None` only
    /// where a check failed; a `None` with nothing failed is reported against `request`.
    pub fn finish<T>(self, values: impl FnOnce() -> Option<T>) -> Result<T, Vec<Violation>> {
        if !self.violations.is_empty() {
            return Err(self.violations);
        }
        values().ok_or_else(|| vec![Violation::new("request", "is incomplete")])
    }

    /// A required enum.
    pub fn required<E: ProtoEnum>(&mut self, field: &str, value: i32) -> Option<E> {
        match E::from_proto(value) {
            Ok(Some(value)) => Some(value),
            Ok(None) => {
                self.fail(field, "is required");
                None
            }
            Err(reason) => {
                self.fail(field, reason);
                None
            }
        }
    }

    /// An optional enum (`UNSPECIFIED` is `None`).
    pub fn optional<E: ProtoEnum>(&mut self, field: &str, value: i32) -> Option<E> {
        E::from_proto(value).unwrap_or_else(|reason| {
            self.fail(field, reason);
            None
        })
    }

    /// A customer reference that must be there: `is required` when it is not.
    pub fn required_customer(
        &mut self,
        field: &str,
        value: Option<v1::CustomerRef>,
    ) -> Option<CustomerRef> {
        match value {
            Some(value) => self.customer(field, value),
            None => {
                self.fail(field, "is required");
                None
            }
        }
    }

    /// A validated id; `required` says whether empty is a violation or `None`.
    pub fn id<T>(
        &mut self,
        field: &str,
        value: String,
        required: bool,
        make: impl FnOnce(String) -> Result<T, String>,
    ) -> Option<T> {
        if value.is_empty() && !required {
            return None;
        }
        make(value).map_err(|reason| self.fail(field, reason)).ok()
    }

    pub fn tenant(&mut self, field: &str, value: String) -> Option<TenantId> {
        let tenant = self.id(field, value, true, TenantId::new);
        self.tenant.clone_from(&tenant);
        tenant
    }

    pub fn time(&mut self, field: &str, value: Option<ProtoTimestamp>) -> Option<Timestamp> {
        let value = value?;
        if !(0..1_000_000_000).contains(&value.nanos) {
            self.fail(field, "nanos must be between 0 and 999,999,999");
            return None;
        }
        // A moment of a customer's life with the company: the years 1900 to 2099 (stored
        // events are read as they were accepted).
        let plausible = (EARLIEST_SECONDS..LATEST_SECONDS).contains(&value.seconds);
        let converted = Timestamp::from_parts(value.seconds, value.nanos);
        if converted.is_none() || (!plausible && !self.stored) {
            self.fail(field, "must be in the years 1900 to 2099");
            return None;
        }
        converted
    }

    /// An optional language tag (empty is `None`), in its canonical BCP 47 form; a stored
    /// one as it was stored.
    pub fn language(&mut self, field: &str, value: String) -> Option<String> {
        if value.is_empty() || self.stored {
            return (!value.is_empty()).then_some(value);
        }
        rezef_events::language::canonical(&value)
            .map_err(|reason| self.fail(field, reason))
            .ok()
    }

    pub fn identity(&mut self, field: &str, value: v1::ChannelIdentity) -> Option<ChannelIdentity> {
        let kind = self.required::<IdentityKind>(&format!("{field}.kind"), value.kind)?;
        let network = (!value.network.is_empty()).then_some(value.network);
        if self.stored {
            return Some(ChannelIdentity::stored(kind, value.value, network));
        }
        let region = match (&self.policies, &self.tenant) {
            (Some(policies), Some(tenant)) => {
                policies.for_tenant(tenant).region(self.source.as_deref())
            }
            _ => None,
        };
        ChannelIdentity::in_region(kind, &value.value, network.as_deref(), region)
            .map_err(|error| self.fail(format!("{field}.{}", error.field), error.reason))
            .ok()
    }

    pub fn customer(&mut self, field: &str, value: v1::CustomerRef) -> Option<CustomerRef> {
        match value.r#ref {
            Some(v1::customer_ref::Ref::CustomerId(id)) => self
                .id(&format!("{field}.customer_id"), id, true, CustomerId::new)
                .map(CustomerRef::Id),
            Some(v1::customer_ref::Ref::Identity(identity)) => self
                .identity(&format!("{field}.identity"), identity)
                .map(CustomerRef::Identity),
            None => {
                self.fail(field, "must hold a customer_id or an identity");
                None
            }
        }
    }
}

/// 1900-01-01T00:00:00Z and 2100-01-01T00:00:00Z, in seconds since the Unix epoch.
const EARLIEST_SECONDS: i64 = -2_208_988_800;
const LATEST_SECONDS: i64 = 4_102_444_800;

pub fn duration(d: std::time::Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or_default(),
    }
}

pub fn timestamp(t: Timestamp) -> ProtoTimestamp {
    let (seconds, nanos) = t.to_parts();
    ProtoTimestamp { seconds, nanos }
}

pub fn enum_or_unspecified<E: ProtoEnum>(value: Option<E>) -> i32 {
    value.map_or(0, ProtoEnum::to_proto)
}

pub fn id_string<T: ToString>(value: &Option<T>) -> String {
    value.as_ref().map(ToString::to_string).unwrap_or_default()
}

pub fn identity_to_proto(identity: &ChannelIdentity) -> v1::ChannelIdentity {
    v1::ChannelIdentity {
        kind: identity.kind().to_proto(),
        value: identity.value().to_owned(),
        network: identity.network().unwrap_or_default().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_time_outside_1900_to_2099_when_checked_then_it_is_refused_unless_stored() {
        let at = |seconds| Some(ProtoTimestamp { seconds, nanos: 0 });
        let year_2262 = 9_214_646_400;
        for seconds in [year_2262, LATEST_SECONDS, EARLIEST_SECONDS - 1] {
            let mut check = Check::default();
            assert_eq!(check.time("occurred_at", at(seconds)), None);
            assert!(!check.is_clean(), "{seconds}");
        }
        let mut check = Check::default();
        assert!(check.time("customer_since", at(EARLIEST_SECONDS)).is_some());
        assert!(check.time("expires_at", at(LATEST_SECONDS - 1)).is_some());
        assert!(check.is_clean());
        let mut stored = Check::stored();
        assert!(stored.time("occurred_at", at(year_2262)).is_some());
    }

    #[test]
    fn given_nothing_failed_when_finished_then_the_values_are_given() {
        let check = Check::default();
        assert_eq!(check.finish(|| Some((1, "one"))), Ok((1, "one")));
    }

    #[test]
    fn given_failures_when_finished_then_every_violation_is_given_and_values_are_not_asked() {
        let mut check = Check::default();
        check.fail("tenant_id", "is required");
        check.fail("customer", "is required");
        let finished = check.finish(|| -> Option<()> { unreachable!("values of a failed check") });
        let fields: Vec<_> = finished
            .expect_err("failed")
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["tenant_id", "customer"]);
    }

    #[test]
    fn given_a_missing_value_but_no_failure_when_finished_then_the_request_is_incomplete() {
        let check = Check::default();
        assert_eq!(
            check.finish(|| None::<()>),
            Err(vec![Violation::new("request", "is incomplete")])
        );
    }
}

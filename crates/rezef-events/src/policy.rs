//! The continuity rules a tenant chooses: when a new contact continues an open conversation,
//! when a conversation closes and reopens, which evidence may merge two customers, how
//! long a verified identity spares the customer from proving it again, what is masked
//! in messages, which region national phone numbers are read in and which numbers identify
//! no one.
//!
//! The fold reads them, so the journey a log folds into depends on the rules in force when
//! it was projected: a rebuild applies the rules configured now (and says so in its log).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::attempts::TokenAttempts;
use crate::event::{AssuranceLevel, Channel, VerificationMethod};
use crate::identity::{ChannelIdentity, IdentityKind};
use crate::ids::TenantId;
use crate::phone::{self, Phone, Region};
use crate::time::Timestamp;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// The digits a continuation code may have: fewer are guessed too easily, more are too
/// long to key in.
pub const TOKEN_CODE_DIGITS: std::ops::RangeInclusive<u32> = 6..=12;

/// One tenant's continuity rules. Every field has a default; see `docs/continuity.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContinuityPolicy {
    /// A new contact within this time of the open conversation's last activity continues it.
    #[serde(with = "humantime_serde")]
    pub continuation_window: Duration,
    /// Later than the window, a contact still joins the open conversation once its detected
    /// intent matches the conversation's.
    pub join_same_intent: bool,
    /// An open conversation with no activity for this long is closed as inactive.
    #[serde(with = "humantime_serde")]
    pub inactivity_timeout: Duration,
    /// A contact about the same intent within this time of a close reopens the conversation
    /// and counts as a repeat contact.
    #[serde(with = "humantime_serde")]
    pub reopen_window: Duration,
    /// The least assurance that may merge two customers on a verified link.
    pub merge_min_assurance: AssuranceLevel,
    /// Identity kinds that families and teams share (a home phone, a family mailbox): a
    /// verified link through one of them merges customers only at `High` assurance.
    pub shared_identity_kinds: Vec<IdentityKind>,
    /// Methods that never merge customers (caller id can be spoofed or shared).
    pub merge_excluded_methods: Vec<VerificationMethod>,
    /// How long a verification holds when the adapter gave no expiry.
    #[serde(with = "humantime_serde")]
    pub verification_ttl: Duration,
    /// The longest a verification may hold, whatever the adapter said.
    #[serde(with = "humantime_serde")]
    pub verification_max_ttl: Duration,
    /// The assurance a channel needs to skip re-verification...
    pub required_assurance: AssuranceLevel,
    /// ...unless a channel needs another (e.g. `email = "high"`).
    pub channel_required_assurance: BTreeMap<Channel, AssuranceLevel>,
    /// How many transcript messages `ResumeConversation` returns when the caller names none.
    pub transcript_excerpt: usize,
    /// How long an issued continuation code is valid when the caller names no time: short,
    /// since a code is short (the customer is meant to call right away).
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
    /// How long an issued continuation link token is valid when the caller names no time.
    #[serde(with = "humantime_serde")]
    pub link_token_ttl: Duration,
    /// The digits of a continuation code (6 to 12): each one more makes a guess ten times
    /// less likely to hit.
    pub token_code_digits: u32,
    /// How many wrong continuation tokens are tolerated, per identity, caller and tenant.
    pub token_attempts: TokenAttempts,
    /// Mask card numbers (13 to 19 digits passing the Luhn check) in messages and self-service
    /// inputs, in transcripts and replays (`mask`).
    pub mask_card_numbers: bool,
    /// Mask one-time codes (standalone runs of 6 to 8 digits) in what the customer typed.
    pub mask_codes: bool,
    /// The region phone numbers in a national form are read in (`"IL"`: `050-1234567` is
    /// `+972501234567`). Without one, numbers must come in an international form.
    pub default_region: Option<Region>,
    /// The region of an adapter (by its events' `source`) in another country than the
    /// tenant's `default_region`.
    pub source_regions: BTreeMap<String, Region>,
    /// Numbers that never identify a customer (the tenant's own outbound lines, a hotel
    /// switchboard), in any form `default_region` reads. Withheld caller ids (`anonymous`,
    /// `unavailable`, …: `phone::WITHHELD_CALLER_IDS`) never do either.
    pub non_identifying_numbers: Vec<String>,
}

impl Default for ContinuityPolicy {
    fn default() -> Self {
        Self {
            continuation_window: 72 * HOUR,
            join_same_intent: true,
            inactivity_timeout: 7 * DAY,
            reopen_window: 7 * DAY,
            merge_min_assurance: AssuranceLevel::Substantial,
            shared_identity_kinds: vec![IdentityKind::Phone, IdentityKind::Email],
            merge_excluded_methods: vec![VerificationMethod::CallerId],
            verification_ttl: HOUR,
            verification_max_ttl: DAY,
            required_assurance: AssuranceLevel::Substantial,
            channel_required_assurance: BTreeMap::new(),
            transcript_excerpt: 10,
            token_ttl: 15 * MINUTE,
            link_token_ttl: DAY,
            token_code_digits: 8,
            token_attempts: TokenAttempts::default(),
            mask_card_numbers: true,
            mask_codes: true,
            default_region: None,
            source_regions: BTreeMap::new(),
            non_identifying_numbers: Vec::new(),
        }
    }
}

/// Why verified evidence may not merge two customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MergeRefusal {
    /// The method never merges (caller id).
    ExcludedMethod,
    /// The assurance is below the policy's minimum.
    WeakAssurance,
    /// A shared kind of identity (phone, email) needs `High` assurance.
    SharedIdentity,
    /// The identity was seen, not verified.
    Unverified,
}

impl MergeRefusal {
    pub fn describe(self) -> &'static str {
        match self {
            Self::ExcludedMethod => "this verification method never merges customers",
            Self::WeakAssurance => "the assurance is below the policy's minimum for a merge",
            Self::SharedIdentity => {
                "the identity is of a kind people share; merging needs high assurance"
            }
            Self::Unverified => "the identity was only seen, never verified",
        }
    }
}

impl std::fmt::Display for MergeRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

impl ContinuityPolicy {
    /// The region national phone numbers from `source` are read in.
    pub fn region(&self, source: Option<&str>) -> Option<Region> {
        source
            .and_then(|source| self.source_regions.get(source))
            .copied()
            .or(self.default_region)
    }

    /// Whether `identity` names a customer: not a withheld caller id, nor one of
    /// `non_identifying_numbers`.
    pub fn identifies(&self, identity: &ChannelIdentity) -> bool {
        if identity.kind() != IdentityKind::Phone {
            return true;
        }
        !identity.is_withheld()
            && !self.non_identifying_numbers.iter().any(|listed| {
                phone::parse(listed, self.default_region)
                    .is_ok_and(|number| number == Phone::Number(identity.value().to_owned()))
            })
    }

    /// Every value that parses but makes no sense (a listed number `default_region` cannot
    /// read, a code too short), as `field: reason`.
    fn own_problems(&self) -> impl Iterator<Item = String> + '_ {
        let numbers = self
            .non_identifying_numbers
            .iter()
            .enumerate()
            .filter_map(|(i, listed)| {
                phone::parse(listed, self.default_region)
                    .err()
                    .map(|reason| format!("non_identifying_numbers[{i}] ({listed:?}) {reason}"))
            });
        let digits = (!TOKEN_CODE_DIGITS.contains(&self.token_code_digits)).then(|| {
            format!(
                "token_code_digits must be between {} and {}",
                TOKEN_CODE_DIGITS.start(),
                TOKEN_CODE_DIGITS.end()
            )
        });
        let attempts = &self.token_attempts;
        let limits = [
            ("per_identity", attempts.per_identity),
            ("per_caller", attempts.per_caller),
            ("per_tenant", attempts.per_tenant),
        ];
        let limits = limits.into_iter().filter_map(|(scope, limit)| {
            limit
                .problem()
                .map(|problem| format!("token_attempts.{scope}: {problem}"))
        });
        numbers.chain(digits).chain(limits)
    }

    /// Whether a verification by `method` at `assurance` proving an identity of `kind` may
    /// merge the customer who owns it into the verified one.
    pub fn may_merge(
        &self,
        method: VerificationMethod,
        assurance: AssuranceLevel,
        kind: IdentityKind,
    ) -> Result<(), MergeRefusal> {
        if self.merge_excluded_methods.contains(&method) {
            Err(MergeRefusal::ExcludedMethod)
        } else if assurance < self.merge_min_assurance {
            Err(MergeRefusal::WeakAssurance)
        } else if self.shared_identity_kinds.contains(&kind) && assurance < AssuranceLevel::High {
            Err(MergeRefusal::SharedIdentity)
        } else {
            Ok(())
        }
    }

    /// The assurance `channel` needs to skip re-verification.
    pub fn required_assurance(&self, channel: Channel) -> AssuranceLevel {
        self.channel_required_assurance
            .get(&channel)
            .copied()
            .unwrap_or(self.required_assurance)
    }

    /// When a verification made at `verified_at` stops holding: the adapter's expiry,
    /// capped by `verification_max_ttl`, or `verification_ttl` when none was given.
    pub fn verification_expiry(
        &self,
        verified_at: Timestamp,
        given: Option<Timestamp>,
    ) -> Timestamp {
        let cap = verified_at.plus(self.verification_max_ttl);
        given.map_or(verified_at.plus(self.verification_ttl), |given| {
            given.min(cap)
        })
    }
}

/// Every tenant's rules: the default, and overrides by tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policies {
    #[serde(flatten)]
    pub default: ContinuityPolicy,
    /// A tenant's section replaces the whole default for that tenant (fields it leaves out
    /// take the built-in defaults).
    pub tenants: BTreeMap<String, ContinuityPolicy>,
}

impl Policies {
    pub fn for_tenant(&self, tenant: &TenantId) -> &ContinuityPolicy {
        self.tenants.get(tenant.as_str()).unwrap_or(&self.default)
    }

    /// What parses but cannot be applied (a listed number the tenant's region cannot read),
    /// each as `continuity[.tenants.T].field: reason`.
    pub fn problems(&self) -> Vec<String> {
        let default = self
            .default
            .own_problems()
            .map(|problem| format!("continuity.{problem}"));
        let tenants = self.tenants.iter().flat_map(|(tenant, policy)| {
            policy
                .own_problems()
                .map(move |problem| format!("continuity.tenants.{tenant}.{problem}"))
        });
        default.chain(tenants).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_id_and_weak_or_shared_evidence_never_merge() {
        let policy = ContinuityPolicy::default();
        use AssuranceLevel::*;
        use VerificationMethod::*;
        assert_eq!(
            policy.may_merge(CallerId, High, IdentityKind::CrmId),
            Err(MergeRefusal::ExcludedMethod)
        );
        assert_eq!(
            policy.may_merge(Knowledge, Low, IdentityKind::CrmId),
            Err(MergeRefusal::WeakAssurance)
        );
        assert_eq!(
            policy.may_merge(OneTimeCode, Substantial, IdentityKind::Email),
            Err(MergeRefusal::SharedIdentity)
        );
        assert_eq!(
            policy.may_merge(Knowledge, Substantial, IdentityKind::CrmId),
            Ok(())
        );
        assert_eq!(
            policy.may_merge(Document, High, IdentityKind::Email),
            Ok(())
        );
    }

    #[test]
    fn verification_expiry_defaults_and_caps() {
        let policy = ContinuityPolicy::default();
        let at = Timestamp::from_unix_millis(1_000_000);
        assert_eq!(policy.verification_expiry(at, None), at.plus(HOUR));
        let far = at.plus(30 * DAY);
        assert_eq!(policy.verification_expiry(at, Some(far)), at.plus(DAY));
        let soon = at.plus(Duration::from_secs(60));
        assert_eq!(policy.verification_expiry(at, Some(soon)), soon);
    }

    #[test]
    fn regions_by_source_and_numbers_that_identify_no_one() {
        let policies: Policies = serde_json::from_value(serde_json::json!({
            "default_region": "IL",
            "source_regions": { "london-pbx": "GB" },
            "non_identifying_numbers": ["03-555-0000", "+44 20 7946 0000"],
        }))
        .expect("parses");
        let policy = &policies.default;
        assert_eq!(
            policy.region(None).map(|r| r.to_string()),
            Some("IL".into())
        );
        assert_eq!(
            policy.region(Some("london-pbx")).map(|r| r.to_string()),
            Some("GB".into())
        );
        assert_eq!(policy.region(Some("web-chat")), policy.default_region);
        let phone = |raw: &str| {
            ChannelIdentity::in_region(IdentityKind::Phone, raw, None, policy.default_region)
                .expect("valid")
        };
        assert!(!policy.identifies(&phone("+97235550000")));
        assert!(!policy.identifies(&phone("+442079460000")));
        assert!(!policy.identifies(&phone("anonymous")));
        assert!(policy.identifies(&phone("050-1234567")));
        assert!(policies.problems().is_empty());
        let wrong: Policies = serde_json::from_value(serde_json::json!({
            "tenants": { "hotel": { "non_identifying_numbers": ["03-555-0000"] } },
        }))
        .expect("parses");
        let problems = wrong.problems();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("continuity.tenants.hotel.non_identifying_numbers[0]"),
            "{problems:?}"
        );
        assert!(
            serde_json::from_value::<Policies>(serde_json::json!({ "default_region": "XX" }))
                .is_err()
        );
    }

    #[test]
    fn policies_read_from_toml_like_config() {
        let policies: Policies = serde_json::from_value(serde_json::json!({
            "continuation_window": "24h",
            "channel_required_assurance": { "email": "high" },
            "tenants": { "bank": { "merge_min_assurance": "high" } }
        }))
        .expect("parses");
        let acme = TenantId::new("acme").expect("valid");
        let bank = TenantId::new("bank").expect("valid");
        assert_eq!(policies.for_tenant(&acme).continuation_window, 24 * HOUR);
        assert_eq!(
            policies
                .for_tenant(&acme)
                .required_assurance(Channel::Email),
            AssuranceLevel::High
        );
        assert_eq!(
            policies
                .for_tenant(&acme)
                .required_assurance(Channel::Voice),
            AssuranceLevel::Substantial
        );
        assert_eq!(
            policies.for_tenant(&bank).merge_min_assurance,
            AssuranceLevel::High
        );
        assert_eq!(policies.for_tenant(&bank).continuation_window, 72 * HOUR);
    }
}

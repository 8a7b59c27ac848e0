//! Channel identities and their normalisation. The same person must look the same on every
//! channel: `+972 (50) 123-4567`, `00972501234567` and, in Israel, `050-1234567` are one phone
//! number (read by libphonenumber's rules, [`crate::phone`]), `Dana@Example.com` and
//! `dana@example.com` one mailbox. Identities are normalised once, at the edge, so the
//! projection can match them by equality.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{StableHasher, TenantId};
use crate::phone::{self, Phone, Region};

/// The kinds of identity a customer shows on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    Phone,
    Email,
    ChatVisitor,
    SocialHandle,
    MessagingId,
    AppUser,
    CrmId,
}

impl IdentityKind {
    pub const ALL: [Self; 7] = [
        Self::Phone,
        Self::Email,
        Self::ChatVisitor,
        Self::SocialHandle,
        Self::MessagingId,
        Self::AppUser,
        Self::CrmId,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Phone => "phone",
            Self::Email => "email",
            Self::ChatVisitor => "chat_visitor",
            Self::SocialHandle => "social_handle",
            Self::MessagingId => "messaging_id",
            Self::AppUser => "app_user",
            Self::CrmId => "crm_id",
        }
    }
}

/// A normalised identity of a customer on one channel.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChannelIdentity {
    kind: IdentityKind,
    value: String,
    /// The social network, for social handles only.
    network: Option<String>,
}

/// Why an identity was refused, and which part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityError {
    /// `value` or `network`.
    pub field: &'static str,
    pub reason: String,
}

const MAX_VALUE_LEN: usize = 256;

/// How an erased identity's value starts (`personal`): no published identity may.
const ERASED: &str = "erased:";

impl ChannelIdentity {
    /// Normalises and validates an identity; phone numbers must be in an international form.
    pub fn new(
        kind: IdentityKind,
        value: &str,
        network: Option<&str>,
    ) -> Result<Self, IdentityError> {
        Self::in_region(kind, value, network, None)
    }

    /// Normalises and validates an identity, reading a phone number in a national form as one
    /// of `region`. A withheld caller id (`anonymous`, …) is a phone identity of value
    /// [`phone::WITHHELD`], which identifies no one ([`ChannelIdentity::is_withheld`]).
    pub fn in_region(
        kind: IdentityKind,
        value: &str,
        network: Option<&str>,
        region: Option<Region>,
    ) -> Result<Self, IdentityError> {
        let value_error = |reason: &str| IdentityError {
            field: "value",
            reason: reason.to_owned(),
        };
        let value = value.trim();
        if value.is_empty() {
            return Err(value_error("is required"));
        }
        if value.len() > MAX_VALUE_LEN {
            return Err(value_error("is longer than 256 bytes"));
        }
        if value.chars().any(char::is_control) {
            return Err(value_error("must not contain control characters"));
        }
        if value.starts_with(ERASED) {
            return Err(value_error(
                "must not start with `erased:` (erased identities read so)",
            ));
        }
        let network = network_for(kind, network)?;
        let value = match kind {
            IdentityKind::Phone => match phone::parse(value, region) {
                Ok(Phone::Number(number)) => number,
                Ok(Phone::Withheld) => phone::WITHHELD.to_owned(),
                Err(reason) => return Err(value_error(&reason)),
            },
            IdentityKind::Email => normalise_email(value).map_err(value_error)?,
            IdentityKind::SocialHandle => value.trim_start_matches('@').to_lowercase(),
            _ => value.to_owned(),
        };
        Ok(Self {
            kind,
            value,
            network,
        })
    }

    /// An identity as a log record stored it: normalised when it was published, and taken
    /// as it is (like the JSON form's decoding), so that a later change to normalisation
    /// never changes what an old record says.
    pub fn stored(kind: IdentityKind, value: String, network: Option<String>) -> Self {
        Self {
            kind,
            value,
            network,
        }
    }

    pub fn phone(value: &str) -> Result<Self, IdentityError> {
        Self::new(IdentityKind::Phone, value, None)
    }

    pub fn email(value: &str) -> Result<Self, IdentityError> {
        Self::new(IdentityKind::Email, value, None)
    }

    /// What this identity reads as once erased (`personal`): its kind and network, and as its
    /// value `erased:` and the pseudonym the customer id it would start is derived from
    /// (`fold::customer_id_for`), so that an erased identity still names the same customer.
    pub fn erased(&self, tenant: &TenantId) -> Self {
        if self.is_erased() {
            return self.clone();
        }
        Self {
            kind: self.kind,
            value: format!("{ERASED}{}", self.pseudonym(tenant)),
            network: self.network.clone(),
        }
    }

    /// The 24 hex digits an identity's customer id is derived from and its erased form shows:
    /// the first 96 bits of the stable hash (`ids::stable_hash`) of the tenant and the
    /// [index key](Self::index_key), hashed in pieces.
    pub(crate) fn pseudonym(&self, tenant: &TenantId) -> impl fmt::Display {
        let mut hasher = StableHasher::new();
        hasher.part(tenant.as_str().as_bytes());
        hasher.write(self.kind.as_str().as_bytes());
        hasher.write(b":");
        hasher.write(self.network.as_deref().unwrap_or("").as_bytes());
        hasher.write(b":");
        hasher.part(self.value.as_bytes());
        Pseudonym(hasher.finish() >> 32)
    }

    /// The pseudonym of an erased identity (see [`erased`](Self::erased)).
    pub fn erased_pseudonym(&self) -> Option<&str> {
        self.value
            .strip_prefix(ERASED)
            .filter(|p| p.len() == 24 && p.bytes().all(|b| b.is_ascii_hexdigit()))
    }

    pub fn is_erased(&self) -> bool {
        self.erased_pseudonym().is_some()
    }

    /// A phone identity whose number was withheld: it names no one.
    pub fn is_withheld(&self) -> bool {
        self.kind == IdentityKind::Phone && self.value == phone::WITHHELD
    }

    pub fn kind(&self) -> IdentityKind {
        self.kind
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// Its value, the identity given up.
    pub fn into_value(self) -> String {
        self.value
    }

    pub fn network(&self) -> Option<&str> {
        self.network.as_deref()
    }

    /// A key unique per identity, for indexes: `kind:network:value`.
    pub fn index_key(&self) -> String {
        format!(
            "{}:{}:{}",
            self.kind.as_str(),
            self.network.as_deref().unwrap_or(""),
            self.value
        )
    }
}

/// 96 bits as 24 hex digits.
struct Pseudonym(u128);

impl fmt::Display for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:024x}", self.0)
    }
}

impl fmt::Display for ChannelIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.network {
            Some(network) => write!(f, "{}:{network}:{}", self.kind.as_str(), self.value),
            None => write!(f, "{}:{}", self.kind.as_str(), self.value),
        }
    }
}

/// The network of an identity of `kind`: required for social handles (normalised), absent
/// for every other kind.
pub(crate) fn network_for(
    kind: IdentityKind,
    network: Option<&str>,
) -> Result<Option<String>, IdentityError> {
    let network = network.map(str::trim).filter(|n| !n.is_empty());
    Ok(match (kind, network) {
        (IdentityKind::SocialHandle, Some(network)) => Some(normalise_network(network)?),
        (IdentityKind::SocialHandle, None) => {
            return Err(IdentityError {
                field: "network",
                reason: "is required for a social handle".into(),
            });
        }
        (_, Some(_)) => {
            return Err(IdentityError {
                field: "network",
                reason: "is only for social handles".into(),
            });
        }
        (_, None) => None,
    })
}

/// One `@`, a non-empty local part, a domain with a dot; folded to lower case.
fn normalise_email(raw: &str) -> Result<String, &'static str> {
    let lower = raw.to_lowercase();
    let Some((local, domain)) = lower.split_once('@') else {
        return Err("must be an email address (local@domain)");
    };
    let valid = !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !lower.chars().any(char::is_whitespace)
        && lower.len() <= 254;
    if valid {
        Ok(lower)
    } else {
        Err("must be an email address (local@domain)")
    }
}

fn normalise_network(raw: &str) -> Result<String, IdentityError> {
    let network = raw.to_lowercase();
    if network.len() <= 32
        && network
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        Ok(network)
    } else {
        Err(IdentityError {
            field: "network",
            reason: "must be a short network name such as \"x\" or \"facebook\"".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_normalise_to_e164() {
        for raw in [
            "+972 (50) 123-4567",
            "00972501234567",
            "+972.50.123.4567",
            "tel:+972-50-123-4567",
        ] {
            assert_eq!(
                ChannelIdentity::phone(raw).expect("valid").value(),
                "+972501234567"
            );
        }
    }

    #[test]
    fn national_numbers_are_read_in_a_region() {
        let il = "IL".parse().ok();
        let phone = ChannelIdentity::in_region(IdentityKind::Phone, "050-1234567", None, il);
        assert_eq!(phone.expect("valid").value(), "+972501234567");
        let withheld = ChannelIdentity::in_region(IdentityKind::Phone, "Anonymous", None, il);
        assert!(withheld.expect("withheld").is_withheld());
    }

    #[test]
    fn malformed_phone_numbers_are_refused() {
        for raw in [
            "050-1234567",
            "not a number",
            "+0123456789",
            "+1234567",
            "+",
        ] {
            let err = ChannelIdentity::phone(raw).expect_err(raw);
            assert_eq!(err.field, "value", "{raw}");
        }
    }

    #[test]
    fn emails_fold_case_and_need_a_domain() {
        assert_eq!(
            ChannelIdentity::email(" Dana@Example.COM ")
                .expect("valid")
                .value(),
            "dana@example.com"
        );
        for raw in [
            "dana",
            "dana@",
            "@example.com",
            "dana@example",
            "a b@x.io",
            "a@b@c.io",
        ] {
            assert!(ChannelIdentity::email(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn social_handles_need_a_network_and_only_they_have_one() {
        let handle =
            ChannelIdentity::new(IdentityKind::SocialHandle, "@DanaK", Some("X")).expect("valid");
        assert_eq!((handle.value(), handle.network()), ("danak", Some("x")));
        assert_eq!(
            ChannelIdentity::new(IdentityKind::SocialHandle, "dana", None)
                .expect_err("no network")
                .field,
            "network"
        );
        assert_eq!(
            ChannelIdentity::new(IdentityKind::ChatVisitor, "v1", Some("x"))
                .expect_err("network on a visitor id")
                .field,
            "network"
        );
    }

    #[test]
    fn index_keys_distinguish_kinds_and_networks() {
        let x = ChannelIdentity::new(IdentityKind::SocialHandle, "dana", Some("x")).expect("ok");
        let fb =
            ChannelIdentity::new(IdentityKind::SocialHandle, "dana", Some("facebook")).expect("ok");
        let app = ChannelIdentity::new(IdentityKind::AppUser, "dana", None).expect("ok");
        assert_ne!(x.index_key(), fb.index_key());
        assert_ne!(x.index_key(), app.index_key());
    }

    #[test]
    fn the_pseudonym_is_the_stable_hash_of_tenant_and_index_key_as_ids_were_derived() {
        let tenant = TenantId::new("acme").expect("valid");
        for identity in [
            ChannelIdentity::phone("+972501234567").expect("valid"),
            ChannelIdentity::new(IdentityKind::SocialHandle, "dana", Some("x")).expect("ok"),
        ] {
            let whole = crate::ids::stable_hash(&[tenant.as_str(), &identity.index_key()]);
            assert_eq!(identity.pseudonym(&tenant).to_string(), whole[..24]);
        }
    }

    #[test]
    fn an_erased_identity_names_the_customer_it_named_and_cannot_be_published() {
        let tenant = TenantId::new("acme").expect("valid");
        let phone = ChannelIdentity::phone("+972501234567").expect("valid");
        let erased = phone.erased(&tenant);
        assert_eq!(erased.kind(), IdentityKind::Phone);
        assert!(erased.is_erased() && !phone.is_erased());
        assert!(!erased.value().contains("501234567"));
        assert_eq!(
            erased.erased(&tenant),
            erased,
            "erasing twice changes nothing"
        );
        assert_eq!(
            crate::fold::customer_id_for(&tenant, &erased),
            crate::fold::customer_id_for(&tenant, &phone)
        );
        let other = ChannelIdentity::phone("+972501234568").expect("valid");
        assert_ne!(other.erased(&tenant), erased);
        let refused = ChannelIdentity::new(IdentityKind::ChatVisitor, erased.value(), None);
        assert_eq!(refused.expect_err("reserved").field, "value");
        let forged = ChannelIdentity::stored(IdentityKind::AppUser, "erased:../x".into(), None);
        assert!(!forged.is_erased(), "only a pseudonym reads as one");
    }
}

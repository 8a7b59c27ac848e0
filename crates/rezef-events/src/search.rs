//! Finding customers by what is known of them, for `Identities/FindCustomers`: an exact value
//! of an attribute (a context value a conversation collected, such as an order number, or a
//! profile attribute a CRM set) or the start of an identity (a supervisor typing part of a
//! phone number or an email address).
//!
//! Pure: the projector stores the index entries [`attributes`] names for each event, under
//! the customer the event came from (so that merges and unmerges are followed as identities
//! are: by the customer's merge pointers, when the entry is read), and the server scans
//! entries by the prefixes [`Attribute::prefix`] and [`identity_prefix`] give.

use crate::event::{Event, Payload};
use crate::identity::{self, ChannelIdentity, IdentityError, IdentityKind};
use crate::ids::CustomerId;
use crate::journey::Journey;

/// The longest value indexed: exact-value search is for identifiers, not prose.
pub const MAX_INDEXED_VALUE_LEN: usize = 256;

/// Where an attribute comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A value collected in a conversation (`ContextSet`), not marked sensitive. Every value
    /// ever collected keeps finding its customer: an old order number still names who
    /// ordered.
    Context,
    /// A profile attribute (`CustomerAttributesSet`): [`TIER`] or [`PREFERRED_LANGUAGE`]. Only
    /// the value the customer has now finds them.
    Profile,
}

/// The profile attribute of the customer's tier.
pub const TIER: &str = "tier";
/// The profile attribute of the customer's preferred language (a canonical BCP 47 tag).
pub const PREFERRED_LANGUAGE: &str = "preferred_language";

/// A value of a customer's attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub scope: Scope,
    pub name: String,
    pub value: String,
}

impl Attribute {
    pub fn new(scope: Scope, name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            scope,
            name: name.into(),
            value: value.into(),
        }
    }

    /// Whether the value is one the index keeps: not empty, at most
    /// [`MAX_INDEXED_VALUE_LEN`] bytes, no control characters (they would blur where the
    /// value ends in an index key).
    pub fn indexable(&self) -> bool {
        !self.value.is_empty()
            && self.value.len() <= MAX_INDEXED_VALUE_LEN
            && !self.value.chars().any(char::is_control)
    }

    /// Where the customers with this value are in the attribute index: every entry is this
    /// prefix followed by a customer id.
    pub fn prefix(&self) -> String {
        let scope = match self.scope {
            Scope::Context => 'c',
            Scope::Profile => 'p',
        };
        format!("{scope}:{}\0{}\0", self.name, self.value)
    }

    /// The index entry of `customer` having this value.
    pub fn entry(&self, customer: &CustomerId) -> String {
        self.prefix() + customer.as_str()
    }

    /// Whether `journey` (the one holding the customer an entry names) still answers to this
    /// value: a context value always does, a profile attribute only while it is the current
    /// one.
    pub fn holds(&self, journey: &Journey) -> bool {
        let current = match (self.scope, self.name.as_str()) {
            (Scope::Context, _) => return true,
            (Scope::Profile, TIER) => &journey.attributes.tier,
            (Scope::Profile, PREFERRED_LANGUAGE) => &journey.attributes.preferred_language,
            (Scope::Profile, _) => return false,
        };
        current.as_deref() == Some(self.value.as_str())
    }
}

/// The attribute values an event gives its customer, to index.
pub fn attributes(event: &Event) -> Vec<Attribute> {
    let found = match &event.payload {
        Payload::ContextSet {
            key,
            value,
            sensitive: false,
        } => vec![Attribute::new(Scope::Context, key, value)],
        Payload::CustomerAttributesSet {
            tier,
            preferred_language,
        } => [(TIER, tier), (PREFERRED_LANGUAGE, preferred_language)]
            .into_iter()
            .filter_map(|(name, value)| Some(Attribute::new(Scope::Profile, name, value.clone()?)))
            .collect(),
        _ => Vec::new(),
    };
    found.into_iter().filter(Attribute::indexable).collect()
}

/// The identity-index prefix of identities of `kind` (on `network`, for social handles)
/// whose value starts with `value_prefix`, normalised as values are: an email or social
/// handle in lower case (a handle without its `@`), a phone number as the start of its E.164
/// form (`+` and digits, `+` alone for every number; spaces, dashes, dots and parentheses
/// are dropped, `00` is `+`).
pub fn identity_prefix(
    kind: IdentityKind,
    network: Option<&str>,
    value_prefix: &str,
) -> Result<String, IdentityError> {
    let network = identity::network_for(kind, network)?;
    let value_prefix = value_prefix.trim();
    let value = match kind {
        IdentityKind::Phone => phone_prefix(value_prefix),
        IdentityKind::Email => Ok(value_prefix.to_lowercase()),
        IdentityKind::SocialHandle => Ok(value_prefix.trim_start_matches('@').to_lowercase()),
        _ => Ok(value_prefix.to_owned()),
    };
    let value = value.and_then(|v| {
        if v.is_empty() {
            Err("is required")
        } else {
            Ok(v)
        }
    });
    let value = value.map_err(|reason| IdentityError {
        field: "value_prefix",
        reason: reason.into(),
    })?;
    Ok(format!(
        "{}:{}:{value}",
        kind.as_str(),
        network.unwrap_or_default()
    ))
}

/// The identity an identity-index key names (`ChannelIdentity::index_key`).
pub fn identity_of(key: &str) -> Option<ChannelIdentity> {
    let (kind, rest) = key.split_once(':')?;
    let (network, value) = rest.split_once(':')?;
    let kind = IdentityKind::ALL.into_iter().find(|k| k.as_str() == kind)?;
    let network = (!network.is_empty()).then(|| network.to_owned());
    Some(ChannelIdentity::stored(kind, value.to_owned(), network))
}

fn phone_prefix(raw: &str) -> Result<String, &'static str> {
    let kept: String = (raw.chars())
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let digits = match kept.strip_prefix('+') {
        Some(digits) => digits,
        None => kept.strip_prefix("00").ok_or(
            "must be the start of an international number (E.164, as numbers are stored): \
             + and the country code, e.g. +97250",
        )?,
    };
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err("must be + followed by digits (the start of an E.164 number)");
    }
    Ok(format!("+{digits}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::EventBuilder;

    #[test]
    fn context_values_are_indexed_unless_sensitive_or_not_an_identifier() {
        let mut chat = EventBuilder::visitor("acme", "v-1");
        let order = chat.context("order_id", "A-1001");
        assert_eq!(
            attributes(&order),
            [Attribute::new(Scope::Context, "order_id", "A-1001")]
        );
        let card = chat.event(Payload::ContextSet {
            key: "card".into(),
            value: "4111".into(),
            sensitive: true,
        });
        assert!(attributes(&card).is_empty());
        assert!(attributes(&chat.context("note", "line\nbreak")).is_empty());
        let long = "x".repeat(MAX_INDEXED_VALUE_LEN + 1);
        assert!(attributes(&chat.context("note", &long)).is_empty());
    }

    #[test]
    fn profile_attributes_hold_only_while_current() {
        let mut chat = EventBuilder::visitor("acme", "v-1");
        let started = chat.started();
        let mut journey = Journey::new(
            started.tenant_id.clone(),
            CustomerId::new("cus-1").expect("valid"),
            started.occurred_at,
        );
        journey.apply(0, &started);
        let mut tier = |tier: &str| {
            chat.event(Payload::CustomerAttributesSet {
                tier: Some(tier.into()),
                preferred_language: None,
            })
        };
        let gold = tier("gold");
        let indexed = attributes(&gold);
        assert_eq!(indexed, [Attribute::new(Scope::Profile, TIER, "gold")]);
        journey.apply(1, &gold);
        assert!(indexed[0].holds(&journey));
        journey.apply(2, &tier("vip"));
        assert!(!indexed[0].holds(&journey));
        assert!(Attribute::new(Scope::Context, "order_id", "A-1").holds(&journey));
    }

    #[test]
    fn an_entry_starts_with_its_value_prefix_and_no_other() {
        let customer = CustomerId::new("cus-1").expect("valid");
        let a = Attribute::new(Scope::Context, "order_id", "A-1");
        let longer = Attribute::new(Scope::Context, "order_id", "A-10");
        assert!(a.entry(&customer).starts_with(&a.prefix()));
        assert!(!longer.entry(&customer).starts_with(&a.prefix()));
        let profile = Attribute::new(Scope::Profile, "order_id", "A-1");
        assert!(!profile.entry(&customer).starts_with(&a.prefix()));
    }

    #[test]
    fn identity_prefixes_are_normalised_like_identities() {
        let phone = ChannelIdentity::phone("+972501234567").expect("valid");
        for typed in ["+97250", "00972 50", "+972-50-12", "+(972) 501"] {
            let prefix = identity_prefix(IdentityKind::Phone, None, typed).expect(typed);
            assert!(phone.index_key().starts_with(&prefix), "{typed}: {prefix}");
        }
        let email = ChannelIdentity::email("Dana@Example.com").expect("valid");
        let prefix = identity_prefix(IdentityKind::Email, None, "DANA@").expect("valid");
        assert!(email.index_key().starts_with(&prefix));
        assert!(identity_prefix(IdentityKind::Phone, None, "050").is_err());
        assert!(identity_prefix(IdentityKind::Phone, None, "+97a").is_err());
        assert!(identity_prefix(IdentityKind::Email, None, "").is_err());
        let handle = identity_prefix(IdentityKind::SocialHandle, Some("X"), "@Dana");
        assert_eq!(handle.expect("valid"), "social_handle:x:dana");
        assert!(identity_prefix(IdentityKind::SocialHandle, None, "dana").is_err());
        assert!(identity_prefix(IdentityKind::Email, Some("x"), "dana").is_err());
    }

    #[test]
    fn an_identity_is_read_back_from_its_index_key() {
        let handle = ChannelIdentity::new(IdentityKind::SocialHandle, "dana", Some("x"));
        let phone = ChannelIdentity::phone("+972501234567");
        for identity in [handle, phone] {
            let identity = identity.expect("valid");
            assert_eq!(identity_of(&identity.index_key()), Some(identity));
        }
        assert_eq!(identity_of("nonsense"), None);
    }
}

//! Identifiers. Each is a validated string newtype, so a value that reached the domain is
//! known to be well formed and cannot be confused with another kind of id. The text is
//! shared (`Arc<str>`), not copied: the projection clones ids into its indexes, its
//! checkpoints and its change feed for every event, and a copy was an allocation each time.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 128;
/// The longest tenant id accepted, in bytes.
pub const MAX_TENANT_LEN: usize = 64;

/// Checks an opaque id: 1..=128 printable ASCII characters, no spaces.
pub fn check_id(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("is required".into());
    }
    if value.len() > MAX_ID_LEN {
        return Err(format!("is longer than {MAX_ID_LEN} bytes"));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be printable ASCII without spaces".into());
    }
    Ok(())
}

fn check_tenant(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("is required".into());
    }
    if value.len() > MAX_TENANT_LEN {
        return Err(format!("is longer than {MAX_TENANT_LEN} bytes"));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err("may hold only letters, digits, '.', '_' and '-'".into());
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $check:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates `value`; the error says what is wrong with it.
            pub fn new(value: impl Into<String>) -> Result<Self, String> {
                let value = value.into();
                $check(&value)?;
                Ok(Self(value.into()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(value: String) -> Result<Self, String> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.as_ref().to_owned()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A tenant: one company served by a shared Rezef. Scopes every record.
    TenantId,
    check_tenant
);
id_type!(
    /// A customer, unique within a tenant.
    CustomerId,
    check_id
);
id_type!(
    /// An event's client-chosen id, unique within a tenant; the key of idempotency.
    EventId,
    check_id
);
id_type!(
    /// A conversation: one customer need across channels.
    ConversationId,
    check_id
);
id_type!(
    /// An interaction: one contact on one channel.
    InteractionId,
    check_id
);
id_type!(
    /// An agent.
    AgentId,
    check_id
);

/// A stable 128-bit FNV-1a hash, rendered as 32 hex digits. Used to derive ids
/// deterministically, so that rebuilding the projection from the log yields the same ids.
pub(crate) fn stable_hash(parts: &[&str]) -> String {
    let mut hasher = StableHasher::new();
    for part in parts {
        hasher.part(part.as_bytes());
    }
    format!("{:032x}", hasher.finish())
}

/// [`stable_hash`] fed part by part, a part given in pieces (no string built to hash it).
pub(crate) struct StableHasher(u128);

impl StableHasher {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;

    pub(crate) fn new() -> Self {
        Self(Self::OFFSET)
    }

    /// More bytes of the current part.
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u128::from(byte);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    /// A whole part: its bytes and the end of the part.
    pub(crate) fn part(&mut self, bytes: &[u8]) {
        self.write(bytes);
        self.write(&[0xff]);
    }

    pub(crate) fn finish(self) -> u128 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_restricted() {
        assert!(TenantId::new("acme-bank.il").is_ok());
        assert_eq!(TenantId::new("").expect_err("empty"), "is required");
        assert!(TenantId::new("a/b").is_err());
        assert!(TenantId::new("x".repeat(65)).is_err());
    }

    #[test]
    fn opaque_ids_reject_spaces_and_control_characters() {
        assert!(EventId::new("01HZX-9f").is_ok());
        assert!(EventId::new("a b").is_err());
        assert!(EventId::new("a\u{0}").is_err());
        assert!(EventId::new("ש").is_err());
        assert!(EventId::new("x".repeat(129)).is_err());
    }

    #[test]
    fn serde_validates_on_the_way_in() {
        assert!(serde_json::from_str::<TenantId>("\"a b\"").is_err());
        let id: TenantId = serde_json::from_str("\"acme\"").expect("valid");
        assert_eq!(id.as_str(), "acme");
    }

    #[test]
    fn stable_hash_is_stable_and_separates_parts() {
        assert_eq!(stable_hash(&["a", "b"]), stable_hash(&["a", "b"]));
        assert_ne!(stable_hash(&["ab", ""]), stable_hash(&["a", "b"]));
        assert_eq!(stable_hash(&[]).len(), 32);
    }
}

//! Identities as operational logs may show them: a keyed hash, never the value. A phone
//! number or email in a log file is personal data kept outside every control the journey
//! store has (retention, erasure, access); the hash still lets an operator see that two
//! lines are about the same identity. The key is drawn at start, so the hashes of one run
//! cannot be looked up in a table made from another's.

use std::fmt;
use std::sync::OnceLock;

use rezef_events::ChannelIdentity;

fn key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        // Without the OS's randomness the hashes are still one-way, only comparable across runs.
        let _ = getrandom::fill(&mut key);
        key
    })
}

/// Displays as the identity's kind and a keyed hash of its value (`phone#3f9a1c2e7b4d0a66`).
#[derive(Debug, Clone, Copy)]
pub struct Redacted<'a>(pub &'a ChannelIdentity);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hash = blake3::keyed_hash(key(), self.0.index_key().as_bytes());
        let hex = hash.to_hex();
        write!(f, "{}#{}", self.0.kind().as_str(), &hex.as_str()[..16])
    }
}

#[cfg(test)]
mod tests {
    use rezef_events::IdentityKind;

    use super::*;

    #[test]
    fn an_identity_shows_its_kind_and_never_its_value() {
        let phone =
            ChannelIdentity::new(IdentityKind::Phone, "+972545550123", None).expect("a phone");
        let shown = Redacted(&phone).to_string();
        assert!(shown.starts_with("phone#"), "{shown}");
        assert!(!shown.contains("545550123"), "{shown}");
        assert_eq!(
            shown,
            Redacted(&phone).to_string(),
            "the same identity, the same hash"
        );
        let other =
            ChannelIdentity::new(IdentityKind::Phone, "+972545550124", None).expect("a phone");
        assert_ne!(shown, Redacted(&other).to_string());
    }
}

//! Whose key: a subject of a tenant, known to the store only by its hash.

use std::fmt;

/// The subject a data key belongs to, within a tenant: `customer:<id>` or
/// `identity:<kind>:<value>` (the constructors). It is its hash: BLAKE3 of the tenant, a 0
/// byte and the name, hashed as it is given (no string is built), and a store keeps nothing
/// else. Tenant ids hold no 0 byte, so two subjects never share the input.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subject([u8; 32]);

impl Subject {
    /// The subject of a customer's own values: `customer:<id>`.
    pub fn customer(tenant: &str, id: &str) -> Subject {
        Subject::named(tenant, &["customer:", id])
    }

    /// The subject of an identity's values: `identity:<kind>:<value>`.
    pub fn identity(tenant: &str, kind: &str, value: &str) -> Subject {
        Subject::named(tenant, &["identity:", kind, ":", value])
    }

    /// The subject whose name is these parts one after the other: for callers that hold a
    /// name in pieces (`Subject::identity`'s value made of several).
    pub fn named(tenant: &str, name: &[&str]) -> Subject {
        let mut hasher = blake3::Hasher::new();
        hasher.update(tenant.as_bytes());
        hasher.update(&[0]);
        for part in name {
            hasher.update(part.as_bytes());
        }
        Subject(*hasher.finalize().as_bytes())
    }

    /// What a store files the key under.
    pub fn hash(&self) -> [u8; 32] {
        self.0
    }
}

/// Shows nothing: the hash of a name is as personal as the name (it can be tested against a
/// guess), kept out of logs.
impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Subject(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_is_the_hash_of_its_tenant_and_whole_name() {
        let whole = blake3::hash(b"acme\0identity:email:email::dana@example.com");
        let subject = Subject::identity("acme", "email", "email::dana@example.com");
        assert_eq!(subject.hash(), *whole.as_bytes());
        assert_eq!(
            Subject::named(
                "acme",
                &["identity:", "email", ":", "email::", "dana@example.com"]
            ),
            subject,
            "pieces hash as the whole"
        );
        assert_ne!(
            Subject::customer("acme", "c-1"),
            Subject::customer("acm", "ec-1")
        );
    }
}

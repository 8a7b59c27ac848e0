//! Whose key: a subject of a tenant, and the hash the store files it under.

use std::fmt;

/// The subject a data key belongs to, within a tenant: `customer:<id>` or
/// `identity:<kind>:<value>` (the constructors). A store keeps only its
/// [hash](Subject::hash), never the name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    /// The tenant.
    pub tenant: String,
    /// The subject within the tenant.
    pub name: String,
}

impl Subject {
    /// The subject of a customer's own values: `customer:<id>`.
    pub fn customer(tenant: &str, id: &str) -> Subject {
        Subject {
            tenant: tenant.to_owned(),
            name: format!("customer:{id}"),
        }
    }

    /// The subject of an identity's values: `identity:<kind>:<value>`.
    pub fn identity(tenant: &str, kind: &str, value: &str) -> Subject {
        Subject {
            tenant: tenant.to_owned(),
            name: format!("identity:{kind}:{value}"),
        }
    }

    /// BLAKE3 of the tenant, a 0 byte and the name: what a store files the key under. Tenant
    /// ids hold no 0 byte, so two subjects never share the input.
    pub fn hash(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(self.tenant.as_bytes());
        hasher.update(&[0]);
        hasher.update(self.name.as_bytes());
        *hasher.finalize().as_bytes()
    }
}

/// Shows the tenant only: the name is personal data, kept out of logs.
impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subject")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

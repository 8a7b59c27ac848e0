use thiserror::Error;

use crate::Role;

/// Why a call has no credential: the server answers `UNAUTHENTICATED`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Unauthenticated {
    #[error("this server needs an API key: send `authorization: Bearer <key>`")]
    Missing,
    #[error(
        "the `authorization` header must be `Bearer <key>` with a key made by `rezef keys create`"
    )]
    Malformed,
    /// Unknown and revoked keys answer alike: a caller learns nothing about other keys.
    #[error("the API key is not known to this server, or was revoked")]
    Unknown,
}

/// Why a known credential may not make a call: the server answers `PERMISSION_DENIED`.
/// Nothing in it says whether the tenant or customer asked for exists.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Denied {
    #[error("{method} needs a key with {}", roles(needs))]
    Role { method: String, needs: Vec<Role> },
    #[error("this key acts for tenant `{key_tenant}` only")]
    Tenant { key_tenant: String },
    #[error("this key may not speak as source `{name}`")]
    Source { name: String },
    #[error("this key is agent `{own}`'s: it may not act as agent `{named}`")]
    Agent { own: String, named: String },
    #[error(
        "this key may not assert a `{method}` verification above low assurance: that needs \
         a key granted it (rezef keys create --verify {method})"
    )]
    Verify { method: String },
    #[error("{method} is not open to API keys")]
    Method { method: String },
}

fn roles(needs: &[Role]) -> String {
    let names: Vec<&str> = needs.iter().map(|r| r.as_str()).collect();
    match names.as_slice() {
        [one] => format!("the role `{one}`"),
        _ => format!("one of the roles `{}`", names.join("`, `")),
    }
}

/// A key file that cannot be read or written, or a key that cannot be made.
#[derive(Debug, Error)]
pub enum Error {
    #[error("key file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {path} is not a Rezef key file: {reason}")]
    Invalid { path: String, reason: String },
    #[error("{0}")]
    Request(String),
    #[error("no random numbers from the operating system: {0}")]
    Random(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_refusal_names_the_roles_needed() {
        let one = Denied::Role {
            method: "/rezef.v1.Audit/ReplayHistory".into(),
            needs: vec![Role::Auditor],
        };
        assert_eq!(
            one.to_string(),
            "/rezef.v1.Audit/ReplayHistory needs a key with the role `auditor`"
        );
        let two = Denied::Role {
            method: "m".into(),
            needs: vec![Role::Agent, Role::Supervisor],
        };
        assert!(
            two.to_string()
                .ends_with("one of the roles `agent`, `supervisor`")
        );
    }
}

//! A credential (what a key may do) and the token that proves it. A token is
//! `rzf_<id>_<secret>`: the id finds the credential, the secret proves it, and only the
//! secret's BLAKE3 hash is kept, so a stolen key file lets nobody in.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, Role, Unauthenticated};

const PREFIX: &str = "rzf_";
const ID_BYTES: usize = 6;
const SECRET_BYTES: usize = 32;

/// The tenants a key acts for: one, or every tenant (`*`, for operators).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Tenant(String),
    All,
}

impl Scope {
    /// Whether a call for `tenant` is inside the scope.
    pub fn covers(&self, tenant: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Tenant(own) => own == tenant,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => f.write_str("*"),
            Scope::Tenant(tenant) => f.write_str(tenant),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(match text.as_str() {
            "*" => Scope::All,
            _ => Scope::Tenant(text),
        })
    }
}

/// What one key may do, as the key file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// Public: names the key in lists, logs and revocations.
    pub id: String,
    /// A label for people (`"ivr adapter, site A"`).
    #[serde(default)]
    pub name: String,
    pub tenant: Scope,
    pub roles: BTreeSet<Role>,
    /// For `adapter` keys: the event sources it may publish as (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// For `agent` keys: the one agent the key is (every `agent_id` it names must be this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The verification methods (`pin`, `one_time_code`, ..., or `*`) the key may assert
    /// above low assurance (the `verify` grant); empty: low assurance only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verify: Vec<String>,
    /// This key's own limits; unset: the server's (`[auth.limits]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<crate::Limits>,
    /// When the key was made, in seconds since the Unix epoch.
    pub created_at: u64,
    /// The secret's BLAKE3 hash, in hex.
    pub secret_hash: String,
    /// A revoked key is kept (so its id is never reused) and lets nobody in.
    #[serde(default)]
    pub revoked: bool,
}

impl Credential {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether `secret` is this key's, compared in constant time.
    pub fn proves(&self, secret: &str) -> bool {
        let Ok(stored) = blake3::Hash::from_hex(&self.secret_hash) else {
            return false;
        };
        !self.revoked && blake3::hash(secret.as_bytes()) == stored
    }
}

/// What `rezef keys create` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    pub name: String,
    pub tenant: Scope,
    pub roles: BTreeSet<Role>,
    pub sources: Vec<String>,
    pub agent: Option<String>,
    pub verify: Vec<String>,
    pub limits: Option<crate::Limits>,
}

/// The verification methods a `verify` grant can name, as `rezef.v1.VerificationMethod`
/// names them without their prefix (a test in rezef-server compares the two).
pub const VERIFY_METHODS: [&str; 7] = [
    "caller_id",
    "knowledge",
    "one_time_code",
    "pin",
    "authenticated_session",
    "voice_biometrics",
    "document",
];

impl NewKey {
    /// A key of `tenant` in `roles`, with no sources, agent, grant or limits of its own.
    pub fn new(tenant: Scope, roles: impl IntoIterator<Item = Role>) -> Self {
        NewKey {
            name: String::new(),
            tenant,
            roles: roles.into_iter().collect(),
            sources: Vec::new(),
            agent: None,
            verify: Vec::new(),
            limits: None,
        }
    }

    /// The credential and the token that proves it, made with the operating system's random
    /// numbers. The token is shown once; only its hash is kept.
    pub fn make(self, now_secs: u64) -> Result<(Credential, Token), Error> {
        if self.roles.is_empty() {
            return Err(Error::Request("a key needs at least one role".into()));
        }
        if self.roles.contains(&Role::Node) && self.tenant != Scope::All {
            return Err(Error::Request(
                "the `node` role is for keys of all tenants (--all-tenants)".into(),
            ));
        }
        if !self.sources.is_empty() && !self.roles.contains(&Role::Adapter) {
            return Err(Error::Request("sources limit `adapter` keys only".into()));
        }
        if let Scope::Tenant(tenant) = &self.tenant
            && (tenant.is_empty() || tenant == "*")
        {
            return Err(Error::Request("a key's tenant must be named".into()));
        }
        self.check_agent()?;
        self.check_verify()?;
        let id = hex(&random::<ID_BYTES>()?);
        let secret = hex(&random::<SECRET_BYTES>()?);
        let credential = Credential {
            id: id.clone(),
            name: self.name,
            tenant: self.tenant,
            roles: self.roles,
            sources: self.sources,
            agent: self.agent,
            verify: self.verify,
            limits: self.limits,
            created_at: now_secs,
            secret_hash: blake3::hash(secret.as_bytes()).to_hex().to_string(),
            revoked: false,
        };
        Ok((credential, Token { id, secret }))
    }

    /// An `agent` key is one agent's, and only an agent key names one.
    fn check_agent(&self) -> Result<(), Error> {
        match (&self.agent, self.roles.contains(&Role::Agent)) {
            (None, true) => Err(Error::Request(
                "an `agent` key is one agent's: name it (--agent <agent id>)".into(),
            )),
            (Some(_), false) => Err(Error::Request("--agent is for `agent` keys only".into())),
            (Some(agent), true) if agent.trim().is_empty() => {
                Err(Error::Request("the agent id must not be empty".into()))
            }
            _ => Ok(()),
        }
    }

    /// The `verify` grant names known methods, for keys that publish or link identities.
    fn check_verify(&self) -> Result<(), Error> {
        if self.verify.is_empty() {
            return Ok(());
        }
        if !self.roles.contains(&Role::Adapter) && !self.roles.contains(&Role::Channel) {
            return Err(Error::Request(
                "the verify grant is for `adapter` and `channel` keys only".into(),
            ));
        }
        match (self.verify.iter()).find(|m| *m != "*" && !VERIFY_METHODS.contains(&m.as_str())) {
            Some(unknown) => Err(Error::Request(format!(
                "unknown verification method `{unknown}` (methods: {}, or *)",
                VERIFY_METHODS.join(", ")
            ))),
            None => Ok(()),
        }
    }
}

/// A key as a client sends it: `rzf_<id>_<secret>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub id: String,
    pub secret: String,
}

impl Token {
    /// Reads the value of an `authorization` header.
    pub fn from_header(value: Option<&str>) -> Result<Self, Unauthenticated> {
        let value = value.ok_or(Unauthenticated::Missing)?;
        let token = (value
            .strip_prefix("Bearer ")
            .or(value.strip_prefix("bearer ")))
        .ok_or(Unauthenticated::Malformed)?;
        token.trim().parse()
    }
}

impl std::str::FromStr for Token {
    type Err = Unauthenticated;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (id, secret) = (text.strip_prefix(PREFIX))
            .and_then(|rest| rest.split_once('_'))
            .ok_or(Unauthenticated::Malformed)?;
        if id.is_empty() || secret.is_empty() {
            return Err(Unauthenticated::Malformed);
        }
        Ok(Token {
            id: id.to_owned(),
            secret: secret.to_owned(),
        })
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}_{}", self.id, self.secret)
    }
}

/// Never prints the secret.
impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({PREFIX}{}_…)", self.id)
    }
}

fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| Error::Random(e.to_string()))?;
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_key(tenant: Scope, roles: &[Role]) -> NewKey {
        NewKey::new(tenant, roles.iter().copied())
    }

    #[test]
    fn a_made_token_proves_its_credential_and_no_other() {
        let (credential, token) = new_key(Scope::Tenant("acme".into()), &[Role::Adapter])
            .make(1)
            .expect("a key");
        let read: Token = token.to_string().parse().expect("reads back");
        assert_eq!(read, token);
        assert!(credential.proves(&token.secret));
        let (other, _) = new_key(Scope::Tenant("acme".into()), &[Role::Adapter])
            .make(1)
            .expect("a key");
        assert!(!other.proves(&token.secret));
        assert_ne!(other.id, credential.id);
        let revoked = Credential {
            revoked: true,
            ..credential
        };
        assert!(!revoked.proves(&token.secret));
    }

    #[test]
    fn the_secret_is_not_kept_nor_printed() {
        let (credential, token) = new_key(Scope::All, &[Role::Node]).make(1).expect("a key");
        let stored = serde_json::to_string(&credential).expect("json");
        assert!(!stored.contains(&token.secret), "{stored}");
        assert!(!format!("{token:?}").contains(&token.secret));
        assert_eq!(token.secret.len(), 64);
    }

    #[test]
    fn headers_other_than_a_bearer_token_are_refused() {
        assert_eq!(Token::from_header(None), Err(Unauthenticated::Missing));
        for bad in [
            "Basic abc",
            "Bearer ",
            "Bearer abc",
            "Bearer rzf_",
            "Bearer rzf_id_",
        ] {
            assert_eq!(
                Token::from_header(Some(bad)),
                Err(Unauthenticated::Malformed),
                "{bad}"
            );
        }
        let token = Token::from_header(Some("Bearer rzf_ab12_cd34")).expect("a token");
        assert_eq!((token.id.as_str(), token.secret.as_str()), ("ab12", "cd34"));
    }

    #[test]
    fn keys_that_make_no_sense_are_refused() {
        assert!(new_key(Scope::All, &[]).make(1).is_err());
        assert!(
            new_key(Scope::Tenant("acme".into()), &[Role::Node])
                .make(1)
                .is_err()
        );
        assert!(
            new_key(Scope::Tenant(String::new()), &[Role::Channel])
                .make(1)
                .is_err()
        );
        let sources = NewKey {
            sources: vec!["ivr".into()],
            ..new_key(Scope::Tenant("acme".into()), &[Role::Channel])
        };
        assert!(sources.make(1).is_err());
    }

    #[test]
    fn an_agent_key_is_one_named_agents() {
        let acme = || Scope::Tenant("acme".into());
        let error = new_key(acme(), &[Role::Agent])
            .make(1)
            .expect_err("no agent");
        assert!(error.to_string().contains("--agent"), "{error}");
        let bound = NewKey {
            agent: Some("a-17".into()),
            ..new_key(acme(), &[Role::Agent])
        };
        let (credential, _) = bound.make(1).expect("a key");
        assert_eq!(credential.agent.as_deref(), Some("a-17"));
        let not_an_agent = NewKey {
            agent: Some("a-17".into()),
            ..new_key(acme(), &[Role::Supervisor])
        };
        assert!(not_an_agent.make(1).is_err());
    }

    #[test]
    fn a_verify_grant_names_known_methods_for_keys_that_assert_identity() {
        let acme = || Scope::Tenant("acme".into());
        let granted = |roles: &[Role], verify: &[&str]| NewKey {
            verify: verify.iter().map(|m| (*m).to_owned()).collect(),
            ..new_key(acme(), roles)
        };
        assert!(
            granted(&[Role::Adapter], &["pin", "one_time_code"])
                .make(1)
                .is_ok()
        );
        assert!(granted(&[Role::Channel], &["*"]).make(1).is_ok());
        let unknown = granted(&[Role::Adapter], &["fingerprint"]).make(1);
        assert!(
            unknown
                .expect_err("unknown")
                .to_string()
                .contains("one_time_code")
        );
        assert!(granted(&[Role::Auditor], &["pin"]).make(1).is_err());
    }

    #[test]
    fn a_scope_of_all_tenants_is_a_star() {
        let all: Scope = serde_json::from_str("\"*\"").expect("json");
        assert_eq!(all, Scope::All);
        assert!(all.covers("anyone"));
        let acme = Scope::Tenant("acme".into());
        assert!(acme.covers("acme") && !acme.covers("acmex"));
        assert_eq!(serde_json::to_string(&acme).expect("json"), "\"acme\"");
    }
}

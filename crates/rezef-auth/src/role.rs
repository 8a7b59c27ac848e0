//! The roles a key can hold. A role is a job (an adapter publishing, a channel serving a
//! contact, an auditor replaying history), and each gRPC method names the roles that may call
//! it ([`crate::access`]); a key may hold several.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One job a caller does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A channel adapter: publishes its tenant's events.
    Adapter,
    /// A channel serving contacts: resumes conversations, routes, issues tokens, reads and
    /// searches journeys, links identities.
    Channel,
    /// An agent desktop: one agent's session and presence (the key names the agent), and
    /// journeys.
    Agent,
    /// A supervisor: queue and agent views, agents' presence.
    Supervisor,
    /// An auditor: replays history and may see sensitive values.
    Auditor,
    /// An administrator: routing configuration, merges and unmerges of customers.
    Admin,
    /// Another node of the cluster (`rezef.cluster.v1`); only for keys of all tenants.
    Node,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Adapter,
        Role::Channel,
        Role::Agent,
        Role::Supervisor,
        Role::Auditor,
        Role::Admin,
        Role::Node,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Adapter => "adapter",
            Role::Channel => "channel",
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
            Role::Node => "node",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        (Role::ALL.into_iter())
            .find(|role| role.as_str() == text)
            .ok_or_else(|| {
                let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                format!("unknown role `{text}` (roles: {})", known.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_reads_back_from_its_name() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            let json = serde_json::to_string(&role).expect("json");
            assert_eq!(json, format!("\"{role}\""));
        }
    }

    #[test]
    fn an_unknown_role_is_refused_with_the_list() {
        let error = "root".parse::<Role>().expect_err("not a role");
        assert!(error.contains("adapter, channel"), "{error}");
    }
}

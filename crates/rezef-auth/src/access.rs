//! Which roles may call each gRPC method, and the check of one call against it. The table
//! is the whole policy: a method missing from it is refused to every key (a method added
//! later is closed until someone decides who may call it), and docs/security.md prints it
//! (a test in rezef-server compares the two, and the table with the services served).

use crate::{Credential, Denied, Role};

/// What a method asks of a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// Any one of these roles will do.
    pub roles: &'static [Role],
    /// Whether the request names a tenant (`tenant_id`) that the key must act for.
    pub tenant: bool,
}

const fn tenant(roles: &'static [Role]) -> Need {
    Need {
        roles,
        tenant: true,
    }
}

use Role::{Adapter, Admin, Agent, Auditor, Channel, Node, Supervisor};

/// Every method open to API keys, by its gRPC path.
pub const TABLE: &[(&str, Need)] = &[
    ("/rezef.v1.Ingest/Publish", tenant(&[Adapter])),
    ("/rezef.v1.Ingest/PublishStream", tenant(&[Adapter])),
    (
        "/rezef.v1.Journeys/GetJourney",
        tenant(&[Channel, Agent, Supervisor]),
    ),
    (
        "/rezef.v1.Journeys/WatchJourney",
        tenant(&[Channel, Agent, Supervisor]),
    ),
    ("/rezef.v1.Journeys/ResumeConversation", tenant(&[Channel])),
    (
        "/rezef.v1.Journeys/WatchConversation",
        tenant(&[Channel, Agent, Supervisor]),
    ),
    (
        "/rezef.v1.Journeys/IssueContinuationToken",
        tenant(&[Channel]),
    ),
    ("/rezef.v1.Identities/ResolveCustomer", tenant(&[Channel])),
    ("/rezef.v1.Identities/LinkIdentity", tenant(&[Channel])),
    ("/rezef.v1.Identities/MergeCustomers", tenant(&[Admin])),
    ("/rezef.v1.Identities/UnmergeCustomers", tenant(&[Admin])),
    (
        "/rezef.v1.Identities/ForgetCustomer",
        tenant(&[Admin, Auditor]),
    ),
    (
        "/rezef.v1.Identities/FindCustomers",
        tenant(&[Channel, Supervisor]),
    ),
    ("/rezef.v1.Audit/ReplayHistory", tenant(&[Auditor])),
    (
        "/rezef.v1.Insights/GetReport",
        tenant(&[Supervisor, Admin, Auditor]),
    ),
    (
        "/rezef.v1.Insights/TrackCustomer",
        tenant(&[Supervisor, Admin, Auditor]),
    ),
    (
        "/rezef.v1.Insights/WatchInterval",
        tenant(&[Supervisor, Admin, Auditor]),
    ),
    ("/rezef.v1.Routing/RouteInteraction", tenant(&[Channel])),
    ("/rezef.v1.Routing/AgentSession", tenant(&[Agent])),
    ("/rezef.v1.Routing/GetQueueStats", tenant(&[Supervisor])),
    ("/rezef.v1.Routing/WatchQueues", tenant(&[Supervisor])),
    ("/rezef.v1.Routing/ListAgents", tenant(&[Supervisor])),
    ("/rezef.v1.Routing/WatchAgents", tenant(&[Supervisor])),
    (
        "/rezef.v1.Routing/ExplainDecision",
        tenant(&[Supervisor, Auditor]),
    ),
    (
        "/rezef.v1.Routing/SetAgentPresence",
        tenant(&[Supervisor, Agent]),
    ),
    ("/rezef.v1.Routing/WithdrawContact", tenant(&[Channel])),
    ("/rezef.v1.Routing/SetRoutingConfig", tenant(&[Admin])),
    // Node to node: the records and journeys of every tenant move between partitions.
    (
        "/rezef.cluster.v1.Partitions/Append",
        Need {
            roles: &[Node],
            tenant: false,
        },
    ),
    (
        "/rezef.cluster.v1.Partitions/ReadJourney",
        Need {
            roles: &[Node],
            tenant: false,
        },
    ),
    (
        "/rezef.cluster.v1.Partitions/ReadFigures",
        Need {
            roles: &[Node],
            tenant: false,
        },
    ),
];

/// What `method` (a gRPC path, `/package.Service/Method`) asks, if it is open to keys.
pub fn need(method: &str) -> Option<Need> {
    TABLE
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(_, need)| *need)
}

/// Whether `credential` may call `method` for `tenant` (the request's `tenant_id`; an empty
/// one is left for the method to refuse as missing).
pub fn authorize(credential: &Credential, method: &str, tenant: &str) -> Result<(), Denied> {
    let need = need(method).ok_or_else(|| Denied::Method {
        method: method.to_owned(),
    })?;
    if !need.roles.iter().any(|role| credential.has(*role)) {
        return Err(Denied::Role {
            method: method.to_owned(),
            needs: need.roles.to_vec(),
        });
    }
    if need.tenant && !tenant.is_empty() && !credential.tenant.covers(tenant) {
        return Err(Denied::Tenant {
            key_tenant: credential.tenant.to_string(),
        });
    }
    Ok(())
}

/// Whether `credential` may name `source` as the adapter a request speaks as (an event's or
/// a link's `source`): any, unless the key lists its sources.
pub fn speaks_as(credential: &Credential, source: &str) -> Result<(), Denied> {
    match credential.sources.is_empty() || credential.sources.iter().any(|s| s == source) {
        true => Ok(()),
        false => Err(Denied::Source {
            name: source.to_owned(),
        }),
    }
}

/// Whether `credential` may name `agent_id` as the agent a request acts for: any, unless the
/// key is one agent's (an empty id is left for the method to refuse as missing).
pub fn acts_as_agent(credential: &Credential, agent_id: &str) -> Result<(), Denied> {
    match &credential.agent {
        Some(own) if !agent_id.is_empty() && own != agent_id => Err(Denied::Agent {
            own: own.clone(),
            named: agent_id.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Whether `credential` may assert a verification by `method` (as
/// [`crate::credential::VERIFY_METHODS`] names it) above low assurance: only under the
/// `verify` grant naming the method, or `*`.
pub fn verifies(credential: &Credential, method: &str) -> Result<(), Denied> {
    match credential.verify.iter().any(|m| m == "*" || m == method) {
        true => Ok(()),
        false => Err(Denied::Verify {
            method: method.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::Scope;

    fn key(tenant: Scope, roles: &[Role]) -> Credential {
        Credential {
            id: "k".into(),
            name: String::new(),
            tenant,
            roles: roles.iter().copied().collect(),
            sources: Vec::new(),
            agent: None,
            verify: Vec::new(),
            limits: None,
            created_at: 0,
            secret_hash: String::new(),
            revoked: false,
        }
    }

    #[test]
    fn an_adapter_publishes_for_its_tenant_only() {
        let adapter = key(Scope::Tenant("acme".into()), &[Role::Adapter]);
        let publish = "/rezef.v1.Ingest/Publish";
        assert_eq!(authorize(&adapter, publish, "acme"), Ok(()));
        assert_eq!(
            authorize(&adapter, publish, "globex"),
            Err(Denied::Tenant {
                key_tenant: "acme".into()
            })
        );
        assert!(matches!(
            authorize(&adapter, "/rezef.v1.Audit/ReplayHistory", "acme"),
            Err(Denied::Role { needs, .. }) if needs == [Role::Auditor]
        ));
    }

    #[test]
    fn a_key_with_sources_speaks_as_those_only() {
        let any = key(Scope::Tenant("acme".into()), &[Role::Adapter]);
        assert_eq!(speaks_as(&any, "ivr"), Ok(()));
        let ivr = Credential {
            sources: vec!["ivr".into()],
            ..any
        };
        assert_eq!(speaks_as(&ivr, "ivr"), Ok(()));
        assert_eq!(
            speaks_as(&ivr, "web-chat"),
            Err(Denied::Source {
                name: "web-chat".into()
            })
        );
    }

    #[test]
    fn an_agent_key_acts_for_its_own_agent_only() {
        let desk = Credential {
            agent: Some("a-17".into()),
            ..key(Scope::Tenant("acme".into()), &[Role::Agent])
        };
        assert_eq!(acts_as_agent(&desk, "a-17"), Ok(()));
        assert_eq!(acts_as_agent(&desk, ""), Ok(()));
        assert_eq!(
            acts_as_agent(&desk, "a-18"),
            Err(Denied::Agent {
                own: "a-17".into(),
                named: "a-18".into()
            })
        );
        let supervisor = key(Scope::Tenant("acme".into()), &[Role::Supervisor]);
        assert_eq!(acts_as_agent(&supervisor, "a-18"), Ok(()));
    }

    #[test]
    fn only_a_granted_key_verifies_and_only_by_its_methods() {
        let ivr = key(Scope::Tenant("acme".into()), &[Role::Adapter]);
        assert_eq!(
            verifies(&ivr, "pin"),
            Err(Denied::Verify {
                method: "pin".into()
            })
        );
        let pin = Credential {
            verify: vec!["pin".into()],
            ..ivr.clone()
        };
        assert_eq!(verifies(&pin, "pin"), Ok(()));
        assert!(verifies(&pin, "document").is_err());
        let any = Credential {
            verify: vec!["*".into()],
            ..ivr
        };
        assert_eq!(verifies(&any, "document"), Ok(()));
    }

    #[test]
    fn a_method_not_in_the_table_is_closed_to_every_key() {
        let everything = key(Scope::All, &Role::ALL);
        assert_eq!(
            authorize(&everything, "/rezef.v1.Journeys/DeleteEverything", "acme"),
            Err(Denied::Method {
                method: "/rezef.v1.Journeys/DeleteEverything".into()
            })
        );
    }

    #[test]
    fn the_table_names_each_method_once() {
        let mut methods: Vec<&str> = TABLE.iter().map(|(m, _)| *m).collect();
        methods.sort_unstable();
        methods.dedup();
        assert_eq!(methods.len(), TABLE.len());
    }

    proptest! {
        /// Given any key and any method in the table, when it calls for a tenant outside its
        /// scope, then it is refused, whatever its roles.
        #[test]
        fn no_key_reaches_outside_its_tenant(
            method in 0..TABLE.len(),
            roles in proptest::sample::subsequence(Role::ALL.to_vec(), 1..=Role::ALL.len()),
            own in "[a-z]{1,6}",
            other in "[a-z]{1,6}",
        ) {
            prop_assume!(own != other);
            let (method, need) = TABLE[method];
            let credential = key(Scope::Tenant(own.clone()), &roles);
            let allowed = authorize(&credential, method, &other).is_ok();
            prop_assert!(!allowed || !need.tenant);
            let own_allowed = authorize(&credential, method, &own).is_ok();
            prop_assert_eq!(own_allowed, need.roles.iter().any(|r| roles.contains(r)));
        }
    }
}

//! The supervisor's side of routing: every agent with their presence, the capacity they
//! use and the contacts they hold (`ListAgents`, `WatchAgents`), and forcing an agent's
//! presence (`SetAgentPresence`: sending someone away or offline). The view is read from the
//! engine itself, so it shows exactly what routing decides with.

use std::collections::BTreeMap;

use rezef_events::AgentId;
use rezef_events::event::Presence;
use rezef_proto::v1::{
    self, ListAgentsRequest, ListAgentsResponse, SetAgentPresenceRequest, SetAgentPresenceResponse,
};

use super::Local;
use super::desk::{Effects, Outgoing};
use super::profile;
use super::tenant::Tenant;
use crate::Result;
use crate::convert::{Check, ProtoEnum, presence_to_proto};

/// What a supervisor's change of presence tells the agent's session.
const BY_SUPERVISOR: &str = "set by a supervisor";

impl Local {
    pub(super) fn agents(&self, request: ListAgentsRequest) -> Result<ListAgentsResponse> {
        let mut check = Check::default();
        let tenant = check.tenant("tenant_id", request.tenant_id);
        let tenant = check.finish(|| tenant)?;
        self.desk.with_tenant(&tenant, |t| {
            let agents = t
                .engine
                .agents()
                .into_iter()
                .map(|agent| {
                    let mut in_use: BTreeMap<String, u32> = BTreeMap::new();
                    for held in &agent.holds {
                        *in_use.entry(held.channel.to_string()).or_default() += 1;
                    }
                    v1::AgentStatus {
                        connected: t.connected(&agent.profile.id),
                        profile: Some(profile::to_proto(&agent.profile)),
                        presence: presence_to_proto(agent.presence),
                        in_use: in_use.into_iter().collect(),
                        contacts: agent
                            .holds
                            .into_iter()
                            .map(|held| v1::HeldContact {
                                interaction_id: held.contact.to_string(),
                                channel: held.channel.to_proto(),
                                queue_id: held.queue,
                                assigned: held.assigned,
                                aside: held.aside,
                            })
                            .collect(),
                    }
                })
                .collect();
            Ok(ListAgentsResponse {
                agents,
                config_version: t.engine.routing().version,
            })
        })
    }

    pub(super) async fn set_agent_presence(
        &self,
        request: SetAgentPresenceRequest,
    ) -> Result<SetAgentPresenceResponse> {
        let mut check = Check::default();
        let tenant = check.tenant("tenant_id", request.tenant_id);
        let agent = check.id("agent_id", request.agent_id, true, AgentId::new);
        let presence = check.required::<Presence>("presence", request.presence);
        let (tenant, agent, presence) = check.finish(|| Some((tenant?, agent?, presence?)))?;
        let reason = if request.reason.is_empty() {
            BY_SUPERVISOR.to_owned()
        } else {
            request.reason
        };
        let now = self.desk.now();
        let effects = self.desk.with_tenant(&tenant, |t| {
            let before: Vec<_> = t
                .engine
                .offers()
                .filter(|offer| offer.agent == agent)
                .cloned()
                .collect();
            t.engine.set_presence(&agent, presence, now)?;
            let mut effects = Effects::default();
            effects.events.push(Tenant::presence_event(
                &tenant, &agent, presence, &reason, now,
            ));
            let outstanding: Vec<_> = t.engine.offers().map(|offer| offer.id).collect();
            for offer in before {
                if !outstanding.contains(&offer.id) {
                    effects
                        .messages
                        .push((agent.clone(), Outgoing::Withdrawn(offer, BY_SUPERVISOR)));
                }
            }
            effects
                .messages
                .push((agent.clone(), Outgoing::Presence(presence, BY_SUPERVISOR)));
            t.dispatch(&tenant, now, &mut effects);
            Ok(effects)
        })?;
        let offset = self.desk.apply(&tenant, effects).await?.unwrap_or_default();
        Ok(SetAgentPresenceResponse { offset })
    }
}

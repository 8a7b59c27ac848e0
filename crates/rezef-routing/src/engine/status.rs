//! What a supervisor sees of the agents: each one's profile, presence and the contacts they
//! hold now, offered or assigned. Read from the engine's state, never kept apart from it, so
//! it cannot drift from what routing decides with.

use rezef_events::event::Presence;
use rezef_events::{Channel, InteractionId};

use super::state::State;
use super::{AgentProfile, Engine};

/// One agent as a supervisor sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentStatus {
    pub profile: AgentProfile,
    pub presence: Presence,
    /// The contacts the agent holds, by contact id.
    pub holds: Vec<Held>,
}

/// A contact an agent holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub contact: InteractionId,
    pub channel: Channel,
    /// The queue it came from.
    pub queue: String,
    /// Accepted (else offered and not answered yet, or held for a consult).
    pub assigned: bool,
    /// The agent is drawn in by a warm transfer or a consult: the contact stays another
    /// agent's.
    pub aside: bool,
}

impl Engine {
    /// Every agent routing knows (logged in now or earlier), by id.
    pub fn agents(&self) -> Vec<AgentStatus> {
        let mut agents: Vec<AgentStatus> = self
            .agents
            .iter()
            .enumerate()
            .map(|(index, agent)| AgentStatus {
                profile: agent.profile.clone(),
                presence: agent.presence,
                holds: agent
                    .work
                    .iter()
                    .map(|(contact, channel)| {
                        let found = self
                            .contact_index
                            .get(contact)
                            .and_then(|seq| self.contacts.get(seq));
                        Held {
                            contact: contact.clone(),
                            channel: *channel,
                            queue: found
                                .map(|c| self.routing.queues[c.queue].id.clone())
                                .unwrap_or_default(),
                            assigned: found.is_some_and(|c| {
                                matches!(c.state, State::Assigned { agent, .. } if agent == index)
                            }),
                            aside: found
                                .and_then(|c| c.aside)
                                .is_some_and(|aside| aside.agent == index),
                        }
                    })
                    .collect(),
            })
            .collect();
        agents.sort_by(|a, b| a.profile.id.cmp(&b.profile.id));
        agents
    }
}

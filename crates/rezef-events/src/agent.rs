//! Agents' state as far as events tell it: their presence. Routing builds on it later.

use serde::{Deserialize, Serialize};

use crate::event::{Event, Payload, Presence};
use crate::ids::AgentId;
use crate::time::Timestamp;

/// An agent's current presence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    pub agent_id: AgentId,
    pub presence: Presence,
    pub custom_status: String,
    pub since: Timestamp,
    pub last_event_offset: u64,
}

impl AgentState {
    /// Folds an agent event into the agent's state (`None` before the first event).
    /// Returns `None` for events that are not about agents.
    pub fn fold(state: Option<Self>, offset: u64, event: &Event) -> Option<Self> {
        let Payload::AgentPresenceChanged {
            agent_id,
            presence,
            custom_status,
        } = &event.payload
        else {
            return state;
        };
        if state
            .as_ref()
            .is_some_and(|s| offset <= s.last_event_offset)
        {
            return state;
        }
        Some(Self {
            agent_id: agent_id.clone(),
            presence: *presence,
            custom_status: custom_status.clone(),
            since: event.occurred_at,
            last_event_offset: offset,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("agent state has only serializable fields")
    }

    pub fn from_bytes(bytes: &[u8]) -> crate::Result<Self> {
        postcard::from_bytes(bytes).map_err(crate::Error::DecodeState)
    }
}

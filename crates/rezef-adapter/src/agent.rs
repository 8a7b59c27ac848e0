//! An agent desktop's session with the backbone (`rezef.v1.Routing/AgentSession`): log in,
//! then receive offers (with the conversation's context) and answer them. Dropping the
//! session ends it; the backbone then gives the agent's offers to others.

use futures::StreamExt;
use rezef_proto::v1::{
    AgentProfile, AgentSessionRequest, Presence,
    agent_session_event::Event,
    agent_session_request::{
        Accept, Action, Complete, Consult, Decline, EndConsult, Login, SetPresence, Transfer,
        UpdateProfile,
    },
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::{Client, Error};

/// A logged-in agent.
#[derive(Debug)]
pub struct AgentSession {
    requests: mpsc::Sender<AgentSessionRequest>,
    events: tonic::Streaming<rezef_proto::v1::AgentSessionEvent>,
    /// The routing configuration's version when the session opened.
    pub config_version: u64,
}

impl AgentSession {
    /// Opens a session for `profile` in `tenant`, available unless `presence` says.
    pub async fn login(
        client: &Client,
        tenant: &str,
        profile: AgentProfile,
        presence: Option<Presence>,
    ) -> Result<Self, Error> {
        let (requests, outbound) = mpsc::channel(16);
        let login = Login {
            tenant_id: tenant.to_owned(),
            profile: Some(profile),
            presence: presence.map_or(0, |p| p as i32),
        };
        Self::request(&requests, Action::Login(login)).await?;
        let mut events = client
            .routing()
            .agent_session(ReceiverStream::new(outbound))
            .await?
            .into_inner();
        match events.next().await {
            Some(Ok(event)) => match event.event {
                Some(Event::LoggedIn(logged_in)) => Ok(Self {
                    requests,
                    events,
                    config_version: logged_in.config_version,
                }),
                other => Err(Error::Session(format!("expected a login, got {other:?}"))),
            },
            Some(Err(status)) => Err(status.into()),
            None => Err(Error::Session("the session closed at login".into())),
        }
    }

    /// The next event from the backbone; `None` once the session is over.
    pub async fn next(&mut self) -> Result<Option<Event>, Error> {
        match self.events.next().await {
            Some(Ok(event)) => Ok(event.event),
            Some(Err(status)) => Err(status.into()),
            None => Ok(None),
        }
    }

    pub async fn accept(&self, offer_id: u64) -> Result<(), Error> {
        Self::request(&self.requests, Action::Accept(Accept { offer_id })).await
    }

    pub async fn decline(&self, offer_id: u64, reason: &str) -> Result<(), Error> {
        let decline = Decline {
            offer_id,
            reason: reason.to_owned(),
        };
        Self::request(&self.requests, Action::Decline(decline)).await
    }

    pub async fn set_presence(&self, presence: Presence, custom_status: &str) -> Result<(), Error> {
        let presence = SetPresence {
            presence: presence as i32,
            custom_status: custom_status.to_owned(),
        };
        Self::request(&self.requests, Action::Presence(presence)).await
    }

    /// The agent finished a contact: their capacity is free again.
    pub async fn complete(&self, interaction_id: &str) -> Result<(), Error> {
        let complete = Complete {
            interaction_id: interaction_id.to_owned(),
        };
        Self::request(&self.requests, Action::Complete(complete)).await
    }

    /// New skills, languages or capacity, without logging out; answered with
    /// `profile_updated` (or `refused`).
    pub async fn update_profile(&self, profile: AgentProfile) -> Result<(), Error> {
        let update = UpdateProfile {
            profile: Some(profile),
        };
        Self::request(&self.requests, Action::UpdateProfile(update)).await
    }

    /// Hands a contact the agent holds to another agent or a queue (see the contract's
    /// `Transfer`); answered with `transfer_ended` (or `refused`).
    pub async fn transfer(&self, transfer: Transfer) -> Result<(), Error> {
        Self::request(&self.requests, Action::Transfer(transfer)).await
    }

    /// Asks another agent to consult on a contact this agent keeps; answered with `consult`
    /// (or `refused`).
    pub async fn consult(&self, interaction_id: &str, to_agent_id: &str) -> Result<(), Error> {
        let consult = Consult {
            interaction_id: interaction_id.to_owned(),
            to_agent_id: to_agent_id.to_owned(),
        };
        Self::request(&self.requests, Action::Consult(consult)).await
    }

    /// Ends a consult this agent is in.
    pub async fn end_consult(&self, interaction_id: &str) -> Result<(), Error> {
        let end = EndConsult {
            interaction_id: interaction_id.to_owned(),
        };
        Self::request(&self.requests, Action::EndConsult(end)).await
    }

    async fn request(
        requests: &mpsc::Sender<AgentSessionRequest>,
        action: Action,
    ) -> Result<(), Error> {
        requests
            .send(AgentSessionRequest {
                action: Some(action),
            })
            .await
            .map_err(|_| Error::Session("the session is closed".into()))
    }
}

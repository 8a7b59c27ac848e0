//! `AgentSession`: an agent desktop's stream. It starts with a login; then each request
//! (presence, accept, decline, transfer, consult, profile, complete) is carried out in turn
//! and refused on its own when it cannot be, and offers, withdrawals and assignments arrive
//! as routing makes them. A session that ends gives its offers back to the queues.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use rezef_events::event::Presence;
use rezef_events::{AgentId, InteractionId, TenantId};
use rezef_proto::v1::{AgentSessionEvent, AgentSessionRequest, agent_session_request::Action};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Response, Status, Streaming};
use tracing::{Instrument, debug, info_span};

use super::desk::{Desk, Effects, Outgoing};
use super::tenant::Tenant;
use super::{Local, profile};
use crate::convert::Check;
use crate::convert::routing as convert;
use crate::shutdown;
use crate::{Error, Result};

pub(super) type SessionStream =
    Pin<Box<dyn Stream<Item = Result<AgentSessionEvent, Status>> + Send>>;

impl Local {
    /// A session whose login (`first`) is for a tenant routed here.
    pub(super) async fn agent_session(
        &self,
        first: AgentSessionRequest,
        mut inbound: Streaming<AgentSessionRequest>,
    ) -> Result<Response<SessionStream>, Status> {
        let Some(Action::Login(login)) = first.action else {
            return Err(Error::invalid("login", "the session must start with a login").into());
        };
        let mut check = Check::default();
        let tenant = check.tenant("login.tenant_id", login.tenant_id);
        let profile = profile::from_proto(&mut check, "login.profile", login.profile);
        let presence = match login.presence {
            0 => Some(Presence::Available),
            value => check.required::<Presence>("login.presence", value),
        };
        let (tenant, profile, presence) =
            (check.finish(|| Some((tenant?, profile?, presence?)))).map_err(Error::from)?;
        let agent = profile.id.clone();
        let (sender, receiver) = mpsc::channel(64);
        // No first offer of a contact whose end was acknowledged before the login.
        self.desk.followed_up(self.desk.max_wait()).await?;
        let now = self.desk.now();
        let effects = self.desk.with_tenant(&tenant, |t| {
            t.engine.upsert_agent(profile, now);
            t.engine.set_presence(&agent, presence, now)?;
            // `logged_in` goes first, before any offer another request makes once the
            // session is known: queued while the lock is held, on a channel still empty.
            let logged_in = convert::logged_in(t.engine.routing().version);
            sender
                .try_send(Ok(logged_in))
                .map_err(|_| Error::Unavailable("the session closed at login".into()))?;
            t.connect(agent.clone(), sender.clone());
            let mut effects = Effects::default();
            effects.events.push(Tenant::presence_event(
                &tenant,
                &agent,
                presence,
                "logged in",
                now,
            ));
            let offers = t.engine.dispatch(now);
            // A desk that logs in again before its old session is seen to end (a network
            // blip) gets the offers still outstanding: they went to the old session.
            t.resend_offers(&agent, &offers, &mut effects);
            t.offered(&tenant, offers, now, &mut effects);
            Ok(effects)
        })?;
        let session = Session {
            desk: self.desk.clone(),
            tenant: tenant.clone(),
            agent: agent.clone(),
            sender,
        };
        let span = info_span!("agent_session", %tenant, %agent);
        tokio::spawn(
            async move {
                if let Err(error) = session.desk.apply(&session.tenant, effects).await {
                    session.refuse(error).await;
                }
                loop {
                    let message = tokio::select! {
                        message = inbound.next() => message,
                        () = session.desk.backbone().closed() => None,
                    };
                    match message {
                        Some(Ok(AgentSessionRequest {
                            action: Some(action),
                        })) => {
                            if let Err(error) = session.handle(action).await {
                                session.refuse(error).await;
                            }
                        }
                        Some(Ok(_)) => {
                            session
                                .refuse(Error::invalid("action", "is required"))
                                .await
                        }
                        Some(Err(_)) | None => break,
                    }
                }
                session.end().await;
                if session.desk.backbone().is_closing() {
                    shutdown::end(&session.sender).await;
                }
            }
            .instrument(span),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

/// One agent's session, after a valid login.
struct Session {
    desk: Arc<Desk>,
    tenant: TenantId,
    agent: AgentId,
    sender: mpsc::Sender<Result<AgentSessionEvent, Status>>,
}

impl Session {
    async fn refuse(&self, error: Error) {
        let refused = convert::refused(&Status::from(error));
        let _ = self.sender.send(Ok(refused)).await;
    }

    /// Carries out one request of the session.
    async fn handle(&self, action: Action) -> Result<()> {
        if matches!(action, Action::Accept(_)) {
            // A contact whose end was acknowledged before the accept is not the agent's.
            self.desk.followed_up(self.desk.max_wait()).await?;
        }
        let now = self.desk.now();
        let tenant = &self.tenant;
        let agent = &self.agent;
        let effects = self.desk.with_tenant(tenant, |t| {
            let mut effects = Effects::default();
            match action {
                Action::Login(_) => {
                    return Err(Error::FailedPrecondition("already logged in".into()));
                }
                Action::Presence(p) => {
                    let mut check = Check::default();
                    let presence = check.required::<Presence>("presence.presence", p.presence);
                    let presence = check.finish(|| presence)?;
                    t.engine.set_presence(agent, presence, now)?;
                    effects.events.push(Tenant::presence_event(
                        tenant,
                        agent,
                        presence,
                        &p.custom_status,
                        now,
                    ));
                }
                Action::Accept(accept) => {
                    let offer =
                        t.engine
                            .accept(rezef_routing::OfferId(accept.offer_id), agent, now)?;
                    if t.accepted(tenant, &offer, now, &mut effects) {
                        t.assigned(tenant, offer, now, &mut effects);
                    }
                }
                Action::Decline(decline) => {
                    t.engine
                        .decline(rezef_routing::OfferId(decline.offer_id), agent)?;
                    if let Some(presence) = t
                        .engine
                        .presence(agent)
                        .filter(|p| *p != Presence::Available)
                    {
                        effects.events.push(Tenant::presence_event(
                            tenant,
                            agent,
                            presence,
                            "declined offers",
                            now,
                        ));
                        effects.messages.push((
                            agent.clone(),
                            Outgoing::Presence(presence, "too many declined offers"),
                        ));
                    }
                }
                Action::Transfer(transfer) => {
                    t.transfer(tenant, agent, transfer, now, &mut effects)?;
                }
                Action::Consult(consult) => {
                    t.consult(agent, consult, now)?;
                }
                Action::EndConsult(end) => {
                    t.end_consult(tenant, agent, end, now, &mut effects)?;
                }
                Action::UpdateProfile(update) => {
                    let profile = profile::update(agent, update)?;
                    t.engine.upsert_agent(profile, now);
                    effects
                        .messages
                        .push((agent.clone(), Outgoing::ProfileUpdated));
                }
                Action::Complete(complete) => {
                    let contact = InteractionId::new(complete.interaction_id)
                        .map_err(|reason| Error::invalid("complete.interaction_id", reason))?;
                    if t.engine.assigned_to(&contact) != Some(agent) {
                        return Err(Error::FailedPrecondition(format!(
                            "contact {contact} is not assigned to {agent}"
                        )));
                    }
                    t.engine.complete(&contact, now)?;
                    t.forget_contact(&contact);
                }
            }
            t.dispatch(tenant, now, &mut effects);
            Ok(effects)
        })?;
        self.desk.apply(tenant, effects).await?;
        Ok(())
    }

    /// The agent left: offers go back to the queues, the agent is offline. At shutdown
    /// every session ends at once, and a dispatch each (thousands of them, under the lock,
    /// for offers nobody would see) could take tens of seconds: the agent just goes offline.
    async fn end(&self) {
        let closing = self.desk.backbone().is_closing();
        let now = self.desk.now();
        let effects = self.desk.with_tenant(&self.tenant, |t| {
            if !t.disconnect(&self.agent, &self.sender) {
                return Ok(Effects::default());
            }
            t.engine.disconnect(&self.agent, now)?;
            let mut effects = Effects::default();
            effects.events.push(Tenant::presence_event(
                &self.tenant,
                &self.agent,
                Presence::Offline,
                "session ended",
                now,
            ));
            if !closing {
                t.dispatch(&self.tenant, now, &mut effects);
            }
            Ok(effects)
        });
        if let Ok(effects) = effects {
            let _ = self.desk.apply(&self.tenant, effects).await;
        }
        debug!("agent session ended");
    }
}

//! The events a webhook becomes, with ids stable per Twilio `Sid` and kind
//! (`twilio:CA…:started`): Twilio sends a webhook again when it got no answer in time, and
//! the copy's events then carry the same ids, which the server applies once.

use rezef_adapter::{EventFactory, proto};

use crate::error::WebhookError;
use crate::settings::Settings;
use crate::webhook::Webhook;

/// Events about one call or message of one caller.
#[derive(Debug)]
pub struct Contact {
    factory: EventFactory,
    sid: String,
}

impl Contact {
    /// `sid`'s events on `channel` (interaction `interaction`), about the customer of phone
    /// `from`, in the webhook's account's tenant.
    pub fn new(
        settings: &Settings,
        hook: &Webhook,
        channel: proto::Channel,
        interaction: &str,
        sid: &str,
        from: &str,
    ) -> Self {
        let factory = EventFactory::new(&hook.account.tenant, &settings.twilio.source)
            .identity(proto::IdentityKind::Phone, from)
            .on(channel, interaction);
        Self {
            factory,
            sid: sid.to_owned(),
        }
    }

    /// The call a voice webhook is about: its `CallSid` is the interaction, its `From` the
    /// caller.
    pub fn call(settings: &Settings, hook: &Webhook) -> Result<Self, WebhookError> {
        let (call, from) = (hook.require("CallSid")?, hook.require("From")?);
        Ok(Self::new(
            settings,
            hook,
            proto::Channel::Voice,
            call,
            call,
            from,
        ))
    }

    /// An event of `payload` whose id is the `sid`'s and `kind`'s.
    pub fn event(&self, kind: &str, payload: proto::event::Payload) -> proto::Event {
        let mut event = self.factory.event(payload);
        event.event_id = format!("twilio:{}:{kind}", self.sid);
        event
    }

    pub fn customer(&self) -> proto::CustomerRef {
        self.factory.customer_ref()
    }
}

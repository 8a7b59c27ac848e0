//! The adapter's settings (TOML, as `deploy/rezef-twilio.toml` shows), layered by the
//! runtime: defaults → `--config` file → `REZEF_TWILIO_` variables. Beside the runtime's
//! `[rezef]`, `[spool]` and `[http]`: `[twilio]` (where Twilio reaches the adapter),
//! `[[accounts]]` (each Twilio account's auth token and the Rezef tenant it serves) and
//! `[voice]` (the menu, the greeting, where calls go).

use std::collections::BTreeMap;
use std::time::Duration;

use rezef_adapter::service::{self, HttpSettings, RezefSettings, SpoolSettings};
use serde::{Deserialize, Serialize};

use crate::twiml::Connect;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub rezef: RezefSettings,
    pub spool: SpoolSettings,
    pub http: HttpSettings,
    pub twilio: TwilioSettings,
    pub accounts: Vec<Account>,
    pub voice: VoiceSettings,
}

impl Settings {
    /// The account a webhook names by its `AccountSid`.
    pub fn account(&self, sid: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.account_sid == sid)
    }

    /// Mistakes the layers cannot catch.
    pub fn validate(&self) -> Result<(), String> {
        if self.accounts.is_empty() {
            return Err("accounts: at least one [[accounts]] is needed".into());
        }
        for (n, account) in self.accounts.iter().enumerate() {
            if account.auth_token.is_empty() || account.tenant.is_empty() {
                return Err(format!("accounts[{n}]: auth_token and tenant are required"));
            }
        }
        if !(self.twilio.public_url.starts_with("https://")
            || self.twilio.public_url.starts_with("http://"))
        {
            return Err("twilio.public_url: an http(s):// URL is required".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioSettings {
    /// The scheme, host (and port, and path prefix) Twilio calls, as configured in its
    /// console: signatures are over that URL, not over what a proxy passes on. The request's
    /// path and query are appended (`https://voice.example.com` + `/twilio/voice`).
    pub public_url: String,
    /// The `source` of the events published.
    pub source: String,
    /// How long a call waits for `ResumeConversation` before getting the menu (Twilio
    /// waits 15 s for TwiML).
    #[serde(with = "service::millis")]
    pub resume_timeout_ms: Duration,
}

impl Default for TwilioSettings {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8090".into(),
            source: "twilio".into(),
            resume_timeout_ms: Duration::from_millis(1500),
        }
    }
}

/// A Twilio account (or subaccount), by the `AccountSid` its webhooks carry.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Account {
    pub account_sid: String,
    /// The account's auth token (the key of its signatures).
    pub auth_token: String,
    /// The Rezef tenant its calls and messages belong to.
    pub tenant: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoiceSettings {
    /// The language `<Say>` speaks (BCP 47, one of Twilio's); unset: Twilio's default.
    pub language: Option<String>,
    /// Said to a caller whose open conversation Rezef knows; `{topic}` is its intent.
    pub greeting: String,
    /// The menu's prompt, said while the keys are gathered.
    pub menu_prompt: String,
    /// Said when the keys pressed are no option.
    pub retry_prompt: String,
    /// Said before connecting a caller who chose.
    pub connecting: String,
    /// The menu: keys to intents.
    pub options: Vec<MenuOption>,
    /// How intents are said in the greeting (`"billing.dispute" = "your billing dispute"`);
    /// an intent not here is said as written, dots and underscores as spaces.
    pub topics: BTreeMap<String, String>,
    /// Where calls go once self-service is over, unless their option says otherwise.
    pub connect: Connect,
}

impl Default for VoiceSettings {
    fn default() -> Self {
        Self {
            language: None,
            greeting: "Welcome back. We see you are calling about {topic}. Connecting you now."
                .into(),
            menu_prompt: "Welcome. Please choose from the following options.".into(),
            retry_prompt: "Sorry, that is not an option.".into(),
            connecting: "Connecting you now.".into(),
            options: Vec::new(),
            topics: BTreeMap::new(),
            connect: Connect::Enqueue("support".into()),
        }
    }
}

impl VoiceSettings {
    /// How `intent` is said.
    pub fn topic(&self, intent: &str) -> String {
        (self.topics.get(intent).cloned())
            .or_else(|| {
                (self.options.iter())
                    .find(|o| o.intent == intent)
                    .map(|o| o.label.clone())
            })
            .unwrap_or_else(|| intent.replace(['.', '_'], " "))
    }

    /// The option for the keys pressed.
    pub fn option(&self, digits: &str) -> Option<&MenuOption> {
        self.options.iter().find(|o| o.digits == digits)
    }

    /// How many keys the menu gathers.
    pub fn digits(&self) -> u32 {
        (self.options.iter())
            .map(|o| o.digits.len() as u32)
            .max()
            .unwrap_or(1)
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MenuOption {
    /// The keys (`"1"`).
    pub digits: String,
    /// The intent the choice is (`"billing"`).
    pub intent: String,
    /// How the option is said in the greeting's `{topic}`.
    pub label: String,
    /// Where the call goes; unset: `[voice] connect`.
    pub connect: Option<Connect>,
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_deployed_example_loads_and_validates() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/rezef-twilio.toml");
        let settings: Settings =
            rezef_adapter::service::load(Some(&file), "REZEF_TWILIO_TEST_").expect("loads");
        assert_eq!(settings.validate(), Ok(()));
        assert_eq!(settings.accounts[0].tenant, "acme");
        let billing = settings.voice.option("1").expect("option 1");
        assert_eq!(billing.connect, Some(Connect::Enqueue("billing".into())));
        assert_eq!(
            settings.voice.topic("billing.dispute"),
            "your billing dispute"
        );
        assert_eq!(settings.voice.topic("tech_support"), "technical support");
        assert_eq!(settings.voice.topic("lost.card"), "lost card");
    }

    #[test]
    fn settings_without_an_account_are_refused() {
        let error = Settings::default().validate().expect_err("refused");
        assert!(error.starts_with("accounts"), "{error}");
    }
}

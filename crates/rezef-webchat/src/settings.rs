//! The adapter's settings (TOML, as `deploy/rezef-webchat.toml` shows), layered by the
//! runtime: defaults → `--config` file → `REZEF_WEBCHAT_` variables. Beside the runtime's
//! `[rezef]`, `[spool]` and `[http]`: `[webchat]` (the tenant, the pages allowed to open a
//! chat, the limits) and `[bot]` (the rule bot that answers first, `bot.rs`).

use std::time::Duration;

use rezef_adapter::service::{self, HttpSettings, RezefSettings, SpoolSettings};
use serde::{Deserialize, Serialize};

use crate::bot::BotSettings;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub rezef: RezefSettings,
    pub spool: SpoolSettings,
    pub http: HttpSettings,
    pub webchat: WebchatSettings,
    pub bot: BotSettings,
}

impl Settings {
    /// Mistakes the layers cannot catch.
    pub fn validate(&self) -> Result<(), String> {
        let chat = &self.webchat;
        if chat.tenant.is_empty() {
            return Err("webchat.tenant is required".into());
        }
        if chat.source.is_empty() {
            return Err("webchat.source is required".into());
        }
        if chat.max_message_bytes < 64 {
            return Err("webchat.max_message_bytes: at least 64".into());
        }
        if let Some(origin) = (chat.allowed_origins.iter())
            .find(|o| *o != "*" && !(o.starts_with("https://") || o.starts_with("http://")))
        {
            return Err(format!(
                "webchat.allowed_origins: {origin:?} is not \"*\" nor an http(s):// origin"
            ));
        }
        self.bot.validate()
    }
}

/// `[webchat]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebchatSettings {
    /// The Rezef tenant the chats belong to.
    pub tenant: String,
    /// The `source` of the events published.
    pub source: String,
    /// Origins of the pages that may open a chat (`https://www.example.com`, exact, no
    /// path); the adapter's own pages always may. `"*"`: any page. A browser's upgrade from
    /// another origin is refused with 403. A client that sends no `Origin` (not a browser)
    /// is let in: the check protects visitors' browsers, it does not authenticate.
    pub allowed_origins: Vec<String>,
    /// A frame from the visitor above this many bytes closes the chat with an error frame
    /// (`too_large`).
    pub max_message_bytes: usize,
    /// How long a new chat waits for `ResumeConversation` before starting without the
    /// story (Rezef down or slow).
    #[serde(with = "service::millis")]
    pub resume_timeout_ms: Duration,
    /// How many messages of the conversation a visitor coming back is shown (at most 50).
    pub transcript_limit: u32,
    /// How long a chat whose connection dropped stays open for the widget to reconnect
    /// and carry it on (a reload, a network change); then it ends, `CUSTOMER_LEFT`.
    #[serde(with = "service::millis")]
    pub reconnect_grace_ms: Duration,
}

impl Default for WebchatSettings {
    fn default() -> Self {
        Self {
            tenant: String::new(),
            source: "webchat".into(),
            allowed_origins: Vec::new(),
            max_message_bytes: 4096,
            resume_timeout_ms: Duration::from_millis(1500),
            transcript_limit: 20,
            reconnect_grace_ms: Duration::from_secs(30),
        }
    }
}

impl WebchatSettings {
    /// Whether a page of `origin` may open a chat with an adapter reached as `host`.
    pub fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        let same = host.is_some_and(|host| {
            (origin
                .strip_prefix("http://")
                .or(origin.strip_prefix("https://")))
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
        });
        same || (self.allowed_origins.iter()).any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_deployed_example_loads_and_validates() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/rezef-webchat.toml");
        let settings: Settings =
            rezef_adapter::service::load(Some(&file), "REZEF_WEBCHAT_TEST_").expect("loads");
        assert_eq!(settings.validate(), Ok(()));
        assert_eq!(settings.webchat.tenant, "acme");
        assert!(!settings.bot.answers.is_empty());
    }

    #[test]
    fn settings_without_a_tenant_are_refused() {
        let error = Settings::default().validate().expect_err("refused");
        assert!(error.starts_with("webchat.tenant"), "{error}");
    }

    #[test]
    fn an_origin_is_allowed_when_listed_or_the_adapters_own() {
        let chat = WebchatSettings {
            allowed_origins: vec!["https://www.example.com".into()],
            ..Default::default()
        };
        assert!(chat.origin_allowed("https://www.example.com", None));
        assert!(chat.origin_allowed("http://127.0.0.1:8095", Some("127.0.0.1:8095")));
        assert!(!chat.origin_allowed("https://evil.example.net", Some("127.0.0.1:8095")));
        assert!(!chat.origin_allowed("https://www.example.com.evil.net", None));
        let any = WebchatSettings {
            allowed_origins: vec!["*".into()],
            ..Default::default()
        };
        assert!(any.origin_allowed("https://anywhere.example", None));
    }
}

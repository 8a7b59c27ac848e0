//! What day to simulate: its scale, when the centre is open, how customers arrive and what
//! they want, and how patient they are. [`Config::new`] gives a realistic weekday; every
//! field can be changed before [`crate::simulate`] (docs/simulate.md lists them).

use std::time::{Duration, SystemTime};

use rezef_proto::v1::Channel;

use crate::Error;

/// Relative arrival rate by hour of the day: a weekday's two peaks, mid-morning and
/// mid-afternoon, a lunch dip and a quiet night.
pub const WEEKDAY: [u32; 24] = [
    1, 1, 1, 1, 1, 2, 4, 10, 30, 55, 70, 68, 55, 50, 58, 64, 60, 48, 35, 22, 14, 8, 4, 2,
];

/// A need customers call about: its queue (the skill that serves it), how often it comes,
/// how often self service settles it and how often an agent resolves it.
#[derive(Debug, Clone, PartialEq)]
pub struct Intent {
    pub name: String,
    pub queue: String,
    pub weight: u32,
    /// Share of contacts the IVR or the bot resolves (contained).
    pub self_service: f64,
    /// Share of contacts an agent answers that the wrap-up records as resolved.
    pub resolved: f64,
}

impl Intent {
    pub fn new(name: &str, queue: &str, weight: u32, self_service: f64, resolved: f64) -> Self {
        Self {
            name: name.into(),
            queue: queue.into(),
            weight,
            self_service,
            resolved,
        }
    }
}

/// One day of a contact centre (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub tenant: String,
    /// The adapters' `source` on every event.
    pub source: String,
    pub seed: u64,
    /// Midnight of the simulated day; hours count from it.
    pub day_start: SystemTime,
    /// Nothing after this time is simulated (`--today`: now); at most the day's end.
    pub until: Option<SystemTime>,
    /// Contacts with a new need expected over the day (Poisson); returns come on top.
    pub contacts: u32,
    pub agents: u32,
    /// Contacts an agent handles at once on written and messaging channels; a call takes
    /// the agent whole.
    pub agent_capacity: u32,
    /// Business hours `[open, close)`, whole hours of the day; agents work them.
    pub open_hour: u32,
    pub close_hour: u32,
    /// Relative arrival rate by hour ([`WEEKDAY`]).
    pub profile: [u32; 24],
    /// Channels new needs arrive on, with weights.
    pub channels: Vec<(Channel, u32)>,
    pub intents: Vec<Intent>,
    /// Customers' languages (BCP 47), with weights; the first is every agent's.
    pub languages: Vec<(String, u32)>,
    /// Mean patience in a queue (exponential), by kind of channel, in seconds.
    pub patience_call_secs: f64,
    pub patience_chat_secs: f64,
    pub patience_messaging_secs: f64,
    /// Share of callers who hang up in the IVR, and of chatters who leave the bot.
    pub ivr_abandon: f64,
    pub bot_abandon: f64,
    /// A caller is offered a callback when the expected wait is longer than this, and
    /// takes it with probability `callback_accept`; the agent reaches them with
    /// probability `callback_reached`.
    pub callback_after: Duration,
    pub callback_accept: f64,
    pub callback_reached: f64,
    /// Share of needs left unresolved (given up, not reached, not resolved) whose
    /// customer comes back on another channel the same day: the same conversation goes on.
    pub continuation: f64,
    /// Share of resolved needs whose customer comes back about the same intent the same
    /// day: the conversation reopens (a repeat contact, first-contact resolution missed).
    pub repeat: f64,
    /// Share of answered contacts whose customer answers the survey.
    pub survey: f64,
}

impl Config {
    /// A realistic weekday for `contacts` new needs and `agents` agents, open 08:00-20:00.
    pub fn new(
        tenant: impl Into<String>,
        day_start: SystemTime,
        contacts: u32,
        agents: u32,
    ) -> Self {
        Self {
            tenant: tenant.into(),
            source: "rezef-simulate".into(),
            seed: 1,
            day_start,
            until: None,
            contacts,
            agents,
            agent_capacity: 3,
            open_hour: 8,
            close_hour: 20,
            profile: WEEKDAY,
            channels: vec![
                (Channel::Voice, 50),
                (Channel::Webchat, 20),
                (Channel::Whatsapp, 12),
                (Channel::Sms, 3),
                (Channel::Email, 15),
            ],
            intents: vec![
                Intent::new("billing.dispute", "billing", 20, 0.05, 0.75),
                Intent::new("billing.payment_arrangement", "billing", 10, 0.15, 0.85),
                Intent::new("orders.where_is_my_order", "orders", 25, 0.40, 0.90),
                Intent::new("account.password_reset", "support", 15, 0.50, 0.90),
                Intent::new("plans.upgrade", "sales", 10, 0.05, 0.80),
                Intent::new("support.technical_fault", "support", 20, 0.10, 0.70),
            ],
            languages: vec![("he".into(), 65), ("en".into(), 20), ("ar".into(), 15)],
            patience_call_secs: 180.0,
            patience_chat_secs: 300.0,
            patience_messaging_secs: 3600.0,
            ivr_abandon: 0.05,
            bot_abandon: 0.08,
            callback_after: Duration::from_secs(120),
            callback_accept: 0.5,
            callback_reached: 0.85,
            continuation: 0.35,
            repeat: 0.05,
            survey: 0.25,
        }
    }

    /// The queues, in the order the intents name them first.
    pub fn queues(&self) -> Vec<&str> {
        let mut queues: Vec<&str> = Vec::new();
        for intent in &self.intents {
            if !queues.contains(&intent.queue.as_str()) {
                queues.push(&intent.queue);
            }
        }
        queues
    }

    /// Refuses a configuration the simulation cannot run, naming the setting.
    pub fn validate(&self) -> Result<(), Error> {
        if self.tenant.is_empty() {
            return Err(Error::invalid("tenant", "is required"));
        }
        if !(1..=10_000_000).contains(&self.contacts) {
            return Err(Error::invalid("contacts", "must be 1 to 10,000,000"));
        }
        if !(1..=100_000).contains(&self.agents) {
            return Err(Error::invalid("agents", "must be 1 to 100,000"));
        }
        if !(1..=100).contains(&self.agent_capacity) {
            return Err(Error::invalid("agent_capacity", "must be 1 to 100"));
        }
        if self.open_hour >= self.close_hour || self.close_hour > 24 {
            return Err(Error::invalid(
                "open_hour",
                format!(
                    "business hours {}:00-{}:00 must open before they close, by 24:00",
                    self.open_hour, self.close_hour
                ),
            ));
        }
        if self.profile.iter().all(|rate| *rate == 0) {
            return Err(Error::invalid("profile", "has no arrivals at any hour"));
        }
        fn none(mut weights: impl Iterator<Item = u32>) -> bool {
            weights.all(|w| w == 0)
        }
        if none(self.channels.iter().map(|(_, w)| *w)) {
            return Err(Error::invalid("channels", "needs a channel with a weight"));
        }
        if none(self.intents.iter().map(|i| i.weight)) {
            return Err(Error::invalid("intents", "needs an intent with a weight"));
        }
        if none(self.languages.iter().map(|(_, w)| *w)) {
            return Err(Error::invalid(
                "languages",
                "needs a language with a weight",
            ));
        }
        let shares = [
            ("ivr_abandon", self.ivr_abandon),
            ("bot_abandon", self.bot_abandon),
            ("callback_accept", self.callback_accept),
            ("callback_reached", self.callback_reached),
            ("continuation", self.continuation),
            ("repeat", self.repeat),
            ("survey", self.survey),
        ];
        let intent_shares = self.intents.iter().flat_map(|intent| {
            [
                ("intents.self_service", intent.self_service),
                ("intents.resolved", intent.resolved),
            ]
        });
        for (setting, share) in shares.into_iter().chain(intent_shares) {
            if !(0.0..=1.0).contains(&share) {
                return Err(Error::invalid(
                    setting,
                    format!("{share} is not between 0 and 1"),
                ));
            }
        }
        let patience = [
            ("patience_call_secs", self.patience_call_secs),
            ("patience_chat_secs", self.patience_chat_secs),
            ("patience_messaging_secs", self.patience_messaging_secs),
        ];
        for (setting, secs) in patience {
            if !(secs.is_finite() && secs > 0.0) {
                return Err(Error::invalid(setting, "must be more than 0 seconds"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> Config {
        Config::new("acme", SystemTime::UNIX_EPOCH, 100, 5)
    }

    #[test]
    fn the_default_day_is_valid_and_names_its_queues_once() {
        assert_eq!(day().validate(), Ok(()));
        assert_eq!(day().queues(), ["billing", "orders", "support", "sales"]);
    }

    #[test]
    fn a_setting_out_of_range_is_refused_by_name() {
        let refused = |change: fn(&mut Config)| {
            let mut config = day();
            change(&mut config);
            match config.validate() {
                Err(Error::Invalid { setting, .. }) => setting,
                Ok(()) => "accepted",
            }
        };
        assert_eq!(refused(|c| c.contacts = 0), "contacts");
        assert_eq!(refused(|c| c.agents = 0), "agents");
        assert_eq!(refused(|c| c.close_hour = c.open_hour), "open_hour");
        assert_eq!(refused(|c| c.profile = [0; 24]), "profile");
        assert_eq!(refused(|c| c.continuation = 1.5), "continuation");
        assert_eq!(
            refused(|c| c.intents[0].resolved = -0.1),
            "intents.resolved"
        );
        assert_eq!(
            refused(|c| c.patience_call_secs = 0.0),
            "patience_call_secs"
        );
        assert_eq!(refused(|c| c.channels.clear()), "channels");
    }
}

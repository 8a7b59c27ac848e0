//! A tenant's measurement rules: the service-level target per queue and channel, the
//! short-abandon threshold, the first-contact-resolution window and the business hours per
//! queue. Figures depend on them, so a change of rules is a rebuild of the measurement, as
//! for the journey fold's policy.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use rezef_events::Channel;

use crate::error::{Error, Result};
use crate::hours::WeeklySchedule;

/// The target of a real-time channel with none configured.
const REAL_TIME_TARGET_SECS: u64 = 20;
/// Email and web forms: answered within a working day.
const WRITTEN_TARGET_SECS: u64 = 24 * 3600;
/// Social posts are public: an hour.
const SOCIAL_TARGET_SECS: u64 = 3600;

/// Whether a channel is written rather than live: it has a first-response time, not a
/// service level (email, web forms, social posts).
pub fn is_written(channel: Option<Channel>) -> bool {
    matches!(
        channel,
        Some(Channel::Email | Channel::WebForm | Channel::Social)
    )
}

/// One tenant's measurement rules; every field has a default. See `docs/measurement.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeasureConfig {
    /// Service-level target (answered within) per channel; channels not named take 20 s,
    /// email and web forms 24 h, social 1 h.
    pub target_seconds: BTreeMap<Channel, u64>,
    /// Targets per queue, over the channel's.
    pub queue_target_seconds: BTreeMap<String, u64>,
    /// Contacts abandoned in the queue sooner than this are left out of the classic figure
    /// (Genesys's short abandons).
    pub short_abandon_seconds: u64,
    /// A resolved need whose customer does not come back about the same intent within this
    /// many days was resolved at first contact.
    pub fcr_window_days: u32,
    /// Opening hours per queue id.
    pub business_hours: BTreeMap<String, WeeklySchedule>,
    /// Opening hours of queues not named, and of contacts that reached no queue. `None`:
    /// always open.
    pub default_hours: Option<WeeklySchedule>,
}

impl Default for MeasureConfig {
    fn default() -> Self {
        Self {
            target_seconds: BTreeMap::new(),
            queue_target_seconds: BTreeMap::new(),
            short_abandon_seconds: 5,
            fcr_window_days: 7,
            business_hours: BTreeMap::new(),
            default_hours: None,
        }
    }
}

impl MeasureConfig {
    /// Checks the rules, naming the first field that is wrong.
    pub fn validate(&self) -> Result<()> {
        let targets = (self.target_seconds.iter())
            .map(|(channel, secs)| (format!("channel {channel}"), *channel, *secs))
            .chain(
                (self.queue_target_seconds.iter())
                    .map(|(queue, secs)| (format!("queue {queue}"), Channel::Voice, *secs)),
            );
        for (what, channel, secs) in targets {
            if secs == 0 {
                return Err(Error::ZeroTarget { what });
            }
            if !is_written(Some(channel)) && self.short_abandon_seconds >= secs {
                return Err(Error::ShortAbandonNotBelowTarget {
                    short: self.short_abandon_seconds,
                    what,
                    target: secs,
                });
            }
        }
        if self.short_abandon_seconds >= REAL_TIME_TARGET_SECS && !self.real_time_channels_all_set()
        {
            return Err(Error::ShortAbandonNotBelowTarget {
                short: self.short_abandon_seconds,
                what: "real-time channels by default".into(),
                target: REAL_TIME_TARGET_SECS,
            });
        }
        if !(1..=90).contains(&self.fcr_window_days) {
            return Err(Error::FcrWindowOutOfRange {
                days: self.fcr_window_days,
            });
        }
        let named = self.business_hours.iter().map(|(q, h)| (q.as_str(), h));
        let default = self.default_hours.iter().map(|h| ("default_hours", h));
        for (queue, hours) in named.chain(default) {
            if let Some(reason) = hours.problem() {
                let queue = queue.to_owned();
                return Err(Error::BadHours { queue, reason });
            }
        }
        Ok(())
    }

    /// Whether every real-time channel has a target of its own (then the 20 s default is
    /// never used).
    fn real_time_channels_all_set(&self) -> bool {
        const REAL_TIME: [Channel; 10] = [
            Channel::Voice,
            Channel::Ivr,
            Channel::Webchat,
            Channel::Video,
            Channel::Bot,
            Channel::Sms,
            Channel::Whatsapp,
            Channel::App,
            Channel::Branch,
            Channel::Callback,
        ];
        REAL_TIME
            .iter()
            .all(|c| self.target_seconds.contains_key(c))
    }

    /// The service-level target of a contact in `queue` on `channel`.
    pub fn target(&self, queue: Option<&str>, channel: Option<Channel>) -> Duration {
        let by_queue = queue.and_then(|q| self.queue_target_seconds.get(q));
        let by_channel = channel.and_then(|c| self.target_seconds.get(&c));
        let default = match channel {
            Some(Channel::Email | Channel::WebForm) => WRITTEN_TARGET_SECS,
            Some(Channel::Social) => SOCIAL_TARGET_SECS,
            _ => REAL_TIME_TARGET_SECS,
        };
        Duration::from_secs(*by_queue.or(by_channel).unwrap_or(&default))
    }

    /// The short-abandon threshold.
    pub fn short_abandon(&self) -> Duration {
        Duration::from_secs(self.short_abandon_seconds)
    }

    /// The first-contact-resolution window.
    pub fn fcr_window(&self) -> Duration {
        Duration::from_secs(u64::from(self.fcr_window_days) * 24 * 3600)
    }

    /// The hours of `queue` (or the default hours), `None` when it never closes.
    pub fn hours(&self, queue: Option<&str>) -> Option<&WeeklySchedule> {
        (queue.and_then(|q| self.business_hours.get(q))).or(self.default_hours.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_defaults_then_valid_with_20_s_for_voice_and_a_day_for_email() {
        let config = MeasureConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(
            config.target(None, Some(Channel::Voice)),
            Duration::from_secs(20)
        );
        assert_eq!(
            config.target(Some("q"), Some(Channel::Email)),
            Duration::from_secs(86_400)
        );
    }

    #[test]
    fn given_a_queue_target_then_it_wins_over_the_channel() {
        let mut config = MeasureConfig::default();
        config.queue_target_seconds.insert("vip".into(), 10);
        config.target_seconds.insert(Channel::Voice, 30);
        assert_eq!(
            config.target(Some("vip"), Some(Channel::Voice)),
            Duration::from_secs(10)
        );
        assert_eq!(
            config.target(Some("other"), Some(Channel::Voice)),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn given_bad_values_then_the_error_names_the_field() {
        let mut zero = MeasureConfig::default();
        zero.queue_target_seconds.insert("billing".into(), 0);
        assert_eq!(
            zero.validate().map_err(|e| e.to_string()),
            Err("service-level target for queue billing must be more than 0 seconds".into())
        );

        let long_short = MeasureConfig {
            short_abandon_seconds: 30,
            ..MeasureConfig::default()
        };
        assert!(matches!(
            long_short.validate(),
            Err(Error::ShortAbandonNotBelowTarget { short: 30, .. })
        ));

        let no_window = MeasureConfig {
            fcr_window_days: 0,
            ..MeasureConfig::default()
        };
        assert_eq!(
            no_window.validate(),
            Err(Error::FcrWindowOutOfRange { days: 0 })
        );

        let mut far = MeasureConfig::default();
        let hours = WeeklySchedule {
            utc_offset_minutes: 900,
            ..WeeklySchedule::default()
        };
        far.business_hours.insert("billing".into(), hours);
        assert!(matches!(far.validate(), Err(Error::BadHours { queue, .. }) if queue == "billing"));
    }

    #[test]
    fn given_unknown_fields_or_bad_spans_in_json_then_refused() {
        let unknown = serde_json::from_str::<MeasureConfig>(r#"{"sl_target": 20}"#);
        assert!(unknown.is_err());
        let bad_span =
            serde_json::from_str::<MeasureConfig>(r#"{"default_hours": {"mon": ["18:00-08:00"]}}"#);
        let message = bad_span.map(|_| ()).map_err(|e| e.to_string());
        assert!(message.is_err_and(|m| m.contains("ends before it starts")));
    }
}

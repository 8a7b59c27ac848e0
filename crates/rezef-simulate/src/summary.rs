//! What a day's events add up to, read back from the events themselves (so a day cut short
//! by `until` is summed as far as it went): the figures the measurement should report for
//! it, for the command line to print and the tests to compare with `Insights.GetReport`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rezef_proto::v1::{self, AbandonPoint, Channel, StepOutcome, event::Payload};

/// The answer target of real-time channels, from the customer's arrival.
pub const TARGET_SECS: i64 = 20;

/// A simulated day in figures (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub events: u64,
    pub customers: u64,
    /// Interactions started, and by channel.
    pub interactions: u64,
    pub by_channel: BTreeMap<String, u64>,
    /// Interactions that are over (ended, abandoned, callback not reached): the contacts
    /// the measurement counts.
    pub contacts: u64,
    /// Interactions still under way when the day (or `until`) ended.
    pub open: u64,
    pub contained: u64,
    /// Calls and chats that arrived while the centre was closed.
    pub while_closed: u64,
    pub abandoned_ivr: u64,
    pub abandoned_bot: u64,
    pub abandoned_queue: u64,
    pub callbacks: u64,
    pub callbacks_unreached: u64,
    /// Contacts an agent answered; those on real-time channels, and those of them over and
    /// answered within [`TARGET_SECS`] of the customer's arrival (the journey-true figure's
    /// in target).
    pub answered: u64,
    pub answered_real_time: u64,
    pub answered_in_target: u64,
    pub wrap_ups: u64,
    pub resolved: u64,
    pub surveys: u64,
    /// Customers who came on more than one channel, and the first of them by id.
    pub cross_channel_customers: u64,
    pub cross_channel_example: Option<String>,
}

#[derive(Debug, Default)]
struct Seen {
    channel: i32,
    started: Option<i128>,
    callback_owed: bool,
    over: bool,
    answered: bool,
    in_target: bool,
}

impl Summary {
    /// Sums the events of a day.
    pub fn of(events: &[v1::Event]) -> Self {
        let mut summary = Self {
            events: events.len() as u64,
            ..Self::default()
        };
        let mut seen: BTreeMap<&str, Seen> = BTreeMap::new();
        let mut channels: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
        for event in events {
            let Some(payload) = &event.payload else {
                continue;
            };
            if let Some(v1::customer_ref::Ref::CustomerId(customer)) =
                event.customer.as_ref().and_then(|c| c.r#ref.as_ref())
            {
                channels
                    .entry(customer.clone())
                    .or_default()
                    .insert(event.channel);
            }
            let at = event.occurred_at.map_or(0, nanos);
            let it = seen.entry(&event.interaction_id).or_default();
            match payload {
                Payload::InteractionStarted(_) => {
                    summary.interactions += 1;
                    let name = Channel::try_from(event.channel)
                        .map_or("?", |c| c.as_str_name())
                        .trim_start_matches("CHANNEL_")
                        .to_lowercase();
                    *summary.by_channel.entry(name).or_default() += 1;
                    *it = Seen {
                        channel: event.channel,
                        started: Some(at),
                        ..Seen::default()
                    };
                }
                Payload::SelfServiceStepCompleted(step) => {
                    if step.outcome == StepOutcome::Contained as i32 {
                        summary.contained += 1;
                    } else if step.step_id == "closed" {
                        summary.while_closed += 1;
                    }
                }
                Payload::ContactAbandoned(abandon) => {
                    match AbandonPoint::try_from(abandon.point) {
                        Ok(AbandonPoint::Ivr) => summary.abandoned_ivr += 1,
                        Ok(AbandonPoint::Bot) => summary.abandoned_bot += 1,
                        _ => summary.abandoned_queue += 1,
                    }
                    it.over = true;
                }
                Payload::CallbackRequested(_) => {
                    summary.callbacks += 1;
                    it.callback_owed = true;
                }
                Payload::CallbackCompleted(done) => {
                    it.callback_owed = false;
                    if !done.reached {
                        summary.callbacks_unreached += 1;
                        it.over = true;
                    }
                }
                Payload::ContactAssigned(_) if !it.answered => {
                    it.answered = true;
                    summary.answered += 1;
                    if it.channel != Channel::Email as i32 {
                        summary.answered_real_time += 1;
                        let waited = it.started.map_or(i128::MAX, |start| at - start);
                        it.in_target = waited <= i128::from(TARGET_SECS) * 1_000_000_000;
                    }
                }
                Payload::InteractionEnded(_) if !it.callback_owed => it.over = true,
                Payload::WrapUpRecorded(wrap_up) => {
                    summary.wrap_ups += 1;
                    summary.resolved += u64::from(wrap_up.need_resolved);
                }
                Payload::SurveyAnswered(_) => summary.surveys += 1,
                _ => {}
            }
        }
        summary.contacts = seen.values().filter(|it| it.over).count() as u64;
        summary.answered_in_target =
            (seen.values()).filter(|it| it.over && it.in_target).count() as u64;
        summary.open = (seen.values())
            .filter(|it| it.started.is_some() && !it.over)
            .count() as u64;
        summary.customers = channels.len() as u64;
        let crossed: Vec<String> = (channels.into_iter())
            .filter(|(_, on)| on.len() > 1)
            .map(|(customer, _)| customer)
            .collect();
        summary.cross_channel_customers = crossed.len() as u64;
        summary.cross_channel_example = crossed.into_iter().next();
        summary
    }

    pub fn abandoned(&self) -> u64 {
        self.abandoned_ivr + self.abandoned_bot + self.abandoned_queue
    }
}

fn nanos(at: prost_types::Timestamp) -> i128 {
    i128::from(at.seconds) * 1_000_000_000 + i128::from(at.nanos)
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let channels: Vec<String> = (self.by_channel.iter())
            .map(|(channel, n)| format!("{channel} {n}"))
            .collect();
        writeln!(
            f,
            "{} events, {} customers ({} on more than one channel)",
            self.events, self.customers, self.cross_channel_customers
        )?;
        writeln!(
            f,
            "{} interactions ({}); {} over, {} still open at the end",
            self.interactions,
            channels.join(", "),
            self.contacts,
            self.open
        )?;
        writeln!(
            f,
            "self service settled {}; {} arrived while closed",
            self.contained, self.while_closed
        )?;
        writeln!(
            f,
            "abandoned {}: {} in the IVR, {} with the bot, {} in a queue",
            self.abandoned(),
            self.abandoned_ivr,
            self.abandoned_bot,
            self.abandoned_queue
        )?;
        writeln!(
            f,
            "callbacks {} ({} not reached)",
            self.callbacks, self.callbacks_unreached
        )?;
        writeln!(
            f,
            "answered {}; real-time {}, of them {} within {TARGET_SECS} s of arrival",
            self.answered, self.answered_real_time, self.answered_in_target
        )?;
        write!(
            f,
            "wrap-ups {} ({} resolved), surveys {}",
            self.wrap_ups, self.resolved, self.surveys
        )?;
        match &self.cross_channel_example {
            Some(customer) => write!(f, "\ncame back on another channel: {customer}, for one"),
            None => Ok(()),
        }
    }
}

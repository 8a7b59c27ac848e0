//! The simulator's traffic (`rezef-simulate`, docs/simulate.md) as a benchmark's source:
//! whole simulated days of the bench tenant, one after another, ending yesterday, so every
//! time is in the past and the events keep a real day's shape (the night's trickle, the
//! peaks, returns across channels, agents' presence), where [`crate::contact_centre`] spreads
//! contacts evenly.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rezef_adapter::proto;
use rezef_simulate::{Config, simulate};

use crate::workload::{Source, TENANT};

const DAY: Duration = Duration::from_secs(86_400);
/// Events a simulated contact makes, about: what sizes the days to the events asked for.
const EVENTS_PER_CONTACT: u64 = 9;

/// Simulated days in sequence (see the module docs).
#[derive(Debug)]
pub struct Simulated {
    next_day: SystemTime,
    contacts: u32,
    seed: u64,
    pending: VecDeque<proto::Event>,
}

impl Simulated {
    /// Days of `contacts_per_day` new needs, enough of them for `events` events.
    pub fn new(events: u64, contacts_per_day: u32, seed: u64) -> Self {
        let per_day = u64::from(contacts_per_day.max(1)) * EVENTS_PER_CONTACT;
        let days = u32::try_from(events / per_day + 2).unwrap_or(u32::MAX);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let today = UNIX_EPOCH + Duration::from_secs(now.as_secs() - now.as_secs() % 86_400);
        Self {
            next_day: today - DAY.saturating_mul(days),
            contacts: contacts_per_day.max(1),
            seed,
            pending: VecDeque::new(),
        }
    }

    fn next_day(&mut self) {
        let mut config = Config::new(TENANT, self.next_day, self.contacts, self.contacts / 80 + 4);
        config.seed = self.seed;
        self.seed += 1;
        self.next_day += DAY;
        // The default configuration is valid for any scale the benchmarks ask.
        if let Ok(day) = simulate(&config) {
            self.pending.extend(day.events);
        }
    }
}

impl Source for Simulated {
    fn events(&mut self, size: usize) -> Vec<proto::Event> {
        while self.pending.len() < size {
            self.next_day();
        }
        self.pending.drain(..size).collect()
    }
}

//! Figures: the sum of measured records in one bucket (an interval, a queue, a channel, an
//! intent). Every field is a count or a histogram, so figures merge by adding, in any order
//! and grouping, and ratios are computed only when read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use rezef_events::event::AbandonPoint;
use rezef_events::journey::SurveyScores;

use crate::record::{Ending, Measured, Reason, Station, Verdict};
use crate::spread::{Percentiles, Spread};

/// One service level's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceLevel {
    /// Answered within the target.
    pub in_target: u64,
    /// In the denominator: answered plus abandoned (classic), or every contact that sought
    /// an agent, gave up or arrived while closed (journey-true).
    pub counted: u64,
    /// Left out.
    pub excluded: u64,
}

impl ServiceLevel {
    fn count(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Excluded => self.excluded += 1,
            Verdict::InTarget => {
                self.in_target += 1;
                self.counted += 1;
            }
            Verdict::Missed => self.counted += 1,
        }
    }

    fn merge(&mut self, other: &Self) {
        self.in_target += other.in_target;
        self.counted += other.counted;
        self.excluded += other.excluded;
    }

    /// In target over counted; `None` when nothing counted.
    pub fn ratio(&self) -> Option<f64> {
        ratio(self.in_target, self.counted)
    }
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Survey answers: CSAT 1..=5 (4 and 5 satisfied), NPS 0..=10 (9 and 10 promoters, 0 to 6
/// detractors), effort 1..=7.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Surveys {
    pub csat_sum: u64,
    pub csat_count: u64,
    pub csat_satisfied: u64,
    pub nps_promoters: u64,
    pub nps_passives: u64,
    pub nps_detractors: u64,
    pub effort_sum: u64,
    pub effort_count: u64,
}

impl Surveys {
    fn add(&mut self, scores: &SurveyScores) {
        if let Some(csat) = scores.csat {
            self.csat_sum += u64::from(csat);
            self.csat_count += 1;
            self.csat_satisfied += u64::from(csat >= 4);
        }
        match scores.nps {
            Some(9..) => self.nps_promoters += 1,
            Some(7..=8) => self.nps_passives += 1,
            Some(_) => self.nps_detractors += 1,
            None => {}
        }
        if let Some(effort) = scores.effort {
            self.effort_sum += u64::from(effort);
            self.effort_count += 1;
        }
    }

    fn merge(&mut self, o: &Self) {
        self.csat_sum += o.csat_sum;
        self.csat_count += o.csat_count;
        self.csat_satisfied += o.csat_satisfied;
        self.nps_promoters += o.nps_promoters;
        self.nps_passives += o.nps_passives;
        self.nps_detractors += o.nps_detractors;
        self.effort_sum += o.effort_sum;
        self.effort_count += o.effort_count;
    }

    /// Mean CSAT.
    pub fn csat(&self) -> Option<f64> {
        ratio(self.csat_sum, self.csat_count)
    }

    /// Net promoter score, −100 to 100.
    pub fn nps(&self) -> Option<f64> {
        let answers = self.nps_promoters + self.nps_passives + self.nps_detractors;
        let net = self.nps_promoters as f64 - self.nps_detractors as f64;
        (answers > 0).then(|| 100.0 * net / answers as f64)
    }

    /// Mean customer effort.
    pub fn effort(&self) -> Option<f64> {
        ratio(self.effort_sum, self.effort_count)
    }
}

/// The figures of one bucket (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Interactions measured.
    pub contacts: u64,
    pub classic: ServiceLevel,
    pub journey: ServiceLevel,
    /// Contacts whose journey-true verdict differs from the classic one, by reason.
    pub reasons: BTreeMap<Reason, u64>,
    pub stations: BTreeMap<Station, Spread>,
    pub abandons: BTreeMap<AbandonPoint, u64>,
    pub callbacks_unreached: u64,
    /// Contacts that reopened a closed conversation about the same need.
    pub repeat_contacts: u64,
    /// Conversations resolved, with their contacts and transfers.
    pub resolved: u64,
    pub resolved_contacts: u64,
    pub resolved_transfers: u64,
    /// Conversations closed as inactive, unresolved.
    pub unresolved: u64,
    /// Resolutions decided resolved at first contact, or not; the rest are pending.
    pub fcr_achieved: u64,
    pub fcr_not_achieved: u64,
    pub surveys: Surveys,
}

impl Figures {
    /// Counts one record.
    pub fn add(&mut self, measured: &Measured) {
        match measured {
            Measured::Interaction(r) => {
                self.contacts += 1;
                self.classic.count(r.classic);
                self.journey.count(r.journey);
                if let Some(reason) = r.reason {
                    *self.reasons.entry(reason).or_default() += 1;
                }
                for (station, duration) in &r.stations {
                    self.stations.entry(*station).or_default().record(*duration);
                }
                match r.ending {
                    Ending::Abandoned(point) => *self.abandons.entry(point).or_default() += 1,
                    Ending::CallbackUnreached => self.callbacks_unreached += 1,
                    Ending::Ended(_) => {}
                }
                self.repeat_contacts += u64::from(r.repeat);
            }
            Measured::WrapUp(r) => self.record(Station::WrapUp, r.duration),
            Measured::Conversation(r) => {
                self.resolved += 1;
                self.resolved_contacts += u64::from(r.contacts);
                self.resolved_transfers += u64::from(r.transfers);
                if let Some(first_answer) = r.first_answer {
                    self.record(Station::FirstAnswer, first_answer);
                }
                self.record(Station::Resolution, r.closed_at.since(r.opened_at));
            }
            Measured::Unresolved(_) => self.unresolved += 1,
            Measured::Fcr(r) if r.achieved => self.fcr_achieved += 1,
            Measured::Fcr(_) => self.fcr_not_achieved += 1,
            Measured::Survey(r) => self.surveys.add(&r.scores),
        }
    }

    fn record(&mut self, station: Station, duration: std::time::Duration) {
        self.stations.entry(station).or_default().record(duration);
    }

    /// Adds another bucket's figures.
    pub fn merge(&mut self, other: &Self) {
        self.contacts += other.contacts;
        self.classic.merge(&other.classic);
        self.journey.merge(&other.journey);
        for (reason, n) in &other.reasons {
            *self.reasons.entry(*reason).or_default() += n;
        }
        for (station, spread) in &other.stations {
            self.stations.entry(*station).or_default().merge(spread);
        }
        for (point, n) in &other.abandons {
            *self.abandons.entry(*point).or_default() += n;
        }
        self.callbacks_unreached += other.callbacks_unreached;
        self.repeat_contacts += other.repeat_contacts;
        self.resolved += other.resolved;
        self.resolved_contacts += other.resolved_contacts;
        self.resolved_transfers += other.resolved_transfers;
        self.unresolved += other.unresolved;
        self.fcr_achieved += other.fcr_achieved;
        self.fcr_not_achieved += other.fcr_not_achieved;
        self.surveys.merge(&other.surveys);
    }

    /// p50, p90, p99 of a station.
    pub fn percentiles(&self, station: Station) -> Option<Percentiles> {
        self.stations.get(&station)?.percentiles()
    }

    /// Resolutions whose first-contact resolution is not decided yet.
    pub fn fcr_pending(&self) -> u64 {
        (self.resolved).saturating_sub(self.fcr_achieved + self.fcr_not_achieved)
    }

    /// Resolved at first contact over decided resolutions (pending ones left out).
    pub fn fcr_rate(&self) -> Option<f64> {
        ratio(self.fcr_achieved, self.fcr_achieved + self.fcr_not_achieved)
    }

    /// Resolved conversations over conversations closed (resolved, or inactive unresolved).
    pub fn resolution_rate(&self) -> Option<f64> {
        ratio(self.resolved, self.resolved + self.unresolved)
    }

    /// Transfers per resolved conversation.
    pub fn transfers_per_resolved(&self) -> Option<f64> {
        ratio(self.resolved_transfers, self.resolved)
    }

    /// Abandons (anywhere) and unreached callbacks over journey-true counted contacts.
    pub fn abandon_rate(&self) -> Option<f64> {
        let abandoned: u64 = self.abandons.values().sum::<u64>() + self.callbacks_unreached;
        ratio(abandoned, self.journey.counted)
    }
}

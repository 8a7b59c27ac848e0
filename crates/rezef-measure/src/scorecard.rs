//! The four dimensions of quality (service level, resolution of the need, quality of
//! service, overall experience) as one scorecard, read from the figures of a tenant or a
//! queue. It computes nothing new: it puts side by side what the figures hold.

use serde::{Deserialize, Serialize};

use crate::figures::Figures;
use crate::record::Station;
use crate::spread::Percentiles;

/// Service level both ways, and the spread of the journey-true wait.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ServiceLevelScore {
    pub classic: Option<f64>,
    pub journey_true: Option<f64>,
    pub journey_wait: Option<Percentiles>,
}

/// Whether needs were resolved, and at what cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ResolutionScore {
    pub resolved: u64,
    /// Resolved over closed (resolved, or inactive unresolved).
    pub resolution_rate: Option<f64>,
    pub fcr_rate: Option<f64>,
    pub fcr_pending: u64,
    pub transfers_per_resolved: Option<f64>,
    pub repeat_contacts: u64,
}

/// How the service was delivered: satisfaction with it, the effort it took, abandons.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QualityScore {
    pub csat: Option<f64>,
    pub effort: Option<f64>,
    pub abandon_rate: Option<f64>,
}

/// The customer's view of the whole relationship.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExperienceScore {
    pub nps: Option<f64>,
    pub answers: u64,
}

/// One scorecard.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scorecard {
    pub service_level: ServiceLevelScore,
    pub resolution: ResolutionScore,
    pub quality: QualityScore,
    pub experience: ExperienceScore,
}

impl Scorecard {
    /// The scorecard of some figures (a tenant's total, or a queue's from a report grouped
    /// by queue).
    pub fn of(figures: &Figures) -> Self {
        let surveys = &figures.surveys;
        Self {
            service_level: ServiceLevelScore {
                classic: figures.classic.ratio(),
                journey_true: figures.journey.ratio(),
                journey_wait: figures.percentiles(Station::JourneyWait),
            },
            resolution: ResolutionScore {
                resolved: figures.resolved,
                resolution_rate: figures.resolution_rate(),
                fcr_rate: figures.fcr_rate(),
                fcr_pending: figures.fcr_pending(),
                transfers_per_resolved: figures.transfers_per_resolved(),
                repeat_contacts: figures.repeat_contacts,
            },
            quality: QualityScore {
                csat: surveys.csat(),
                effort: surveys.effort(),
                abandon_rate: figures.abandon_rate(),
            },
            experience: ExperienceScore {
                nps: surveys.nps(),
                answers: surveys.nps_promoters + surveys.nps_passives + surveys.nps_detractors,
            },
        }
    }
}

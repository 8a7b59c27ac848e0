//! A contact centre's day, simulated: the `rezef.v1` events its channel adapters would
//! publish, in time order, for the demo, the dashboard and the benchmarks (`rezef
//! simulate`; docs/simulate.md).
//!
//! A discrete-event simulation, pure and deterministic: no I/O, no clock (the day and the
//! cut-off are given), the same [`Config`] and seed give the same events, ids included.
//! Customers arrive by a Poisson process at each hour's rate, on a channel mix, about
//! weighted intents, in their language; calls go through the IVR and chats through a bot,
//! which settle some needs, hand the rest to a queue with a summary, or lose the customer.
//! Agents with skills and languages take waiting contacts first come first served; the
//! customers' patience runs out in the queue; callers facing a long wait may take a
//! callback. Handle times are log-normal per channel; wrap-ups say whether the need was
//! resolved, and some customers answer a survey. Unresolved needs bring some customers
//! back on another channel (the same conversation goes on), resolved ones a few about the
//! same intent (a repeat contact).
//!
//! # Layout
//! - `config.rs`: [`Config`], the day's scale and model, with a realistic default.
//! - `rng.rs`: seeded randomness and the distributions.
//! - `roster.rs`: the agents, their skills and languages.
//! - `engine.rs`: the simulation.
//! - `emit.rs`: the events, stamped with deterministic ids.
//! - `summary.rs`: [`Summary`], what the events add up to.
//! - `error.rs`: [`Error`], a configuration refused.

mod config;
mod emit;
mod engine;
mod error;
mod rng;
mod roster;
mod summary;

use rezef_proto::v1;

pub use config::{Config, Intent, WEEKDAY};
pub use emit::customer_id;
pub use error::Error;
pub use rng::Rng;
pub use roster::Agent;
pub use summary::{Summary, TARGET_SECS};

/// A simulated day: its events in time order, the agents who worked it, and its figures.
#[derive(Debug, Clone)]
pub struct Day {
    pub events: Vec<v1::Event>,
    pub agents: Vec<Agent>,
    pub summary: Summary,
}

/// Simulates the day `config` describes.
pub fn simulate(config: &Config) -> Result<Day, Error> {
    let (events, agents) = engine::run(config)?;
    let summary = Summary::of(&events);
    Ok(Day {
        events,
        agents,
        summary,
    })
}

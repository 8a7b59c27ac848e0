//! Live routing: who takes a contact — a bot, a queue, an agent — decided in real time.
//!
//! - [`expr`]: the condition language of rules and requirements
//!   (`skills HAS 'billing' AND language == 'he'`), parsed and checked when loaded.
//! - [`config`]: queues, strategies, escalation steps, rules, priorities and offer
//!   settings, from a versioned TOML file, compiled with every mistake reported
//!   (`reading`: every wrong setting found, not only the first); `rule_index`: the first
//!   rule a contact meets, found without trying each.
//! - [`choice`]: the choice among agents for one contact as a pure function of what the
//!   engine saw, each agent's verdict, and the re-run of a recorded decision.
//! - [`engine`]: the pure state machine of agents, waiting contacts and offers, with the
//!   invariants that capacity is never exceeded and no contact goes to two agents.
//!
//! No I/O happens here: the server feeds the engine from gRPC and the log, and publishes
//! its decisions as events.

mod agent_set;
pub mod choice;
pub mod config;
pub mod engine;
pub mod expr;
mod reading;
mod rule_index;

pub use config::{ConfigError, Routing, RoutingConfig, Strategy};
pub use engine::{
    AgentProfile, AgentStatus, AgentView, ContactRequest, Decision, Engine, Held, Offer, OfferId,
    QueueStats, RoutingError, Target, TransferTarget, Withdrawn,
};

//! Routing decisions at contact-centre scale (issue 4): the pure `rezef_routing::Engine` in
//! process, and the same configuration, agents and contacts over gRPC.
//!
//! The world: `--queues` queues (200), each with 1 to 3 escalation steps whose requirements
//! test the queue's skill (`skills.q017 >= 3`, then `skills HAS 'q017'`, then also a
//! neighbour's skill without the language requirement), a rule per intent
//! (`intent == 'intent-017'` → `q017`), and a mix of strategies; `--agents` agents (5,000)
//! with 4 to 8 skills over the queues at proficiency 1 to 5, 1 to 3 of he/ar/ru/en, capacity
//! one voice call or three chats, at most three at once; and contacts (60% voice, 40% chat)
//! with a random intent, language and sometimes a tier.
//!
//! In process, on one thread, with a clock that advances 0.1 ms per operation:
//! 1. Every agent is made available and given three contacts of their own (returning
//!    conversations that wait for their last agent), accepted: every agent is at capacity.
//! 2. `--waiting` contacts (10,000) are routed while every agent is offline (which makes
//!    this setup cheaper), then every agent comes back busy: all the contacts wait.
//! 3. With the agents busy: `route()` of new contacts (each followed, untimed, by the oldest
//!    waiting contact abandoning, so the queue stays the same length), then "an agent becomes
//!    available": one agent finishes a contact (untimed) and `set_presence(Available)` +
//!    `dispatch()` is timed; the offer is accepted and the agent goes busy again.
//! 4. Every agent is made available again, still at capacity (in this engine an agent keeps
//!    their presence while handling contacts; capacity says who can take more), and the same
//!    two measurements run: `route()`, and `complete()` + `dispatch()` for one agent.
//!
//! Each measurement stops after `--op-seconds` or `--max-ops` operations, whichever comes
//! first, so that a slow engine still finishes; the number of operations is reported. The
//! agents made available, here and over gRPC, are picked among those for whom a contact
//! waits at its queue's first step, so that an offer can follow at once.
//!
//! Over gRPC: a server in process (as for the other benchmarks), `SetRoutingConfig` with the
//! same TOML, the same `--waiting` contacts routed with `RouteInteraction` (before any agent
//! logs in, which makes this setup cheaper), `--sessions` agents (all, by default) logged in
//! over `AgentSession` streams as busy, then:
//! - agent available → offer: one session at a time sends `SetPresence AVAILABLE`; the time
//!   until its first `Offer` event arrives is recorded; it then goes busy again (its offers
//!   go back to the queues) and waits for the server to have done so;
//! - decisions: `--clients` tasks over `--connections` connections call `RouteInteraction`
//!   for new contacts for `--seconds`.

mod engine;
mod grpc;
mod ops;
mod world;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use rezef_events::Timestamp;
use rezef_routing::RoutingConfig;

use crate::harness::{Report, ms, thousands};
use engine::{EngineRun, in_engine};
use grpc::{GrpcRun, over_grpc};
use ops::{Limits, per_s};
use world::{agents, config_toml};

/// The goals for routing.
pub const TARGET_P99_MS: f64 = 1.0;
pub const TARGET_DECISIONS_PER_S: f64 = 20_000.0;
pub const TARGET_AVAILABLE_P99_MS: f64 = 10.0;

/// The in-process clock starts here and advances this much per operation.
const T0: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);
const TICK: Duration = Duration::from_micros(100);

/// Customers the routed contacts belong to (none has a journey: the request says it all).
const CUSTOMERS: u64 = 100_000;

#[derive(Debug, Clone, clap::Args)]
pub struct RoutingArgs {
    /// Agents (each with 4-8 skills, 1-3 languages, capacity 1 voice / 3 chats, load 3).
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub agents: u32,
    /// Queues, each with a rule mapping its intent to it.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub queues: u32,
    /// Contacts waiting before the measurements.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub waiting: u32,
    /// How long the gRPC tasks call RouteInteraction.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub seconds: u64,
    /// Time limit of each in-engine measurement and of the gRPC agent-available run.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub op_seconds: u64,
    /// At most this many operations per in-engine measurement and agent-available run.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_ops: u64,
    /// Concurrent RouteInteraction tasks.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub clients: u32,
    /// HTTP/2 connections the RouteInteraction tasks are spread over.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub connections: u32,
    /// Agents logged in over AgentSession streams (0: every agent).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub sessions: u32,
    /// HTTP/2 connections the agent sessions are spread over (besides the calling ones).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub session_connections: u32,
    /// Only the in-engine measurements.
    #[arg(long)]
    pub engine_only: bool,
}

pub async fn run(base: &Path, args: &RoutingArgs) -> Result<Report> {
    let toml = config_toml(args.queues);
    let routing = RoutingConfig::from_toml(&toml).map_err(|errors| {
        let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow!("the generated configuration: {}", listed.join("; "))
    })?;
    let agents = Arc::new(agents(args.agents, args.queues, 0xa9e7));
    let limits = Limits {
        budget: Duration::from_secs(args.op_seconds),
        max_ops: args.max_ops,
    };

    let engine = {
        let (agents, args) = (agents.clone(), args.clone());
        tokio::task::spawn_blocking(move || in_engine(routing, &agents, &args, limits))
            .await
            .context("the in-engine run panicked")??
    };
    let grpc = if args.engine_only {
        None
    } else {
        Some(over_grpc(base, args, &toml, &agents, limits).await?)
    };
    Ok(report(args, &toml, &engine, grpc.as_ref()))
}

// ----- report --------------------------------------------------------------------------

fn report(args: &RoutingArgs, toml: &str, engine: &EngineRun, grpc: Option<&GrpcRun>) -> Report {
    let mut report = Report::new(format!(
        "routing: {} agents, {} queues, {} waiting contacts",
        thousands(f64::from(args.agents)),
        thousands(f64::from(args.queues)),
        thousands(f64::from(args.waiting))
    ));
    report.row(
        "configuration",
        format!(
            "{} queues (1-3 escalation steps testing a skill; longest idle, least occupied, \
             highest proficiency, round robin), {} rules (`intent == 'intent-NNN'`); {} B of TOML",
            args.queues,
            args.queues,
            thousands(toml.len() as f64)
        ),
    );
    report.row(
        "in engine: setup (not the figure)",
        format!(
            "every agent given 3 contacts of their own, accepted, in {} s; {} contacts routed \
             with every agent offline in {} s ({} ms each); clock at T0 + {} s at the end",
            ms(engine.work_fill.as_secs_f64()),
            thousands(f64::from(args.waiting)),
            ms(engine.waiting_fill.as_secs_f64()),
            ms(engine.waiting_fill.as_secs_f64() * 1e3 / f64::from(args.waiting.max(1))),
            ms(engine.clock.as_secs_f64()),
        ),
    );
    report.row(
        "in engine, agents busy: **route()** of a new contact (queued)",
        engine.busy_route.describe("decisions/s"),
    );
    report.row(
        "in engine, agents busy: **set_presence(Available) + dispatch()** (agent available → offer)",
        engine.busy_available.describe("per s"),
    );
    report.row(
        "in engine, agents busy: dispatch() finding nobody available (the server runs it after every request)",
        engine.idle_dispatch.describe("per s"),
    );
    report.row(
        "in engine, agents available but at capacity: **route()** of a new contact",
        engine.full_route.describe("decisions/s"),
    );
    report.row(
        "in engine, agents available but at capacity: **complete() + dispatch()** (agent available → offer)",
        engine.full_available.describe("per s"),
    );
    let mut targets = Vec::new();
    if let Some(grpc) = grpc {
        report.row(
            "gRPC: setup (not the figure)",
            format!(
                "{} contacts routed from {} tasks before any agent logged in, in {} s ({} \
                 decisions/s); then {} AgentSession streams over {} connections logged in \
                 busy in {} s",
                thousands(f64::from(args.waiting)),
                args.clients,
                ms(grpc.fill.as_secs_f64()),
                thousands(f64::from(args.waiting) / grpc.fill.as_secs_f64().max(1e-9)),
                thousands(grpc.sessions as f64),
                args.session_connections,
                ms(grpc.logins.as_secs_f64()),
            ),
        );
        report.row(
            format!(
                "gRPC: **RouteInteraction**, {} tasks over {} connections, {} s",
                args.clients, args.connections, args.seconds
            ),
            format!(
                "**{} decisions/s**; {}; {} offered at once; waiting {} → {}",
                per_s(grpc.routes.per_s()),
                grpc.routes.latency.summary(),
                grpc.offered_at_once,
                thousands(f64::from(args.waiting)),
                thousands(grpc.available.waiting.1 as f64)
            ),
        );
        report.row(
            "CPU during the RouteInteraction run",
            grpc.route_cpu.clone(),
        );
        report.row(
            "gRPC: **SetPresence AVAILABLE → Offer received** (one agent at a time, agents busy)",
            format!(
                "{} ×: {}; mean {} ms{}",
                thousands(grpc.available.count() as f64),
                grpc.available.latency.summary(),
                ms(grpc.available.latency.mean_ms()),
                if grpc.available.no_offer > 0 {
                    format!("; {} without an offer in 60 s", grpc.available.no_offer)
                } else {
                    String::new()
                }
            ),
        );
        report.row(
            "gRPC ÷ in-engine decisions/s (agents busy)",
            format!(
                "{:.2}",
                grpc.routes.per_s() / engine.busy_route.per_s().max(1e-9)
            ),
        );
        report.row(
            "server stop (every agent session ends)",
            format!("{} s", ms(grpc.stop.as_secs_f64())),
        );
        report.headline(
            format!(
                "gRPC {} decisions/s; in engine {} decisions/s (agents busy), {} (at capacity)",
                per_s(grpc.routes.per_s()),
                per_s(engine.busy_route.per_s()),
                per_s(engine.full_route.per_s())
            ),
            format!(
                "RouteInteraction p50 {} / p99 {} ms; engine route p99 {} ms; available → \
                 offer p99 {} ms gRPC, {} ms engine",
                ms(grpc.routes.latency.ms(0.5)),
                ms(grpc.routes.latency.ms(0.99)),
                ms(engine.busy_route.latency.ms(0.99)),
                ms(grpc.available.latency.ms(0.99)),
                ms(engine.busy_available.latency.ms(0.99))
            ),
        );
        targets.push(crate::harness::Target::at_most(
            "RouteInteraction p99 over gRPC",
            grpc.routes.latency.ms(0.99),
            TARGET_P99_MS,
            "ms",
        ));
        targets.push(crate::harness::Target::at_least(
            "RouteInteraction decisions/s over gRPC",
            grpc.routes.per_s(),
            TARGET_DECISIONS_PER_S,
            "decisions/s",
        ));
        targets.push(crate::harness::Target::at_most(
            "agent available → offer received p99 over gRPC",
            grpc.available.latency.ms(0.99),
            TARGET_AVAILABLE_P99_MS,
            "ms",
        ));
    } else {
        report.headline(
            format!(
                "in engine {} decisions/s (agents busy), {} (at capacity); no gRPC run",
                per_s(engine.busy_route.per_s()),
                per_s(engine.full_route.per_s())
            ),
            format!(
                "engine route p99 {} ms (busy), {} ms (at capacity); available → offer p99 {} \
                 / {} ms",
                ms(engine.busy_route.latency.ms(0.99)),
                ms(engine.full_route.latency.ms(0.99)),
                ms(engine.busy_available.latency.ms(0.99)),
                ms(engine.full_available.latency.ms(0.99))
            ),
        );
    }
    for (what, ops, goal, per_s) in [
        (
            "route() p99 in engine, agents busy",
            &engine.busy_route,
            TARGET_P99_MS,
            false,
        ),
        (
            "route() decisions/s in engine (1 thread), agents busy",
            &engine.busy_route,
            TARGET_DECISIONS_PER_S,
            true,
        ),
        (
            "agent available → offer p99 in engine, agents busy",
            &engine.busy_available,
            TARGET_AVAILABLE_P99_MS,
            false,
        ),
        (
            "route() p99 in engine, agents at capacity",
            &engine.full_route,
            TARGET_P99_MS,
            false,
        ),
        (
            "agent available → offer p99 in engine, agents at capacity",
            &engine.full_available,
            TARGET_AVAILABLE_P99_MS,
            false,
        ),
    ] {
        targets.push(if per_s {
            crate::harness::Target::at_least(what, ops.per_s(), goal, "decisions/s")
        } else {
            crate::harness::Target::at_most(what, ops.latency.ms(0.99), goal, "ms")
        });
    }
    for target in targets {
        report.target(target);
    }
    report.note(format!(
        "The agents made available are picked among those for whom a contact waits at its \
         queue's first step (skill, proficiency, language): {} of {} in engine{}, so that \
         the offer can come at once rather than at the contact's next escalation.",
        thousands(engine.eligible as f64),
        thousands(f64::from(args.agents)),
        grpc.map_or_else(String::new, |g| format!(
            ", {} of {} logged in over gRPC",
            thousands(g.eligible as f64),
            thousands(g.sessions as f64)
        ))
    ));
    report.note(format!(
        "In engine: one thread, clock advancing {} ms per operation from a fixed instant (no \
         contact reaches its 30 s escalation step). Each measurement stops after {} s or {} \
         operations.",
        ms(TICK.as_secs_f64() * 1e3),
        args.op_seconds,
        thousands(args.max_ops as f64)
    ));
    if grpc.is_some() {
        report.note(
            "Over gRPC the client tasks, the agent sessions and the server share this process \
             and its cores; every RouteInteraction appends its decision to the log (fsync) \
             before it answers.",
        );
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_world_measures_every_phase() {
        let args = RoutingArgs {
            agents: 40,
            queues: 10,
            waiting: 100,
            seconds: 1,
            op_seconds: 1,
            max_ops: 20,
            clients: 1,
            connections: 1,
            sessions: 0,
            session_connections: 1,
            engine_only: true,
        };
        let routing = RoutingConfig::from_toml(&config_toml(args.queues)).expect("compiles");
        let agents = agents(args.agents, args.queues, 1);
        assert!(agents.iter().all(|a| (4..=8).contains(&a.skills.len())));
        let limits = Limits {
            budget: Duration::from_secs(1),
            max_ops: 20,
        };
        let run = in_engine(routing, &agents, &args, limits).expect("runs");
        assert_eq!(run.busy_route.count(), 20);
        assert_eq!(run.busy_route.waiting, (100, 100));
        assert_eq!(run.busy_available.count(), 20);
        // New contacts replace those offered once the queues are 1% shorter.
        let (before, after) = run.busy_available.waiting;
        assert!(
            before == 100 && (98..=100).contains(&after),
            "{before} → {after}"
        );
        assert!(
            run.busy_available.no_offer < 20,
            "most available agents get an offer"
        );
        assert_eq!(run.full_route.count(), 20);
        assert_eq!(run.full_available.count(), 20);
        let text = report(&args, "", &run, None).markdown();
        assert!(text.contains("route()"), "{text}");
    }
}

//! The in-process measurement: the pure `rezef_routing::Engine` on one thread, driven by a
//! clock that advances [`TICK`] per operation, through the phases the module doc lists
//! (agents busy, then available at capacity), with no server or network in the way.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rezef_events::event::Presence;
use rezef_events::{AgentId, InteractionId, Timestamp};
use rezef_routing::{ContactRequest, Engine, Offer, Target};

use super::ops::{Limits, Ops};
use super::world::{AgentSpec, ContactSpec, with_work};
use super::{RoutingArgs, T0, TICK};
use crate::harness::Rng;

/// Contacts each agent holds before the measurements: their capacity (`max_load`).
const WORK_PER_AGENT: usize = 3;

/// A clock that advances [`TICK`] per call.
#[derive(Debug)]
struct Clock(Timestamp);

impl Clock {
    fn tick(&mut self) -> Timestamp {
        self.0 = self.0.plus(TICK);
        self.0
    }
}

/// What the in-engine run measured.
#[derive(Debug)]
pub(super) struct EngineRun {
    /// Giving every agent three contacts, accepted.
    pub(super) work_fill: Duration,
    /// Routing the waiting contacts, every agent busy.
    pub(super) waiting_fill: Duration,
    /// With every agent busy: `dispatch()` alone, which finds nobody available.
    pub(super) idle_dispatch: Ops,
    pub(super) busy_route: Ops,
    pub(super) busy_available: Ops,
    pub(super) full_route: Ops,
    pub(super) full_available: Ops,
    /// The clock at the end, past T0.
    pub(super) clock: Duration,
    /// Agents with a contact waiting for them at the first step (those made available).
    pub(super) eligible: usize,
}

/// The engine and what the benchmark knows of its state.
struct World {
    engine: Engine,
    clock: Clock,
    ids: Vec<AgentId>,
    index: HashMap<AgentId, usize>,
    /// Each agent's contacts (accepted offers).
    work: Vec<Vec<InteractionId>>,
    /// Waiting contacts in the order they were routed (may hold some since taken).
    order: VecDeque<InteractionId>,
    taken: HashSet<InteractionId>,
    queues: u32,
    next: u64,
    rng: Rng,
    /// Agents with a contact waiting for them at the first step (see [`with_work`]).
    eligible: Vec<usize>,
}

impl World {
    fn waiting(&self) -> usize {
        self.engine.waiting().count()
    }

    /// Accepts offers at once; their contacts become the agents' work.
    fn accept(&mut self, offers: &[Offer]) -> Result<()> {
        for offer in offers {
            let now = self.clock.tick();
            self.engine
                .accept(offer.id, &offer.agent, now)
                .map_err(|e| anyhow!("accepting {offer:?}: {e}"))?;
            let agent = self.index[&offer.agent];
            self.work[agent].push(offer.contact.clone());
            self.taken.insert(offer.contact.clone());
        }
        Ok(())
    }

    /// The next new contact.
    fn contact(&mut self) -> Result<ContactRequest> {
        let request = ContactSpec::nth(self.next, self.queues).request("c")?;
        self.next += 1;
        Ok(request)
    }

    /// The oldest waiting contact hangs up (keeps the queues at the same length).
    fn abandon_oldest(&mut self) -> Result<()> {
        while let Some(id) = self.order.pop_front() {
            if !self.taken.contains(&id) {
                let now = self.clock.tick();
                return self
                    .engine
                    .complete(&id, now)
                    .map_err(|e| anyhow!("abandoning {id}: {e}"));
            }
        }
        Ok(())
    }

    fn set_all(&mut self, presence: Presence) -> Result<()> {
        for i in 0..self.ids.len() {
            let now = self.clock.tick();
            self.engine
                .set_presence(&self.ids[i], presence, now)
                .map_err(|e| anyhow!("presence of {}: {e}", self.ids[i]))?;
        }
        Ok(())
    }

    /// Routes a new contact, untimed: it waits, or is offered and accepted at once.
    fn route_untimed(&mut self) -> Result<()> {
        let request = self.contact()?;
        let id = request.id.clone().context("contacts have ids")?;
        let now = self.clock.tick();
        let decision = self
            .engine
            .route(request, now)
            .map_err(|e| anyhow!("route: {e}"))?;
        match decision.target {
            Target::Queued { .. } => self.order.push_back(id),
            Target::Offered(offer) => self.accept(&[offer])?,
            Target::Bot { .. } => bail!("no channel starts with a bot here: {decision:?}"),
        }
        Ok(())
    }

    /// Times `route()` of new contacts; each is followed by the oldest waiting hanging up.
    fn route_new(&mut self, limits: Limits) -> Result<Ops> {
        let mut ops = Ops::new(limits)?;
        ops.waiting.0 = self.waiting();
        while ops.more() {
            let request = self.contact()?;
            let id = request.id.clone().context("contacts have ids")?;
            let now = self.clock.tick();
            let at = Instant::now();
            let decision = self
                .engine
                .route(request, now)
                .map_err(|e| anyhow!("route: {e}"))?;
            ops.record(at.elapsed());
            match decision.target {
                Target::Queued { .. } => self.order.push_back(id),
                Target::Offered(offer) => {
                    ops.offered += 1;
                    self.accept(&[offer])?;
                }
                Target::Bot { .. } => bail!("no channel starts with a bot here: {decision:?}"),
            }
            self.abandon_oldest()?;
        }
        ops.waiting.1 = self.waiting();
        Ok(ops)
    }

    /// Times an agent becoming available: `busy` agents go from busy to available
    /// (`set_presence` + `dispatch`), others finish a contact (`complete` + `dispatch`).
    fn agent_available(&mut self, limits: Limits, busy: bool) -> Result<Ops> {
        if self.eligible.is_empty() {
            bail!("no agent can take any waiting contact at its first step");
        }
        let mut ops = Ops::new(limits)?;
        ops.waiting.0 = self.waiting();
        while ops.more() {
            let i = self.eligible[self.rng.below(self.eligible.len() as u64) as usize];
            let agent = self.ids[i].clone();
            let Some(done) = (!self.work[i].is_empty()).then(|| self.work[i].remove(0)) else {
                continue;
            };
            if busy {
                // The agent wraps up while still busy; becoming available is what is timed.
                let now = self.clock.tick();
                self.engine
                    .complete(&done, now)
                    .map_err(|e| anyhow!("complete: {e}"))?;
            }
            let now = self.clock.tick();
            let at = Instant::now();
            if busy {
                self.engine
                    .set_presence(&agent, Presence::Available, now)
                    .map_err(|e| anyhow!("presence: {e}"))?;
            } else {
                self.engine
                    .complete(&done, now)
                    .map_err(|e| anyhow!("complete: {e}"))?;
            }
            let offers = self.engine.dispatch(now);
            ops.record(at.elapsed());
            if !offers.iter().any(|o| o.agent == agent) {
                ops.no_offer += 1;
            }
            self.accept(&offers)?;
            if busy {
                let now = self.clock.tick();
                self.engine
                    .set_presence(&agent, Presence::Busy, now)
                    .map_err(|e| anyhow!("presence: {e}"))?;
            }
            // Once the queues are 1% shorter than at the start, new contacts take the place
            // of those offered (a route costs as much as a dispatch at capacity: only then).
            if self.waiting() * 100 < ops.waiting.0 * 99 {
                for _ in 0..offers.len() {
                    self.route_untimed()?;
                }
            }
        }
        ops.waiting.1 = self.waiting();
        Ok(ops)
    }

    /// Times `dispatch()` when nobody is available: what the server's clock does after
    /// every request.
    fn idle_dispatch(&mut self, limits: Limits) -> Result<Ops> {
        let mut ops = Ops::new(limits)?;
        ops.waiting.0 = self.waiting();
        while ops.more() {
            let now = self.clock.tick();
            let at = Instant::now();
            let offers = self.engine.dispatch(now);
            ops.record(at.elapsed());
            if !offers.is_empty() {
                bail!("nobody is available, yet {} offers were made", offers.len());
            }
        }
        ops.waiting.1 = ops.waiting.0;
        Ok(ops)
    }
}

pub(super) fn in_engine(
    routing: rezef_routing::Routing,
    agents: &[AgentSpec],
    args: &RoutingArgs,
    limits: Limits,
) -> Result<EngineRun> {
    let mut world = World {
        engine: Engine::new(routing),
        clock: Clock(T0),
        ids: agents
            .iter()
            .map(AgentSpec::agent_id)
            .collect::<Result<_>>()?,
        index: HashMap::new(),
        work: vec![Vec::new(); agents.len()],
        order: VecDeque::new(),
        taken: HashSet::new(),
        queues: args.queues,
        next: 0,
        rng: Rng::new(0xa7a1),
        eligible: with_work(
            agents,
            (0..u64::from(args.waiting)).map(|n| ContactSpec::nth(n, args.queues)),
        ),
    };
    world.index = world
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), i))
        .collect();
    let started = Instant::now();
    for agent in agents {
        let now = world.clock.tick();
        world.engine.upsert_agent(agent.profile()?, now);
    }
    world.set_all(Presence::Available)?;
    // Each agent's own three contacts: returning conversations that wait for their agent
    // (none for an agent who meets no queue's first step: affinity would not choose them).
    let mut pinned = 1_000_000_000u64;
    for (i, agent) in agents.iter().enumerate() {
        for k in 0..WORK_PER_AGENT {
            let voice = i % 2 == 1 && k == 0;
            let Some(spec) = ContactSpec::for_agent(pinned, agent, voice) else {
                break;
            };
            pinned += 1;
            let mut request = spec.request("w")?;
            request.preferred_agent = Some(world.ids[i].clone());
            let now = world.clock.tick();
            let decision = world
                .engine
                .route(request, now)
                .map_err(|e| anyhow!("route: {e}"))?;
            match decision.target {
                Target::Offered(offer) if offer.agent == world.ids[i] => world.accept(&[offer])?,
                _ => bail!("a returning contact did not reach its agent: {decision:?}"),
            }
        }
    }
    world.taken.clear();
    let work_fill = started.elapsed();

    // The waiting contacts arrive while the agents are offline (so that each decision
    // skips estimating the wait from the agents staffed), then the agents come back busy.
    world.set_all(Presence::Offline)?;
    let started = Instant::now();
    for _ in 0..args.waiting {
        let request = world.contact()?;
        let id = request.id.clone().context("contacts have ids")?;
        let now = world.clock.tick();
        let decision = world
            .engine
            .route(request, now)
            .map_err(|e| anyhow!("route: {e}"))?;
        if !matches!(decision.target, Target::Queued { .. }) {
            bail!("every agent is offline, yet: {decision:?}");
        }
        world.order.push_back(id);
    }
    let waiting_fill = started.elapsed();
    world.set_all(Presence::Busy)?;
    eprintln!(
        "  engine: {} agents at capacity in {:.1} s, {} waiting in {:.1} s",
        agents.len(),
        work_fill.as_secs_f64(),
        args.waiting,
        waiting_fill.as_secs_f64()
    );

    let short = Limits {
        budget: limits.budget.min(Duration::from_secs(5)),
        max_ops: limits.max_ops.min(200),
    };
    let idle_dispatch = world.idle_dispatch(short)?;
    let busy_route = world.route_new(limits)?;
    eprintln!(
        "  engine, agents busy: route {}",
        busy_route.latency.summary()
    );
    let busy_available = world.agent_available(limits, true)?;
    eprintln!(
        "  engine, agents busy: available → offer {}",
        busy_available.latency.summary()
    );
    world.set_all(Presence::Available)?;
    let full_route = world.route_new(limits)?;
    eprintln!(
        "  engine, agents at capacity: route {}",
        full_route.latency.summary()
    );
    let full_available = world.agent_available(limits, false)?;
    eprintln!(
        "  engine, agents at capacity: available → offer {}",
        full_available.latency.summary()
    );
    Ok(EngineRun {
        work_fill,
        waiting_fill,
        idle_dispatch,
        busy_route,
        busy_available,
        full_route,
        full_available,
        clock: world.clock.0.since(T0),
        eligible: world.eligible.len(),
    })
}

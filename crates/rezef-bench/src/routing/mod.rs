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

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rezef_adapter::{AgentSession, proto};
use rezef_events::event::Presence;
use rezef_events::{AgentId, Channel, InteractionId, Timestamp};
use rezef_routing::{AgentProfile, ContactRequest, Engine, Offer, RoutingConfig, Target};

use crate::harness::{BenchServer, CpuSampler, Latency, Report, Rng, ms, thousands};
use crate::reads::{self, Load};
use crate::workload::{TENANT, customer_ref};

/// The issue's goals for routing.
pub const TARGET_P99_MS: f64 = 1.0;
pub const TARGET_DECISIONS_PER_S: f64 = 20_000.0;
pub const TARGET_AVAILABLE_P99_MS: f64 = 10.0;

const LANGUAGES: [&str; 4] = ["he", "ar", "ru", "en"];
/// How often each language is an agent's first language and a contact's language, in %.
const LANGUAGE_WEIGHTS: [u64; 4] = [50, 20, 15, 15];

/// The in-process clock starts here and advances this much per operation.
const T0: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);
const TICK: Duration = Duration::from_micros(100);

/// Contacts each agent holds before the measurements: their capacity (`max_load`).
const WORK_PER_AGENT: usize = 3;

/// How long a session waits for an offer, or for its presence change to be carried out.
const SESSION_WAIT: Duration = Duration::from_secs(60);

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

// ----- the world -----------------------------------------------------------------------

fn queue_id(q: u64) -> String {
    format!("q{q:03}")
}

fn intent(q: u64) -> String {
    format!("intent-{q:03}")
}

fn language(rng: &mut Rng) -> &'static str {
    let mut pick = rng.below(LANGUAGE_WEIGHTS.iter().sum());
    for (language, weight) in LANGUAGES.iter().zip(LANGUAGE_WEIGHTS) {
        if pick < weight {
            return language;
        }
        pick -= weight;
    }
    LANGUAGES[0]
}

/// The proficiency a queue's first step asks for: any (one step: `skills HAS`), or 3.
fn first_step_level(q: u64) -> u8 {
    if q.is_multiple_of(3) { 1 } else { 3 }
}

/// The agents for whom one of `contacts` waits at its queue's first step (skill, level and
/// language), so that an agent becoming available has something to be offered at once
/// rather than at the next escalation.
fn with_work(agents: &[AgentSpec], contacts: impl Iterator<Item = ContactSpec>) -> Vec<usize> {
    let waiting: HashSet<(String, &str)> =
        contacts.map(|c| (queue_id(c.queue), c.language)).collect();
    agents
        .iter()
        .enumerate()
        .filter(|(_, agent)| {
            agent.skills.iter().any(|(skill, level)| {
                let q: u64 = skill[1..].parse().unwrap_or(0);
                *level >= first_step_level(q)
                    && agent
                        .languages
                        .iter()
                        .any(|l| waiting.contains(&(skill.clone(), l.as_str())))
            })
        })
        .map(|(i, _)| i)
        .collect()
}

/// The routing configuration: a queue and a rule per intent.
pub fn config_toml(queues: u32) -> String {
    let mut out = String::from(
        "version = 1\n\
         default_queue = \"q000\"\n\n\
         [offers]\n\
         timeout = \"20s\"\n\
         max_declines = 3\n\
         affinity_timeout = \"60s\"\n\n\
         [priority]\n\
         tiers = { vip = 20, gold = 10 }\n\
         ageing_per_minute = 1.0\n\n",
    );
    let queues = u64::from(queues);
    for q in 0..queues {
        let (id, other) = (queue_id(q), queue_id((q + 1) % queues));
        let _ = writeln!(out, "[[queues]]\nid = \"{id}\"");
        match q % 10 {
            1 => out.push_str("strategy = \"least_occupied\"\n"),
            2 => {
                let _ = writeln!(out, "strategy = \"highest_proficiency\"\nskill = \"{id}\"");
            }
            3 => out.push_str("strategy = \"round_robin\"\n"),
            _ => {}
        }
        out.push_str("callback_above = \"10m\"\nsteps = [\n");
        match q % 3 {
            0 => {
                let _ = writeln!(
                    out,
                    "  {{ after = \"0s\", requirements = \"skills HAS '{id}'\" }},"
                );
            }
            steps => {
                let _ = writeln!(
                    out,
                    "  {{ after = \"0s\", requirements = \"skills.{id} >= {}\" }},\n  \
                     {{ after = \"30s\", requirements = \"skills HAS '{id}'\" }},",
                    first_step_level(q)
                );
                if steps == 2 {
                    let _ = writeln!(
                        out,
                        "  {{ after = \"2m\", requirements = \"skills HAS '{id}' OR skills HAS \
                         '{other}'\", drop_language = true }},"
                    );
                }
            }
        }
        out.push_str("]\n\n");
    }
    for q in 0..queues {
        let _ = writeln!(
            out,
            "[[rules]]\nname = \"rule-{q:03}\"\nwhen = \"intent == '{}'\"\nqueue = \"{}\"\n",
            intent(q),
            queue_id(q)
        );
    }
    out
}

/// An agent, as both the engine and a session's login describe them.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub id: String,
    pub skills: BTreeMap<String, u8>,
    pub languages: Vec<String>,
    pub team: String,
    pub site: String,
}

impl AgentSpec {
    fn agent_id(&self) -> Result<AgentId> {
        AgentId::new(self.id.clone()).map_err(|e| anyhow!("agent id {}: {e}", self.id))
    }

    fn profile(&self) -> Result<AgentProfile> {
        Ok(AgentProfile {
            id: self.agent_id()?,
            skills: self.skills.clone(),
            languages: self.languages.clone(),
            team: self.team.clone(),
            site: self.site.clone(),
            capacity: BTreeMap::from([(Channel::Voice, 1), (Channel::Webchat, 3)]),
            max_load: 3,
        })
    }

    fn proto(&self) -> proto::AgentProfile {
        proto::AgentProfile {
            agent_id: self.id.clone(),
            skills: self
                .skills
                .iter()
                .map(|(skill, level)| (skill.clone(), u32::from(*level)))
                .collect(),
            languages: self.languages.clone(),
            team: self.team.clone(),
            site: self.site.clone(),
            capacity: [("voice".to_owned(), 1), ("webchat".to_owned(), 3)].into(),
            max_load: 3,
        }
    }
}

/// The agents: skills spread uniformly over the queues.
pub fn agents(count: u32, queues: u32, seed: u64) -> Vec<AgentSpec> {
    let mut rng = Rng::new(seed);
    let queues = u64::from(queues);
    (0..count)
        .map(|n| {
            let wanted = (4 + rng.below(5)).min(queues);
            let mut skills = BTreeMap::new();
            while (skills.len() as u64) < wanted {
                skills.insert(queue_id(rng.below(queues)), 1 + rng.below(5) as u8);
            }
            let mut languages = vec![language(&mut rng).to_owned()];
            for _ in 0..rng.below(3) {
                let extra = LANGUAGES[rng.below(LANGUAGES.len() as u64) as usize];
                if !languages.iter().any(|l| l == extra) {
                    languages.push(extra.to_owned());
                }
            }
            AgentSpec {
                id: format!("agent-{n:05}"),
                skills,
                languages,
                team: format!("team-{:02}", n % 50),
                site: if n % 2 == 0 { "tlv" } else { "haifa" }.to_owned(),
            }
        })
        .collect()
}

/// Contact number `n`: the same in process and over gRPC.
#[derive(Debug, Clone)]
pub struct ContactSpec {
    pub n: u64,
    pub voice: bool,
    pub queue: u64,
    pub language: &'static str,
    pub tier: Option<&'static str>,
}

impl ContactSpec {
    pub fn nth(n: u64, queues: u32) -> Self {
        let mut rng = Rng::new(n.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ 0xc0_47ac7);
        let voice = rng.below(10) < 6;
        let queue = rng.below(u64::from(queues));
        let language = language(&mut rng);
        let tier = match rng.below(20) {
            0 => Some("vip"),
            1..=3 => Some("gold"),
            _ => None,
        };
        Self {
            n,
            voice,
            queue,
            language,
            tier,
        }
    }

    /// A contact that `agent` may take at its queue's first step (skill, level, language),
    /// if there is one: routing chooses a returning contact's last agent only among those
    /// (docs/routing.md).
    fn for_agent(n: u64, agent: &AgentSpec, voice: bool) -> Option<Self> {
        let queue = (agent.skills.iter())
            .filter_map(|(id, level)| Some((id.strip_prefix('q')?.parse::<u64>().ok()?, *level)))
            .find(|&(q, level)| level >= first_step_level(q))?
            .0;
        let language = (LANGUAGES.iter()).find(|l| agent.languages.iter().any(|s| s == *l))?;
        Some(Self {
            n,
            voice,
            queue,
            language,
            tier: None,
        })
    }

    fn id(&self, prefix: &str) -> String {
        format!("{prefix}-{:08}", self.n)
    }

    fn request(&self, prefix: &str) -> Result<ContactRequest> {
        let id = self.id(prefix);
        Ok(ContactRequest {
            id: Some(InteractionId::new(id.clone()).map_err(|e| anyhow!("contact {id}: {e}"))?),
            channel: Some(if self.voice {
                Channel::Voice
            } else {
                Channel::Webchat
            }),
            intent: Some(intent(self.queue)),
            language: Some(self.language.to_owned()),
            tier: self.tier.map(str::to_owned),
            ..ContactRequest::default()
        })
    }

    fn proto(&self, prefix: &str) -> proto::RouteInteractionRequest {
        proto::RouteInteractionRequest {
            tenant_id: TENANT.into(),
            customer: Some(customer_ref(self.n % CUSTOMERS)),
            interaction_id: self.id(prefix),
            channel: if self.voice {
                proto::Channel::Voice
            } else {
                proto::Channel::Webchat
            } as i32,
            intent: intent(self.queue),
            language: self.language.into(),
            tier: self.tier.unwrap_or_default().into(),
            ..Default::default()
        }
    }
}

// ----- measurements --------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Limits {
    budget: Duration,
    max_ops: u64,
}

/// One timed operation, repeated until its limits.
#[derive(Debug, Clone)]
pub struct Ops {
    pub latency: Latency,
    /// Time inside the timed operations.
    pub busy: Duration,
    /// Operations after which nothing was offered to the agent (agent available runs).
    pub no_offer: u64,
    /// Routed contacts that were offered at once rather than queued.
    pub offered: u64,
    /// Waiting contacts before and after.
    pub waiting: (usize, usize),
    /// Wall time of the whole measurement, untimed work between operations included.
    pub wall: Duration,
    started: Instant,
    limits: Limits,
}

impl Ops {
    fn new(limits: Limits) -> Result<Self> {
        Ok(Self {
            latency: Latency::new()?,
            busy: Duration::ZERO,
            no_offer: 0,
            offered: 0,
            waiting: (0, 0),
            wall: Duration::ZERO,
            started: Instant::now(),
            limits,
        })
    }

    fn more(&self) -> bool {
        self.latency.count() < self.limits.max_ops && self.started.elapsed() < self.limits.budget
    }

    fn record(&mut self, elapsed: Duration) {
        self.latency.record(elapsed);
        self.busy += elapsed;
        self.wall = self.started.elapsed();
    }

    pub fn count(&self) -> u64 {
        self.latency.count()
    }

    /// Operations per second of time spent in them (one thread: 1 / mean latency).
    pub fn per_s(&self) -> f64 {
        self.count() as f64 / self.busy.as_secs_f64().max(1e-9)
    }

    fn describe(&self, unit: &str) -> String {
        let mut out = format!(
            "{} × in {:.1} s: {}; mean {} ms → **{} {unit}**",
            thousands(self.count() as f64),
            self.wall.as_secs_f64(),
            self.latency.summary(),
            ms(self.latency.mean_ms()),
            per_s(self.per_s())
        );
        if self.no_offer > 0 {
            let _ = write!(out, "; {} without an offer", self.no_offer);
        }
        if self.offered > 0 {
            let _ = write!(out, "; {} offered at once", self.offered);
        }
        let _ = write!(
            out,
            "; waiting {} → {}",
            thousands(self.waiting.0 as f64),
            thousands(self.waiting.1 as f64)
        );
        out
    }
}

/// A rate: thousands separators, or two decimals below 10 (a slow engine does 0.28/s).
fn per_s(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2}")
    } else {
        thousands(value)
    }
}

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
pub struct EngineRun {
    /// Giving every agent three contacts, accepted.
    pub work_fill: Duration,
    /// Routing the waiting contacts, every agent busy.
    pub waiting_fill: Duration,
    /// With every agent busy: `dispatch()` alone, which finds nobody available.
    pub idle_dispatch: Ops,
    pub busy_route: Ops,
    pub busy_available: Ops,
    pub full_route: Ops,
    pub full_available: Ops,
    /// The clock at the end, past T0.
    pub clock: Duration,
    /// Agents with a contact waiting for them at the first step (those made available).
    pub eligible: usize,
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

fn in_engine(
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

// ----- over gRPC -----------------------------------------------------------------------

/// What the gRPC run measured.
#[derive(Debug)]
pub struct GrpcRun {
    pub sessions: usize,
    pub logins: Duration,
    pub fill: Duration,
    pub available: Ops,
    pub routes: reads::Reads,
    pub route_cpu: String,
    pub offered_at_once: u64,
    pub stop: Duration,
    /// Logged-in agents with a contact waiting for them at the first step.
    pub eligible: usize,
}

/// The next event of `session` that `wanted` picks, with when it arrived; `None` after
/// `wait`.
async fn wait_for(
    session: &mut AgentSession,
    wait: Duration,
    wanted: impl Fn(&proto::agent_session_event::Event) -> bool,
) -> Result<Option<Instant>> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, session.next()).await {
            Ok(Ok(Some(event))) if wanted(&event) => return Ok(Some(Instant::now())),
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) => bail!("the agent session ended"),
            Ok(Err(error)) => return Err(error).context("the agent session"),
            Err(_) => return Ok(None),
        }
    }
}

/// Reads whatever `session` has already received.
async fn drain(session: &mut AgentSession) {
    while let Ok(Ok(Some(_))) = tokio::time::timeout(Duration::ZERO, session.next()).await {}
}

async fn over_grpc(
    base: &Path,
    args: &RoutingArgs,
    toml: &str,
    agents: &[AgentSpec],
    limits: Limits,
) -> Result<GrpcRun> {
    use proto::agent_session_event::Event;
    let server = BenchServer::start(base).await?;
    let admin = server.client().await?;
    admin
        .routing()
        .set_routing_config(proto::SetRoutingConfigRequest {
            tenant_id: TENANT.into(),
            config: toml.to_owned(),
        })
        .await
        .context("SetRoutingConfig")?;

    // The waiting contacts, from many tasks, before the agents log in (each decision then
    // has no agents to look at; the state measured afterwards is the same).
    let started = Instant::now();
    let fillers = server.clients(args.connections as usize).await?;
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..args.clients as usize {
        let client = fillers[i % fillers.len()].clone();
        let (next, queues, waiting) = (next.clone(), args.queues, u64::from(args.waiting));
        tasks.push(tokio::spawn(async move {
            let mut routing = client.routing();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= waiting {
                    return anyhow::Ok(());
                }
                let answer = routing
                    .route_interaction(ContactSpec::nth(n, queues).proto("f"))
                    .await
                    .context("RouteInteraction")?
                    .into_inner();
                if answer.outcome != proto::RouteOutcome::Queued as i32 {
                    bail!("no agent is logged in, yet: {answer:?}");
                }
            }
        }));
    }
    for task in tasks {
        task.await.context("a filling task panicked")??;
    }
    let fill = started.elapsed();
    drop(fillers);
    eprintln!(
        "  gRPC: {} contacts waiting after {:.1} s",
        args.waiting,
        fill.as_secs_f64()
    );

    // Sessions, logged in as busy, a few at a time.
    let sessions = match args.sessions {
        0 => agents.len(),
        n => (n as usize).min(agents.len()),
    };
    let started = Instant::now();
    let session_clients = server.clients(args.session_connections as usize).await?;
    let mut desks = Vec::with_capacity(sessions);
    for (chunk_at, chunk) in agents[..sessions].chunks(64).enumerate() {
        let logins: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, agent)| {
                let client = session_clients[(chunk_at * 64 + i) % session_clients.len()].clone();
                let profile = agent.proto();
                tokio::spawn(async move {
                    AgentSession::login(&client, TENANT, profile, Some(proto::Presence::Busy))
                        .await
                        .context("AgentSession login")
                })
            })
            .collect();
        for login in logins {
            desks.push(login.await.context("a login panicked")??);
        }
    }
    let logins = started.elapsed();
    eprintln!(
        "  gRPC: {sessions} sessions logged in in {:.1} s",
        logins.as_secs_f64()
    );

    // Agent available → offer, one agent at a time, among those a contact waits for.
    let eligible = with_work(
        &agents[..sessions],
        (0..u64::from(args.waiting)).map(|n| ContactSpec::nth(n, args.queues)),
    );
    if eligible.is_empty() {
        bail!("no logged-in agent can take any waiting contact at its first step");
    }
    let mut available = Ops::new(limits)?;
    available.waiting = (args.waiting as usize, args.waiting as usize);
    let mut rng = Rng::new(0x0ffe5);
    while available.more() {
        let desk = &mut desks[eligible[rng.below(eligible.len() as u64) as usize]];
        drain(desk).await;
        let sent = Instant::now();
        desk.set_presence(proto::Presence::Available, "")
            .await
            .context("SetPresence")?;
        match wait_for(desk, SESSION_WAIT, |e| matches!(e, Event::Offer(_))).await? {
            Some(at) => available.record(at.saturating_duration_since(sent)),
            None => available.no_offer += 1,
        }
        // Busy again: the offers go back to the queues. An accept of no offer is refused
        // after the presence change is carried out, which tells when it was.
        desk.set_presence(proto::Presence::Busy, "")
            .await
            .context("SetPresence")?;
        desk.accept(0).await.context("Accept")?;
        if wait_for(desk, SESSION_WAIT, |e| matches!(e, Event::Refused(_)))
            .await?
            .is_none()
        {
            bail!("a session's presence change was not carried out in {SESSION_WAIT:?}");
        }
        if available.no_offer > 10 {
            bail!("more than ten agents got no offer within {SESSION_WAIT:?}");
        }
    }
    eprintln!("  gRPC: available → offer {}", available.latency.summary());

    // Decisions under load.
    let offered = Arc::new(AtomicU64::new(0));
    let load = Load {
        tasks: args.clients,
        connections: args.connections,
        duration: Duration::from_secs(args.seconds),
        customers: CUSTOMERS,
        seed: 0x7a_0000,
    };
    let counter = Arc::new(AtomicU64::new(0));
    let queues = args.queues;
    let sampler = CpuSampler::start();
    let routes = {
        let offered = offered.clone();
        reads::over_grpc(&server, load, move |client, _| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let request = ContactSpec::nth(n, queues).proto("r");
            let offered = offered.clone();
            Box::pin(async move {
                let answer = client
                    .routing()
                    .route_interaction(request)
                    .await
                    .context("RouteInteraction")?
                    .into_inner();
                if answer.outcome == proto::RouteOutcome::Offered as i32 {
                    offered.fetch_add(1, Ordering::Relaxed);
                } else if answer.outcome != proto::RouteOutcome::Queued as i32 {
                    bail!("unexpected decision: {answer:?}");
                }
                Ok(())
            })
        })
        .await?
    };
    let route_cpu = sampler.map_or_else(|| "not available".into(), |s| s.describe());
    eprintln!(
        "  gRPC: {} RouteInteraction/s, {}",
        thousands(routes.per_s()),
        routes.latency.summary()
    );
    available.waiting.1 = args.waiting as usize + routes.latency.count() as usize;

    let started = Instant::now();
    drop(desks);
    drop(admin);
    drop(session_clients);
    server.stop().await?;
    let stop = started.elapsed();
    Ok(GrpcRun {
        sessions,
        logins,
        fill,
        available,
        routes,
        route_cpu,
        offered_at_once: offered.load(Ordering::Relaxed),
        stop,
        eligible: eligible.len(),
    })
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
    fn the_generated_configuration_compiles_and_routes_each_intent_to_its_queue() {
        let routing = RoutingConfig::from_toml(&config_toml(30)).expect("compiles");
        assert_eq!(routing.queues.len(), 30);
        assert_eq!(routing.rules.len(), 30);
        let steps: Vec<usize> = routing.queues.iter().map(|q| q.steps.len()).collect();
        assert_eq!(&steps[..4], [1, 2, 3, 1]);
        let mut engine = Engine::new(routing);
        let request = ContactSpec::nth(7, 30).request("c").expect("request");
        let queue = queue_id(ContactSpec::nth(7, 30).queue);
        let decision = engine.route(request, T0).expect("routed");
        assert_eq!(decision.queue, queue);
        assert!(matches!(decision.target, Target::Queued { .. }));
    }

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

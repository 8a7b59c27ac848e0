//! The over-gRPC measurement: a server in process, the same configuration, contacts and
//! agents over `SetRoutingConfig`, `RouteInteraction` and `AgentSession` streams, timed
//! from the client's side (agent available → offer received, and decisions under load).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rezef_adapter::{AgentSession, proto};

use super::ops::{Limits, Ops};
use super::world::{AgentSpec, ContactSpec, with_work};
use super::{CUSTOMERS, RoutingArgs};
use crate::harness::{BenchServer, CpuSampler, Rng, thousands};
use crate::reads::{self, Load};
use crate::workload::TENANT;

/// How long a session waits for an offer, or for its presence change to be carried out.
const SESSION_WAIT: Duration = Duration::from_secs(60);

/// What the gRPC run measured.
#[derive(Debug)]
pub(super) struct GrpcRun {
    pub(super) sessions: usize,
    pub(super) logins: Duration,
    pub(super) fill: Duration,
    pub(super) available: Ops,
    pub(super) routes: reads::Reads,
    pub(super) route_cpu: String,
    pub(super) offered_at_once: u64,
    pub(super) stop: Duration,
    /// Logged-in agents with a contact waiting for them at the first step.
    pub(super) eligible: usize,
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

pub(super) async fn over_grpc(
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

//! `ResumeConversation` under concurrent load over a large store, and the same work in
//! process, so that the cost of the gRPC path is visible next to the store's and the
//! handler's own.
//!
//! Why: every arriving contact asks it (the IVR on answer, the chat on open), so it sits on
//! the path of every call. The store holds `--customers` customers, each with a web chat
//! ([`Workload::conversation`]: intent, an order number and a sensitive card suffix, ten
//! messages, a phone number verified by one-time code), written straight into the store
//! (`fill`): a million customers could not be published and projected in the time. The
//! server then starts on that data directory and many client tasks, multiplexed over a few
//! HTTP/2 connections, call `ResumeConversation` for random customers as a voice channel
//! does: by the caller's number. Each call resolves the number in the identity index, reads
//! the journey, decides what the call continues (`rezef_events::resume::resume`) and converts
//! the answer. Afterwards, with the server stopped, the same lookups run in process from two
//! threads: the two store reads alone, then the handler's whole work without the transport.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use prost::Message;
use rezef_adapter::proto;
use rezef_events::policy::ContinuityPolicy;
use rezef_events::resume::{Caller, resume};
use rezef_events::{Channel, ChannelIdentity, CustomerRef, Journey, TenantId, Timestamp};
use rezef_server::convert::{View, resume_to_proto};
use rezef_store::{JourneyStore, SledStore};

use crate::fill::fill;
use crate::harness::{
    BenchServer, CpuSampler, Report, Target, mib, ms, proc_status_bytes, temp_dir, thousands,
};
use crate::long_history;
use crate::reads::{self, BASELINE_MAX, Load};
use crate::workload::{CONVERSATION_MESSAGES, TENANT, phone, phone_ref};

/// The longest the server may take to warm its cache before the timed run.
const WARM_UP_LIMIT: Duration = Duration::from_secs(600);

/// The goals for ResumeConversation.
pub const TARGET_REQ_PER_S: f64 = 20_000.0;
pub const TARGET_P99_MS: f64 = 5.0;

#[derive(Debug, Clone, clap::Args)]
pub struct ResumeArgs {
    /// Concurrent calling tasks.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub clients: u32,
    /// HTTP/2 connections the tasks are spread over.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub connections: u32,
    /// How long to call (each in-process baseline runs for at most 5 s of it).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub seconds: u64,
    /// Customers in the store.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub customers: u64,
    /// One more customer with this many interactions, whose ResumeConversation latency is
    /// compared with a one-chat customer's (0: none).
    #[arg(long, default_value_t = 10_000)]
    pub history: u32,
    /// `[projection] cache_mib` of the server (default: the server's).
    #[arg(long)]
    pub cache_mib: Option<u64>,
    /// Start with an empty cache (`[projection] warm_cache = false`); by default the server
    /// warms its cache from the store, and the timed run starts once it has.
    #[arg(long)]
    pub cold: bool,
}

pub async fn run(base: &Path, args: &ResumeArgs) -> Result<Report> {
    let dir = temp_dir(base, "rezef-bench-resume-")?;
    let store_dir = dir.path().join("store");
    let (customers, history) = (args.customers, args.history);
    // The long-history customer, if any, is the one after the others.
    let long = (history > 0).then_some(customers);
    let (filled, store_size) = tokio::task::spawn_blocking(move || {
        let store = SledStore::open(&store_dir).context("opening the store")?;
        let all = customers + u64::from(long.is_some());
        let filled = fill(&store, all, 0x7e5, |workload, n| {
            if Some(n) == long {
                workload.history(n, history)
            } else {
                workload.conversation(n)
            }
        })?;
        store.flush().context("flushing the store")?;
        let size = store.size_on_disk().context("store size")?;
        anyhow::Ok((filled, size))
    })
    .await
    .context("the fill panicked")??;

    let (cache_mib, cold) = (args.cache_mib, args.cold);
    let server = BenchServer::open_with(dir, |config| {
        if let Some(mib) = cache_mib {
            config.projection.cache_mib = mib;
        }
        config.projection.warm_cache = !cold;
    })
    .await?;
    let (warm_up, warmed_bytes) = server.warmed(WARM_UP_LIMIT).await?;
    let rss_warm = proc_status_bytes("VmRSS");
    let sample = check_answer(&mut server.client().await?).await?;
    let load = Load {
        tasks: args.clients,
        connections: args.connections,
        duration: Duration::from_secs(args.seconds),
        customers: args.customers,
        seed: 0x7e5_0000,
    };
    let sampler = CpuSampler::start();
    let grpc = reads::over_grpc(&server, load, |client, customer| {
        Box::pin(async move {
            let answer = client
                .resume(TENANT, phone_ref(customer), proto::Channel::Voice, None)
                .await
                .context("ResumeConversation")?;
            if !answer.known || answer.conversation.is_none() {
                bail!("customer {customer} was not found or has nothing to continue");
            }
            Ok(())
        })
    })
    .await?;
    let grpc_cpu = sampler.map_or_else(|| "not available".into(), |s| s.describe());
    let mut long_history = Report::new(String::new());
    if let Some(long) = long {
        let duration = Duration::from_secs(args.seconds).min(BASELINE_MAX);
        long_history::measure(&server, (long, history), 0, duration, &mut long_history).await?;
    }
    let dir = server.stop().await?;

    let store = Arc::new(SledStore::open(dir.path().join("store")).context("reopening the store")?);
    let baseline_for = Duration::from_secs(args.seconds).min(BASELINE_MAX);
    let tenant = TenantId::new(TENANT).map_err(|e| anyhow!("tenant: {e}"))?;
    let phones: Vec<ChannelIdentity> = (0..args.customers)
        .map(|n| ChannelIdentity::phone(&phone(n)).map_err(|e| anyhow!("phone: {}", e.reason)))
        .collect::<Result<_>>()?;
    let load = {
        let store = store.clone();
        move |phone: &ChannelIdentity| find(&*store, &tenant, phone)
    };
    let lookups = reads::in_process(baseline_for, phones.clone(), {
        let load = load.clone();
        move |phone| Ok(load(phone)?.conversations.len())
    })
    .await?;
    // What the handler does for a caller: resolve, load, decide, convert, encode.
    let policy = ContinuityPolicy::default();
    let handler = reads::in_process(baseline_for, phones, move |phone| {
        let journey = load(phone)?;
        let now = Timestamp::now();
        let caller = CustomerRef::Id(journey.customer_id.clone());
        let answer = resume(
            &journey,
            Caller::Shown(&caller),
            Channel::Voice,
            now,
            &policy,
            None,
        );
        let view = View {
            reveal: false,
            transcript: policy.transcript_excerpt,
            now,
        };
        Ok(resume_to_proto(&journey, &answer, &view, 0)
            .encode_to_vec()
            .len())
    })
    .await?;
    drop(store);
    drop(dir);

    let mut report = Report::new(format!(
        "resume: ResumeConversation by phone, {} tasks over {} connections, {} customers, {} s",
        args.clients,
        args.connections,
        thousands(args.customers as f64),
        args.seconds
    ));
    report.row(
        "[projection] cache_mib",
        cache_mib.map_or_else(|| "the server's default".into(), |mib| format!("{mib} MiB")),
    );
    report.row(
        "cache warmed before the timed run (`[projection] warm_cache`)",
        if cold {
            "no: the run starts cold".into()
        } else {
            format!(
                "in {} s, {} estimated; RSS then {}",
                ms(warm_up.as_secs_f64()),
                mib(warmed_bytes),
                rss_warm.map_or_else(|| "not available".into(), mib)
            )
        },
    );
    report.row(
        "store filled directly (fold + JourneyStore::commit, 2 threads; not the figure)",
        format!(
            "{} customers, {} events folded, in {} s; journey {} B on average; \
             SledStore::size_on_disk {}",
            thousands(filled.customers as f64),
            thousands(filled.events as f64),
            ms(filled.elapsed.as_secs_f64()),
            thousands(filled.journey_bytes as f64 / filled.customers.max(1) as f64),
            mib(store_size)
        ),
    );
    report.row("answer checked before the run", sample);
    report.row(
        "**ResumeConversation over gRPC**",
        format!("**{} req/s**", thousands(grpc.per_s())),
    );
    report.row("ResumeConversation latency", grpc.latency.summary());
    report.row("CPU during the gRPC run", grpc_cpu);
    reads::report_baselines(
        &mut report,
        ("store reads (resolve + journey)", &lookups),
        (
            "resolve + journey + resume + resume_to_proto + encode",
            &handler,
        ),
    );
    report.row(
        "gRPC ÷ in-process handler throughput",
        format!("{:.2}", grpc.per_s() / handler.per_s().max(1e-9)),
    );
    report.headline(
        format!(
            "{} req/s over gRPC; in-process store {} lookups/s, handler {} req/s",
            thousands(grpc.per_s()),
            thousands(lookups.per_s()),
            thousands(handler.per_s())
        ),
        format!(
            "gRPC {}; handler p50 {} / p99 {} ms",
            grpc.latency.summary(),
            ms(handler.latency.ms(0.5)),
            ms(handler.latency.ms(0.99))
        ),
    );
    report.target(Target::at_least(
        "ResumeConversation throughput",
        grpc.per_s(),
        TARGET_REQ_PER_S,
        "req/s",
    ));
    report.target(Target::at_most(
        "ResumeConversation p99",
        grpc.latency.ms(0.99),
        TARGET_P99_MS,
        "ms",
    ));
    report.absorb(long_history);
    report.note(
        "The calling tasks run in the same process as the server and share its 2 cores: the \
         gRPC figure pays for the client side (encode, HTTP/2, decode) too.",
    );
    report.note(
        "The store was written just before the run, so its files are in the page cache; \
         sled's own cache is 512 MiB, smaller than the store.",
    );
    Ok(report)
}

/// The journey of the customer with this phone number, as the handler finds it: the
/// identity index, then the journey, following merges.
fn find(store: &dyn JourneyStore, tenant: &TenantId, phone: &ChannelIdentity) -> Result<Journey> {
    let mut id = store
        .resolve(tenant, phone)?
        .ok_or_else(|| anyhow!("no customer has phone {phone}"))?;
    for _ in 0..64 {
        match store.journey(tenant, &id)? {
            Some(Journey {
                merged_into: Some(next),
                ..
            }) => id = next,
            Some(journey) => return Ok(journey),
            None => bail!("customer {id} has no journey"),
        }
    }
    bail!("merge pointers of {phone} loop")
}

/// Calls once and checks that the answer is what a voice channel should get for the
/// scripted chat, so that the run cannot measure empty answers. Describes it.
async fn check_answer(client: &mut rezef_adapter::Client) -> Result<String> {
    let answer = client
        .resume(TENANT, phone_ref(0), proto::Channel::Voice, None)
        .await
        .context("the first ResumeConversation")?;
    let size = answer.encoded_len();
    let conversation = answer
        .conversation
        .as_ref()
        .ok_or_else(|| anyhow!("customer 0 has no conversation to continue: {answer:?}"))?;
    let verified = answer
        .verified
        .as_ref()
        .ok_or_else(|| anyhow!("customer 0 has no verified identity: {answer:?}"))?;
    let masked = conversation.context.iter().filter(|c| c.masked).count();
    let intent = conversation
        .intent
        .as_ref()
        .map(|i| i.intent.clone())
        .unwrap_or_default();
    let ok = answer.known
        && answer.skip_self_service
        && verified.skip_verification
        && !intent.is_empty()
        && conversation.transcript.len() == CONVERSATION_MESSAGES
        && conversation.context.len() == 2
        && masked == 1;
    if !ok {
        bail!("unexpected answer for customer 0: {answer:?}");
    }
    Ok(format!(
        "known, continues the chat ({}), intent {}, {} context values ({masked} masked), {} \
         transcript messages, phone verified (skip re-verification), skip self service; {size} B",
        proto::Continuation::try_from(answer.continuation).map_or("?", |c| c.as_str_name()),
        intent,
        conversation.context.len(),
        conversation.transcript.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filled_store_answers_a_call_by_phone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SledStore::open(dir.path()).expect("store");
        let filled = fill(&store, 30, 1, |workload, n| workload.conversation(n)).expect("fill");
        assert_eq!(filled.customers, 30);
        assert_eq!(filled.events, 30 * (CONVERSATION_MESSAGES as u64 + 5));
        let tenant = TenantId::new(TENANT).expect("tenant");
        let phone = ChannelIdentity::phone(&phone(17)).expect("phone");
        let journey = find(&store, &tenant, &phone).expect("found");
        assert_eq!(journey.customer_id.as_str(), "cust-0000017");
        let policy = ContinuityPolicy::default();
        let now = Timestamp::now();
        let caller = CustomerRef::Id(journey.customer_id.clone());
        let answer = resume(
            &journey,
            Caller::Shown(&caller),
            Channel::Voice,
            now,
            &policy,
            None,
        );
        assert!(answer.skip_self_service);
        assert!(answer.verified.is_some_and(|v| v.skip_verification));
    }
}

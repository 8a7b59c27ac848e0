//! ResumeConversation for a customer with a long history, beside one with a single chat:
//! journeys stay bounded (older conversations become summaries), so ten thousand earlier
//! interactions must not make the answer much slower (issue 12: within 2×).
//!
//! One client calls for each customer in turn, one call at a time, so that the latency is
//! the call's own and not the queueing of a loaded server.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rezef_adapter::proto;

use crate::harness::{BenchServer, Latency, Report, Target, ms};
use crate::workload::{TENANT, phone_ref};

/// The goal: the long history's p50 and p99 at most this many times the short one's.
pub const TARGET_RATIO: f64 = 2.0;

/// Calls `ResumeConversation` for `long` and `short` alternately for `duration`, and
/// reports both latencies and their ratios.
pub async fn measure(
    server: &BenchServer,
    (long, interactions): (u64, u32),
    short: u64,
    duration: Duration,
    report: &mut Report,
) -> Result<()> {
    let mut client = server.client().await?;
    let (mut long_latency, mut short_latency) = (Latency::new()?, Latency::new()?);
    let started = Instant::now();
    while started.elapsed() < duration {
        for (customer, latency) in [(long, &mut long_latency), (short, &mut short_latency)] {
            let call = Instant::now();
            let answer = client
                .resume(TENANT, phone_ref(customer), proto::Channel::Voice, None)
                .await
                .context("ResumeConversation")?;
            latency.record(call.elapsed());
            if !answer.known || answer.conversation.is_none() {
                bail!("customer {customer} was not found or has nothing to continue");
            }
        }
    }
    report.row(
        format!("ResumeConversation, a customer with {interactions} interactions (1 client)"),
        long_latency.summary(),
    );
    report.row(
        "ResumeConversation, a customer with one chat (same client, alternating)",
        short_latency.summary(),
    );
    for (q, name) in [(0.5, "p50"), (0.99, "p99")] {
        let ratio = long_latency.ms(q) / short_latency.ms(q).max(1e-9);
        report.row(
            format!("long history ÷ one chat, {name}"),
            format!(
                "{ratio:.2}× ({} / {} ms)",
                ms(long_latency.ms(q)),
                ms(short_latency.ms(q))
            ),
        );
        report.target(Target::at_most(
            format!("ResumeConversation {name}, {interactions} interactions ÷ one chat"),
            ratio,
            TARGET_RATIO,
            "×",
        ));
    }
    Ok(())
}

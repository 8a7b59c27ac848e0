//! The demo's last part: the contact centre's morning, measured both ways. A voice gateway
//! publishes seven calls to the `cards` queue over the past two hours (what the IVR, the
//! queue and the agents did, with the times it happened), then the demo asks
//! `Insights.GetReport` for the tenant's figures (the first part's chat and call included): the classic service level, from queue entry, says
//! the centre met its target; the journey-true one, from the moment each customer called,
//! says most callers waited too long, and the report counts why (docs/measurement.md).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rezef_adapter::proto::{self, event::Payload};
use rezef_adapter::{Client, EventFactory};

use super::{TENANT, label};

const QUEUE: &str = "cards";
const AGENT: &str = "agent-noa";

/// What happens on one call, in seconds after it arrives.
type Call = &'static [(u64, Step)];

#[derive(Clone, Copy)]
enum Step {
    Queued,
    Answered,
    Abandoned(proto::AbandonPoint),
    CallbackRequested,
    CalledBack,
    Ended(proto::EndReason),
    Resolved,
}

/// The morning: a call every ten minutes, each a different customer.
const CALLS: [(&str, Call); 7] = [
    ("answered in 10 s after 5 s of menus", &ANSWERED),
    ("answered in 10 s after 5 s of menus", &ANSWERED),
    ("50 s of menus, then answered in 8 s", &LONG_MENUS),
    ("gave up in the IVR after 70 s", &IVR_ABANDON),
    ("hung up 3 s into the queue", &SHORT_ABANDON),
    ("asked for a callback, called back 40 min later", &CALLBACK),
    ("answered after 45 s in the queue", &SLOW),
];
const ANSWERED: [(u64, Step); 4] = [
    (5, Step::Queued),
    (15, Step::Answered),
    (135, Step::Ended(proto::EndReason::Completed)),
    (165, Step::Resolved),
];
const LONG_MENUS: [(u64, Step); 4] = [
    (50, Step::Queued),
    (58, Step::Answered),
    (178, Step::Ended(proto::EndReason::Completed)),
    (208, Step::Resolved),
];
const IVR_ABANDON: [(u64, Step); 1] = [(70, Step::Abandoned(proto::AbandonPoint::Ivr))];
const SHORT_ABANDON: [(u64, Step); 2] = [
    (5, Step::Queued),
    (8, Step::Abandoned(proto::AbandonPoint::Queue)),
];
const CALLBACK: [(u64, Step); 6] = [
    (5, Step::Queued),
    (15, Step::CallbackRequested),
    (20, Step::Ended(proto::EndReason::CustomerLeft)),
    (2400, Step::CalledBack),
    (2700, Step::Ended(proto::EndReason::Completed)),
    (2730, Step::Resolved),
];
const SLOW: [(u64, Step); 4] = [
    (5, Step::Queued),
    (50, Step::Answered),
    (170, Step::Ended(proto::EndReason::Completed)),
    (200, Step::Resolved),
];

/// Publishes the morning and prints its figures.
pub(super) async fn morning(client: &mut Client) -> anyhow::Result<()> {
    let now = SystemTime::now();
    let quarter = quarter_floor(now)?;
    let from = quarter - Duration::from_secs(2 * 3600);
    println!(
        "── 4. The morning, measured ─ {} calls to the `{QUEUE}` queue in the past two hours",
        CALLS.len()
    );
    let mut events = Vec::new();
    let mut last_caller = None;
    for (n, (what, call)) in (1u64..).zip(CALLS) {
        let arrived = from + Duration::from_secs(600 * n);
        println!("   call {n}   {what}");
        let factory = EventFactory::new(TENANT, "voice-gateway")
            .identity(proto::IdentityKind::Phone, format!("+972 54-555-02{n:02}"))
            .on(proto::Channel::Voice, format!("call-9{n:04}"));
        let mut call_events = vec![factory.interaction_started(proto::Direction::Inbound)];
        call_events.extend(
            call.iter()
                .map(|(_, step)| factory.event(payload(*step, n))),
        );
        let times = std::iter::once(0).chain(call.iter().map(|(secs, _)| *secs));
        for (event, secs) in call_events.iter_mut().zip(times) {
            event.occurred_at = Some((arrived + Duration::from_secs(secs)).into());
        }
        events.extend(call_events);
        last_caller = Some(factory.customer_ref());
    }
    let ack = client.publish(events).await?;
    // Read-your-writes: the last caller's journey at the last offset, so the measurement
    // (folded in the same step, on the demo's one partition) has every call.
    let last = ack.first_offset + u64::from(ack.count) - 1;
    let caller = last_caller.context("no calls")?;
    client.journey(TENANT, caller, Some(last)).await?;

    // One row for the two hours and the current quarter, read from the measurement.
    let request = proto::GetReportRequest {
        tenant_id: TENANT.into(),
        from: Some(from.into()),
        to: Some((quarter + Duration::from_secs(900)).into()),
        ..Default::default()
    };
    let report = client.insights().get_report(request).await?.into_inner();
    let row = report.rows.first().context("the report has no figures")?;
    print_figures(row);
    Ok(())
}

fn payload(step: Step, n: u64) -> Payload {
    match step {
        Step::Queued => Payload::ContactQueued(proto::ContactQueued {
            queue_id: QUEUE.into(),
            priority: 1,
            ..Default::default()
        }),
        Step::Answered => Payload::ContactAssigned(proto::ContactAssigned {
            agent_id: AGENT.into(),
            queue_id: QUEUE.into(),
        }),
        Step::Abandoned(point) => Payload::ContactAbandoned(proto::ContactAbandoned {
            point: point as i32,
        }),
        Step::CallbackRequested => Payload::CallbackRequested(proto::CallbackRequested {
            callback_to: Some(proto::ChannelIdentity {
                kind: proto::IdentityKind::Phone as i32,
                value: format!("+972 54-555-02{n:02}"),
                network: String::new(),
            }),
            queue_id: QUEUE.into(),
            ..Default::default()
        }),
        Step::CalledBack => Payload::CallbackCompleted(proto::CallbackCompleted {
            reached: true,
            agent_id: AGENT.into(),
        }),
        Step::Ended(reason) => Payload::InteractionEnded(proto::InteractionEnded {
            reason: reason as i32,
        }),
        Step::Resolved => Payload::WrapUpRecorded(proto::WrapUpRecorded {
            agent_id: AGENT.into(),
            disposition: "card-issue-solved".into(),
            need_resolved: true,
            notes: String::new(),
        }),
    }
}

fn print_figures(row: &proto::ReportRow) {
    println!(
        "\n   Insights.GetReport: the tenant's past two hours (these calls, and the chat and \
         call\n   above), service level (answered within 20 s) measured two ways:\n"
    );
    let level = |name: &str, level: &Option<proto::ServiceLevel>| {
        let level = level.unwrap_or_default();
        let percent = level
            .ratio
            .map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0));
        println!(
            "   {name:<34}{percent:>7}  ({} of {} calls, {} left out)",
            level.in_target, level.counted, level.excluded
        );
    };
    level("classic, from queue entry", &row.classic);
    level("journey-true, from the first ring", &row.journey_true);
    let reasons: Vec<String> = (row.differences.iter())
        .map(|d| {
            let reason = proto::DifferenceReason::try_from(d.reason).map(|r| r.as_str_name());
            format!("{} {}", label(reason, "DIFFERENCE_REASON_"), d.contacts)
        })
        .collect();
    println!(
        "   why they differ                   {}",
        reasons.join(", ")
    );
    let wait = (row.stations.iter())
        .find(|s| s.station == proto::Station::JourneyWait as i32)
        .cloned()
        .unwrap_or_default();
    println!(
        "   wait from the first ring          p50 {} s, p90 {} s, max {} s",
        wait.p50.map_or(0, |d| d.seconds),
        wait.p90.map_or(0, |d| d.seconds),
        wait.max.map_or(0, |d| d.seconds)
    );
}

/// The start of the 15 minutes `at` is in: reports are asked on quarter-hour boundaries.
fn quarter_floor(at: SystemTime) -> anyhow::Result<SystemTime> {
    let secs = at.duration_since(UNIX_EPOCH)?.as_secs();
    Ok(UNIX_EPOCH + Duration::from_secs(secs - secs % 900))
}

//! Retries are safe: the server, given an adapter's events a second time (as the publisher
//! resends what it cannot know was acknowledged), records the copies but applies none.

use std::collections::BTreeMap;

use super::{Finding, Report, Rule};
use crate::{Client, Error, proto};

/// Publishes what `translate` makes of one input to a running server, then what it makes of
/// the same input delivered again, and compares each customer's journey after the first and
/// the second time: equal but for the duplicates counted, which must have grown by the
/// events sent again. A server error is an `Err`, not a finding.
///
/// The events are really published: run it against a test server, not a tenant in use.
pub async fn retries_are_safe(
    client: &mut Client,
    mut translate: impl FnMut() -> Vec<proto::Event>,
) -> Result<Report, Error> {
    let events = translate();
    let first = journeys(client, &events).await?;
    let again = journeys(client, &translate()).await?;
    let mut findings = Vec::new();
    for (customer, (journey, sent)) in &first {
        let Some((repeated, _)) = again.get(customer) else {
            continue;
        };
        let witness = &events[sent.first().copied().unwrap_or_default()];
        let counted = duplicates(repeated).saturating_sub(duplicates(journey));
        if counted != sent.len() as u64 {
            findings.push(Finding::new(
                Rule::SafeRetry,
                witness,
                format!(
                    "customer {customer}: {} events sent again, {counted} counted as duplicates",
                    sent.len()
                ),
            ));
        }
        if unstamped(journey) != unstamped(repeated) {
            findings.push(Finding::new(
                Rule::SafeRetry,
                witness,
                format!("customer {customer}: the journey changed when the events came again"),
            ));
        }
    }
    Ok(Report { findings })
}

/// Each customer's journey once `events` are published and projected, with the indexes of
/// the events about them.
async fn journeys(
    client: &mut Client,
    events: &[proto::Event],
) -> Result<BTreeMap<String, (proto::Journey, Vec<usize>)>, Error> {
    let ack = client.publish(events.to_vec()).await?;
    let mut journeys: BTreeMap<String, (proto::Journey, Vec<usize>)> = BTreeMap::new();
    for (i, event) in events.iter().enumerate() {
        let Some(customer) = event.customer.clone() else {
            continue;
        };
        let offset = ack.positions.get(i).map(|p| p.offset);
        let response = client.journey(&event.tenant_id, customer, offset).await?;
        let journey = response.journey.unwrap_or_default();
        // Ends as the journey once the customer's last event of the batch is projected.
        let entry = journeys
            .entry(journey.customer_id.clone())
            .or_insert_with(|| (proto::Journey::default(), Vec::new()));
        entry.0 = journey;
        entry.1.push(i);
    }
    Ok(journeys)
}

fn duplicates(journey: &proto::Journey) -> u64 {
    journey
        .counters
        .as_ref()
        .map_or(0, |c| c.duplicates_ignored)
}

/// The journey without what a duplicate legitimately changes: its count, and the offset of
/// the last record applied (the copies are records too).
fn unstamped(journey: &proto::Journey) -> proto::Journey {
    let mut journey = journey.clone();
    journey.last_event_offset = 0;
    if let Some(counters) = &mut journey.counters {
        counters.duplicates_ignored = 0;
    }
    journey
}

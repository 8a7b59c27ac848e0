//! The checks that need no server: the server's own validation, run here, and the ids of
//! what an adapter makes of its inputs.

use std::collections::HashMap;

use super::{Finding, Rule};
use crate::proto;

/// Each event as `Ingest.Publish` checks it (`rezef_record::event_from_proto`, the server's
/// code), the fields named as in the server's `INVALID_ARGUMENT` (`events[i].…`).
pub fn valid(events: &[proto::Event]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (i, event) in events.iter().enumerate() {
        if let Err(violations) = rezef_record::event_from_proto(event.clone()) {
            findings.extend(violations.into_iter().map(|v| {
                let v = v.under(&format!("events[{i}]"));
                Finding::new(
                    Rule::Valid,
                    event,
                    format!("{}: {}", v.field, v.description),
                )
            }));
        }
    }
    findings
}

/// No id is given to two different events (the server would apply only the first). The same
/// event twice is no finding: its copy is a harmless duplicate.
pub fn distinct(events: &[proto::Event]) -> Vec<Finding> {
    let mut seen: HashMap<&str, (usize, &proto::Event)> = HashMap::new();
    let mut findings = Vec::new();
    for (i, event) in events.iter().enumerate() {
        match seen.get(event.event_id.as_str()) {
            Some((first, earlier)) if !same_content(earlier, event) => {
                findings.push(Finding::new(
                    Rule::Distinct,
                    event,
                    format!("events[{first}] and events[{i}] differ but share this id"),
                ));
            }
            Some(_) => {}
            None => {
                seen.insert(&event.event_id, (i, event));
            }
        }
    }
    findings
}

/// `again` (the same input translated a second time) repeats `first`: the same events, in
/// the same order, with the same ids. Only `occurred_at` may differ (an adapter may stamp
/// an input when it receives it; the server keeps the first copy's).
pub fn stable(first: &[proto::Event], again: &[proto::Event]) -> Vec<Finding> {
    let mut findings = Vec::new();
    if first.len() != again.len() {
        let event = again.first().or(first.first());
        findings.push(Finding {
            rule: Rule::Stable,
            event_id: event.map(|e| e.event_id.clone()).unwrap_or_default(),
            detail: format!(
                "the same input gave {} events, then {}",
                first.len(),
                again.len()
            ),
        });
    }
    for (i, (one, other)) in first.iter().zip(again).enumerate() {
        if one.event_id != other.event_id {
            findings.push(Finding::new(
                Rule::Stable,
                one,
                format!(
                    "events[{i}]: the same input gave id {:?} the second time: a retry would \
                     be applied twice",
                    other.event_id
                ),
            ));
        } else if !same_content(one, other) {
            findings.push(Finding::new(
                Rule::Stable,
                one,
                format!(
                    "events[{i}]: the same input gave different content under this id: the \
                     server would keep the first"
                ),
            ));
        }
    }
    findings
}

/// Equal but for the times an adapter or the server stamps.
fn same_content(one: &proto::Event, other: &proto::Event) -> bool {
    let unstamped = |event: &proto::Event| proto::Event {
        occurred_at: None,
        recorded_at: None,
        ..event.clone()
    };
    unstamped(one) == unstamped(other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventFactory;

    fn chat() -> EventFactory {
        EventFactory::new("acme", "web-chat")
            .identity(proto::IdentityKind::ChatVisitor, "visitor-42")
            .on(proto::Channel::Webchat, "chat-1")
    }

    fn with_id(mut event: proto::Event, id: &str) -> proto::Event {
        event.event_id = id.into();
        event
    }

    #[test]
    fn a_well_formed_event_is_valid() {
        let events = vec![chat().message(proto::Participant::Customer, "hello")];
        assert_eq!(valid(&events), vec![]);
    }

    #[test]
    fn an_invalid_event_is_named_by_the_servers_path() {
        let mut tenant = chat().message(proto::Participant::Customer, "hello");
        tenant.tenant_id = "not a tenant!".into();
        let mut source = chat().message(proto::Participant::Customer, "hello");
        source.source.clear();
        let started = chat().interaction_started(proto::Direction::Inbound);
        let findings = valid(&[started, tenant, source]);
        let fields: Vec<&str> = findings
            .iter()
            .map(|f| f.detail.split(':').next().unwrap_or_default())
            .collect();
        assert!(fields.contains(&"events[1].tenant_id"), "{findings:?}");
        assert!(fields.contains(&"events[2].source"), "{findings:?}");
        assert_eq!(findings.len(), 2);
        assert!(findings.iter().all(|f| f.rule == Rule::Valid));
    }

    #[test]
    fn different_events_under_one_id_are_found() {
        let hello = with_id(chat().message(proto::Participant::Customer, "hello"), "m-1");
        let bye = with_id(chat().message(proto::Participant::Customer, "bye"), "m-1");
        assert_eq!(distinct(&[hello.clone(), hello.clone()]), vec![]);
        let findings = distinct(&[hello, bye]);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].rule, Rule::Distinct);
        assert!(findings[0].detail.contains("events[0] and events[1]"));
    }

    #[test]
    fn fresh_ids_for_the_same_input_are_unstable() {
        // EventFactory gives every event a new id: an adapter must derive its own.
        let translate = || vec![chat().message(proto::Participant::Customer, "hello")];
        let findings = stable(&translate(), &translate());
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].rule, Rule::Stable);
    }

    #[test]
    fn a_later_time_is_stable_but_other_content_is_not() {
        let translate = |text: &str| {
            let mut event = with_id(chat().message(proto::Participant::Customer, text), "m-1");
            event.occurred_at = Some(prost_types::Timestamp {
                seconds: i64::try_from(text.len()).unwrap_or_default(),
                nanos: 0,
            });
            vec![event]
        };
        assert_eq!(stable(&translate("hello"), &translate("hello")), vec![]);
        let findings = stable(&translate("hello"), &translate("hello!"));
        assert_eq!(findings.len(), 1);
        assert!(findings[0].detail.contains("different content"));
        let missing = stable(&translate("hello"), &[]);
        assert!(missing[0].detail.contains("gave 1 events, then 0"));
    }

    #[test]
    fn check_runs_all_three_on_one_input() {
        let report = super::super::check(|| {
            vec![with_id(
                chat().message(proto::Participant::Customer, "hi"),
                "m-1",
            )]
        });
        report.assert_conforms();
        let report =
            super::super::check(|| vec![chat().message(proto::Participant::Customer, "hi")]);
        assert!(!report.conforms());
    }
}

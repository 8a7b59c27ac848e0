//! The engine under random interleavings of every operation, checked after each step
//! against the invariants and a model of who holds what: capacity is never exceeded, no
//! contact is held by two agents (but for a warm transfer or a consult: its agent, and the
//! one it is offered to or who consults), offers go only to available agents, an accepted contact is the accepting
//! agent's, and expired offers are gone.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use rezef_events::event::Presence;
use rezef_events::{AgentId, Channel, InteractionId, Timestamp};
use rezef_routing::{
    AgentProfile, ContactRequest, Engine, RoutingConfig, RoutingError, Target, TransferTarget,
};

const CONFIG: &str = r#"
    version = 1
    default_queue = "general"
    [offers]
    timeout = "20s"
    max_declines = 2
    affinity_timeout = "30s"
    [[queues]]
    id = "general"
    steps = [{ after = "0s" }, { after = "40s", drop_language = true }]
    [[queues]]
    id = "billing"
    strategy = "least_occupied"
    steps = [{ after = "0s", requirements = "skills HAS 'billing'" }]
    [[rules]]
    name = "billing"
    when = "intent == 'billing'"
    queue = "billing"
"#;

#[derive(Debug, Clone)]
enum Op {
    Presence(usize, u8),
    Route {
        contact: usize,
        chat: bool,
        billing: bool,
        he: bool,
        preferred: Option<usize>,
    },
    Dispatch,
    Accept(usize, bool),
    Decline(usize),
    Expire,
    Complete(usize),
    Withdraw(usize),
    Transfer {
        held: usize,
        to: usize,
        queue: bool,
        warm: bool,
    },
    Consult(usize, usize),
    EndConsult(usize, bool),
    Disconnect(usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..4, 0u8..5).prop_map(|(a, p)| Op::Presence(a, p)),
        (
            0usize..12,
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            prop::option::of(0usize..4)
        )
            .prop_map(|(contact, chat, billing, he, preferred)| Op::Route {
                contact,
                chat,
                billing,
                he,
                preferred
            }),
        Just(Op::Dispatch),
        (0usize..4, any::<bool>()).prop_map(|(k, own)| Op::Accept(k, own)),
        (0usize..4).prop_map(Op::Decline),
        Just(Op::Expire),
        (0usize..12).prop_map(Op::Complete),
        (0usize..12).prop_map(Op::Withdraw),
        (0usize..4, 0usize..4, any::<bool>(), any::<bool>()).prop_map(|(held, to, queue, warm)| {
            Op::Transfer {
                held,
                to,
                queue,
                warm,
            }
        }),
        (0usize..4, 0usize..4).prop_map(|(held, to)| Op::Consult(held, to)),
        (0usize..4, any::<bool>()).prop_map(|(held, by_holder)| Op::EndConsult(held, by_holder)),
        (0usize..4).prop_map(Op::Disconnect),
        (1u64..30).prop_map(Op::Advance),
    ]
}

fn agent(n: usize) -> AgentId {
    AgentId::new(format!("a-{n}")).expect("valid")
}

fn contact(n: usize) -> InteractionId {
    InteractionId::new(format!("c-{n}")).expect("valid")
}

const PRESENCES: [Presence; 5] = [
    Presence::Available,
    Presence::Away,
    Presence::Busy,
    Presence::AfterContactWork,
    Presence::Offline,
];

fn check(
    engine: &Engine,
    now: Timestamp,
    assigned: &BTreeMap<InteractionId, AgentId>,
) -> Result<(), TestCaseError> {
    let mut holders: BTreeMap<&InteractionId, Vec<&AgentId>> = BTreeMap::new();
    for (profile, work) in engine.work() {
        prop_assert!(
            work.len() <= profile.max_load as usize,
            "load of {}",
            profile.id
        );
        for (channel, capacity) in &profile.capacity {
            let used = work.values().filter(|c| *c == channel).count();
            prop_assert!(
                used <= *capacity as usize,
                "{} over capacity on {channel}",
                profile.id
            );
        }
        for contact in work.keys() {
            holders.entry(contact).or_default().push(&profile.id);
        }
    }
    for (contact, agents) in &holders {
        if agents.len() > 1 {
            // A warm transfer or a consult: its agent holds it, one other agent is offered it
            // or consults.
            let mut others: Vec<&AgentId> = engine
                .offers()
                .filter(|o| &o.contact == *contact)
                .map(|o| &o.agent)
                .collect();
            others.extend(engine.consulting(contact));
            let holder = engine.assigned_to(contact);
            prop_assert_eq!(agents.len(), 2, "{} held by {:?}", contact, agents);
            prop_assert_eq!(others.len(), 1, "{} held twice", contact);
            prop_assert!(holder.is_some_and(|h| agents.contains(&h) && h != others[0]));
        }
    }
    for offer in engine.offers() {
        let held_by = holders.get(&offer.contact);
        prop_assert!(held_by.is_some_and(|agents| agents.contains(&&offer.agent)));
        prop_assert!(offer.made_at <= now);
    }
    for (contact, agent) in assigned {
        prop_assert_eq!(engine.assigned_to(contact), Some(agent));
        prop_assert!(
            holders
                .get(contact)
                .is_some_and(|agents| agents.contains(&agent))
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_interleaving_breaks_the_invariants(ops in prop::collection::vec(op(), 1..120)) {
        let routing = RoutingConfig::from_toml(CONFIG).expect("compiles");
        let mut engine = Engine::new(routing);
        let mut now = Timestamp::from_unix_millis(1_800_000_000_000);
        for n in 0..4 {
            engine.upsert_agent(AgentProfile {
                id: agent(n),
                skills: if n % 2 == 0 { BTreeMap::from([("billing".to_owned(), 3)]) } else { BTreeMap::new() },
                languages: vec![if n < 2 { "he" } else { "en" }.to_owned()],
                team: String::new(),
                site: String::new(),
                capacity: BTreeMap::from([(Channel::Voice, 1), (Channel::Webchat, 2)]),
                max_load: 2,
            }, now);
        }
        // The model: who holds each accepted contact.
        let mut assigned: BTreeMap<InteractionId, AgentId> = BTreeMap::new();
        let mut routed: BTreeSet<InteractionId> = BTreeSet::new();
        for op in ops {
            match op {
                Op::Presence(a, p) => {
                    engine.set_presence(&agent(a), PRESENCES[p as usize], now).expect("known agent");
                }
                Op::Route { contact: c, chat, billing, he, preferred } => {
                    let request = ContactRequest {
                        id: Some(contact(c)),
                        channel: Some(if chat { Channel::Webchat } else { Channel::Voice }),
                        intent: Some(if billing { "billing" } else { "other" }.into()),
                        language: Some(if he { "he" } else { "en" }.into()),
                        preferred_agent: preferred.map(agent),
                        ..ContactRequest::default()
                    };
                    match engine.route(request, now) {
                        Ok(decision) => {
                            prop_assert!(routed.insert(contact(c)), "a duplicate was routed");
                            if let Target::Offered(offer) = decision.target {
                                prop_assert_eq!(engine.presence(&offer.agent), Some(Presence::Available));
                            }
                        }
                        Err(_) => prop_assert!(routed.contains(&contact(c)), "refused a new contact"),
                    }
                }
                Op::Dispatch => {
                    for offer in engine.dispatch(now) {
                        prop_assert_eq!(engine.presence(&offer.agent), Some(Presence::Available));
                    }
                }
                Op::Accept(k, own) => {
                    let offer = engine.offers().nth(k).cloned();
                    if let Some(offer) = offer {
                        let by = if own { offer.agent.clone() } else { agent(9) };
                        let accepted = engine.accept(offer.id, &by, now);
                        prop_assert_eq!(accepted.is_ok(), own && now < offer.expires_at);
                        let consult = engine.consulting(&offer.contact) == Some(&offer.agent);
                        if accepted.is_ok() && !consult {
                            // Assigned already: a warm transfer, which moves it.
                            let before = assigned.insert(offer.contact.clone(), offer.agent.clone());
                            prop_assert!(before.is_none_or(|b| b != offer.agent));
                        }
                    }
                }
                Op::Decline(k) => {
                    let offer = engine.offers().nth(k).cloned();
                    if let Some(offer) = offer {
                        engine.decline(offer.id, &offer.agent).expect("own offer");
                    }
                }
                Op::Expire => {
                    engine.expire_offers(now);
                    prop_assert!(engine.offers().all(|o| o.expires_at > now));
                }
                Op::Complete(c) => {
                    match engine.complete(&contact(c), now) {
                        Err(RoutingError::TransferPending(_)) => {
                            prop_assert!(assigned.contains_key(&contact(c)));
                        }
                        done => {
                            prop_assert_eq!(done.is_ok(), routed.remove(&contact(c)));
                            assigned.remove(&contact(c));
                        }
                    }
                }
                Op::Transfer { held, to, queue, warm } => {
                    let Some((id, from)) = assigned.iter().nth(held).map(|(c, a)| (c.clone(), a.clone())) else {
                        continue;
                    };
                    let target = if queue {
                        TransferTarget::Queue(if to % 2 == 0 { "billing" } else { "general" }.into())
                    } else {
                        TransferTarget::Agent { agent: agent(to), warm }
                    };
                    let blind = !matches!(target, TransferTarget::Agent { warm: true, .. });
                    if engine.transfer(&id, &from, target, now).is_ok() && blind {
                        assigned.remove(&id);
                        prop_assert_eq!(engine.assigned_to(&id), None);
                    }
                }
                Op::Withdraw(c) => {
                    // An assigned contact stays its agent's; any other routed one is gone.
                    let withdrawn = engine.withdraw(&contact(c), now);
                    let was_assigned = assigned.contains_key(&contact(c));
                    prop_assert_eq!(withdrawn.is_ok(), routed.contains(&contact(c)) && !was_assigned);
                    if withdrawn.is_ok() {
                        routed.remove(&contact(c));
                        prop_assert!(engine.offers().all(|o| o.contact != contact(c)));
                        prop_assert!(engine.waiting().all(|(id, _)| id != &contact(c)));
                    }
                }
                Op::Consult(held, to) => {
                    if let Some((id, from)) = assigned.iter().nth(held) {
                        let asked = engine.consult(id, from, &agent(to), now);
                        if asked.is_ok() {
                            prop_assert_eq!(engine.assigned_to(id), Some(from));
                        }
                    }
                }
                Op::EndConsult(held, by_holder) => {
                    if let Some((id, holder)) = assigned.iter().nth(held) {
                        let consulted = engine.consulting(id).cloned();
                        let by = if by_holder { Some(holder.clone()) } else { consulted.clone() };
                        if let Some(by) = by {
                            let ended = engine.end_consult(id, &by, now);
                            prop_assert!(ended.is_ok() || consulted.is_none());
                            prop_assert_eq!(engine.consulting(id), None);
                        }
                    }
                }
                Op::Disconnect(a) => {
                    engine.disconnect(&agent(a), now).expect("known agent");
                    prop_assert!(engine.offers().all(|o| o.agent != agent(a)));
                }
                Op::Advance(seconds) => now = now.plus(Duration::from_secs(seconds)),
            }
            check(&engine, now, &assigned)?;
        }
    }
}

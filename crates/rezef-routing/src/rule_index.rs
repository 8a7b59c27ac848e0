//! Which rule a contact meets first, without evaluating every condition: a configuration
//! with two hundred intents has two hundred rules `intent == '...'`, and trying each in turn
//! was a quarter of a decision's time in the engine.
//!
//! Rules of the form `path == 'text'` on the path most rules test are found by a hash of the
//! contact's text there; the other rules are evaluated in order, but only those written
//! before that hit. The first rule met, as written, still wins.

use std::collections::{BTreeMap, HashMap};

use crate::config::Rule;
use crate::expr::{Attributes, Value};

/// The rules of one configuration, indexed (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct RuleIndex {
    /// The path the indexed rules test.
    path: Vec<String>,
    /// The first rule testing `path == text`, by text.
    first_by_text: HashMap<String, usize>,
    /// The rules not indexed, in order.
    others: Vec<usize>,
}

impl RuleIndex {
    pub fn new(rules: &[Rule]) -> Self {
        let mut counts: HashMap<&[String], usize> = HashMap::new();
        for rule in rules {
            if let Some((path, _)) = rule.when.equality() {
                *counts.entry(path).or_default() += 1;
            }
        }
        let Some(path) = (counts.into_iter())
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(path, _)| path.to_vec())
        else {
            return Self {
                others: (0..rules.len()).collect(),
                ..Self::default()
            };
        };
        let mut index = Self {
            path,
            ..Self::default()
        };
        for (at, rule) in rules.iter().enumerate() {
            match rule.when.equality() {
                Some((path, text)) if path == index.path.as_slice() => {
                    index.first_by_text.entry(text.to_owned()).or_insert(at);
                }
                _ => index.others.push(at),
            }
        }
        index
    }

    /// The first of `rules` (the ones this index was made of) whose condition the contact's
    /// attributes meet.
    pub fn first_match(
        &self,
        rules: &[Rule],
        attributes: &BTreeMap<String, Value>,
    ) -> Option<usize> {
        let hit = match Attributes::get(attributes, &self.path) {
            Some(Value::Text(text)) => self.first_by_text.get(text).copied(),
            _ => None,
        };
        (self.others.iter().copied())
            .take_while(|&at| hit.is_none_or(|hit| at < hit))
            .find(|&at| rules[at].when.matches(attributes))
            .or(hit)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::config::RoutingConfig;

    fn text(value: &str) -> crate::expr::Value {
        crate::expr::Value::Text(value.to_owned())
    }

    /// A configuration with these rule conditions, in order, each to queue `q`.
    fn routing(conditions: &[String]) -> crate::Routing {
        let mut toml = String::from(
            "version = 1\ndefault_queue = \"q\"\n[[queues]]\nid = \"q\"\nsteps = [{ after = \"0s\" }]\n",
        );
        for (i, when) in conditions.iter().enumerate() {
            toml += &format!("[[rules]]\nname = \"r{i}\"\nwhen = \"{when}\"\nqueue = \"q\"\n");
        }
        RoutingConfig::from_toml(&toml).expect("a valid configuration")
    }

    fn condition() -> impl Strategy<Value = String> {
        let value = prop::sample::select(vec!["a", "b", "c", "d"]);
        prop_oneof![
            4 => value.clone().prop_map(|v| format!("intent == '{v}'")),
            1 => value.clone().prop_map(|v| format!("'{v}' == intent")),
            1 => value.clone().prop_map(|v| format!("tier == '{v}'")),
            1 => (value.clone(), value).prop_map(|(i, t)| format!("intent == '{i}' AND tier == '{t}'")),
            1 => Just("intent != 'a'".to_owned()),
        ]
    }

    proptest! {
        /// The index finds the rule trying every condition in order would.
        #[test]
        fn the_first_rule_met_is_the_one_written_first(
            conditions in prop::collection::vec(condition(), 0..12),
            intent in prop::option::of(prop::sample::select(vec!["a", "b", "c", "d", "e"])),
            tier in prop::option::of(prop::sample::select(vec!["a", "b", "e"])),
        ) {
            let routing = routing(&conditions);
            let mut attributes = std::collections::BTreeMap::new();
            if let Some(intent) = intent {
                attributes.insert("intent".to_owned(), text(intent));
            }
            if let Some(tier) = tier {
                attributes.insert("tier".to_owned(), text(tier));
            }
            let scanned = routing.rules.iter().position(|r| r.when.matches(&attributes));
            prop_assert_eq!(routing.rule_for(&attributes), scanned);
        }
    }

    #[test]
    fn a_number_where_the_indexed_rules_test_text_meets_none_of_them() {
        let routing = routing(&["intent == 'a'".to_owned(), "intent == 'b'".to_owned()]);
        let attributes = [("intent".to_owned(), crate::expr::Value::Number(1.0))].into();
        assert_eq!(routing.rule_for(&attributes), None);
        let attributes = [("intent".to_owned(), text("b"))].into();
        assert_eq!(routing.rule_for(&attributes), Some(1));
    }
}

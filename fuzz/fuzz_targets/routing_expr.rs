//! A routing expression (`rezef_routing::expr::Expr::parse`) from any text, evaluated over
//! any attributes: parsing gives an expression or an error inside the text, never a panic,
//! and what parses behaves like logic: printed back it parses to itself, `NOT (e)` holds
//! exactly when `e` does not, `(e) AND (e)` when `e` does, and an expression that is only
//! `path == 'text'` holds exactly when the attribute at `path` is that text.
//!
//! The input is the expression's text, then optionally a zero byte and the attributes (read
//! with `arbitrary`), so that the corpus holds expressions as written.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use rezef_routing::config::CONTACT_ATTRIBUTES;
use rezef_routing::expr::{Attributes, Expr, Value};

/// An attribute's name: mostly one an expression may name.
#[derive(Debug, Arbitrary)]
enum Name {
    Known(u8),
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Attribute {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    List(Vec<Attribute>),
    Map(Vec<(String, Attribute)>),
}

impl Name {
    fn into_string(self) -> String {
        match self {
            Name::Known(i) => CONTACT_ATTRIBUTES[usize::from(i) % CONTACT_ATTRIBUTES.len()].into(),
            Name::Other(name) => name,
        }
    }
}

impl Attribute {
    fn into_value(self) -> Value {
        match self {
            Attribute::Null => Value::Null,
            Attribute::Bool(b) => Value::Bool(b),
            Attribute::Number(n) => Value::Number(n),
            Attribute::Text(t) => Value::Text(t),
            Attribute::List(items) => {
                Value::List(items.into_iter().map(Self::into_value).collect())
            }
            Attribute::Map(entries) => Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, v.into_value()))
                    .collect(),
            ),
        }
    }
}

fn parse(source: &str) -> Result<Expr, rezef_routing::expr::ParseError> {
    Expr::parse(source, CONTACT_ATTRIBUTES)
}

fuzz_target!(|input: &[u8]| {
    let (source, attributes) =
        input.split_at(input.iter().position(|&b| b == 0).unwrap_or(input.len()));
    let Ok(source) = std::str::from_utf8(source) else {
        return;
    };
    let attributes: Vec<(Name, Attribute)> =
        Unstructured::new(attributes.get(1..).unwrap_or_default())
            .arbitrary()
            .unwrap_or_default();
    let expr = match parse(&source) {
        Ok(expr) => expr,
        Err(e) => {
            assert!(e.position <= source.len(), "{e}");
            assert_eq!(e.expression, source);
            return;
        }
    };
    let attributes: BTreeMap<String, Value> = attributes
        .into_iter()
        .map(|(name, value)| (name.into_string(), value.into_value()))
        .collect();
    let holds = expr.matches(&attributes);

    assert_eq!(parse(&expr.to_string()).as_ref(), Ok(&expr), "printed back");
    let negated = parse(&format!("NOT ({source})")).expect("a negation parses");
    assert_eq!(negated.matches(&attributes), !holds, "NOT ({source})");
    let both = parse(&format!("({source}) AND ({source})")).expect("a conjunction parses");
    assert_eq!(
        both.matches(&attributes),
        holds,
        "({source}) AND ({source})"
    );
    if let Some((path, text)) = expr.equality() {
        let is_text =
            matches!(Attributes::get(&attributes, path), Some(Value::Text(t)) if t == text);
        assert_eq!(
            holds, is_text,
            "an equality holds exactly when the text is there"
        );
    }
});

//! Routing expressions: conditions over a contact's or an agent's attributes, in the style
//! of TaskRouter (`skills HAS 'billing' AND language == 'he'`). They are parsed once, when
//! the configuration is loaded, so a mistake is reported with its position before any
//! contact is routed; evaluation then never fails (a missing attribute is `null`).
//!
//! ```text
//! expr    := or
//! or      := and ("OR" and)*
//! and     := unary ("AND" unary)*
//! unary   := "NOT" unary | "(" expr ")" | compare
//! compare := operand [("==" | "!=" | "<" | "<=" | ">" | ">=" | "HAS" | "IN") operand]
//! operand := path | 'string' | "string" | number | true | false | null | "[" literals "]"
//! path    := name ("." name)*
//! ```
//! Keywords are case-insensitive. `a HAS b`: the list (or map keys) `a` holds `b`;
//! `a IN b`: the list `b` holds `a`. A lone operand is true when it is `true`, a non-empty
//! string or list, or a non-zero number.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// A value an attribute or a literal has.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    List(Vec<Value>),
    /// Names with values: an agent's skills and their proficiency.
    Map(BTreeMap<String, Value>),
}

impl Value {
    fn truthy(&self) -> bool {
        match self {
            Self::Null => false,
            Self::Bool(b) => *b,
            Self::Number(n) => *n != 0.0,
            Self::Text(s) => !s.is_empty(),
            Self::List(items) => !items.is_empty(),
            Self::Map(entries) => !entries.is_empty(),
        }
    }

    fn holds(&self, item: &Value) -> bool {
        match (self, item) {
            (Self::List(items), _) => items.contains(item),
            (Self::Map(entries), Self::Text(key)) => entries.contains_key(key),
            (Self::Text(text), Self::Text(part)) => text.contains(part.as_str()),
            _ => false,
        }
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

/// Where an expression finds the attributes its paths name. Values are borrowed: an
/// expression is evaluated for every candidate agent, and copying an agent's skills map
/// to test `skills HAS 'billing'` would cost more than the test.
pub trait Attributes {
    /// The value at `path` (`["skills", "billing"]`), `None` when there is none.
    fn get(&self, path: &[String]) -> Option<&Value>;
}

impl Attributes for BTreeMap<String, Value> {
    fn get(&self, path: &[String]) -> Option<&Value> {
        let (first, rest) = path.split_first()?;
        rest.iter()
            .try_fold(BTreeMap::get(self, first)?, |value, part| match value {
                Value::Map(entries) => entries.get(part),
                _ => None,
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Has,
    In,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Literal(Value),
    Path(Vec<String>),
    Compare(Box<Node>, Op, Box<Node>),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    source: String,
    root: Node,
}

/// Why an expression does not parse: what, and at which byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at position {position} of `{expression}`")]
pub struct ParseError {
    pub expression: String,
    pub position: usize,
    pub message: String,
}

impl Expr {
    /// Parses `source`. `allowed_roots` lists the first names a path may start with (the
    /// attributes that exist), so a typo is an error now rather than a silent `null` later.
    pub fn parse(source: &str, allowed_roots: &[&str]) -> Result<Self, ParseError> {
        let tokens = lex(source)?;
        let mut parser = Parser {
            source,
            tokens,
            at: 0,
            allowed_roots,
        };
        let root = parser.or()?;
        if let Some(token) = parser.tokens.get(parser.at) {
            return Err(parser.error(token.position, "unexpected text after the expression"));
        }
        Ok(Self {
            source: source.to_owned(),
            root,
        })
    }

    /// Whether the expression holds for `attributes`.
    pub fn matches(&self, attributes: &impl Attributes) -> bool {
        eval(&self.root, attributes).truthy()
    }

    /// The path and the text of an expression that is only `path == 'text'` (either way
    /// round): it holds exactly when the attribute at `path` is that text.
    pub fn equality(&self) -> Option<(&[String], &str)> {
        match &self.root {
            Node::Compare(left, Op::Eq, right) => match (left.as_ref(), right.as_ref()) {
                (Node::Path(path), Node::Literal(Value::Text(text)))
                | (Node::Literal(Value::Text(text)), Node::Path(path)) => {
                    Some((path.as_slice(), text.as_str()))
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether some path of the expression starts with `root` (`contact` in an agent
    /// requirement that compares the agent with the contact).
    pub fn refers_to(&self, root: &str) -> bool {
        fn walk(node: &Node, root: &str) -> bool {
            match node {
                Node::Literal(_) => false,
                Node::Path(path) => path.first().is_some_and(|first| first == root),
                Node::Compare(left, _, right) => walk(left, root) || walk(right, root),
                Node::Not(inner) => walk(inner, root),
                Node::And(items) | Node::Or(items) => items.iter().any(|n| walk(n, root)),
            }
        }
        walk(&self.root, root)
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

const NULL: Value = Value::Null;

fn eval<'a>(node: &'a Node, attributes: &'a impl Attributes) -> Cow<'a, Value> {
    let bool = |b: bool| Cow::Owned(Value::Bool(b));
    match node {
        Node::Literal(value) => Cow::Borrowed(value),
        Node::Path(path) => Cow::Borrowed(attributes.get(path).unwrap_or(&NULL)),
        Node::Not(inner) => bool(!eval(inner, attributes).truthy()),
        Node::And(items) => bool(items.iter().all(|n| eval(n, attributes).truthy())),
        Node::Or(items) => bool(items.iter().any(|n| eval(n, attributes).truthy())),
        Node::Compare(left, op, right) => bool(compare(
            &eval(left, attributes),
            *op,
            &eval(right, attributes),
        )),
    }
}

fn compare(left: &Value, op: Op, right: &Value) -> bool {
    let ordered = |test: fn(std::cmp::Ordering) -> bool| match (left, right) {
        (Value::Number(a), Value::Number(b)) => a.partial_cmp(b).is_some_and(test),
        (Value::Text(a), Value::Text(b)) => test(a.cmp(b)),
        _ => false,
    };
    match op {
        Op::Eq => left != &Value::Null && left == right,
        Op::Ne => left != right,
        Op::Lt => ordered(|o| o.is_lt()),
        Op::Le => ordered(|o| o.is_le()),
        Op::Gt => ordered(|o| o.is_gt()),
        Op::Ge => ordered(|o| o.is_ge()),
        Op::Has => left.holds(right),
        Op::In => right.holds(left),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Text(String),
    Number(f64),
    Symbol(&'static str),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    position: usize,
}

fn lex(source: &str) -> Result<Vec<Token>, ParseError> {
    let error = |position: usize, message: &str| ParseError {
        expression: source.to_owned(),
        position,
        message: message.to_owned(),
    };
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let tok = if c == b'\'' || c == b'"' {
            let end = source[i + 1..]
                .find(c as char)
                .ok_or_else(|| error(start, "unterminated string"))?;
            let text = source[i + 1..i + 1 + end].to_owned();
            i += end + 2;
            Tok::Text(text)
        } else if c.is_ascii_digit()
            || (c == b'-' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            i += 1;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            let number = source[start..i]
                .parse()
                .map_err(|_| error(start, "malformed number"))?;
            Tok::Number(number)
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'.' | b'-'))
            {
                i += 1;
            }
            Tok::Word(source[start..i].to_owned())
        } else {
            let two = source.get(i..i + 2).unwrap_or_default();
            let symbol = ["==", "!=", "<=", ">="]
                .into_iter()
                .find(|s| *s == two)
                .or_else(|| {
                    ["<", ">", "(", ")", "[", "]", ","]
                        .into_iter()
                        .find(|s| s.as_bytes()[0] == c)
                })
                .ok_or_else(|| error(start, "unexpected character"))?;
            i += symbol.len();
            Tok::Symbol(symbol)
        };
        tokens.push(Token {
            tok,
            position: start,
        });
    }
    Ok(tokens)
}

struct Parser<'a> {
    source: &'a str,
    tokens: Vec<Token>,
    at: usize,
    allowed_roots: &'a [&'a str],
}

impl Parser<'_> {
    fn error(&self, position: usize, message: &str) -> ParseError {
        ParseError {
            expression: self.source.to_owned(),
            position,
            message: message.to_owned(),
        }
    }

    fn end_position(&self) -> usize {
        self.source.len()
    }

    fn keyword(&mut self, word: &str) -> bool {
        let found = matches!(
            self.tokens.get(self.at),
            Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case(word)
        );
        if found {
            self.at += 1;
        }
        found
    }

    fn symbol(&mut self, symbol: &str) -> bool {
        let found = matches!(
            self.tokens.get(self.at),
            Some(Token { tok: Tok::Symbol(s), .. }) if *s == symbol
        );
        if found {
            self.at += 1;
        }
        found
    }

    fn or(&mut self) -> Result<Node, ParseError> {
        let mut items = vec![self.and()?];
        while self.keyword("OR") {
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Node::Or(items)
        })
    }

    fn and(&mut self) -> Result<Node, ParseError> {
        let mut items = vec![self.unary()?];
        while self.keyword("AND") {
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Node::And(items)
        })
    }

    fn unary(&mut self) -> Result<Node, ParseError> {
        if self.keyword("NOT") {
            return Ok(Node::Not(Box::new(self.unary()?)));
        }
        if self.symbol("(") {
            let inner = self.or()?;
            if !self.symbol(")") {
                let at = self
                    .tokens
                    .get(self.at)
                    .map_or(self.end_position(), |t| t.position);
                return Err(self.error(at, "expected `)`"));
            }
            return Ok(inner);
        }
        self.compare()
    }

    fn compare(&mut self) -> Result<Node, ParseError> {
        let left = self.operand()?;
        let op = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .into_iter()
        .find(|(symbol, _)| self.symbol(symbol))
        .map(|(_, op)| op)
        .or_else(|| self.keyword("HAS").then_some(Op::Has))
        .or_else(|| self.keyword("IN").then_some(Op::In));
        match op {
            Some(op) => {
                let right = self.operand()?;
                Ok(Node::Compare(Box::new(left), op, Box::new(right)))
            }
            None => Ok(left),
        }
    }

    fn operand(&mut self) -> Result<Node, ParseError> {
        let Some(token) = self.tokens.get(self.at).cloned() else {
            return Err(self.error(self.end_position(), "expected a value or an attribute"));
        };
        self.at += 1;
        match token.tok {
            Tok::Text(text) => Ok(Node::Literal(Value::Text(text))),
            Tok::Number(n) => Ok(Node::Literal(Value::Number(n))),
            Tok::Symbol("[") => {
                let mut items = Vec::new();
                if !self.symbol("]") {
                    loop {
                        match self.operand()? {
                            Node::Literal(value) => items.push(value),
                            _ => {
                                return Err(
                                    self.error(token.position, "a list holds literals only")
                                );
                            }
                        }
                        if self.symbol("]") {
                            break;
                        }
                        if !self.symbol(",") {
                            let at = self
                                .tokens
                                .get(self.at)
                                .map_or(self.end_position(), |t| t.position);
                            return Err(self.error(at, "expected `,` or `]`"));
                        }
                    }
                }
                Ok(Node::Literal(Value::List(items)))
            }
            Tok::Word(word) => match word.to_ascii_lowercase().as_str() {
                "true" => Ok(Node::Literal(Value::Bool(true))),
                "false" => Ok(Node::Literal(Value::Bool(false))),
                "null" => Ok(Node::Literal(Value::Null)),
                "and" | "or" | "not" | "has" | "in" => Err(self.error(
                    token.position,
                    "expected a value or an attribute, found a keyword",
                )),
                _ => {
                    let path: Vec<String> = word.split('.').map(str::to_owned).collect();
                    if path.iter().any(String::is_empty) {
                        return Err(
                            self.error(token.position, "an attribute path has an empty part")
                        );
                    }
                    if !self.allowed_roots.contains(&path[0].as_str()) {
                        return Err(self.error(
                            token.position,
                            &format!(
                                "unknown attribute `{}` (known: {})",
                                path[0],
                                self.allowed_roots.join(", ")
                            ),
                        ));
                    }
                    Ok(Node::Path(path))
                }
            },
            Tok::Symbol(symbol) => Err(self.error(
                token.position,
                &format!("expected a value or an attribute, found `{symbol}`"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOTS: &[&str] = &[
        "skills",
        "languages",
        "language",
        "channel",
        "tier",
        "context",
        "wait",
    ];

    fn attrs() -> BTreeMap<String, Value> {
        let skills = BTreeMap::from([
            ("billing".to_owned(), Value::Number(4.0)),
            ("sales".to_owned(), Value::Number(2.0)),
        ]);
        BTreeMap::from([
            ("skills".to_owned(), Value::Map(skills)),
            (
                "languages".to_owned(),
                Value::List(vec!["he".into(), "ar".into()]),
            ),
            ("language".to_owned(), "he".into()),
            ("channel".to_owned(), "voice".into()),
            ("wait".to_owned(), Value::Number(42.0)),
        ])
    }

    fn eval(source: &str) -> bool {
        Expr::parse(source, ROOTS)
            .expect("parses")
            .matches(&attrs())
    }

    #[test]
    fn taskrouter_style_expressions_evaluate() {
        assert!(eval("skills HAS 'billing' AND language == 'he'"));
        assert!(eval("skills.billing >= 4 and languages has \"ar\""));
        assert!(!eval("skills.sales > 3"));
        assert!(eval("channel IN ['voice', 'video'] OR tier == 'vip'"));
        assert!(eval("NOT (tier == 'vip') AND wait > 30"));
        assert!(
            eval("tier != 'vip'"),
            "a missing attribute differs from everything"
        );
        assert!(!eval("tier == null"), "and equals nothing");
        assert!(!eval("skills.unknown >= 1"));
        assert!(eval("skills"), "a lone operand is truthy");
        assert!(eval("language IN languages"));
    }

    #[test]
    fn references_to_a_root_are_found_anywhere() {
        let parse = |source: &str| Expr::parse(source, ROOTS).expect("parses");
        assert!(parse("skills HAS 'x' AND NOT (language IN context.langs)").refers_to("context"));
        assert!(!parse("skills.context >= 2 OR 'context' IN languages").refers_to("context"));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        assert!(eval("tier == 'vip' AND false OR channel == 'voice'"));
        assert!(!eval("tier == 'vip' AND (false OR channel == 'voice')"));
    }

    #[test]
    fn mistakes_are_reported_with_their_position() {
        let error = |source: &str| Expr::parse(source, ROOTS).expect_err("invalid");
        let e = error("skills HAS 'billing");
        assert_eq!(
            (e.position, e.message.as_str()),
            (11, "unterminated string")
        );
        let e = error("skils HAS 'billing'");
        assert_eq!(e.position, 0);
        assert!(e.message.contains("unknown attribute `skils`"), "{e}");
        let e = error("(language == 'he'");
        assert_eq!((e.position, e.message.as_str()), (17, "expected `)`"));
        let e = error("language == ");
        assert_eq!(e.message, "expected a value or an attribute");
        let e = error("language == 'he' tier");
        assert_eq!(e.position, 17);
        let e = error("language ~ 'he'");
        assert_eq!(
            (e.position, e.message.as_str()),
            (9, "unexpected character")
        );
        let e = error("channel IN ['voice' 'chat']");
        assert_eq!(e.message, "expected `,` or `]`");
        assert!(e.to_string().contains("`channel IN ['voice' 'chat']`"));
    }
}

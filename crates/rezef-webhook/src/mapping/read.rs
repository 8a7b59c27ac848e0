//! Reading a [`Spec`] against a body: the value at its JSON Pointer (RFC 6901; a path whose
//! value is `null` counts as missing) or its literal, then through its `map`.

use std::borrow::Cow;

use serde_json::Value;

use super::config::{Source, Spec};

/// Why a spec gives no value for a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Nothing (or `null`) at the path.
    Missing,
    /// The value there is not usable: why.
    Invalid(String),
}

/// The value `spec` gives for `body`; `None` when it is optional and missing.
pub fn read<'a>(spec: &'a Spec, body: &'a Value) -> Result<Option<Cow<'a, Value>>, Fault> {
    let found = match &spec.source {
        Source::Value(value) => value,
        Source::Path(path) => match body.pointer(path).filter(|v| !v.is_null()) {
            Some(value) => value,
            None if spec.optional => return Ok(None),
            None => return Err(Fault::Missing),
        },
    };
    let Some(map) = &spec.map else {
        return Ok(Some(Cow::Borrowed(found)));
    };
    let key = text(found)?;
    match map.get(&key) {
        Some(mapped) => Ok(Some(Cow::Borrowed(mapped))),
        None => Err(Fault::Invalid(format!(
            "{key:?} is not one of the map's keys"
        ))),
    }
}

/// The value `spec` gives as text (a string, or a number or boolean written out).
pub fn read_text(spec: &Spec, body: &Value) -> Result<Option<String>, Fault> {
    read(spec, body)?.map(|v| text(&v)).transpose()
}

/// A string as is; a number or a boolean as written in JSON.
pub fn text(value: &Value) -> Result<String, Fault> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        Value::Bool(flag) => Ok(flag.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => Err(Fault::Invalid(
            "a string or a number is expected, not an array, object or null".into(),
        )),
    }
}

/// Whether `path` is a JSON Pointer: empty (the whole body) or `/`-separated tokens with `~`
/// only in `~0` and `~1`.
pub fn is_pointer(path: &str) -> bool {
    if !(path.is_empty() || path.starts_with('/')) {
        return false;
    }
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_path_reads_the_body_and_a_map_translates_it() {
        let body = json!({"ticket": {"id": 42, "via": "web", "tags": ["a", "b"], "gone": null}});
        let mut spec = Spec::path("/ticket/id");
        assert_eq!(read_text(&spec, &body), Ok(Some("42".into())));
        spec = Spec::path("/ticket/tags/1");
        assert_eq!(read_text(&spec, &body), Ok(Some("b".into())));
        spec = Spec::path("/ticket/gone");
        assert_eq!(read_text(&spec, &body), Err(Fault::Missing));
        spec.optional = true;
        assert_eq!(read_text(&spec, &body), Ok(None));

        spec = Spec::path("/ticket/via");
        spec.map = json!({"web": "webchat"}).as_object().cloned();
        assert_eq!(read_text(&spec, &body), Ok(Some("webchat".into())));
        spec.source = Source::Value(json!("mail"));
        assert!(matches!(read_text(&spec, &body), Err(Fault::Invalid(_))));
    }

    #[test]
    fn pointers_are_checked() {
        assert!(is_pointer(""));
        assert!(is_pointer("/a/b~1c/~0"));
        assert!(!is_pointer("a/b"));
        assert!(!is_pointer("/a~2"));
        assert!(!is_pointer("/a~"));
    }
}

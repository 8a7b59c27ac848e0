//! Reading a routing configuration so that every mistake is reported with its path, not
//! only the first one serde meets.
//!
//! serde stops at the first value it cannot read, and `toml`'s message says where in the
//! text but not which setting. So the file is parsed as a TOML document first (a syntax
//! error is the only mistake reported as `(file)`), then read into the configuration with
//! `serde_path_to_error` (dtolnay's crate: the path of the value that failed, such as
//! `offers.timeout`). The setting is taken out and the document read again, until it reads:
//! each mistake is reported once, with its path, and the rest of the file is still checked
//! (compiling the rules reports `rules[1].when` beside a bad `offers.timeout`).
//!
//! A setting that cannot be left out (`version`, a rule's `when`) ends the reading: what
//! follows would be reported as missing rather than as wrong.

use serde::de::DeserializeOwned;
use serde_path_to_error::{Path, Segment};
use toml::Value;

use crate::config::ConfigError;

/// More mistakes than anyone fixes at once; reading stops there.
const MAX_MISTAKES: usize = 100;

/// What a configuration file holds, with the mistakes found in it. `Ok` holds the
/// configuration read without the wrong settings (their defaults instead), and the
/// mistakes; `Err` the mistakes when nothing could be read.
pub(crate) fn read<T: DeserializeOwned>(
    text: &str,
) -> Result<(T, Vec<ConfigError>), Vec<ConfigError>> {
    let mut document: Value = toml::from_str(text).map_err(|error| {
        vec![ConfigError {
            path: "(file)".into(),
            message: error.to_string(),
        }]
    })?;
    let mut mistakes: Vec<ConfigError> = Vec::new();
    loop {
        let error = match serde_path_to_error::deserialize::<_, T>(document.clone()) {
            Ok(config) => return Ok((config, mistakes)),
            Err(error) => error,
        };
        let message = error.inner().to_string();
        let path = error.path();
        let at = path_string(path);
        if let Some(key) = quoted(&message, "missing field `") {
            // Missing because it was wrong and taken out: already reported.
            let taken_out = join(&at, key);
            if !mistakes.iter().any(|m| m.path == taken_out) {
                mistakes.push(ConfigError { path: at, message });
            }
            return Err(mistakes);
        }
        let removed = match quoted(&message, "unknown field `") {
            // The path may name the table or the setting in it.
            Some(key) if !at.ends_with(key) => remove(&mut document, path, Some(key)),
            _ => remove(&mut document, path, None),
        };
        mistakes.push(ConfigError { path: at, message });
        if !removed || mistakes.len() >= MAX_MISTAKES {
            return Err(mistakes);
        }
    }
}

/// The key of serde's "unknown field `key`, expected ..." or "missing field `key`" message.
fn quoted<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split_once('`').map(|(key, _)| key)
}

/// The path of `key` in the table at `table`.
fn join(table: &str, key: &str) -> String {
    if table == "(file)" {
        key.to_owned()
    } else {
        format!("{table}.{key}")
    }
}

/// The path as the configuration writes it: `queues[1].steps[0].after`.
fn path_string(path: &Path) -> String {
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    if out.is_empty() { "(file)".into() } else { out }
}

/// Takes the setting at `path` (or, with `key`, the key of the table at `path`) out of the
/// document; false if there is none to take (an array element is never taken out, which
/// would renumber the ones after it).
fn remove(document: &mut Value, path: &Path, key: Option<&str>) -> bool {
    let mut segments: Vec<&Segment> = path.iter().collect();
    let last = match key {
        Some(key) => key.to_owned(),
        None => match segments.pop() {
            Some(Segment::Map { key }) => key.clone(),
            _ => return false,
        },
    };
    let mut table = document;
    for segment in segments {
        let next = match (segment, table) {
            (Segment::Map { key }, Value::Table(t)) => t.get_mut(key),
            (Segment::Seq { index }, Value::Array(a)) => a.get_mut(*index),
            _ => None,
        };
        match next {
            Some(value) => table = value,
            None => return false,
        }
    }
    match table {
        Value::Table(t) => t.remove(&last).is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        version: u64,
        #[serde(default)]
        limits: Limits,
        #[serde(default)]
        items: Vec<Item>,
        #[serde(default)]
        named: BTreeMap<String, Limits>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Limits {
        #[serde(with = "humantime_serde")]
        timeout: Duration,
        count: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        name: String,
        #[serde(default)]
        weight: f64,
    }

    fn paths(result: Result<(File, Vec<ConfigError>), Vec<ConfigError>>) -> Vec<String> {
        let mistakes = match result {
            Ok((_, mistakes)) | Err(mistakes) => mistakes,
        };
        mistakes.into_iter().map(|m| m.path).collect()
    }

    #[test]
    fn every_wrong_setting_is_reported_with_its_path_and_the_rest_still_read() {
        let text = r#"
            version = 3
            [limits]
            timeout = "2 parsecs"
            count = -1
            colour = "red"
            [[items]]
            name = "a"
            [[items]]
            name = "b"
            weight = "heavy"
            [named.x]
            count = "many"
        "#;
        let result = read::<File>(text);
        assert_eq!(
            paths(read::<File>(text)),
            [
                "limits.timeout",
                "limits.count",
                "limits.colour",
                "items[1].weight",
                "named.x.count"
            ]
        );
        let (file, mistakes) = result.expect("read without the wrong settings");
        assert_eq!((file.version, file.items[1].name.as_str()), (3, "b"));
        assert_eq!((file.items[1].weight, file.limits.count), (0.0, 0));
        assert_eq!(file.limits.timeout, Duration::ZERO);
        assert_eq!(file.named["x"].count, 0, "read as its default");
        assert!(mistakes[2].message.contains("unknown field `colour`"));
    }

    #[test]
    fn a_setting_that_cannot_be_left_out_ends_the_reading() {
        let text = "version = \"three\"\n[limits]\ncount = -1\n";
        assert_eq!(paths(read::<File>(text)), ["version", "limits.count"]);
        let text = "version = 1\n[[items]]\nweight = 2.0\n";
        assert_eq!(paths(read::<File>(text)), ["items[0]"]);
    }

    #[test]
    fn a_syntax_error_is_the_file_s() {
        let text = format!("version = 1\nname = \"{}\n", "x".repeat(100));
        assert_eq!(paths(read::<File>(&text)), ["(file)"]);
    }
}

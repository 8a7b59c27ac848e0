//! Events as JSON Lines (one proto3-JSON `rezef.v1.Event` per line), the exchange format of
//! `rezef publish` and `rezef replay`. Blank lines and lines starting with `#` are skipped.

use std::io::BufRead;

use rezef_proto::{json, v1};

use crate::Error;

/// Reads every event; an error names the line.
pub fn read_events(reader: impl BufRead) -> Result<Vec<v1::Event>, Error> {
    let mut events = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line = line?;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let event = json::from_json(trimmed).map_err(|source| Error::Json {
            line: index + 1,
            source,
        })?;
        events.push(event);
    }
    Ok(events)
}

/// Any `rezef.v1` message that has a JSON form (journeys, responses), on one line.
pub use rezef_proto::json::to_json;

/// One line of JSON for an event.
pub fn write_event(event: &v1::Event) -> String {
    json::to_json(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_events_and_names_the_bad_line() {
        let good = r#"{"eventId":"e-1","tenantId":"acme"}"#;
        let events = read_events(format!("# comment\n\n{good}\n").as_bytes()).expect("valid");
        assert_eq!(events.len(), 1);
        let error =
            read_events(format!("{good}\n{{\"nope\":1}}\n").as_bytes()).expect_err("line 2 is bad");
        assert!(error.to_string().starts_with("line 2:"), "{error}");
    }
}

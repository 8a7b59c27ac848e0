//! A chained export: the JSON Lines of `rezef replay`, each event preceded by a comment line
//! giving its log offset and a BLAKE3 hash chained over the export, so that a changed,
//! deleted, inserted or reordered event shows at its offset when the export is checked
//! (`rezef verify --export`), long after it left the server.
//!
//! Comment lines start with `#`, which [`crate::jsonl::read_events`] skips: an export is still
//! what `rezef publish` reads. The format, line by line:
//!
//! ```text
//! # rezef export 1: <what was replayed>            header; the chain starts at BLAKE3(line)
//! # offset <o> chain <hex>                          before each event: chain = BLAKE3(previous
//! {"eventId": ...}                                  ‖ o as 8 bytes little-endian ‖ event line)
//! # log verified: offsets <a>..<b>, head <hex>      optional: chain = BLAKE3(previous ‖ line)
//! # end: <n> events, chain <hex>                    the export's head
//! ```
//!
//! Like the log's chain, this one proves the export consistent with its head, not the head
//! genuine: whoever rewrites an export can recompute every hash. Keep the head (the `end`
//! line) where the export cannot be changed along with it (docs/audit.md).

use std::fmt;
use std::io::BufRead;

use crate::jsonl;
use crate::proto;

/// The first words of an export's first line.
const HEADER: &str = "# rezef export 1: ";
const OFFSET: &str = "# offset ";
const VERIFIED: &str = "# log verified: ";
const END: &str = "# end: ";

/// A link of the export's chain.
type Link = [u8; 32];

fn hex(link: &Link) -> String {
    blake3::Hash::from_bytes(*link).to_hex().to_string()
}

fn start(header: &str) -> Link {
    *blake3::hash(header.as_bytes()).as_bytes()
}

fn link_event(previous: &Link, offset: u64, line: &str) -> Link {
    let mut hasher = blake3::Hasher::new();
    hasher.update(previous);
    hasher.update(&offset.to_le_bytes());
    hasher.update(line.as_bytes());
    *hasher.finalize().as_bytes()
}

fn link_line(previous: &Link, line: &str) -> Link {
    let mut hasher = blake3::Hasher::new();
    hasher.update(previous);
    hasher.update(line.as_bytes());
    *hasher.finalize().as_bytes()
}

/// Writes an export line by line, keeping the chain.
#[derive(Debug)]
pub struct ExportWriter {
    chain: Link,
    events: u64,
}

impl ExportWriter {
    /// Starts an export described by `what` (one line: the tenant, the filters, the offsets);
    /// returns the writer and the header line.
    pub fn new(what: &str) -> (Self, String) {
        let header = format!("{HEADER}{}", what.replace(['\n', '\r'], " "));
        let writer = ExportWriter {
            chain: start(&header),
            events: 0,
        };
        (writer, header)
    }

    /// The two lines of an event at `offset`: its chain line, then its JSON.
    pub fn event(&mut self, offset: u64, event: &proto::Event) -> String {
        let line = jsonl::write_event(event);
        self.chain = link_event(&self.chain, offset, &line);
        self.events += 1;
        format!("{OFFSET}{offset} chain {}\n{line}", hex(&self.chain))
    }

    /// The line saying what the server proved of its log while it replayed.
    pub fn verified(&mut self, verified: &proto::ChainVerified) -> String {
        let head = match verified.head.is_empty() {
            true => "none (no chained frame)",
            false => verified.head.as_str(),
        };
        let line = format!(
            "{VERIFIED}offsets {}..{}, head {head}",
            verified.start_offset, verified.end_offset
        );
        self.chain = link_line(&self.chain, &line);
        line
    }

    /// The last line: the count and the export's head.
    pub fn end(self) -> String {
        format!("{END}{} events, chain {}", self.events, hex(&self.chain))
    }
}

/// What checking an export found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportVerdict {
    /// Every line checks out up to the `end` line.
    Intact {
        /// The header's description of what was exported.
        what: String,
        /// Events in the export.
        events: u64,
        /// The server's `log verified` line, if the export has one.
        log_verified: Option<String>,
        /// The export's head (hex), as its `end` line states it.
        head: String,
    },
    /// The first place where it does not.
    Broken(ExportBreak),
}

/// Where an export stops checking out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportBreak {
    /// The line (from 1).
    pub line: usize,
    /// The offset of the event there, or of the last good one before it.
    pub offset: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ExportBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(offset) => write!(f, "offset {offset}, line {}: {}", self.line, self.reason),
            None => write!(f, "line {}: {}", self.line, self.reason),
        }
    }
}

/// The checking of an export, line by line.
struct Check {
    chain: Link,
    events: u64,
    /// The last event's offset (events come in ascending offsets).
    last: Option<u64>,
    /// A chain line read, waiting for its event: (offset, stored hash).
    pending: Option<(u64, String)>,
    log_verified: Option<String>,
}

impl Check {
    /// Takes line `text`; `Some(head)` once the `end` line checks out.
    fn line(&mut self, text: &str) -> Result<Option<String>, (Option<u64>, String)> {
        if let Some((offset, stored)) = self.pending.take() {
            if text.starts_with('#') || text.trim().is_empty() {
                return Err((
                    Some(offset),
                    "the event after its chain line is missing".into(),
                ));
            }
            if jsonl::read_events(text.as_bytes()).is_err() {
                return Err((Some(offset), "not an event".into()));
            }
            let link = link_event(&self.chain, offset, text);
            if hex(&link) != stored {
                return Err((
                    Some(offset),
                    "the event or the chain before it was changed: the chain breaks here".into(),
                ));
            }
            (self.chain, self.events, self.last) = (link, self.events + 1, Some(offset));
            return Ok(None);
        }
        if let Some(rest) = text.strip_prefix(OFFSET) {
            let parsed = rest
                .split_once(" chain ")
                .and_then(|(offset, hash)| Some((offset.parse::<u64>().ok()?, hash)));
            let Some((offset, hash)) = parsed else {
                return Err((self.last, "a malformed chain line".into()));
            };
            if self.last.is_some_and(|last| offset <= last) {
                return Err((
                    Some(offset),
                    format!(
                        "offset {offset} after {}: out of order",
                        self.last.unwrap_or(0)
                    ),
                ));
            }
            self.pending = Some((offset, hash.to_owned()));
            return Ok(None);
        }
        if text.starts_with(VERIFIED) {
            self.chain = link_line(&self.chain, text);
            self.log_verified = Some(text.trim_start_matches(VERIFIED).to_owned());
            return Ok(None);
        }
        if let Some(rest) = text.strip_prefix(END) {
            let expected = format!("{} events, chain {}", self.events, hex(&self.chain));
            if rest != expected {
                return Err((
                    self.last,
                    "the end line does not match the events before it (events deleted at the \
                     end, or the end line changed)"
                        .into(),
                ));
            }
            return Ok(Some(hex(&self.chain)));
        }
        Err((
            self.last,
            match text.starts_with('#') {
                true => "an unknown comment line".into(),
                false => "an event without its chain line".into(),
            },
        ))
    }
}

/// Checks an export from its header to its `end` line. `Err` only when it cannot be read.
pub fn check(reader: impl BufRead) -> std::io::Result<ExportVerdict> {
    let mut lines = reader.lines().enumerate();
    let broken = |line: usize, offset: Option<u64>, reason: String| {
        Ok(ExportVerdict::Broken(ExportBreak {
            line,
            offset,
            reason,
        }))
    };
    let header = match lines.next() {
        Some((_, line)) => line?,
        None => return broken(1, None, "empty: not a rezef export".into()),
    };
    let Some(what) = header.strip_prefix(HEADER) else {
        return broken(1, None, "not a rezef export (its first line)".into());
    };
    let mut check = Check {
        chain: start(&header),
        events: 0,
        last: None,
        pending: None,
        log_verified: None,
    };
    let (mut end, mut read) = (None, 1);
    for (index, line) in lines {
        let line = line?;
        read = index + 1;
        if end.is_some() {
            if line.trim().is_empty() {
                continue;
            }
            return broken(read, check.last, "lines after the end line".into());
        }
        match check.line(&line) {
            Ok(head) => end = head,
            Err((offset, reason)) => return broken(read, offset, reason),
        }
    }
    match end {
        Some(head) => Ok(ExportVerdict::Intact {
            what: what.to_owned(),
            events: check.events,
            log_verified: check.log_verified,
            head,
        }),
        None => broken(
            read + 1,
            check.last,
            "no end line: the export was cut short (or its end deleted)".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventFactory;

    /// An export of `n` events at offsets 10, 13, 16, ... with a verified line.
    fn export(n: u64) -> Vec<String> {
        let chat = EventFactory::new("acme", "web-chat")
            .identity(proto::IdentityKind::ChatVisitor, "visitor-42")
            .on(proto::Channel::Webchat, "chat-1");
        let (mut writer, header) = ExportWriter::new("tenant acme, partition 0, offsets 0..99");
        let mut lines = vec![header];
        for i in 0..n {
            let event = chat.message(proto::Participant::Customer, &format!("message {i}"));
            lines.extend(writer.event(10 + 3 * i, &event).lines().map(str::to_owned));
        }
        lines.push(writer.verified(&proto::ChainVerified {
            start_offset: 0,
            end_offset: 99,
            head: "ab".repeat(32),
            unchained_frames: 0,
        }));
        lines.push(writer.end());
        lines
    }

    fn checked(lines: &[String]) -> ExportVerdict {
        check(lines.join("\n").as_bytes()).expect("reads")
    }

    fn broken_at(lines: &[String]) -> ExportBreak {
        match checked(lines) {
            ExportVerdict::Broken(broken) => broken,
            intact => panic!("expected a break, got {intact:?}"),
        }
    }

    #[test]
    fn an_export_as_written_checks_out_and_reads_as_events() {
        let lines = export(4);
        let ExportVerdict::Intact {
            events,
            head,
            log_verified,
            what,
        } = checked(&lines)
        else {
            panic!("intact expected");
        };
        assert_eq!(
            (events, what.as_str()),
            (4, "tenant acme, partition 0, offsets 0..99")
        );
        assert!(lines.last().is_some_and(|end| end.ends_with(&head)));
        assert_eq!(
            log_verified.as_deref(),
            Some(&*format!("offsets 0..99, head {}", "ab".repeat(32)))
        );
        let read = jsonl::read_events(lines.join("\n").as_bytes()).expect("publishable");
        assert_eq!(read.len(), 4);
    }

    #[test]
    fn any_changed_character_breaks_it() {
        let lines = export(3);
        for (l, line) in lines.iter().enumerate() {
            for (at, c) in line.char_indices() {
                let mut changed = lines.clone();
                let other = if c == 'x' { 'y' } else { 'x' };
                changed[l].replace_range(at..at + c.len_utf8(), &other.to_string());
                assert!(
                    matches!(checked(&changed), ExportVerdict::Broken(_)),
                    "line {l} char {at} changed and still intact"
                );
            }
        }
    }

    #[test]
    fn a_changed_event_is_named_at_its_offset() {
        let mut lines = export(3);
        lines[4] = lines[4].replace("message 1", "message 9");
        assert_eq!(broken_at(&lines).offset, Some(13));
        assert_eq!(broken_at(&lines).line, 5);
    }

    #[test]
    fn a_deleted_event_is_named_at_the_next() {
        let mut lines = export(3);
        lines.drain(3..5);
        assert_eq!(broken_at(&lines).offset, Some(16));
    }

    #[test]
    fn an_inserted_or_moved_event_is_named() {
        let mut repeated = export(3);
        let copy = repeated[1..3].to_vec();
        repeated.splice(5..5, copy);
        assert_eq!(broken_at(&repeated).offset, Some(10));
        let mut swapped = export(3);
        let second = swapped.drain(3..5).collect::<Vec<_>>();
        swapped.splice(1..1, second);
        assert_eq!(broken_at(&swapped).offset, Some(13));
    }

    #[test]
    fn a_cut_export_or_a_lost_event_line_is_named() {
        let mut cut = export(3);
        cut.truncate(5);
        let broken = broken_at(&cut);
        assert_eq!(broken.offset, Some(13));
        assert!(broken.reason.contains("no end line"), "{broken}");
        let mut lost = export(3);
        lost.remove(4);
        assert_eq!(broken_at(&lost).offset, Some(13));
        let mut last_deleted = export(3);
        last_deleted.drain(5..7);
        assert!(broken_at(&last_deleted).reason.contains("end line"));
    }

    #[test]
    fn what_is_not_an_export() {
        assert_eq!(broken_at(&[]).line, 1);
        let events = vec![jsonl::write_event(&proto::Event::default())];
        assert!(broken_at(&events).reason.contains("not a rezef export"));
    }
}

//! [`Mail`]: what the adapter reads of an RFC 5322 message, parsed by `mail-parser`
//! (Stalwart's maintained parser: MIME, encoded words, charsets, HTML to text), or why the
//! message cannot be taken ([`Malformed`]). Pure: bytes in, a value out.

use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders};

/// A message as the adapter needs it. Addresses are lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The `Message-ID` without its angle brackets; for a message without one, `raw:` and
    /// the BLAKE3 hash of its bytes (the same bytes delivered again get the same id).
    pub message_id: String,
    /// The messages it answers, nearest first: `In-Reply-To`, then `References` from the
    /// last (the parent) to the first (the thread's root).
    pub parents: Vec<String>,
    pub from: String,
    /// `Reply-To`'s first address, if any.
    pub reply_to: Option<String>,
    /// `To` then `Cc`, in order.
    pub recipients: Vec<String>,
    /// `Date`, in seconds since the Unix epoch, when it reads as a date.
    pub date: Option<i64>,
    pub subject: String,
    /// The first text body: the plain part when there is one, else the HTML part as text.
    pub body: String,
    pub attachments: Vec<Part>,
}

/// An attached (or inline) part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The file name given, else the `Content-ID`, else `attachment-N` (from 1).
    pub name: String,
    /// `type/subtype`, `application/octet-stream` when not given.
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Why a message is not taken. Such a message is not published: it goes to `failed/`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("not an RFC 5322 message: no header found")]
    NotAMessage,
    #[error("no sender: the From header is missing or holds no address")]
    NoSender,
    /// The address itself is not said: it is personal data, and this goes to the log.
    #[error("{header} holds no valid email address (local@domain.tld)")]
    BadAddress { header: &'static str },
    #[error(
        "an agent's message to no customer: no earlier message of the thread is known and no recipient is outside the company"
    )]
    NoCustomer,
    #[error("nothing to publish: no subject, no text and no attachment")]
    Empty,
}

/// Reads `raw` as an RFC 5322 message.
pub fn parse(raw: &[u8]) -> Result<Mail, Malformed> {
    let message = MessageParser::default()
        .parse(raw)
        .filter(|m| !m.headers().is_empty())
        .ok_or(Malformed::NotAMessage)?;
    let message_id = match message
        .message_id()
        .map(str::trim)
        .filter(|id| !id.is_empty())
    {
        Some(id) => id.to_owned(),
        None => format!("raw:{}", blake3::hash(raw).to_hex()),
    };
    let mut parents = ids(message.in_reply_to());
    parents.extend(ids(message.references()).into_iter().rev());
    parents.retain(|id| *id != message_id);
    dedup_keep_first(&mut parents);
    let from = first_address(message.from(), "From")?.ok_or(Malformed::NoSender)?;
    let reply_to = first_address(message.reply_to(), "Reply-To")?;
    let mut recipients = addresses(message.to());
    recipients.extend(addresses(message.cc()));
    let attachments = message
        .attachments()
        .enumerate()
        .map(|(i, part)| Part {
            name: (part.attachment_name().or(part.content_id()))
                .map_or_else(|| format!("attachment-{}", i + 1), str::to_owned),
            content_type: part.content_type().map_or_else(
                || "application/octet-stream".to_owned(),
                |t| match t.subtype() {
                    Some(sub) => format!("{}/{sub}", t.ctype()),
                    None => t.ctype().to_owned(),
                },
            ),
            bytes: part.contents().to_vec(),
        })
        .collect();
    Ok(Mail {
        message_id,
        parents,
        from,
        reply_to,
        recipients,
        date: message
            .date()
            .filter(|d| d.is_valid())
            .map(|d| d.to_timestamp()),
        subject: message.subject().unwrap_or_default().trim().to_owned(),
        body: message.body_text(0).unwrap_or_default().trim().to_owned(),
        attachments,
    })
}

/// Message ids in a header (`In-Reply-To`, `References`), without angle brackets.
fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    value
        .as_text_list()
        .unwrap_or_default()
        .iter()
        .map(|id| {
            id.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
        .filter(|id| !id.is_empty())
        .collect()
}

fn dedup_keep_first(ids: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
}

fn addresses(address: Option<&Address<'_>>) -> Vec<String> {
    let Some(address) = address else {
        return Vec::new();
    };
    address
        .iter()
        .filter_map(|a| a.address())
        .filter_map(normalise)
        .collect()
}

/// The first address of a header that must hold valid ones: `None` when it holds none.
fn first_address(
    address: Option<&Address<'_>>,
    header: &'static str,
) -> Result<Option<String>, Malformed> {
    match address.and_then(|a| a.first()).and_then(|a| a.address()) {
        None => Ok(None),
        Some(raw) => normalise(raw)
            .map(Some)
            .ok_or(Malformed::BadAddress { header }),
    }
}

/// An address as Rezef takes an email identity: lowercase `local@domain.tld`, no spaces,
/// at most 254 bytes (the rule of `rezef-events`' identities, so the server never refuses
/// one the adapter took).
pub fn normalise(raw: &str) -> Option<String> {
    let lower = raw.trim().to_lowercase();
    let (local, domain) = lower.split_once('@')?;
    let valid = !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !lower.chars().any(|c| c.is_whitespace() || c.is_control())
        && lower.len() <= 254;
    valid.then_some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(raw: &str) -> Result<Mail, Malformed> {
        parse(raw.replace('\n', "\r\n").as_bytes())
    }

    #[test]
    fn a_plain_message_gives_its_headers_and_text() {
        let m = mail(
            "From: Dana Levi <Dana@Example.COM>\nTo: support@acme.test, Bob <bob@acme.test>\n\
             Cc: eve@example.org\nSubject: =?UTF-8?B?15fXqdeR15XXnw==?=\n\
             Message-ID: <a1@example.com>\nDate: Mon, 7 Dec 2026 10:00:00 +0200\n\nHello\n",
        )
        .expect("parses");
        assert_eq!(m.message_id, "a1@example.com");
        assert_eq!(m.from, "dana@example.com");
        assert_eq!(
            m.recipients,
            ["support@acme.test", "bob@acme.test", "eve@example.org"]
        );
        assert_eq!(m.subject, "חשבון");
        assert_eq!(m.body, "Hello");
        assert_eq!(m.date, Some(1_796_630_400));
        assert!(m.parents.is_empty());
    }

    #[test]
    fn parents_are_nearest_first_without_repeats_or_itself() {
        let m = mail(
            "From: a@example.com\nMessage-ID: <c@x>\nIn-Reply-To: <b@x>\n\
             References: <a@x> <b@x> <c@x>\n\nhi\n",
        )
        .expect("parses");
        assert_eq!(m.parents, ["b@x", "a@x"]);
    }

    #[test]
    fn a_message_without_id_is_named_by_its_bytes() {
        let a = mail("From: a@example.com\n\nhi\n").expect("parses");
        let b = mail("From: a@example.com\n\nhi\n").expect("parses");
        let c = mail("From: a@example.com\n\nho\n").expect("parses");
        assert!(a.message_id.starts_with("raw:"));
        assert_eq!(a.message_id, b.message_id);
        assert_ne!(a.message_id, c.message_id);
    }

    #[test]
    fn no_from_or_a_bad_one_is_malformed() {
        assert_eq!(mail("To: a@example.com\n\nhi\n"), Err(Malformed::NoSender));
        assert_eq!(
            mail("From: root@localhost\n\nhi\n"),
            Err(Malformed::BadAddress { header: "From" })
        );
        assert_eq!(parse(b""), Err(Malformed::NotAMessage));
    }

    fn fixture(name: &str) -> Result<Mail, Malformed> {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        parse(&std::fs::read(path).expect("fixture"))
    }

    #[test]
    fn a_multipart_reply_prefers_the_plain_part_and_lists_its_attachment() {
        let m = fixture("3-reply-with-attachment.eml").expect("parses");
        assert_eq!(m.body, "Here is the statement, both lines are on it.");
        assert_eq!(
            m.parents,
            [
                "20261201080240.5521@mx.acme.test",
                "CAF8y2Zq1-thread-root@mail.example.com"
            ]
        );
        assert_eq!(m.recipients, ["noa@acme.test", "support@acme.test"]);
        let [pdf] = m.attachments.as_slice() else {
            panic!("one attachment: {:?}", m.attachments)
        };
        assert_eq!(pdf.name, "statement-2026-11.pdf");
        assert_eq!(pdf.content_type, "application/pdf");
        assert!(pdf.bytes.starts_with(b"%PDF-1.4"), "decoded from base64");
    }

    #[test]
    fn an_html_only_message_is_read_as_text() {
        let m = fixture("html-only.eml").expect("parses");
        assert_eq!(m.subject, "Order \u{2116} 5520 late");
        assert!(
            m.body.contains("My order 5520 is a week late."),
            "{}",
            m.body
        );
        assert!(!m.body.contains('<'), "no markup: {}", m.body);
        assert!(!m.body.contains("color"), "no style: {}", m.body);
    }

    #[test]
    fn quoted_printable_is_decoded() {
        let m = fixture("1-plain.eml").expect("parses");
        assert!(m.body.contains("\u{20aa} 129.90"), "{}", m.body);
        assert_eq!(m.from, "dana.levi@example.com");
    }

    #[test]
    fn the_malformed_fixtures_are_refused() {
        assert_eq!(fixture("no-sender.eml"), Err(Malformed::NoSender));
        assert_eq!(fixture("malformed.eml"), Err(Malformed::NotAMessage));
    }

    proptest::proptest! {
        /// Any bytes (a header block and a body of any sort) are a message or a reason,
        /// never a panic; a message taken has a sender Rezef accepts.
        #[test]
        fn any_bytes_are_a_message_or_a_reason(
            headers in "([A-Za-z-]{1,12}: [ -~]{0,40}\r?\n){0,6}",
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            let mut raw = headers.into_bytes();
            raw.extend_from_slice(b"\r\n");
            raw.extend_from_slice(&body);
            if let Ok(m) = parse(&raw) {
                proptest::prop_assert_eq!(normalise(&m.from), Some(m.from.clone()));
                proptest::prop_assert!(!m.message_id.is_empty());
            }
        }
    }
}

//! The adapter's pure core: a [`Mail`] and what the thread index knows become the events to
//! publish, the attachment bytes to store and the thread entry to remember. No I/O, no
//! clock: the same message and index give the same events, ids included.
//!
//! Rules (docs/adapters.md, "The email adapter"):
//! - **Who.** A message from a company address (configured: an address, or `@domain` for
//!   all of a domain) is an agent's; any other is the customer's, whose identity is the
//!   `From` address (or `Reply-To`, per [`Settings::sender`]).
//! - **Threads.** A message whose parent (`In-Reply-To`, then `References` from the nearest)
//!   is in the index continues that thread's interaction, when it is the same customer's or
//!   an agent's; Rezef then places it in the conversation of that interaction. Any other
//!   message starts a new interaction (an `InteractionStarted`, inbound from a customer,
//!   outbound from an agent), placed by Rezef's continuity rules (the customer's open
//!   conversation within the continuation window, else a new one). A message already in the
//!   index (delivered again) keeps the thread it had.
//! - **Ids.** Event ids and a new thread's interaction id derive from the `Message-ID`, so a
//!   message delivered twice gives the same events, and Rezef applies them once.
//! - **What.** One `MessageSent`: the subject and the text, attachments by reference (the
//!   bytes go to the attachment store, named by their BLAKE3 hash, never into an event).
//! - **When.** `Date`, unless it is later than the message was received (a wrong clock) or
//!   missing: then the time received.

use rezef_adapter::proto::{self, event::Payload};

use crate::mail::{Mail, Malformed};

/// The largest message text Rezef takes (`rezef-events` `MAX_TEXT_LEN`).
pub const MAX_TEXT: usize = 64 * 1024;
/// The most attachments Rezef takes on one message; later ones are left out.
pub const MAX_ATTACHMENTS: usize = 32;
const TRUNCATED: &str = "\n[truncated]";
/// The longest agent or bot id Rezef takes (`MessageSent.sender_id`).
const MAX_SENDER_ID: usize = 128;

/// Which header names the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SenderHeader {
    #[default]
    From,
    /// `Reply-To` when present, else `From`.
    ReplyTo,
}

/// What the core needs of the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub tenant: String,
    pub source: String,
    pub sender: SenderHeader,
    /// Lowercase company addresses, and `@domain` entries for whole domains.
    pub company: Vec<String>,
    /// An attachment's URI is this followed by its hash (`file:///var/lib/…/` by default).
    pub attachment_uri_base: String,
}

impl Settings {
    pub fn is_company(&self, address: &str) -> bool {
        let domain = address.rsplit_once('@').map(|(_, d)| d);
        self.company
            .iter()
            .any(|entry| match entry.strip_prefix('@') {
                Some(company_domain) => domain == Some(company_domain),
                None => entry == address,
            })
    }
}

/// A thread as the index keeps it: the interaction of its messages and the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    pub interaction_id: String,
    pub customer: String,
}

/// The thread index as the core reads it: which thread a message id belongs to.
pub trait Threads {
    fn thread_of(&self, message_id: &str) -> Option<Thread>;
}

impl Threads for std::collections::HashMap<String, Thread> {
    fn thread_of(&self, message_id: &str) -> Option<Thread> {
        self.get(message_id).cloned()
    }
}

/// Attachment bytes to store under their hash before the events that name them go out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// BLAKE3, hex.
    pub hash: String,
    pub bytes: Vec<u8>,
}

/// What one message becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    pub message_id: String,
    /// The message's thread, to remember under its id once the events are accepted.
    pub thread: Thread,
    pub events: Vec<proto::Event>,
    pub blobs: Vec<Blob>,
}

/// Translates `mail`, received at `received_at`, given the threads known.
pub fn translate(
    mail: &Mail,
    received_at: prost_types::Timestamp,
    settings: &Settings,
    threads: &impl Threads,
) -> Result<Translation, Malformed> {
    let agent = settings.is_company(&mail.from);
    let customer = if agent {
        None
    } else {
        Some(match (settings.sender, &mail.reply_to) {
            (SenderHeader::ReplyTo, Some(reply_to)) => reply_to.clone(),
            _ => mail.from.clone(),
        })
    };
    let parent = (threads.thread_of(&mail.message_id).into_iter())
        .chain(mail.parents.iter().filter_map(|id| threads.thread_of(id)))
        .find(|thread| customer.as_ref().is_none_or(|c| *c == thread.customer));
    let key = id_key(&mail.message_id);
    // The interaction a message starts is named after it: delivered again, it starts it
    // again (the same events, by id), whatever the index learnt since.
    let own_interaction = format!("email-{key}");
    let (thread, started) = match parent {
        Some(thread) => {
            let started = thread.interaction_id == own_interaction;
            (thread, started)
        }
        None => {
            let customer = match customer {
                Some(customer) => customer,
                None => (mail.recipients.iter())
                    .find(|r| !settings.is_company(r))
                    .cloned()
                    .ok_or(Malformed::NoCustomer)?,
            };
            let thread = Thread {
                interaction_id: own_interaction,
                customer,
            };
            (thread, true)
        }
    };
    let text = text_of(mail);
    if text.is_empty() && mail.attachments.is_empty() {
        return Err(Malformed::Empty);
    }
    let (attachments, blobs) = attachments_of(mail, settings);

    let occurred_at = match mail.date {
        Some(date) if date >= 0 && date <= received_at.seconds => prost_types::Timestamp {
            seconds: date,
            nanos: 0,
        },
        _ => received_at,
    };
    let event = |suffix: &str, payload: Payload| proto::Event {
        event_id: format!("email-{key}-{suffix}"),
        tenant_id: settings.tenant.clone(),
        occurred_at: Some(occurred_at),
        source: settings.source.clone(),
        schema_version: 1,
        customer: Some(rezef_adapter::identity_ref(
            proto::IdentityKind::Email,
            thread.customer.clone(),
        )),
        interaction_id: thread.interaction_id.clone(),
        channel: proto::Channel::Email as i32,
        payload: Some(payload),
        ..Default::default()
    };
    let mut events = Vec::with_capacity(2);
    if started {
        let (direction, entry_point) = if agent {
            (proto::Direction::Outbound, mail.from.clone())
        } else {
            let mailbox = mail.recipients.iter().find(|r| settings.is_company(r));
            (
                proto::Direction::Inbound,
                mailbox.cloned().unwrap_or_default(),
            )
        };
        events.push(event(
            "started",
            Payload::InteractionStarted(proto::InteractionStarted {
                direction: direction as i32,
                entry_point,
                ..Default::default()
            }),
        ));
    }
    let (from, sender_id) = if agent {
        let id = Some(&mail.from).filter(|a| a.len() <= MAX_SENDER_ID);
        (proto::Participant::Agent, id.cloned().unwrap_or_default())
    } else {
        (proto::Participant::Customer, String::new())
    };
    events.push(event(
        "message",
        Payload::MessageSent(proto::MessageSent {
            from: from as i32,
            sender_id,
            text,
            attachments,
            sensitive: false,
        }),
    ));
    Ok(Translation {
        message_id: mail.message_id.clone(),
        thread,
        events,
        blobs,
    })
}

/// The hex BLAKE3 hash of a message id, 32 digits: the stem of its events' ids.
fn id_key(message_id: &str) -> String {
    let hash = blake3::hash(message_id.as_bytes()).to_hex();
    hash[..32].to_owned()
}

/// The subject, a blank line and the body; cut to [`MAX_TEXT`] at a character boundary.
fn text_of(mail: &Mail) -> String {
    let mut text = match (mail.subject.is_empty(), mail.body.is_empty()) {
        (true, _) => mail.body.clone(),
        (false, true) => mail.subject.clone(),
        (false, false) => format!("{}\n\n{}", mail.subject, mail.body),
    };
    if text.len() > MAX_TEXT {
        let mut end = MAX_TEXT - TRUNCATED.len();
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(TRUNCATED);
    }
    text
}

fn attachments_of(mail: &Mail, settings: &Settings) -> (Vec<proto::Attachment>, Vec<Blob>) {
    let mut blobs: Vec<Blob> = Vec::new();
    let attachments = (mail.attachments.iter().take(MAX_ATTACHMENTS))
        .map(|part| {
            let hash = blake3::hash(&part.bytes).to_hex().to_string();
            if !blobs.iter().any(|b| b.hash == hash) {
                blobs.push(Blob {
                    hash: hash.clone(),
                    bytes: part.bytes.clone(),
                });
            }
            proto::Attachment {
                uri: format!("{}{hash}", settings.attachment_uri_base),
                content_type: part.content_type.clone(),
                name: part.name.clone(),
                size_bytes: part.bytes.len() as u64,
            }
        })
        .collect();
    (attachments, blobs)
}

#[cfg(test)]
mod tests;

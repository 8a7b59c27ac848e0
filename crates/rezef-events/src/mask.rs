//! What is masked before a value is served to someone who may not see it: sensitive
//! context values, messages the adapter marked sensitive, and, by the tenant's policy, digit
//! runs in messages that look like a card number or a one-time code.
//!
//! A customer types the code they were sent into the chat, or a card number: the transcript
//! then goes to every channel and agent desktop the conversation reaches. So the fold keeps
//! transcripts masked (the projection never holds the code), and an audit replay masks the
//! same values unless the caller may reveal them; the log keeps what was said.
//!
//! The runs are found with the `regex` crate (linear time, whatever the text); the Luhn
//! check is the few lines below, not worth a dependency.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

use crate::event::{Event, Participant, Payload};
use crate::policy::ContinuityPolicy;

/// What a masked value is served as.
pub const MASK: &str = "****";

/// 13 to 19 digits, single spaces or dashes allowed between them: the shape of a card number
/// as people type it ("4111 1111 1111 1111"). Runs end at an ASCII word boundary, so a run
/// typed right after a Hebrew or Arabic word is still found.
static CARD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u:\b)[0-9](?:[ -]?[0-9]){12,18}(?-u:\b)").expect("a valid pattern")
});

/// A standalone run of 6 to 8 digits: a one-time code.
static CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?-u:\b)[0-9]{6,8}(?-u:\b)").expect("a valid pattern"));

/// The fewest digits a masked run has (a one-time code): a text with fewer, most messages,
/// is served as it is without running the patterns (they were 5% of a rebuild's fold).
const FEWEST_DIGITS: usize = 6;

/// `text` with what the policy masks replaced by [`MASK`]: card numbers (passing the Luhn
/// check) in anyone's text, one-time codes in what the customer typed.
pub fn text<'t>(text: &'t str, typed_by_customer: bool, policy: &ContinuityPolicy) -> Cow<'t, str> {
    let mut masked = Cow::Borrowed(text);
    let digits = text.bytes().filter(u8::is_ascii_digit).take(FEWEST_DIGITS);
    if digits.count() < FEWEST_DIGITS {
        return masked;
    }
    if policy.mask_card_numbers {
        let replaced = CARD.replace_all(&masked, |found: &regex::Captures<'_>| {
            if luhn(&found[0]) {
                MASK.to_owned()
            } else {
                found[0].to_owned()
            }
        });
        if let Cow::Owned(replaced) = replaced {
            masked = Cow::Owned(replaced);
        }
    }
    if policy.mask_codes
        && typed_by_customer
        && let Cow::Owned(replaced) = CODE.replace_all(&masked, MASK)
    {
        masked = Cow::Owned(replaced);
    }
    masked
}

/// A message's text as it may be served: all of it masked when the adapter marked it
/// sensitive, else what [`text`] masks.
pub fn message<'t>(
    from: Participant,
    text_sent: &'t str,
    sensitive: bool,
    policy: &ContinuityPolicy,
) -> Cow<'t, str> {
    if sensitive {
        return Cow::Borrowed(MASK);
    }
    text(text_sent, from == Participant::Customer, policy)
}

/// The event as someone who may not see sensitive values is served it: sensitive context
/// values, sensitive messages and what the policy masks in messages and in what the
/// customer typed in self service, replaced by [`MASK`]. `None`: nothing to mask.
pub fn event(event: &Event, policy: &ContinuityPolicy) -> Option<Event> {
    let mut masked = event.clone();
    let changed = match &mut masked.payload {
        Payload::ContextSet {
            value,
            sensitive: true,
            ..
        } => replace(value, MASK.to_owned()),
        Payload::MessageSent {
            from,
            text: sent,
            sensitive,
            ..
        } => {
            let served = message(*from, sent, *sensitive, policy).into_owned();
            replace(sent, served)
        }
        Payload::SelfServiceStepCompleted { customer_input, .. } => {
            let served = text(customer_input, true, policy).into_owned();
            replace(customer_input, served)
        }
        _ => false,
    };
    changed.then_some(masked)
}

/// Sets `field` to `served`; whether that changed it.
fn replace(field: &mut String, served: String) -> bool {
    let changed = *field != served;
    *field = served;
    changed
}

/// The Luhn check over the digits of `number` (ISO/IEC 7812): what card numbers pass and
/// most other long digit runs (order numbers, phone numbers) do not.
fn luhn(number: &str) -> bool {
    let digits = number
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| u32::from(b - b'0'));
    let sum: u32 = digits
        .rev()
        .enumerate()
        .map(|(i, d)| match (i % 2 == 1, d * 2) {
            (true, doubled) if doubled > 9 => doubled - 9,
            (true, doubled) => doubled,
            (false, _) => d,
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::EventBuilder;

    fn policy() -> ContinuityPolicy {
        ContinuityPolicy::default()
    }

    #[test]
    fn card_numbers_are_masked_when_they_pass_the_luhn_check() {
        let p = policy();
        assert_eq!(
            text("card 4111 1111 1111 1111, ok?", false, &p),
            "card ****, ok?"
        );
        assert_eq!(text("4111-1111-1111-1111", false, &p), "****");
        assert_eq!(text("4111111111111111", false, &p), "****");
        // Not a card: the check fails (an order number, a phone number).
        assert_eq!(
            text("order 4111111111111112", false, &p),
            "order 4111111111111112"
        );
        assert_eq!(text("call +972501234567", false, &p), "call +972501234567");
    }

    #[test]
    fn a_text_with_fewer_digits_than_a_code_is_served_as_it_is() {
        let p = policy();
        assert!(matches!(
            text("room 12345, floor 2", true, &p),
            Cow::Borrowed(_)
        ));
        // Six digits, even apart, are looked at; a six-digit run is a code.
        assert_eq!(text("1 2 3 4 5 6", true, &p), "1 2 3 4 5 6");
        assert_eq!(text("code 123456", true, &p), "code ****");
    }

    #[test]
    fn one_time_codes_are_masked_in_what_the_customer_typed_only() {
        let p = policy();
        assert_eq!(text("482913", true, &p), "****");
        assert_eq!(text("the code is 482913.", true, &p), "the code is ****.");
        assert_eq!(
            text("482913", false, &p),
            "482913",
            "a bot reading an order number"
        );
        // Years, amounts, references with letters: not codes.
        assert_eq!(
            text("since 2019, ₪1,249.00, A-48291", true, &p),
            "since 2019, ₪1,249.00, A-48291"
        );
    }

    #[test]
    fn the_tenant_may_turn_either_off() {
        let p = ContinuityPolicy {
            mask_codes: false,
            mask_card_numbers: false,
            ..policy()
        };
        assert_eq!(
            text("482913 4111111111111111", true, &p),
            "482913 4111111111111111"
        );
    }

    #[test]
    fn a_message_marked_sensitive_is_masked_whole() {
        let p = policy();
        assert_eq!(
            message(Participant::Bot, "your PIN is 1234", true, &p),
            MASK
        );
        assert_eq!(message(Participant::Bot, "hello", false, &p), "hello");
    }

    /// Given a replayed history, when it is served to someone who may not reveal, then
    /// sensitive values and codes are masked and everything else is as recorded.
    #[test]
    fn events_are_masked_for_a_replay() {
        let p = policy();
        let mut chat = EventBuilder::visitor("acme", "v-1");
        let card = chat.event(Payload::ContextSet {
            key: "card".into(),
            value: "4111111111111111".into(),
            sensitive: true,
        });
        let masked = event(&card, &p).expect("masked");
        assert!(matches!(&masked.payload, Payload::ContextSet { value, .. } if value == MASK));
        assert_eq!(masked.event_id, card.event_id);
        let code = chat.message(Participant::Customer, "482913");
        let masked = event(&code, &p).expect("masked");
        assert!(matches!(&masked.payload, Payload::MessageSent { text, .. } if text == MASK));
        let typed = chat.event(Payload::SelfServiceStepCompleted {
            step_id: "pin".into(),
            prompt: "your code?".into(),
            customer_input: "482913".into(),
            outcome: None,
        });
        let masked = event(&typed, &p).expect("masked");
        assert!(
            matches!(&masked.payload, Payload::SelfServiceStepCompleted { customer_input, .. } if customer_input == MASK)
        );
        assert_eq!(event(&chat.message(Participant::Customer, "hi"), &p), None);
        assert_eq!(event(&chat.context("order", "A-1"), &p), None);
    }

    /// A message recorded before adapters could mark one sensitive reads as not sensitive.
    #[test]
    fn a_message_recorded_before_the_flag_existed_is_not_sensitive() {
        let stored = br#"{"event_id":"e-1","tenant_id":"acme","occurred_at":1700000000000000000,"source":"web-chat","schema_version":1,"customer":{"identity":{"kind":"chat_visitor","value":"v-1","network":null}},"conversation_id":null,"interaction_id":"chat-1","channel":"webchat","payload":{"message_sent":{"from":"customer","sender_id":"","text":"hello","attachments":[]}}}"#;
        let event = crate::codec::decode(stored).expect("decodes");
        assert!(matches!(
            event.payload,
            Payload::MessageSent {
                sensitive: false,
                ..
            }
        ));
        let unchanged = crate::codec::encode(&event);
        assert!(!String::from_utf8_lossy(&unchanged).contains("sensitive"));
    }

    proptest! {
        /// Whatever a customer types, no card number or code survives masking.
        #[test]
        fn no_card_or_code_survives(
            before in "[a-z ]{0,12}",
            card_prefix in proptest::collection::vec(0u8..10, 12..=18),
            code in 100_000u32..100_000_000,
            after in "[a-z ]{0,12}",
        ) {
            let card = with_check_digit(&card_prefix);
            let typed = format!("{before} {card} {after} {code} {after}");
            let masked = text(&typed, true, &policy()).into_owned();
            prop_assert!(!masked.contains(&card), "{}", masked);
            prop_assert!(!masked.contains(&code.to_string()), "{}", masked);
        }
    }

    /// The digits with the Luhn check digit appended.
    fn with_check_digit(prefix: &[u8]) -> String {
        let mut number: String = prefix.iter().map(|d| char::from(b'0' + d)).collect();
        let check = (0..10)
            .find(|d| luhn(&format!("{number}{d}")))
            .expect("one digit completes it");
        number.push(char::from(b'0' + check));
        number
    }
}

//! The rule bot that answers first: keywords to answers (each with the intent it means),
//! words that ask for a human, and a handoff after too many turns it did not understand.
//! Pure: it decides, `session.rs` publishes and answers.
//!
//! Words are matched whole, case-insensitively, in any script: the visitor's text and each
//! keyword are cut at every character that is not a letter or digit, and a keyword of
//! several words matches those words in a row ("opening hours").

use serde::{Deserialize, Serialize};

/// `[bot]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BotSettings {
    /// The bot's id: the `sender_id` of its messages and the `bot_id` of its handoffs.
    pub id: String,
    /// Said when a chat starts.
    pub greeting: String,
    /// Said when a message matches nothing (and no handoff is due yet).
    pub not_understood: String,
    /// Said when the chat is handed to a human.
    pub handoff: String,
    /// Words that ask for a human.
    pub handoff_words: Vec<String>,
    /// Turns not understood in a row before the bot hands off by itself (0: never).
    pub max_not_understood: u32,
    pub answers: Vec<Answer>,
}

impl Default for BotSettings {
    fn default() -> Self {
        Self {
            id: "webchat-bot".into(),
            greeting: "Hello! I am the virtual assistant. Ask me a question, or type \"agent\" \
                       to talk to a person."
                .into(),
            not_understood: "Sorry, I did not understand. Could you put it another way?".into(),
            handoff: "I am passing you to one of our agents; please stay here.".into(),
            handoff_words: ["agent", "human", "person", "representative"]
                .map(String::from)
                .into(),
            max_not_understood: 2,
            answers: Vec::new(),
        }
    }
}

/// `[[bot.answers]]`: what the bot says to a message with one of `keywords`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Answer {
    pub keywords: Vec<String>,
    pub reply: String,
    /// The intent such a message shows (`IntentDetected`), e.g. `billing.invoice`.
    pub intent: String,
}

impl BotSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.id.is_empty() {
            return Err("bot.id is required".into());
        }
        for (n, answer) in self.answers.iter().enumerate() {
            let no_keyword = answer.keywords.iter().all(|k| words(k).is_empty());
            if no_keyword || answer.reply.is_empty() || answer.intent.is_empty() {
                return Err(format!(
                    "bot.answers[{n}]: keywords (with a word), reply and intent are required"
                ));
            }
        }
        Ok(())
    }

    /// What the bot does with `text`, after `failures` turns in a row it did not understand.
    pub fn decide(&self, text: &str, failures: u32) -> Turn<'_> {
        let said = words(text);
        let has = |phrase: &str| contains(&said, &words(phrase));
        if self.handoff_words.iter().any(|w| has(w)) {
            return Turn::Handoff(Handoff::CustomerAsked);
        }
        if let Some(answer) = (self.answers.iter()).find(|a| a.keywords.iter().any(|k| has(k))) {
            return Turn::Answer(answer);
        }
        if self.max_not_understood > 0 && failures + 1 >= self.max_not_understood {
            return Turn::Handoff(Handoff::BotFailed);
        }
        Turn::NotUnderstood
    }
}

/// The bot's decision on one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn<'a> {
    Answer(&'a Answer),
    NotUnderstood,
    Handoff(Handoff),
}

/// Why the bot hands the chat to a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    CustomerAsked,
    BotFailed,
}

/// `text` in lower case, cut into words.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Whether `phrase` (non-empty) appears in `said` as consecutive words.
fn contains(said: &[String], phrase: &[String]) -> bool {
    !phrase.is_empty() && said.windows(phrase.len()).any(|w| w == phrase)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn bot() -> BotSettings {
        BotSettings {
            answers: vec![
                Answer {
                    keywords: vec!["opening hours".into(), "open".into()],
                    reply: "We are open 9 to 5.".into(),
                    intent: "info.hours".into(),
                },
                Answer {
                    keywords: vec!["invoice".into(), "חשבונית".into()],
                    reply: "Your invoices are under Billing.".into(),
                    intent: "billing.invoice".into(),
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn a_keyword_is_answered_with_its_intent() {
        let bot = bot();
        // Given a message with a keyword, in any case and punctuation,
        let turn = bot.decide("Where is my INVOICE?", 0);
        // then the bot answers it.
        let Turn::Answer(answer) = turn else {
            panic!("{turn:?}")
        };
        assert_eq!(answer.intent, "billing.invoice");
        let Turn::Answer(answer) = bot.decide("איפה החשבונית שלי? חשבונית", 0)
        else {
            panic!("hebrew")
        };
        assert_eq!(answer.intent, "billing.invoice");
    }

    #[test]
    fn a_phrase_matches_whole_words_in_a_row() {
        let bot = bot();
        assert!(matches!(
            bot.decide("your opening hours please", 0),
            Turn::Answer(a) if a.intent == "info.hours"
        ));
        // "invoices" is not "invoice"; "reopen" is not "open".
        assert_eq!(bot.decide("reopen my invoices", 0), Turn::NotUnderstood);
    }

    #[test]
    fn asking_for_a_human_hands_off_before_any_answer() {
        let bot = bot();
        let turn = bot.decide("invoice? I want a human", 0);
        assert_eq!(turn, Turn::Handoff(Handoff::CustomerAsked));
    }

    #[test]
    fn the_bot_hands_off_after_too_many_turns_not_understood() {
        let bot = bot();
        // Given a bot that hands off at the second turn not understood,
        assert_eq!(bot.max_not_understood, 2);
        // when the visitor is not understood once, then twice,
        assert_eq!(bot.decide("blah", 0), Turn::NotUnderstood);
        // then the bot hands off.
        assert_eq!(bot.decide("blah", 1), Turn::Handoff(Handoff::BotFailed));
        let patient = BotSettings {
            max_not_understood: 0,
            ..bot
        };
        assert_eq!(patient.decide("blah", 99), Turn::NotUnderstood);
    }

    #[test]
    fn an_answer_without_a_word_is_refused() {
        let mut bot = bot();
        bot.answers[0].keywords = vec!["?!".into()];
        let error = bot.validate().expect_err("refused");
        assert!(error.starts_with("bot.answers[0]"), "{error}");
    }

    proptest! {
        /// Whatever the visitor types, a handoff word in it hands off, and a message with
        /// no keyword and no handoff word is never answered.
        #[test]
        fn decisions_follow_the_words(
            before in "[a-z ]{0,20}", after in "[a-z ,.!?]{0,20}", failures in 0u32..5,
        ) {
            let bot = bot();
            let asked = format!("{before} Agent {after}");
            prop_assert_eq!(bot.decide(&asked, failures), Turn::Handoff(Handoff::CustomerAsked));
            let plain = format!("{before}{after}");
            let keyword = ["open", "opening", "invoice", "agent", "human", "person",
                "representative"];
            if !words(&plain).iter().any(|w| keyword.contains(&w.as_str())) {
                prop_assert!(!matches!(bot.decide(&plain, failures), Turn::Answer(_)));
            }
        }
    }
}

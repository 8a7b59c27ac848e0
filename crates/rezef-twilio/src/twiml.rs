//! TwiML, Twilio's XML of call instructions (<https://www.twilio.com/docs/voice/twiml>): the
//! few verbs the adapter answers with, every text and attribute escaped.

use std::fmt::Write;

/// A `<Response>` being written.
#[derive(Debug, Default)]
pub struct Twiml {
    body: String,
}

/// Where a call goes once self-service is over.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Connect {
    /// `<Enqueue>` into this Twilio queue.
    Enqueue(String),
    /// `<Dial>` this number or SIP address.
    Dial(String),
}

impl Twiml {
    pub fn new() -> Self {
        Self::default()
    }

    /// `<Say>`, in `language` (a BCP 47 tag Twilio's voices speak) when given.
    pub fn say(mut self, text: &str, language: Option<&str>) -> Self {
        self.body.push_str("<Say");
        if let Some(language) = language {
            attribute(&mut self.body, "language", language);
        }
        self.body.push('>');
        escape_into(&mut self.body, text);
        self.body.push_str("</Say>");
        self
    }

    /// `<Gather>` of `digits` keys posted to `action`, saying `prompt` meanwhile.
    pub fn gather(
        mut self,
        action: &str,
        digits: u32,
        prompt: &str,
        language: Option<&str>,
    ) -> Self {
        self.body.push_str("<Gather");
        attribute(&mut self.body, "input", "dtmf");
        attribute(&mut self.body, "numDigits", &digits.to_string());
        attribute(&mut self.body, "action", action);
        attribute(&mut self.body, "method", "POST");
        self.body.push('>');
        self = self.say(prompt, language);
        self.body.push_str("</Gather>");
        self
    }

    /// `<Enqueue>`, which posts to `queue_action` once the caller leaves the queue, or
    /// `<Dial>`.
    pub fn connect(mut self, to: &Connect, queue_action: &str) -> Self {
        let (verb, target) = match to {
            Connect::Enqueue(queue) => {
                self.body.push_str("<Enqueue");
                attribute(&mut self.body, "action", queue_action);
                attribute(&mut self.body, "method", "POST");
                self.body.push('>');
                ("Enqueue", queue)
            }
            Connect::Dial(number) => {
                self.body.push_str("<Dial>");
                ("Dial", number)
            }
        };
        escape_into(&mut self.body, target);
        let _ = write!(self.body, "</{verb}>");
        self
    }

    /// The document.
    pub fn render(&self) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>{}</Response>",
            self.body
        )
    }
}

fn attribute(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, " {name}=\"");
    escape_into(out, value);
    out.push('"');
}

/// XML's five predefined entities; characters XML 1.0 cannot carry at all (controls but
/// tab, newline and carriage return) are left out.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped() {
        let twiml = Twiml::new()
            .gather(
                "/g?a=1&b=\"2\"",
                1,
                "Press 1 for <billing> & 'more'",
                Some("en-US"),
            )
            .connect(&Connect::Enqueue("q&a".into()), "/q")
            .render();
        assert_eq!(
            twiml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>\
             <Gather input=\"dtmf\" numDigits=\"1\" action=\"/g?a=1&amp;b=&quot;2&quot;\" method=\"POST\">\
             <Say language=\"en-US\">Press 1 for &lt;billing&gt; &amp; &apos;more&apos;</Say>\
             </Gather><Enqueue action=\"/q\" method=\"POST\">q&amp;a</Enqueue></Response>"
        );
    }

    #[test]
    fn control_characters_are_dropped() {
        let twiml = Twiml::new().say("a\u{0}b\u{1b}c\nd", None).render();
        assert!(twiml.contains("<Say>abc\nd</Say>"));
    }

    #[test]
    fn an_empty_response_is_a_response() {
        assert_eq!(
            Twiml::new().render(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>"
        );
    }
}

//! Language tags by BCP 47, as the `language-tags` crate reads them against the IANA registry:
//! `HE-il` is `he-IL`, the deprecated `iw` is `he`, `en_GB` (a Java or CRM locale) is
//! `en-GB`. Events, agents' profiles and routing requests carry the canonical tag.
//!
//! Who speaks what is decided on the [`spoken`] language: the tag's language and script,
//! without region or variants. An agent speaking `he` serves a contact in `he-IL`, one
//! speaking `en-GB` a contact in `en-US`; one reading `zh-Hant` is not taken for one reading
//! `zh-Hans`.

use language_tags::LanguageTag;

/// The canonical form of `tag`, or why it is not a BCP 47 language tag.
pub fn canonical(tag: &str) -> Result<String, String> {
    parsed(tag).map(|tag| tag.to_string())
}

/// The language (and script) a person with `tag` speaks, in canonical form: `he-IL` → `he`,
/// `zh-Hant-TW` → `zh-Hant`, `iw` → `he`. A tag that is not BCP 47 is compared as it is.
pub fn spoken(tag: &str) -> String {
    let Ok(tag) = parsed(tag) else {
        return tag.to_owned();
    };
    match tag.script() {
        Some(script) => format!("{}-{script}", tag.primary_language()),
        None => tag.primary_language().to_owned(),
    }
}

/// Whether someone speaking `agent` can serve someone speaking `contact`.
pub fn speaks(agent: &str, contact: &str) -> bool {
    spoken(agent) == spoken(contact)
}

fn parsed(tag: &str) -> Result<LanguageTag, String> {
    let tag = tag.trim().replace('_', "-");
    let parsed = LanguageTag::parse(&tag).map_err(|error| {
        format!("must be a BCP 47 language tag such as \"he\" or \"en-GB\": {error}")
    })?;
    let canonical = parsed.canonicalize().map_err(|error| {
        format!("must be a BCP 47 language tag such as \"he\" or \"en-GB\": {error}")
    })?;
    canonical
        .validate()
        .map_err(|error| format!("must be a valid BCP 47 language tag: {error}"))?;
    Ok(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_take_their_canonical_form() {
        for (given, expected) in [
            ("he", "he"),
            ("HE-il", "he-IL"),
            ("iw", "he"),
            ("iw-IL", "he-IL"),
            ("en_gb", "en-GB"),
            ("zh-hant-tw", "zh-Hant-TW"),
            ("i-klingon", "tlh"),
        ] {
            assert_eq!(canonical(given).as_deref(), Ok(expected), "{given}");
        }
        for bad in ["", "english", "he--IL", "x", "12"] {
            assert!(canonical(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn agents_serve_contacts_of_their_language_whatever_the_form() {
        assert!(speaks("he", "he-IL"));
        assert!(speaks("he-IL", "iw"));
        assert!(speaks("EN-gb", "en-US"));
        assert!(speaks("zh-Hant", "zh-Hant-TW"));
        assert!(!speaks("zh-Hant", "zh-Hans"));
        assert!(!speaks("he", "ar"));
        assert_eq!(spoken("iw-IL"), "he");
    }
}

//! Phone numbers as telephony and CRMs deliver them: `0501234567` from an Israeli trunk,
//! `(201) 555-0123` from a US CRM, `tel:+44-20-7946-0018;ext=12` from a SIP header. They are
//! parsed by libphonenumber's rules and metadata (the maintained `phonenumber` port), in the
//! region the tenant (or the adapter's source) is in, and stored in E.164, so that every form
//! of one number is one identity.
//!
//! A number is refused when libphonenumber cannot read it in that region, or when its length
//! is not one that region's numbers have (libphonenumber's *possible* check). Whether the
//! number falls in an allocated range (its *valid* check) is not asked: ranges are allocated
//! faster than the metadata is released, and refusing a real caller loses their contact.
//!
//! Caller ids a network sends when the number is withheld (`anonymous`, `unavailable`, …) are
//! recognised here as [`Phone::Withheld`]: they identify no one (see `policy`).

use std::fmt;
use std::str::FromStr;

use phonenumber::country::Id;
use phonenumber::metadata::DATABASE;
use serde::{Deserialize, Serialize};

/// What a network or a switch sends when the caller's number is withheld, in lower case.
pub const WITHHELD_CALLER_IDS: &[&str] = &[
    "anonymous",
    "unavailable",
    "unknown",
    "private",
    "restricted",
    "withheld",
    "blocked",
    "no caller id",
];

/// The stored value of a phone identity whose number was withheld: never an E.164 number.
pub const WITHHELD: &str = "withheld";

/// A region whose national numbering plan reads numbers without a country code: an ISO
/// 3166-1 alpha-2 code libphonenumber knows (`IL`, `GB`, `US`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(Id);

impl FromStr for Region {
    type Err = String;

    fn from_str(code: &str) -> Result<Self, String> {
        let upper = code.trim().to_ascii_uppercase();
        match Id::from_str(&upper) {
            Ok(id) if DATABASE.by_id(id.as_ref()).is_some() => Ok(Self(id)),
            _ => Err(format!(
                "{code:?} is not a region libphonenumber knows (an ISO 3166-1 alpha-2 code such \
                 as \"IL\", \"GB\" or \"US\")"
            )),
        }
    }
}

impl TryFrom<String> for Region {
    type Error = String;

    fn try_from(code: String) -> Result<Self, String> {
        code.parse()
    }
}

impl From<Region> for String {
    fn from(region: Region) -> Self {
        region.to_string()
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_ref())
    }
}

/// A phone number as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phone {
    /// In E.164 (`+972501234567`); an extension, if any, is not part of it.
    Number(String),
    /// A withheld caller id.
    Withheld,
}

/// Reads `raw` as a phone number of `region` (national forms need one; international forms,
/// with `+`, an international prefix or a `tel:` URI, do not).
pub fn parse(raw: &str, region: Option<Region>) -> Result<Phone, String> {
    let trimmed = raw.trim();
    if WITHHELD_CALLER_IDS
        .iter()
        .any(|withheld| trimmed.eq_ignore_ascii_case(withheld))
    {
        return Ok(Phone::Withheld);
    }
    // Without a region, `00` is read as the international prefix most of the world dials.
    let international;
    let text = match (region, trimmed.strip_prefix("00")) {
        (None, Some(rest)) => {
            international = format!("+{rest}");
            international.as_str()
        }
        _ => trimmed,
    };
    let number =
        phonenumber::parse(region.map(|r| r.0), text).map_err(|error| match (error, region) {
            (phonenumber::ParseError::InvalidCountryCode, None) => {
                "must be an international number (+ and the country code) or a `tel:` URI: \
                 no default_region is configured for national numbers"
                    .to_owned()
            }
            (error, Some(region)) => format!("is not a phone number of region {region}: {error}"),
            (error, None) => format!("is not a phone number: {error}"),
        })?;
    let national = number.national().to_string();
    let possible = DATABASE
        .by_code(&number.code().value())
        .and_then(|metas| metas.into_iter().next())
        .map(possible_lengths);
    match possible {
        None => Err(format!(
            "has country code +{}, which no region uses",
            number.code().value()
        )),
        Some(lengths) if !lengths.contains(&u16::try_from(national.len()).unwrap_or(0)) => {
            Err(format!(
                "has {} digits after country code +{}, a length no number there has",
                national.len(),
                number.code().value()
            ))
        }
        Some(_) => {
            let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
            // A stored number must read as itself again (libphonenumber strips a national
            // prefix after some country codes, so `+95 0 0…` reads as `+950…`, which
            // reads as `+95…`): one that does not names no one number, and is refused.
            match phonenumber::parse(None, &e164) {
                Ok(again) if again.format().mode(phonenumber::Mode::E164).to_string() == e164 => {
                    Ok(Phone::Number(e164))
                }
                _ => Err(format!(
                    "does not read as one number: libphonenumber reads it as {e164}, and that as \
                     another"
                )),
            }
        }
    }
}

/// The lengths the national numbers of a country code's main region have (one plan for all
/// of +1, for instance): those of every kind of number its metadata describes, as
/// libphonenumber's own build derives the general description's.
fn possible_lengths(meta: &phonenumber::Metadata) -> Vec<u16> {
    use phonenumber::Type;
    let descriptors = meta.descriptors();
    let mut lengths: Vec<u16> = [
        Type::FixedLine,
        Type::Mobile,
        Type::TollFree,
        Type::PremiumRate,
        Type::SharedCost,
        Type::PersonalNumber,
        Type::Voip,
        Type::Pager,
        Type::Uan,
        Type::Voicemail,
    ]
    .into_iter()
    .filter_map(|kind| descriptors.get(kind))
    .chain([descriptors.general()])
    .flat_map(|descriptor| descriptor.possible_length().iter().copied())
    .collect();
    lengths.sort_unstable();
    lengths.dedup();
    lengths
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(code: &str) -> Option<Region> {
        Some(code.parse().expect("a known region"))
    }

    fn e164(raw: &str, region: Option<Region>) -> String {
        match parse(raw, region) {
            Ok(Phone::Number(number)) => number,
            other => panic!("{raw}: {other:?}"),
        }
    }

    #[test]
    fn national_and_international_forms_of_one_number_are_one() {
        let cases = [
            (
                "IL",
                "+972501234567",
                &[
                    "0501234567",
                    "050-1234567",
                    "972501234567",
                    "+972 (50) 123-4567",
                    "00972501234567",
                    "tel:+972-50-123-4567",
                    "tel:050-1234567;phone-context=+972",
                ][..],
            ),
            (
                "GB",
                "+442079460018",
                &[
                    "020 7946 0018",
                    "(020) 7946-0018",
                    "+44 20 7946 0018",
                    "0044 20 7946 0018",
                    "tel:+44-20-7946-0018;ext=12",
                ][..],
            ),
            (
                "US",
                "+12015550123",
                &[
                    "(201) 555-0123",
                    "201.555.0123",
                    "1-201-555-0123",
                    "+1 201 555 0123 ext. 7",
                    "201-555-0123 x7",
                    "011 1 201 555 0123",
                ][..],
            ),
        ];
        for (code, expected, forms) in cases {
            for form in forms {
                assert_eq!(e164(form, region(code)), expected, "{form} in {code}");
            }
        }
    }

    #[test]
    fn international_forms_need_no_region() {
        assert_eq!(e164("+972 50-123-4567", None), "+972501234567");
        assert_eq!(e164("00 44 20 7946 0018", None), "+442079460018");
        assert_eq!(e164("tel:+1-201-555-0123", None), "+12015550123");
    }

    #[test]
    fn numbers_a_region_cannot_have_are_refused_with_the_reason() {
        let refused = |raw: &str, region: Option<Region>| parse(raw, region).expect_err(raw);
        assert!(refused("0501234567", None).contains("default_region"));
        assert!(refused("050123", region("IL")).contains("length"));
        assert!(refused("+44 20 7946 00181234", None).contains("length"));
        assert!(refused("(201) 555-01", region("US")).contains("length"));
        assert!(refused("call me", region("IL")).contains("region IL"));
        assert!(refused("+999 1234 5678", None).contains("country code"));
    }

    #[test]
    fn a_number_that_does_not_read_as_itself_again_is_refused() {
        // Found by fuzzing: +95 0 0… reads as +950…, which reads as +95….
        let refused = parse("+950004938268", None).expect_err("refused");
        assert!(refused.contains("does not read as one number"), "{refused}");
        assert_eq!(e164("+972 50-123-4567", None), "+972501234567");
    }

    #[test]
    fn withheld_caller_ids_are_recognised_in_any_case() {
        for raw in [
            "anonymous",
            "Anonymous",
            " UNAVAILABLE ",
            "Private",
            "withheld",
        ] {
            assert_eq!(parse(raw, region("IL")), Ok(Phone::Withheld), "{raw}");
        }
    }

    #[test]
    fn regions_are_known_iso_codes() {
        assert_eq!(region("il").map(|r| r.to_string()), Some("IL".into()));
        assert!("XX".parse::<Region>().is_err());
        assert!("Israel".parse::<Region>().is_err());
    }
}

//! `X-Twilio-Signature`, checked as Twilio's documentation specifies
//! (<https://www.twilio.com/docs/usage/webhooks/webhooks-security>, "Validating signatures
//! from Twilio"; formerly <https://www.twilio.com/docs/usage/security#validating-requests>):
//! the full URL the webhook was configured with (scheme to query string), followed by the
//! POST parameters sorted by name, each name then value with no delimiter, signed with
//! HMAC-SHA1 keyed by the account's auth token, base64-encoded. Parameters sent twice
//! (`MediaUrl` lists) are sorted by value after name, as Twilio's helper libraries do.
//!
//! Only form-encoded webhooks are handled (voice, messaging and status callbacks are). The
//! JSON-body variant, signed over the URL with a `bodySHA256` query parameter, is not
//! supported: such requests are refused.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;

/// The signature Twilio sends for a POST of `params` to `url`, signed with `auth_token`.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let signed = hmac::sign(&key(auth_token), &signed_bytes(url, params));
    STANDARD.encode(signed.as_ref())
}

/// Whether `signature` is Twilio's for this request, compared in constant time.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(given) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    hmac::verify(&key(auth_token), &signed_bytes(url, params), &given).is_ok()
}

fn key(auth_token: &str) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes())
}

/// The URL, then each parameter's name and value, sorted.
fn signed_bytes(url: &str, params: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut bytes = url.as_bytes().to_vec();
    for (name, value) in sorted {
        bytes.extend_from_slice(name.as_bytes());
        bytes.extend_from_slice(value.as_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twilio's published example (the page above): its URL, token and parameters, and the
    /// signature it gives, which this computes.
    fn example() -> (&'static str, &'static str, Vec<(String, String)>) {
        let params = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ];
        let params = params.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec();
        (
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            "12345",
            params,
        )
    }

    const EXPECTED: &str = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";

    #[test]
    fn the_published_example_signs_and_verifies() {
        let (url, token, params) = example();
        assert_eq!(sign(token, url, &params), EXPECTED);
        assert!(verify(token, url, &params, EXPECTED));
    }

    #[test]
    fn order_of_the_parameters_as_sent_does_not_matter() {
        let (url, token, mut params) = example();
        params.reverse();
        assert!(verify(token, url, &params, EXPECTED));
    }

    #[test]
    fn a_changed_parameter_url_or_token_is_refused() {
        let (url, token, mut params) = example();
        assert!(!verify("54321", url, &params, EXPECTED));
        assert!(!verify(
            token,
            "https://mycompany.com/myapp.php?foo=1",
            &params,
            EXPECTED
        ));
        params[2].1 = "1235".into();
        assert!(!verify(token, url, &params, EXPECTED));
        assert!(!verify(token, url, &params, "not base64 at all!"));
    }
}

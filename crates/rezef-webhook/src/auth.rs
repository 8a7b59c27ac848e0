//! A route's credential, checked before its body is read as JSON: HMAC-SHA256 of the body
//! in a header (hex or base64, after an optional prefix such as `sha256=`), or a bearer
//! token; both compared in constant time by ring. Secrets may come from the environment
//! (`secret_env`, `token_env`) so that the mapping file holds none.

use axum::http::{HeaderMap, HeaderName, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;
use ring::rand::SystemRandom;

use crate::mapping::ConfigError;
use crate::mapping::config::{AuthConfig, Encoding};

/// How a route's requests prove themselves.
#[derive(Debug)]
pub enum Auth {
    None,
    Hmac {
        header: HeaderName,
        key: hmac::Key,
        encoding: Encoding,
        prefix: String,
    },
    /// The token is kept only as its HMAC under a key of this process: the check compares
    /// tags, in constant time.
    Bearer {
        key: hmac::Key,
        tag: hmac::Tag,
    },
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("no {0} header")]
    Missing(&'static str),
    #[error("the credential does not match")]
    Wrong,
}

impl Auth {
    /// `config` of route `route`, its secret read from the environment if it says so.
    pub fn compile(route: &str, config: &AuthConfig) -> Result<Self, ConfigError> {
        let fail = |reason: &str| ConfigError {
            at: format!("routes[{route}].auth"),
            reason: reason.to_owned(),
        };
        match (&config.hmac, &config.bearer, config.none) {
            (Some(hmac_config), None, false) => {
                let secret = secret(&hmac_config.secret, &hmac_config.secret_env)
                    .map_err(|r| fail(&format!("hmac: {r}")))?;
                let header = HeaderName::from_bytes(hmac_config.header.as_bytes())
                    .map_err(|_| fail("hmac.header: a header name is required"))?;
                Ok(Self::Hmac {
                    header,
                    key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
                    encoding: hmac_config.encoding,
                    prefix: hmac_config.prefix.clone(),
                })
            }
            (None, Some(bearer), false) => {
                let token = secret(&bearer.token, &bearer.token_env)
                    .map_err(|r| fail(&format!("bearer: {r}")))?;
                let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
                    .map_err(|_| fail("bearer: no randomness for its key"))?;
                let tag = hmac::sign(&key, token.as_bytes());
                Ok(Self::Bearer { key, tag })
            }
            (None, None, true) => Ok(Self::None),
            _ => Err(fail("exactly one of hmac, bearer or none = true")),
        }
    }

    /// Whether the request of `headers` and `body` carries the route's credential.
    pub fn check(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Refused> {
        match self {
            Self::None => Ok(()),
            Self::Hmac {
                header,
                key,
                encoding,
                prefix,
            } => {
                let given = (headers.get(header))
                    .and_then(|v| v.to_str().ok())
                    .ok_or(Refused::Missing("signature"))?;
                let given = given.trim();
                let given = given.strip_prefix(prefix.as_str()).unwrap_or(given);
                let signature = match encoding {
                    Encoding::Hex => from_hex(given),
                    Encoding::Base64 => STANDARD.decode(given).ok(),
                }
                .ok_or(Refused::Wrong)?;
                hmac::verify(key, body, &signature).map_err(|_| Refused::Wrong)
            }
            Self::Bearer { key, tag } => {
                let given = (headers.get(header::AUTHORIZATION))
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split_once(' '))
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                    .map(|(_, token)| token)
                    .ok_or(Refused::Missing("Authorization: Bearer"))?;
                hmac::verify(key, given.trim().as_bytes(), tag.as_ref()).map_err(|_| Refused::Wrong)
            }
        }
    }
}

/// The secret given inline or in the variable named; not empty.
fn secret(inline: &Option<String>, env: &Option<String>) -> Result<String, String> {
    let secret = match (inline, env) {
        (Some(secret), None) => secret.clone(),
        (None, Some(name)) => {
            std::env::var(name).map_err(|_| format!("the variable {name} is not set"))?
        }
        _ => return Err("the secret inline or the variable holding it, one of them".into()),
    };
    if secret.is_empty() {
        return Err("the secret is empty".into());
    }
    Ok(secret)
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The hex HMAC-SHA256 of `body` under `secret`, as a sender computes it (tests, docs).
pub fn sign_hex(secret: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    (hmac::sign(&key, body).as_ref().iter())
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::mapping::config::{BearerConfig, HmacConfig};

    fn hmac_auth(encoding: Encoding, prefix: &str) -> Auth {
        let config = AuthConfig {
            hmac: Some(HmacConfig {
                header: "X-Signature".into(),
                secret: Some("s3cret".into()),
                secret_env: None,
                encoding,
                prefix: prefix.into(),
            }),
            ..Default::default()
        };
        Auth::compile("desk", &config).expect("compiles")
    }

    fn with(name: &str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a name");
        headers.insert(name, HeaderValue::from_str(value).expect("a value"));
        headers
    }

    #[test]
    fn an_hmac_in_hex_with_a_prefix_or_in_base64_is_checked() {
        let body = br#"{"id":1}"#;
        let hex = sign_hex("s3cret", body);
        let auth = hmac_auth(Encoding::Hex, "sha256=");
        let signed = with("x-signature", &format!("sha256={hex}"));
        assert_eq!(auth.check(&signed, body), Ok(()));
        assert_eq!(auth.check(&signed, br#"{"id":2}"#), Err(Refused::Wrong));
        assert_eq!(
            auth.check(&HeaderMap::new(), body),
            Err(Refused::Missing("signature"))
        );
        assert_eq!(
            auth.check(&with("x-signature", "zz"), body),
            Err(Refused::Wrong)
        );

        let bytes = from_hex(&hex).expect("hex");
        let auth = hmac_auth(Encoding::Base64, "");
        let signed = with("x-signature", &STANDARD.encode(bytes));
        assert_eq!(auth.check(&signed, body), Ok(()));
    }

    #[test]
    fn a_bearer_token_is_checked() {
        let config = AuthConfig {
            bearer: Some(BearerConfig {
                token: Some("t0ken".into()),
                token_env: None,
            }),
            ..Default::default()
        };
        let auth = Auth::compile("desk", &config).expect("compiles");
        let good = with("authorization", "Bearer t0ken");
        assert_eq!(auth.check(&good, b""), Ok(()));
        let lower = with("authorization", "bearer t0ken");
        assert_eq!(auth.check(&lower, b""), Ok(()));
        let bad = with("authorization", "Bearer t0ke");
        assert_eq!(auth.check(&bad, b""), Err(Refused::Wrong));
        assert!(matches!(
            auth.check(&HeaderMap::new(), b""),
            Err(Refused::Missing(_))
        ));
    }

    #[test]
    fn a_route_names_exactly_one_way() {
        let error = Auth::compile("desk", &AuthConfig::default()).expect_err("none named");
        assert_eq!(error.at, "routes[desk].auth");
        let both = AuthConfig {
            none: true,
            bearer: Some(BearerConfig::default()),
            ..Default::default()
        };
        assert!(Auth::compile("desk", &both).is_err());
    }
}

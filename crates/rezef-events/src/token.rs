//! Continuation tokens as the customer sees them: a code of digits to key into an IVR or
//! say to a bot, or a long token for a link. A code is short enough to be guessed, so its
//! life is short and wrong tries are limited (`attempts`); a link token is not guessable.

use std::time::Duration;

use crate::policy::ContinuityPolicy;

/// The kinds of continuation token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFormat {
    /// Digits (the tenant's `token_code_digits`): for channels where the customer keys or
    /// says it.
    Code,
    /// 26 lowercase letters and digits (130 random bits): for a link or an app.
    Link,
}

/// The characters of a link token: lowercase letters and digits without the look-alikes
/// `0`, `1`, `l`, `o` (32 of them, 5 bits each).
const LINK_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
/// The characters of a link token.
pub const LINK_LEN: usize = 26;

/// The longest a code may be valid: it is short, so its life is too.
pub const MAX_CODE_TTL: Duration = Duration::from_secs(24 * 3600);
/// The longest a link token may be valid.
pub const MAX_LINK_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

impl TokenFormat {
    /// A token of this format from `random` bytes (uniform), under the tenant's `policy`.
    pub fn make(self, policy: &ContinuityPolicy, random: [u8; 32]) -> String {
        match self {
            Self::Code => {
                let digits = policy.token_code_digits.min(12);
                let number = u128::from_le_bytes(random[..16].try_into().unwrap_or_default());
                // 2^128 is a multiple of no power of ten, but its remainder's bias is below
                // 10^12 / 2^128: nothing a guesser can use.
                let code = number % 10u128.pow(digits);
                format!("{code:0width$}", width = digits as usize)
            }
            Self::Link => random
                .iter()
                .take(LINK_LEN)
                .map(|byte| char::from(LINK_ALPHABET[usize::from(byte % 32)]))
                .collect(),
        }
    }

    /// How long a token is valid when the caller names no time.
    pub fn default_ttl(self, policy: &ContinuityPolicy) -> Duration {
        match self {
            Self::Code => policy.token_ttl.min(MAX_CODE_TTL),
            Self::Link => policy.link_token_ttl.min(MAX_LINK_TTL),
        }
    }

    /// The longest a token may be valid.
    pub fn max_ttl(self) -> Duration {
        match self {
            Self::Code => MAX_CODE_TTL,
            Self::Link => MAX_LINK_TTL,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::is_continuation_token;

    proptest! {
        #[test]
        fn codes_have_the_policy_s_digits_and_links_26_characters(
            random in any::<[u8; 32]>(),
            digits in 6u32..=12,
        ) {
            let policy = ContinuityPolicy { token_code_digits: digits, ..Default::default() };
            let code = TokenFormat::Code.make(&policy, random);
            prop_assert_eq!(code.len(), digits as usize);
            prop_assert!(code.bytes().all(|b| b.is_ascii_digit()));
            let link = TokenFormat::Link.make(&policy, random);
            prop_assert_eq!(link.len(), LINK_LEN);
            prop_assert!(link.bytes().all(|b| LINK_ALPHABET.contains(&b)));
            prop_assert!(is_continuation_token(&code) && is_continuation_token(&link));
        }
    }

    #[test]
    fn a_code_lives_15_minutes_and_a_link_a_day_by_default() {
        let policy = ContinuityPolicy::default();
        assert_eq!(
            TokenFormat::Code.default_ttl(&policy),
            Duration::from_secs(900)
        );
        assert_eq!(
            TokenFormat::Link.default_ttl(&policy),
            Duration::from_secs(86_400)
        );
        let long = ContinuityPolicy {
            token_ttl: Duration::from_secs(7 * 86_400),
            ..Default::default()
        };
        assert_eq!(TokenFormat::Code.default_ttl(&long), MAX_CODE_TTL);
    }
}

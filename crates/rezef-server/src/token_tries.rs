//! The wrong continuation tokens a node has been given, so that guessing one is cut off
//! (issue 17): each try is counted against the identity the caller shows, the API key (or
//! client address) asking and the tenant, under the tenant's `token_attempts`
//! (`rezef_events::attempts`). A scope that failed too often is locked out, for longer each
//! further failure, and its tries are refused with `RESOURCE_EXHAUSTED` and a `RetryInfo`
//! before the token is even looked at: a locked-out guesser learns nothing, right or wrong.
//!
//! Kept in memory, per node: a restart forgets the counts (a guesser gains a window's worth
//! of tries per restart, which an operator sees in the logs of the restarts).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rezef_events::attempts::{AttemptLimit, Attempts, TokenAttempts};
use rezef_events::{CustomerRef, TenantId};
use tonic::Request;

use crate::auth::Caller;
use crate::{Error, Result};

/// A scope tries are counted in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Scope {
    /// The identity the caller shows (its index key) or the customer id it names.
    Shown(TenantId, String),
    /// The API key's id, or the client's address.
    Caller(TenantId, String),
    Tenant(TenantId),
}

impl Scope {
    fn limit(&self, limits: &TokenAttempts) -> AttemptLimit {
        match self {
            Self::Shown(..) => limits.per_identity,
            Self::Caller(..) => limits.per_caller,
            Self::Tenant(_) => limits.per_tenant,
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Self::Shown(..) => "this caller's identity",
            Self::Caller(..) => "this API key (or client address)",
            Self::Tenant(_) => "this tenant",
        }
    }
}

/// Who tries a token: the scopes one try counts in.
#[derive(Debug, Clone)]
pub struct Trier {
    scopes: [Scope; 3],
}

/// Who makes a call, as tries are counted: its API key, else the client's address.
pub fn caller_of<T>(request: &Request<T>) -> String {
    match request.extensions().get::<Caller>() {
        Some(Caller(credential)) => format!("key {}", credential.id),
        None => request
            .remote_addr()
            .map_or_else(|| "unknown".to_owned(), |addr| addr.ip().to_string()),
    }
}

impl Trier {
    /// The trier of a call by `caller` ([`caller_of`]) naming `tenant` and showing `shown`.
    pub fn new(caller: &str, tenant: &TenantId, shown: &CustomerRef) -> Self {
        let caller = caller.to_owned();
        let shown = match shown {
            CustomerRef::Id(id) => format!("id {id}"),
            CustomerRef::Identity(identity) => identity.index_key(),
        };
        Self {
            scopes: [
                Scope::Shown(tenant.clone(), shown),
                Scope::Caller(tenant.clone(), caller),
                Scope::Tenant(tenant.clone()),
            ],
        }
    }
}

/// Beyond this many scopes kept, forgotten ones are swept out before another is added.
const SWEEP_ABOVE: usize = 4096;

/// The counts of one node.
#[derive(Debug)]
pub struct TokenTries {
    scopes: Mutex<HashMap<Scope, Attempts>>,
    origin: Instant,
}

impl Default for TokenTries {
    fn default() -> Self {
        Self {
            scopes: Mutex::default(),
            origin: Instant::now(),
        }
    }
}

impl TokenTries {
    /// Refuses a try while any of the trier's scopes is locked out.
    pub fn admit(&self, trier: &Trier) -> Result<()> {
        self.admit_at(trier, self.origin.elapsed())
    }

    /// Counts the outcome of an admitted try: a wrong token counts in every scope.
    pub fn settle(&self, trier: &Trier, limits: &TokenAttempts, right: bool) {
        if !right {
            self.fail_at(trier, limits, self.origin.elapsed());
        }
    }

    fn admit_at(&self, trier: &Trier, now: Duration) -> Result<()> {
        let scopes = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
        let locked = trier.scopes.iter().filter_map(|scope| {
            let wait = scopes.get(scope)?.check(now).err()?;
            Some((scope, wait))
        });
        match locked.max_by_key(|(_, wait)| *wait) {
            None => Ok(()),
            Some((scope, wait)) => Err(Error::Exhausted {
                message: format!(
                    "too many wrong continuation tokens from {}: try again in {} s",
                    scope.describe(),
                    wait.as_secs().max(1)
                ),
                retry_after: wait,
            }),
        }
    }

    fn fail_at(&self, trier: &Trier, limits: &TokenAttempts, now: Duration) {
        let mut scopes = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
        if scopes.len() > SWEEP_ABOVE {
            scopes.retain(|scope, attempts| !attempts.forgotten(&scope.limit(limits), now));
        }
        for scope in &trier.scopes {
            let limit = scope.limit(limits);
            scopes.entry(scope.clone()).or_default().fail(&limit, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use rezef_events::ChannelIdentity;

    use super::*;

    fn trier(number: &str, caller: &str) -> Trier {
        let tenant = TenantId::new("acme").expect("tenant");
        let identity = ChannelIdentity::phone(number).expect("phone");
        Trier {
            scopes: [
                Scope::Shown(tenant.clone(), identity.index_key()),
                Scope::Caller(tenant.clone(), caller.to_owned()),
                Scope::Tenant(tenant),
            ],
        }
    }

    fn limits() -> TokenAttempts {
        let limit = |failures| AttemptLimit {
            failures,
            window: Duration::from_secs(600),
            lock: Duration::from_secs(60),
            max_lock: Duration::from_secs(3600),
        };
        TokenAttempts {
            per_identity: limit(2),
            per_caller: limit(4),
            per_tenant: limit(6),
        }
    }

    #[test]
    fn an_identity_that_guesses_wrong_is_locked_out_and_another_is_not() {
        // Given a caller that gave two wrong tokens
        let tries = TokenTries::default();
        let guesser = trier("+972501234567", "key k-ivr");
        let now = Duration::ZERO;
        for _ in 0..2 {
            tries.admit_at(&guesser, now).expect("admitted");
            tries.fail_at(&guesser, &limits(), now);
        }

        // Then its next try is refused with the wait, and another number's is admitted
        let refused = tries.admit_at(&guesser, now);
        let Err(Error::Exhausted {
            message,
            retry_after,
        }) = refused
        else {
            panic!("expected RESOURCE_EXHAUSTED, got {refused:?}");
        };
        assert_eq!(retry_after, Duration::from_secs(60));
        assert!(message.contains("identity"), "{message}");
        let other = trier("+972501111111", "key k-ivr");
        assert!(tries.admit_at(&other, now).is_ok());
        assert!(
            (tries.admit_at(&guesser, Duration::from_secs(61))).is_ok(),
            "the lock ends"
        );
    }

    #[test]
    fn many_numbers_guessing_lock_the_tenant() {
        let tries = TokenTries::default();
        let now = Duration::ZERO;
        for n in 0..6 {
            let guesser = trier(&format!("+97250123456{n}"), &format!("10.0.0.{n}"));
            tries.admit_at(&guesser, now).expect("admitted");
            tries.fail_at(&guesser, &limits(), now);
        }
        let fresh = trier("+972509999999", "10.0.0.99");
        let refused = tries.admit_at(&fresh, now);
        assert!(
            matches!(&refused, Err(Error::Exhausted { message, .. }) if message.contains("tenant")),
            "{refused:?}"
        );
    }
}

//! Who may use the proxy: callers holding a deployment's proxy key, which
//! sign each request (`shared::db::signing`). A nonce is taken once within
//! the signature window, so a captured request cannot be replayed. Failed
//! attempts are limited per client address; a good signature always passes,
//! so a flood of bad ones from a shared address (a platform's egress) cannot
//! lock the real callers out.

use std::collections::{HashSet, VecDeque};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use shared::config::HmacKey;
use shared::db::signing::{self, Refusal, WINDOW_SECS};

use crate::error::ProxyError;

/// Failed authentications allowed per client address and minute.
const FAILURES_PER_MINUTE: u32 = 10;

/// Most nonces remembered at once: two windows' worth at 8,000 requests a
/// second. Past it the oldest go first.
const MAX_NONCES: usize = 1 << 20;

/// Client addresses with recent failures tracked before old ones are pruned.
const MAX_ADDRESSES: usize = 100_000;

pub struct Authenticator {
    keys: Vec<HmacKey>,
    seen: Mutex<Nonces>,
    failures: DefaultKeyedRateLimiter<IpAddr>,
}

impl Authenticator {
    pub fn new(keys: Vec<HmacKey>) -> Self {
        let per_minute = NonZeroU32::new(FAILURES_PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        Authenticator {
            keys,
            seen: Mutex::new(Nonces::default()),
            failures: RateLimiter::keyed(Quota::per_minute(per_minute)),
        }
    }

    /// Accepts a request signed with one of the keys, once.
    pub fn check(&self, peer: IpAddr, request: &signing::Request<'_>) -> Result<(), ProxyError> {
        let now = unix_now();
        let outcome = match request.headers.get(signing::SIGNATURE) {
            None => Err(Refusal::Missing),
            Some(value) => value
                .to_str()
                .map_err(|_| Refusal::Malformed)
                .and_then(|header| request.verify(header, &self.keys, now))
                .and_then(|nonce| self.first_use(nonce, now)),
        };
        let Err(refusal) = outcome else {
            return Ok(());
        };
        if self.failures.len() > MAX_ADDRESSES {
            self.failures.retain_recent();
        }
        if self.failures.check_key(&peer).is_err() {
            return Err(ProxyError::TooManyFailures {
                retry_after: Duration::from_secs(60 / u64::from(FAILURES_PER_MINUTE)),
            });
        }
        tracing::warn!(%peer, %refusal, "sql request refused");
        Err(ProxyError::Unauthorized(refusal.to_string()))
    }

    fn first_use(&self, nonce: [u8; 16], now: i64) -> Result<(), Refusal> {
        let mut seen = self.seen.lock().map_err(|_| Refusal::Replayed)?;
        seen.forget_before(now - 2 * WINDOW_SECS);
        if seen.insert(nonce, now) {
            Ok(())
        } else {
            Err(Refusal::Replayed)
        }
    }
}

/// The nonces of the last two windows, oldest first. A request older than
/// that is refused by its time, so forgetting its nonce is safe.
#[derive(Default)]
struct Nonces {
    set: HashSet<[u8; 16]>,
    order: VecDeque<(i64, [u8; 16])>,
}

impl Nonces {
    fn forget_before(&mut self, time: i64) {
        while let Some(&(at, nonce)) = self.order.front() {
            if at >= time && self.order.len() < MAX_NONCES {
                break;
            }
            self.order.pop_front();
            self.set.remove(&nonce);
        }
    }

    /// Whether `nonce` is new (then remembered).
    fn insert(&mut self, nonce: [u8; 16], now: i64) -> bool {
        if !self.set.insert(nonce) {
            return false;
        }
        self.order.push_back((now, nonce));
        true
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_taken_once_and_forgotten_after_two_windows() {
        let mut nonces = Nonces::default();
        assert!(nonces.insert([1; 16], 100));
        assert!(!nonces.insert([1; 16], 101));
        assert!(nonces.insert([2; 16], 130));
        nonces.forget_before(101);
        assert!(
            nonces.insert([1; 16], 161),
            "forgotten once its window passed"
        );
        assert!(!nonces.insert([2; 16], 161), "still remembered");
    }
}

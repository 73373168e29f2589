//! Failed authentications per peer address: counted, and refused with 429 once an address
//! fails too often, so a credential cannot be guessed at network speed.
//!
//! Only failures count: a busy client behind a shared address that presents a valid
//! credential is never slowed. Once an address is over its quota, every credential it presents
//! that is not already cached as valid is refused until the quota refills, so a correct guess
//! made while blocked is refused too.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Addresses remembered at most; beyond this, expired entries are dropped first.
const MAX_TRACKED: usize = 100_000;

pub struct FailedAuth {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    blocked_until: Mutex<HashMap<IpAddr, tokio::time::Instant>>,
}

impl FailedAuth {
    /// Allows `per_minute` failed authentications per address (a burst of that many, refilled
    /// evenly over a minute).
    pub fn new(per_minute: NonZeroU32) -> FailedAuth {
        FailedAuth {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            blocked_until: Mutex::default(),
        }
    }

    /// How long `ip` must wait before its credentials are checked again, if it is blocked.
    pub fn blocked(&self, ip: IpAddr) -> Option<Duration> {
        let mut blocked = self.blocked_until.lock().expect("throttle lock poisoned");
        let until = *blocked.get(&ip)?;
        let now = tokio::time::Instant::now();
        if until <= now {
            blocked.remove(&ip);
            return None;
        }
        Some(until - now)
    }

    /// Counts a failure of `ip`; returns how long it is now blocked, if it went over its quota.
    pub fn failed(&self, ip: IpAddr) -> Option<Duration> {
        let not_until = self.limiter.check_key(&ip).err()?;
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let mut blocked = self.blocked_until.lock().expect("throttle lock poisoned");
        if blocked.len() >= MAX_TRACKED {
            let now = tokio::time::Instant::now();
            blocked.retain(|_, until| *until > now);
            self.limiter.retain_recent();
        }
        blocked.insert(ip, tokio::time::Instant::now() + wait);
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_quota_of_failures_and_others_are_not() {
        let throttle = FailedAuth::new(NonZeroU32::new(3).unwrap());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(throttle.failed(a), None);
            assert_eq!(throttle.blocked(a), None);
        }
        let wait = throttle.failed(a).expect("the fourth failure blocks");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(throttle.blocked(a).is_some());
        assert_eq!(throttle.blocked(b), None);
        assert_eq!(throttle.failed(b), None);
    }
}

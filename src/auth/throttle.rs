//! Failed-login throttling per account and per client IP.
//!
//! Each key may fail a few times freely; after that every further failure doubles the
//! wait before the next attempt, capped, so an attacker is slowed to a crawl while the
//! owner is never locked out for good. A success clears the account's record.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tuning of one throttle.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failures allowed before any wait.
    pub free_failures: u32,
    /// The wait after the first failure past the free ones; doubles each time.
    pub base_delay: Duration,
    /// The longest wait.
    pub max_delay: Duration,
    /// A record with no failure for this long is forgotten.
    pub forget_after: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last_failure: Instant,
    blocked_until: Option<Instant>,
}

/// Counts failures per key.
#[derive(Debug)]
pub struct Throttle<K> {
    policy: ThrottlePolicy,
    records: Mutex<HashMap<K, Record>>,
}

/// The most keys kept; beyond it the oldest records are dropped (memory stays bounded).
const MAX_KEYS: usize = 100_000;

impl<K: Eq + Hash + Clone> Throttle<K> {
    pub fn new(policy: ThrottlePolicy) -> Self {
        Throttle {
            policy,
            records: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(wait)` when `key` must wait before trying again.
    pub fn check(&self, key: &K, now: Instant) -> Option<Duration> {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let until = records.get(key)?.blocked_until?;
        (until > now).then(|| until - now)
    }

    /// Records a failure; returns the wait it imposes, if any.
    pub fn fail(&self, key: &K, now: Instant) -> Option<Duration> {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if records.len() >= MAX_KEYS {
            let forget_after = self.policy.forget_after;
            records.retain(|_, r| now.duration_since(r.last_failure) < forget_after);
            if records.len() >= MAX_KEYS {
                records.clear();
            }
        }
        let record = records.entry(key.clone()).or_insert(Record {
            failures: 0,
            last_failure: now,
            blocked_until: None,
        });
        if now.duration_since(record.last_failure) >= self.policy.forget_after {
            record.failures = 0;
        }
        record.failures += 1;
        record.last_failure = now;
        let excess = record.failures.saturating_sub(self.policy.free_failures);
        if excess == 0 {
            return None;
        }
        let factor = 1u32 << (excess - 1).min(16);
        let delay = (self.policy.base_delay * factor).min(self.policy.max_delay);
        record.blocked_until = Some(now + delay);
        Some(delay)
    }

    /// Forgets `key` (after a successful login).
    pub fn succeed(&self, key: &K) {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ThrottlePolicy {
        ThrottlePolicy {
            free_failures: 3,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
            forget_after: Duration::from_secs(60),
        }
    }

    #[test]
    fn free_failures_then_doubling_waits_capped() {
        let throttle = Throttle::new(policy());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(throttle.fail(&"a", t0), None);
        }
        assert_eq!(throttle.check(&"a", t0), None);
        assert_eq!(throttle.fail(&"a", t0), Some(Duration::from_secs(1)));
        assert_eq!(throttle.fail(&"a", t0), Some(Duration::from_secs(2)));
        assert_eq!(throttle.fail(&"a", t0), Some(Duration::from_secs(4)));
        assert_eq!(throttle.fail(&"a", t0), Some(Duration::from_secs(8)));
        assert_eq!(throttle.fail(&"a", t0), Some(Duration::from_secs(8)));
        assert_eq!(throttle.check(&"a", t0), Some(Duration::from_secs(8)));
        // Never a permanent lockout: the wait ends.
        assert_eq!(throttle.check(&"a", t0 + Duration::from_secs(9)), None);
        assert_eq!(throttle.check(&"b", t0), None);
    }

    #[test]
    fn success_and_time_forget() {
        let throttle = Throttle::new(policy());
        let t0 = Instant::now();
        for _ in 0..5 {
            throttle.fail(&"a", t0);
        }
        throttle.succeed(&"a");
        assert_eq!(throttle.check(&"a", t0), None);
        for _ in 0..5 {
            throttle.fail(&"b", t0);
        }
        let later = t0 + Duration::from_secs(61);
        assert_eq!(throttle.fail(&"b", later), None);
    }
}

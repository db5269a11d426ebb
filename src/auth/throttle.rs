//! Failed-login throttling per account and per client IP.
//!
//! Each key may fail a few times freely; after that every further failure doubles the
//! wait before the next attempt, capped, so an attacker is slowed to a crawl while the
//! owner is never locked out for good. A success clears the account's record.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
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
            // Forget what has expired; if that is not enough, drop the records that block
            // nobody, oldest first. Blocked keys are the last to go: filling the table with
            // junk must not unblock an account under attack.
            let forget_after = self.policy.forget_after;
            records.retain(|_, r| now.duration_since(r.last_failure) < forget_after);
            if records.len() >= MAX_KEYS {
                let mut idle: Vec<(K, Instant)> = records
                    .iter()
                    .filter(|(_, r)| r.blocked_until.is_none_or(|until| until <= now))
                    .map(|(k, r)| (k.clone(), r.last_failure))
                    .collect();
                idle.sort_by_key(|(_, at)| *at);
                for (key, _) in idle.into_iter().take(records.len() - MAX_KEYS / 2) {
                    records.remove(&key);
                }
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

/// Who may have a login attempt in progress: at most `max` at once per key, so parallel
/// attempts cannot outrun the failure count (each is counted before the next starts).
#[derive(Debug)]
pub struct InFlight<K> {
    max: u32,
    running: Arc<Mutex<HashMap<K, u32>>>,
}

/// Holds one in-flight slot until dropped.
#[derive(Debug)]
pub struct InFlightGuard<K: Eq + Hash> {
    key: K,
    running: Arc<Mutex<HashMap<K, u32>>>,
}

impl<K: Eq + Hash + Clone> InFlight<K> {
    pub fn new(max: u32) -> Self {
        InFlight {
            max: max.max(1),
            running: Arc::default(),
        }
    }

    /// A slot for `key`, or `None` when `max` attempts for it are already running.
    pub fn try_enter(&self, key: &K) -> Option<InFlightGuard<K>> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let count = running.entry(key.clone()).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(InFlightGuard {
            key: key.clone(),
            running: self.running.clone(),
        })
    }
}

impl<K: Eq + Hash> Drop for InFlightGuard<K> {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = running.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                running.remove(&self.key);
            }
        }
    }
}

/// The throttling key of a client address: an IPv6 client usually owns a whole /64, so
/// it counts as one.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        other => other,
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
    fn in_flight_slots_are_bounded_and_released() {
        let in_flight = InFlight::new(1);
        let first = in_flight.try_enter(&"a").expect("a free slot");
        assert!(in_flight.try_enter(&"a").is_none());
        assert!(in_flight.try_enter(&"b").is_some());
        drop(first);
        assert!(in_flight.try_enter(&"a").is_some());
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(client_key(v4), v4);
    }

    #[test]
    fn a_full_table_keeps_blocked_keys() {
        let throttle = Throttle::new(policy());
        let t0 = Instant::now();
        for _ in 0..5 {
            throttle.fail(&u64::MAX, t0);
        }
        for key in 0..(MAX_KEYS as u64 + 10) {
            throttle.fail(&key, t0);
        }
        assert!(
            throttle.check(&u64::MAX, t0).is_some(),
            "the blocked key survived the flood"
        );
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

//! Per-client token buckets, in memory (one instance; a shared store comes with
//! PostgreSQL). The map is pruned of full buckets so it cannot grow without bound.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub struct RateLimiter {
    capacity: f64,
    refill_per_sec: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

/// Keys beyond this many trigger pruning of buckets that have refilled.
const PRUNE_ABOVE: usize = 10_000;

impl RateLimiter {
    pub fn new(capacity: u32, refill_per_sec: f64) -> RateLimiter {
        RateLimiter {
            capacity: f64::from(capacity),
            refill_per_sec,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`; false when the bucket is empty.
    pub fn try_acquire(&self, key: &str) -> bool {
        self.try_acquire_at(key, Instant::now())
    }

    fn level(&self, (tokens, at): (f64, Instant), now: Instant) -> f64 {
        (tokens + now.saturating_duration_since(at).as_secs_f64() * self.refill_per_sec)
            .min(self.capacity)
    }

    fn try_acquire_at(&self, key: &str, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            let full: Vec<String> = buckets
                .iter()
                .filter(|(_, b)| self.level(**b, now) >= self.capacity)
                .map(|(k, _)| k.clone())
                .collect();
            for k in full {
                buckets.remove(&k);
            }
        }
        let level = buckets
            .get(key)
            .map(|b| self.level(*b, now))
            .unwrap_or(self.capacity);
        if level < 1.0 {
            buckets.insert(key.to_owned(), (level, now));
            return false;
        }
        buckets.insert(key.to_owned(), (level - 1.0, now));
        true
    }

    /// Whether `key` has a token left, without taking it.
    pub fn allows(&self, key: &str) -> bool {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets
            .get(key)
            .map(|b| self.level(*b, Instant::now()))
            .unwrap_or(self.capacity)
            >= 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_a_burst_then_refills() {
        let limiter = RateLimiter::new(3, 1.0);
        let t0 = Instant::now();
        assert!((0..3).all(|_| limiter.try_acquire_at("a", t0)));
        assert!(!limiter.try_acquire_at("a", t0));
        assert!(limiter.try_acquire_at("b", t0), "buckets are per key");
        assert!(limiter.try_acquire_at("a", t0 + Duration::from_millis(1100)));
        assert!(!limiter.try_acquire_at("a", t0 + Duration::from_millis(1200)));
    }
}

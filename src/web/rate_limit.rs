//! Per-client token buckets, in memory (one instance; a shared store comes with
//! PostgreSQL). The map is pruned of full buckets so it cannot grow without bound.
//! [`client_key`] says what one client is (an IPv6 client is its /64).

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

/// What one client is, for a per-address limit: an IPv4 address; for IPv6, the /64 it is in
/// (RFC 4291 §2.5.4: a /64 is one subnet, and an ISP hands each customer at least one, so
/// keying on the full address would give every client 2^64 budgets); an IPv4-mapped IPv6
/// address (a dual-stack socket's IPv4 peer) as the IPv4 address it maps.
pub fn client_key(ip: std::net::IpAddr) -> String {
    use std::net::{IpAddr, Ipv6Addr};
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let prefix = u128::from(v6) & !(u128::from(u64::MAX));
                format!("{}/64", Ipv6Addr::from(prefix))
            }
        },
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

    fn key(addr: &str) -> String {
        client_key(addr.parse().unwrap())
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        assert_eq!(key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::1"), "::/64");
        assert_eq!(key("fe80::1"), "fe80::/64");
    }

    #[test]
    fn ipv4_clients_are_keyed_by_their_address_mapped_or_not() {
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
        assert_eq!(key("::ffff:203.0.113.7"), "203.0.113.7");
        assert_ne!(key("203.0.113.7"), key("203.0.113.8"));
    }
}

//! Per-client token buckets, in memory (one instance; a shared store comes with
//! PostgreSQL).
//!
//! Our own rather than `governor`, which STYLE.md prefers, because the login needs two things
//! `governor`'s keyed GCRA limiter cannot express: taking a token from *several* keys at once
//! or from none (a login is charged to its address and to its name; a refusal by one must not
//! spend the other's budget), and giving a token back (a login whose password was right is
//! not charged, yet its budget has to be taken before the password is hashed, or concurrent
//! attempts all pass the check before any of them is counted). The waits it reports are
//! exact, as `governor`'s are, so `Retry-After` tells the truth.
//!
//! Memory is bounded: past [`PRUNE_ABOVE`] keys, buckets that have refilled are dropped (they
//! hold nothing a fresh bucket would not), and past [`MAX_KEYS`] the fullest buckets go
//! first (those an attacker would gain least from seeing reset).
//!
//! [`client_key`] says what one client is (an IPv6 client is its /64).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct RateLimiter {
    capacity: f64,
    refill_per_sec: f64,
    buckets: Mutex<Buckets>,
}

/// Keys beyond this many trigger pruning of buckets that have refilled.
const PRUNE_ABOVE: usize = 10_000;

/// At most this many keys are kept (about 100 bytes each: 10 MB).
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Buckets {
    map: HashMap<String, Bucket>,
    /// Size at which the next prune runs; it doubles with the survivors, so pruning costs
    /// O(1) per call amortised however many keys are live.
    prune_at: usize,
}

/// Tokens taken from one or more keys by [`RateLimiter::reserve`]. Dropping it keeps them
/// spent (an attempt that was made); [`Reservation::refund`] gives them back.
#[must_use = "dropping a reservation keeps its tokens spent"]
pub struct Reservation<'a> {
    limiter: &'a RateLimiter,
    keys: Vec<String>,
}

impl Reservation<'_> {
    /// Gives every token back (an attempt that must not count).
    pub fn refund(self) {
        self.limiter.refund_at(&self.keys, Instant::now());
    }
}

impl RateLimiter {
    pub fn new(capacity: u32, refill_per_sec: f64) -> RateLimiter {
        RateLimiter {
            capacity: f64::from(capacity),
            refill_per_sec,
            buckets: Mutex::new(Buckets {
                map: HashMap::new(),
                prune_at: PRUNE_ABOVE,
            }),
        }
    }

    /// Takes one token for `key`, or says how long until one is there.
    pub fn acquire(&self, key: &str) -> Result<(), Duration> {
        self.reserve_at(&[key], Instant::now()).map(|_| ())
    }

    /// Takes one token from each of `keys`, all or none: when any of them is empty nothing
    /// is taken and the answer is how long until every one has a token again.
    pub fn reserve(&self, keys: &[&str]) -> Result<Reservation<'_>, Duration> {
        self.reserve_at(keys, Instant::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buckets> {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn level(&self, bucket: Bucket, now: Instant) -> f64 {
        (bucket.tokens
            + now.saturating_duration_since(bucket.at).as_secs_f64() * self.refill_per_sec)
            .min(self.capacity)
    }

    /// How long until a bucket at `level` holds one whole token.
    fn wait_for(&self, level: f64) -> Duration {
        if level >= 1.0 {
            return Duration::ZERO;
        }
        if self.refill_per_sec <= 0.0 {
            return Duration::MAX;
        }
        Duration::try_from_secs_f64((1.0 - level) / self.refill_per_sec).unwrap_or(Duration::MAX)
    }

    fn reserve_at(&self, keys: &[&str], now: Instant) -> Result<Reservation<'_>, Duration> {
        let mut buckets = self.lock();
        self.prune(&mut buckets, now);
        let levels: Vec<f64> = keys
            .iter()
            .map(|k| {
                buckets
                    .map
                    .get(*k)
                    .map(|b| self.level(*b, now))
                    .unwrap_or(self.capacity)
            })
            .collect();
        let wait = levels
            .iter()
            .map(|l| self.wait_for(*l))
            .max()
            .unwrap_or_default();
        if !wait.is_zero() {
            return Err(wait);
        }
        for (key, level) in keys.iter().zip(levels) {
            buckets.map.insert(
                (*key).to_owned(),
                Bucket {
                    tokens: level - 1.0,
                    at: now,
                },
            );
        }
        Ok(Reservation {
            limiter: self,
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        })
    }

    fn refund_at(&self, keys: &[String], now: Instant) {
        let mut buckets = self.lock();
        for key in keys {
            if let Some(bucket) = buckets.map.get_mut(key) {
                let tokens = (self.level(*bucket, now) + 1.0).min(self.capacity);
                *bucket = Bucket { tokens, at: now };
            }
        }
    }

    fn prune(&self, buckets: &mut Buckets, now: Instant) {
        if buckets.map.len() < buckets.prune_at {
            return;
        }
        buckets
            .map
            .retain(|_, b| self.level(*b, now) < self.capacity);
        if buckets.map.len() > MAX_KEYS / 2 {
            let mut levels: Vec<(f64, String)> = buckets
                .map
                .iter()
                .map(|(k, b)| (self.level(*b, now), k.clone()))
                .collect();
            levels.sort_by(|a, b| b.0.total_cmp(&a.0));
            let excess = buckets.map.len() - MAX_KEYS / 2;
            for (_, key) in levels.into_iter().take(excess) {
                buckets.map.remove(&key);
            }
        }
        buckets.prune_at = (buckets.map.len() * 2).clamp(PRUNE_ABOVE, MAX_KEYS);
    }

    #[cfg(test)]
    fn keys(&self) -> usize {
        self.lock().map.len()
    }
}

/// What one client is, for a per-address limit: an IPv4 address; for IPv6, the /64 it is in
/// (RFC 4291 §2.5.4: a /64 is one subnet, and an ISP hands each customer at least one, so
/// keying on the full address would give every client 2^64 budgets); an IPv4-mapped IPv6
/// address (a dual-stack socket's IPv4 peer) as the IPv4 address it maps.
pub fn client_key(ip: std::net::IpAddr) -> String {
    client_prefix(ip, 64)
}

/// An IPv4 address, or the IPv6 network of `ipv6_prefix` bits an address is in, as text
/// (`2001:db8:1::/48`); an IPv4-mapped IPv6 address counts as its IPv4 address.
pub fn client_prefix(ip: std::net::IpAddr, ipv6_prefix: u32) -> String {
    use std::net::{IpAddr, Ipv6Addr};
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let mask = u128::MAX
                    .checked_shl(128 - ipv6_prefix.min(128))
                    .unwrap_or(0);
                format!("{}/{ipv6_prefix}", Ipv6Addr::from(u128::from(v6) & mask))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_refills() {
        let limiter = RateLimiter::new(3, 1.0);
        let t0 = Instant::now();
        assert!((0..3).all(|_| limiter.reserve_at(&["a"], t0).is_ok()));
        assert!(limiter.reserve_at(&["a"], t0).is_err());
        assert!(
            limiter.reserve_at(&["b"], t0).is_ok(),
            "buckets are per key"
        );
        assert!(
            limiter
                .reserve_at(&["a"], t0 + Duration::from_millis(1100))
                .is_ok()
        );
        assert!(
            limiter
                .reserve_at(&["a"], t0 + Duration::from_millis(1200))
                .is_err()
        );
    }

    #[test]
    fn a_refusal_says_the_real_wait() {
        let limiter = RateLimiter::new(5, 1.0 / 60.0);
        let t0 = Instant::now();
        for _ in 0..5 {
            let _ = limiter.reserve_at(&["a"], t0).unwrap();
        }

        let right_away = limiter.reserve_at(&["a"], t0).err().unwrap();
        let later = limiter
            .reserve_at(&["a"], t0 + Duration::from_secs(45))
            .err()
            .unwrap();

        assert_eq!(right_away.as_secs_f64().round(), 60.0);
        assert_eq!(later.as_secs_f64().round(), 15.0);
        assert!(
            limiter
                .reserve_at(&["a"], t0 + Duration::from_secs(60))
                .is_ok()
        );
    }

    #[test]
    fn several_keys_are_charged_all_or_none() {
        let limiter = RateLimiter::new(1, 1.0 / 60.0);
        let t0 = Instant::now();
        let _ = limiter.reserve_at(&["name:ops"], t0).unwrap();

        let refused = limiter.reserve_at(&["addr:a", "name:ops"], t0);

        assert!(refused.is_err());
        assert!(
            limiter.reserve_at(&["addr:a"], t0).is_ok(),
            "the address was not charged for the name's refusal"
        );
    }

    #[test]
    fn a_refund_gives_the_tokens_back() {
        let limiter = RateLimiter::new(2, 1.0 / 60.0);
        let t0 = Instant::now();
        for _ in 0..10 {
            let reservation = limiter.reserve_at(&["a", "b"], t0).unwrap();
            limiter.refund_at(&reservation.keys, t0);
        }
        let _ = limiter.reserve_at(&["a", "b"], t0).unwrap();
        let _ = limiter.reserve_at(&["a", "b"], t0).unwrap();
        assert!(limiter.reserve_at(&["a"], t0).is_err());
        assert!(limiter.reserve_at(&["b"], t0).is_err());
    }

    #[test]
    fn the_number_of_keys_stays_bounded() {
        let limiter = RateLimiter::new(5, 1.0 / 60.0);
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS * 2 + 7) {
            let _ = limiter.reserve_at(&[&format!("k{i}")], t0);
        }
        assert!(limiter.keys() <= MAX_KEYS, "{}", limiter.keys());
    }

    fn key(addr: &str) -> String {
        client_key(addr.parse().unwrap())
    }

    #[test]
    fn networks_are_an_ipv6_prefix_or_the_ipv4_address() {
        let net = |a: &str| client_prefix(a.parse().unwrap(), 48);
        assert_eq!(net("2001:db8:1:2:aaaa::1"), "2001:db8:1::/48");
        assert_eq!(net("2001:db8:1:ffff::1"), net("2001:db8:1::1"));
        assert_ne!(net("2001:db8:1::1"), net("2001:db8:2::1"));
        assert_eq!(net("203.0.113.7"), "203.0.113.7");
        assert_eq!(net("::ffff:203.0.113.7"), "203.0.113.7");
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

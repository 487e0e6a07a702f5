//! Signing-key rotation (`POST /_emulator/keys/rotate`): a new key signs from then on, and
//! the retired ones stay in the JWKS until the tokens they signed have expired, as Microsoft
//! keeps a rolled-over key published, so that clients' key-refresh logic can be tested.

use std::sync::{Arc, RwLock};

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::clock::rfc3339_seconds;
use super::signing::SigningKey;

/// How long past `exp` validators still accept a token (Microsoft.IdentityModel's default
/// clock skew, and the emulator's Graph): a retired key is published that much longer.
pub const VALIDATION_SKEW_SECS: i64 = 300;

/// Retired keys published at once; rotating more often than tokens expire is refused
/// beyond this, so that the JWKS stays small.
pub const MAX_RETIRED: usize = 15;

#[derive(Debug, Clone)]
struct Entry {
    key: Arc<SigningKey>,
    since: OffsetDateTime,
    retired_at: Option<OffsetDateTime>,
}

impl Entry {
    /// Until when a retired key is published: the last `exp` it signed plus the skew, and
    /// never less than the skew after retirement (a token may be signing as it retires).
    fn published_until(&self) -> Option<OffsetDateTime> {
        let retired = self.retired_at?;
        let last_exp = self
            .key
            .latest_exp()
            .and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok())
            .unwrap_or(retired);
        Some(last_exp.max(retired) + time::Duration::seconds(VALIDATION_SKEW_SECS))
    }

    fn view(&self) -> Value {
        json!({
            "kid": self.key.kid(),
            "since": rfc3339_seconds(self.since),
            "retired_at": self.retired_at.map(rfc3339_seconds),
            "published_until": self.published_until().map(rfc3339_seconds),
        })
    }
}

#[derive(Debug)]
struct Ring {
    current: Entry,
    /// Oldest first.
    retired: Vec<Entry>,
}

impl Ring {
    fn prune(&mut self, now: OffsetDateTime) {
        self.retired
            .retain(|e| e.published_until().is_some_and(|until| until >= now));
    }

    fn has_expired(&self, now: OffsetDateTime) -> bool {
        self.retired
            .iter()
            .any(|e| e.published_until().is_none_or(|until| until < now))
    }
}

/// Why a rotation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{MAX_RETIRED} retired keys are still published; advance the clock past their tokens' expiry first"
)]
pub struct TooManyKeys;

/// The current signing key and the retired ones still published.
#[derive(Debug)]
pub struct KeyRing {
    /// Read by every token issued and every token verified; written by a rotation.
    ring: RwLock<Ring>,
}

impl KeyRing {
    pub fn new(key: SigningKey, now: OffsetDateTime) -> KeyRing {
        KeyRing {
            ring: RwLock::new(Ring {
                current: Entry {
                    key: Arc::new(key),
                    since: now,
                    retired_at: None,
                },
                retired: Vec::new(),
            }),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Ring> {
        // Nothing panics while holding the lock; if something did, the ring is still whole.
        self.ring.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Ring> {
        self.ring.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The key that signs now.
    pub fn current(&self) -> Arc<SigningKey> {
        self.read().current.key.clone()
    }

    /// The published key whose tokens carry exactly `encoded_header`.
    pub fn by_header(&self, encoded_header: &str) -> Option<Arc<SigningKey>> {
        let ring = self.read();
        std::iter::once(&ring.current)
            .chain(ring.retired.iter().rev())
            .find(|e| e.key.encoded_header() == encoded_header)
            .map(|e| e.key.clone())
    }

    /// The keys the JWKS publishes at `now`: the current one first. Retired keys whose
    /// tokens have all expired are dropped here.
    pub fn published(&self, now: OffsetDateTime) -> Vec<Arc<SigningKey>> {
        if self.read().has_expired(now) {
            self.write().prune(now);
        }
        let ring = self.read();
        std::iter::once(&ring.current)
            .chain(ring.retired.iter().rev())
            .map(|e| e.key.clone())
            .collect()
    }

    /// Makes `key` the current key and retires the one before it.
    pub fn rotate(&self, key: SigningKey, now: OffsetDateTime) -> Result<(), TooManyKeys> {
        let mut ring = self.write();
        ring.prune(now);
        if ring.retired.len() >= MAX_RETIRED {
            return Err(TooManyKeys);
        }
        let mut old = std::mem::replace(
            &mut ring.current,
            Entry {
                key: Arc::new(key),
                since: now,
                retired_at: None,
            },
        );
        old.retired_at = Some(now);
        ring.retired.push(old);
        Ok(())
    }

    /// What `GET /_emulator/keys` shows.
    pub fn view(&self, now: OffsetDateTime) -> Value {
        self.published(now);
        let ring = self.read();
        json!({
            "current": ring.current.view(),
            "retired": ring.retired.iter().rev().map(Entry::view).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retired_key_is_published_until_its_last_token_expires() {
        // Whole seconds, as `exp` is.
        let t0 = OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp())
            .unwrap();
        let ring = KeyRing::new(SigningKey::generate().unwrap(), t0);
        let first = ring.current();
        first.note_expiry(t0.unix_timestamp() + 3600);
        let header = first.encoded_header().to_owned();

        ring.rotate(SigningKey::generate().unwrap(), t0).unwrap();

        let kids = |at| -> Vec<String> {
            ring.published(at)
                .iter()
                .map(|k| k.kid().to_owned())
                .collect()
        };
        assert_ne!(ring.current().kid(), first.kid());
        assert_eq!(kids(t0), [ring.current().kid(), first.kid()]);
        assert!(ring.by_header(&header).is_some());
        let last = t0 + time::Duration::seconds(3600 + VALIDATION_SKEW_SECS);
        assert_eq!(kids(last).len(), 2, "published until exp plus the skew");
        assert_eq!(
            kids(last + time::Duration::seconds(1)),
            [ring.current().kid()]
        );
        assert!(ring.by_header(&header).is_none(), "dropped for good");
    }

    #[test]
    fn refuses_to_publish_more_than_the_limit() {
        let t0 = OffsetDateTime::now_utc();
        let key = || SigningKey::generate().unwrap();
        let ring = KeyRing::new(key(), t0);
        for _ in 0..MAX_RETIRED {
            ring.rotate(key(), t0).unwrap();
        }
        assert_eq!(ring.rotate(key(), t0), Err(TooManyKeys));
        let later = t0 + time::Duration::seconds(VALIDATION_SKEW_SECS + 1);
        assert_eq!(ring.rotate(key(), later), Ok(()), "unused keys leave");
        assert_eq!(ring.published(later).len(), 2);
    }
}

//! Short-lived read-through caches in front of what hot paths read on every request: the
//! API key (by its hash) and the tenant (for its status), for the token route; the operator's
//! session and the console's list pages, for `/admin`.
//!
//! Measured by `cargo bench --bench api`: each lookup is a round trip to SQLite's connection
//! thread, and with the event write they held `POST /api/v1/tenants/{id}/token` to a tenth
//! of `/health`. Both caches hold a row for seconds at most, so a change made by another
//! process on the same database (`consentry api-keys revoke`, a second instance) is seen
//! within that time; changes made through this process's [`Store`] that must take effect at
//! once (revoking a key) drop the cached row themselves.
//!
//! Only rows that exist are cached: a lookup that finds nothing is not remembered, so
//! guessed keys or tenant ids cannot fill memory (they cost a lookup each, as before). The
//! size is bounded all the same, by [`CAPACITY`] entries.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{ApiKeyRow, ConsoleView, SessionRow, Store, StoreError, TenantRow};
use crate::domain::TenantId;

/// Entries per cache. Only existing keys and tenants get in; past this, expired entries are
/// dropped, and if that frees nothing the cache starts again empty (a lookup each, once).
const CAPACITY: usize = 10_000;

/// How long a verified API key is trusted without asking the database again: the longest a
/// key revoked by another process (the command line, a second instance) keeps working here.
/// Two seconds is shorter than anyone takes to switch from revoking a key to checking it
/// is refused, and still turns a busy client's thousands of lookups a second into one every
/// two seconds.
pub const API_KEY_TTL: Duration = Duration::from_secs(2);

/// How long a tenant's row (its status, for the token route's 409) is reused: a status
/// change made by a check takes at most this long to refuse or allow tokens. A token already
/// handed out stays valid for its hour whatever happens, so one more second of tokens for a
/// tenant whose consent was just revoked changes nothing a client could rely on.
pub const TENANT_TTL: Duration = Duration::from_secs(1);

/// How long an operator's session is trusted without asking the database again: the longest
/// a session ended, or an operator disabled or demoted, through another instance keeps
/// working here (the same reasoning as [`API_KEY_TTL`]). Changes made through this process
/// take effect at once: they forget every cached session.
pub const SESSION_TTL: Duration = Duration::from_secs(2);

/// How long a console list page (its rows, the counts per status and recent activity) is
/// reused for the same query: operators looking at the same page at the same time, or one
/// reloading it, cost one statement a second instead of one each. Every change to tenants
/// or events made through this process forgets them all at once, so what an operator just
/// did (or the verifier just found) shows on the next page here; a change made through
/// another instance shows within this time.
pub const CONSOLE_TTL: Duration = Duration::from_secs(1);

/// Console pages kept at most: a page is tens of kilobytes, and searches typed by operators
/// are keys too.
const CONSOLE_PAGES: usize = 256;

/// Key to value, each for at most `ttl` after it was read.
pub(super) struct TtlCache<K, V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<Entries<K, V>>,
}

struct Entries<K, V> {
    map: HashMap<K, (Instant, V)>,
    /// Counts [`TtlCache::forget`] calls: a value read from the database before one must
    /// not be remembered after it (it may be the very row that was just changed).
    generation: u64,
}

/// When a lookup started, to give [`TtlCache::insert`].
#[derive(Debug, Clone, Copy)]
pub(super) struct ReadStart {
    at: Instant,
    generation: u64,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub(super) fn new(ttl: Duration) -> TtlCache<K, V> {
        TtlCache::with_capacity(ttl, CAPACITY)
    }

    /// At most `capacity` entries (for large values).
    pub(super) fn with_capacity(ttl: Duration, capacity: usize) -> TtlCache<K, V> {
        TtlCache {
            ttl,
            capacity,
            entries: Mutex::new(Entries {
                map: HashMap::new(),
                generation: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Entries<K, V>> {
        // A panic while holding the lock cannot leave the map half-changed (each change is
        // one call on it), so a poisoned lock is still a good map.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value, if it was read less than `ttl` ago.
    pub(super) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let now = Instant::now();
        self.lock()
            .map
            .get(key)
            .filter(|(at, _)| now.saturating_duration_since(*at) < self.ttl)
            .map(|(_, v)| v.clone())
    }

    /// To call before reading the value from the database.
    pub(super) fn read_start(&self) -> ReadStart {
        ReadStart {
            at: Instant::now(),
            generation: self.lock().generation,
        }
    }

    /// Remembers `value`, whose read began at `start` (its age counts the lookup too),
    /// unless something was forgotten since: the value may predate that change.
    pub(super) fn insert(&self, key: K, value: V, start: ReadStart) {
        let mut entries = self.lock();
        if entries.generation != start.generation {
            return;
        }
        if entries.map.len() >= self.capacity {
            let now = Instant::now();
            entries
                .map
                .retain(|_, (at, _)| now.saturating_duration_since(*at) < self.ttl);
            if entries.map.len() >= self.capacity {
                entries.map.clear();
            }
        }
        entries.map.insert(key, (start.at, value));
    }

    /// Changes in place the values `change` returns a replacement for (keeping their age).
    pub(super) fn update(&self, mut change: impl FnMut(&V) -> Option<V>) {
        for (_, value) in self.lock().map.values_mut() {
            if let Some(new) = change(value) {
                *value = new;
            }
        }
    }

    /// Drops the values `drop` says so of, and keeps out any value whose read began
    /// before.
    pub(super) fn forget(&self, mut drop: impl FnMut(&V) -> bool) {
        let mut entries = self.lock();
        entries.generation = entries.generation.wrapping_add(1);
        entries.map.retain(|_, (_, v)| !drop(v));
    }
}

/// Reads in flight, by key: a request for a value that another request is reading waits
/// for that read and then finds it cached, instead of running the same statement again.
/// Without it, every request that arrives while a page's cached copy has just expired reads
/// it too: eight browsers on a search whose statement takes 7 ms ran it eight times a
/// second, and the searched page stayed at a quarter of `/health` while cached pages
/// reached twice that.
pub(super) struct Flights {
    gates: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Held by the one request reading a key ([`Flights::enter`]); dropping it lets the next
/// one in, and forgets the key's gate once nobody waits on it.
pub(super) struct Flight<'a> {
    flights: &'a Flights,
    key: String,
    gate: Arc<tokio::sync::Mutex<()>>,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Flights {
    fn new() -> Flights {
        Flights {
            gates: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
        self.gates.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until no other request is reading `key`, and then holds it.
    pub(super) async fn enter(&self, key: &str) -> Flight<'_> {
        let gate = self.lock().entry(key.to_owned()).or_default().clone();
        let held = gate.clone().lock_owned().await;
        Flight {
            flights: self,
            key: key.to_owned(),
            gate,
            held: Some(held),
        }
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        drop(self.held.take());
        let mut gates = self.flights.lock();
        // The map's reference and this one: nobody else waits (others clone it only under
        // the map's lock, held here).
        if Arc::strong_count(&self.gate) == 2 {
            gates.remove(&self.key);
        }
    }
}

/// The caches one [`Store`] and its clones share.
pub(super) struct Caches {
    /// By the key's SHA-256 (base64url), as the database is searched.
    pub(super) api_keys: TtlCache<String, Arc<ApiKeyRow>>,
    pub(super) tenants: TtlCache<TenantId, Arc<TenantRow>>,
    /// By the session id's keyed hash, as the database is searched.
    pub(super) sessions: TtlCache<String, Arc<SessionRow>>,
    /// By the page's query, cursor and lengths ([`console_key`]).
    pub(super) console: TtlCache<String, Arc<ConsoleView>>,
    /// Console pages being read.
    pub(super) console_reads: Flights,
    /// HTML drawn from what the console shows, by name ([`Store::console_rendered`]).
    pub(super) console_rendered: TtlCache<String, Arc<str>>,
}

impl Caches {
    pub(super) fn new() -> Caches {
        Caches {
            api_keys: TtlCache::new(API_KEY_TTL),
            tenants: TtlCache::new(TENANT_TTL),
            sessions: TtlCache::new(SESSION_TTL),
            console: TtlCache::with_capacity(CONSOLE_TTL, CONSOLE_PAGES),
            console_reads: Flights::new(),
            console_rendered: TtlCache::with_capacity(CONSOLE_TTL, 16),
        }
    }
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches")
            .field("api_keys", &self.api_keys.lock().map.len())
            .field("tenants", &self.tenants.lock().map.len())
            .field("sessions", &self.sessions.lock().map.len())
            .field("console", &self.console.lock().map.len())
            .field("console_reads", &self.console_reads.len())
            .finish()
    }
}

impl Store {
    /// The tenant as it was at most [`TENANT_TTL`] ago: for the token route, which asks on
    /// every request and needs only the status and granted permissions. Anything that
    /// decides on a tenant's fresh state reads [`Store::tenant`].
    pub async fn tenant_recent(&self, id: TenantId) -> Result<Option<Arc<TenantRow>>, StoreError> {
        if let Some(row) = self.caches.tenants.get(&id) {
            return Ok(Some(row));
        }
        let start = self.caches.tenants.read_start();
        let Some(row) = self.tenant(id).await? else {
            return Ok(None);
        };
        let row = Arc::new(row);
        self.caches.tenants.insert(id, row.clone(), start);
        Ok(Some(row))
    }

    /// To call after any change to tenants or their events: the console's cached pages
    /// may show what it changed.
    pub(super) fn console_changed(&self) {
        self.caches.console.forget(|_| true);
        self.caches.console_rendered.forget(|_| true);
    }

    /// What `make` draws from the console's data (the overview's charts), reused as a list
    /// page is: for [`CONSOLE_TTL`], forgotten at any change made through this process, and
    /// drawn by one request at a time (those arriving meanwhile get its drawing).
    pub async fn console_rendered<E, F, Fut>(&self, name: &str, make: F) -> Result<Arc<str>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<String, E>>,
    {
        if let Some(html) = self.caches.console_rendered.get(name) {
            return Ok(html);
        }
        let key = format!("rendered|{name}");
        let _flight = self.caches.console_reads.enter(&key).await;
        if let Some(html) = self.caches.console_rendered.get(name) {
            return Ok(html);
        }
        let start = self.caches.console_rendered.read_start();
        let html: Arc<str> = make().await?.into();
        self.caches
            .console_rendered
            .insert(name.to_owned(), html.clone(), start);
        Ok(html)
    }

    /// For a method that changes tenants or events, held from its start: when the method
    /// returns (after its transaction committed or rolled back, whichever way it ends), the
    /// console's cached pages are forgotten, and a page read while it ran is not kept.
    pub(super) fn console_change(&self) -> ConsoleChange<'_> {
        ConsoleChange(self)
    }

    /// To call after any change to sessions or operators (a session ended, an operator
    /// disabled, demoted or removed): cached sessions may be the ones it changed.
    pub(super) fn sessions_changed(&self) {
        self.caches.sessions.forget(|_| true);
    }
}

/// See [`Store::console_change`].
pub(super) struct ConsoleChange<'a>(&'a Store);

impl Drop for ConsoleChange<'_> {
    fn drop(&mut self) {
        self.0.console_changed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_misses_are_not_remembered() {
        let cache: TtlCache<String, u32> = TtlCache::new(Duration::from_secs(60));
        let long_ago = ReadStart {
            at: Instant::now() - Duration::from_secs(61),
            generation: 0,
        };
        cache.insert("old".to_owned(), 1, long_ago);
        cache.insert("new".to_owned(), 2, cache.read_start());

        assert_eq!(cache.get("old"), None, "read more than the TTL ago");
        assert_eq!(cache.get("new"), Some(2));
        assert_eq!(cache.get("never"), None);
        cache.forget(|v| *v == 2);
        assert_eq!(cache.get("new"), None);
    }

    #[test]
    fn a_value_read_before_a_forget_is_not_remembered() {
        let cache: TtlCache<&str, u32> = TtlCache::new(Duration::from_secs(60));
        let start = cache.read_start();
        cache.forget(|_| true);
        cache.insert("key", 1, start);
        assert_eq!(
            cache.get("key"),
            None,
            "it may be the row that just changed"
        );
    }

    #[test]
    fn the_size_stays_bounded() {
        let cache: TtlCache<usize, usize> = TtlCache::new(Duration::from_secs(60));
        for i in 0..CAPACITY * 3 {
            cache.insert(i, i, cache.read_start());
        }
        assert!(cache.lock().map.len() <= CAPACITY);
        assert_eq!(cache.get(&(CAPACITY * 3 - 1)), Some(CAPACITY * 3 - 1));
    }

    #[tokio::test]
    async fn one_read_a_key_at_a_time_and_gates_are_forgotten() {
        let flights = Arc::new(Flights::new());
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let cache = Arc::new(TtlCache::<String, usize>::new(Duration::from_secs(60)));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (flights, reads, cache) = (flights.clone(), reads.clone(), cache.clone());
                tokio::spawn(async move {
                    let _flight = flights.enter("page").await;
                    if let Some(v) = cache.get("page") {
                        return v;
                    }
                    let start = cache.read_start();
                    // A slow read: the others arrive while it runs.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let n = reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    cache.insert("page".to_owned(), n, start);
                    n
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(
                task.await.expect("a task"),
                1,
                "every task sees the one read"
            );
        }
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(flights.len(), 0, "no gate left behind");
        // Different keys do not wait on each other.
        let a = flights.enter("a").await;
        let b = tokio::time::timeout(Duration::from_secs(5), flights.enter("b")).await;
        assert!(b.is_ok(), "another key is not held up");
        drop((a, b));
        assert_eq!(flights.len(), 0);
    }

    #[test]
    fn update_changes_values_in_place() {
        let cache: TtlCache<&str, u32> = TtlCache::new(Duration::from_secs(60));
        cache.insert("a", 1, cache.read_start());
        cache.insert("b", 2, cache.read_start());
        cache.update(|v| (*v == 1).then_some(10));
        assert_eq!(cache.get("a"), Some(10));
        assert_eq!(cache.get("b"), Some(2));
    }
}

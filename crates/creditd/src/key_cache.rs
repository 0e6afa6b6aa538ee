//! Verified secret keys, kept in memory so the hot path does not ask the database on every
//! request. Only successful lookups are cached: an unknown key always reaches the database.
//!
//! Revocation: the database counts every revocation (`api_key_revocations`, kept by
//! triggers) and a task of each process polls that count every [`POLL`]; when it moves, every
//! cached key is forgotten. A cached key is trusted only while the last successful poll
//! began less than [`TRUSTED_FOR`] ago, so a revocation reaches every replica within a
//! second even when polls are slow or failing (lookups then go to the database). A
//! revocation made through this process's own store is seen at the next lookup.
//! `api_key_cache_seconds` bounds how long one key stays cached; 0 turns caching off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use creditd_store::Store;

/// More distinct keys than any app uses; past it the cache starts over rather than grow.
const MAX_ENTRIES: usize = 10_000;
/// How often the database's revocation count is read.
pub const POLL: Duration = Duration::from_millis(200);
/// How long after a poll began the cached keys are trusted without another one: under the
/// one second a revocation may take to reach every replica.
pub const TRUSTED_FOR: Duration = Duration::from_millis(800);

#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// SHA-256 of the secret → (key id, cached until).
    entries: HashMap<String, (String, Instant)>,
    /// Moves whenever the entries are forgotten: a lookup begun before stores nothing.
    generation: u64,
    /// The database's revocation count at the last poll.
    seen_count: Option<i64>,
    /// The store's own revocations ([`Store::revoked_here`]) when last looked at.
    seen_here: u64,
    /// When the last successful poll began plus [`TRUSTED_FOR`].
    trusted_until: Option<Instant>,
}

impl State {
    fn forget(&mut self) {
        self.entries.clear();
        self.generation += 1;
    }

    fn notice_own_revocations(&mut self, revoked_here: u64) {
        if revoked_here != self.seen_here {
            self.seen_here = revoked_here;
            self.forget();
        }
    }
}

/// A cache miss: pass it back to [`KeyCache::put`] with what the database said.
#[derive(Clone, Copy, Debug)]
pub struct Miss {
    generation: u64,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> KeyCache {
        KeyCache {
            ttl,
            state: Mutex::new(State::default()),
        }
    }

    /// A cache whose revocation count is polled from `store` by a task that ends when the
    /// cache is dropped. Call inside the Tokio runtime. A zero TTL caches nothing and polls
    /// nothing.
    pub fn spawn(store: Store, ttl: Duration) -> Arc<KeyCache> {
        let cache = Arc::new(KeyCache::new(ttl));
        if !ttl.is_zero() {
            tokio::spawn(poll(Arc::downgrade(&cache), store));
        }
        cache
    }

    /// The key id of a secret (by its hash) verified, not revoked since, and within its TTL.
    /// `revoked_here` is the store's [`Store::revoked_here`].
    pub fn get(&self, hash: &str, revoked_here: u64) -> Result<String, Miss> {
        let now = Instant::now();
        let mut state = self.state.lock().expect("key cache lock");
        state.notice_own_revocations(revoked_here);
        let miss = Miss {
            generation: state.generation,
        };
        if self.ttl.is_zero() || state.trusted_until.is_none_or(|t| t <= now) {
            return Err(miss);
        }
        match state.entries.get(hash) {
            Some((id, until)) if *until > now => Ok(id.clone()),
            _ => Err(miss),
        }
    }

    /// Remembers a key the database verified after `miss` — unless keys were forgotten since
    /// (a revocation may have come between the database's answer and now).
    pub fn put(&self, miss: Miss, hash: &str, key_id: &str) {
        if self.ttl.is_zero() {
            return;
        }
        let mut state = self.state.lock().expect("key cache lock");
        if state.generation != miss.generation {
            return;
        }
        if state.entries.len() >= MAX_ENTRIES {
            state.entries.clear();
        }
        let until = Instant::now() + self.ttl;
        state.entries.insert(hash.to_string(), (key_id.to_string(), until));
    }

    /// The database's revocation count, read by a poll that began at `began`.
    pub fn observe(&self, count: i64, began: Instant) {
        let mut state = self.state.lock().expect("key cache lock");
        if state.seen_count != Some(count) {
            state.seen_count = Some(count);
            state.forget();
        }
        state.trusted_until = Some(began + TRUSTED_FOR);
    }
}

/// Reads the revocation count every [`POLL`] until the cache is dropped.
async fn poll(cache: Weak<KeyCache>, store: Store) {
    let mut failing = false;
    loop {
        let began = Instant::now();
        let count = store.key_revocations().await;
        let Some(cache) = cache.upgrade() else { return };
        match count {
            Ok(count) => {
                cache.observe(count, began);
                failing = false;
            }
            Err(e) if !failing => {
                tracing::warn!(error = %e, "cannot read API key revocations; keys are checked in the database until it answers");
                failing = true;
            }
            Err(_) => {}
        }
        drop(cache);
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{KeyCache, TRUSTED_FOR};

    fn polled(ttl: Duration) -> KeyCache {
        let cache = KeyCache::new(ttl);
        cache.observe(0, Instant::now());
        cache
    }

    fn remember(cache: &KeyCache, hash: &str, id: &str) {
        let miss = cache.get(hash, 0).unwrap_err();
        cache.put(miss, hash, id);
    }

    #[test]
    fn remembers_a_key_for_its_ttl_only() {
        let cache = polled(Duration::from_millis(50));
        remember(&cache, "a", "key_1");
        assert_eq!(cache.get("a", 0).ok().as_deref(), Some("key_1"));
        assert!(cache.get("b", 0).is_err());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get("a", 0).is_err(), "expired");
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let cache = polled(Duration::ZERO);
        remember(&cache, "a", "key_1");
        assert!(cache.get("a", 0).is_err());
    }

    #[test]
    fn a_new_revocation_count_forgets_every_key() {
        let cache = polled(Duration::from_secs(60));
        remember(&cache, "a", "key_1");
        cache.observe(0, Instant::now());
        assert!(cache.get("a", 0).is_ok(), "the same count keeps the keys");
        cache.observe(1, Instant::now());
        assert!(cache.get("a", 0).is_err());
    }

    #[test]
    fn a_revocation_through_this_store_forgets_at_once() {
        let cache = polled(Duration::from_secs(60));
        remember(&cache, "a", "key_1");
        assert!(cache.get("a", 1).is_err());
    }

    #[test]
    fn an_answer_older_than_a_revocation_is_not_stored() {
        let cache = polled(Duration::from_secs(60));
        let miss = cache.get("a", 0).unwrap_err();
        cache.observe(1, Instant::now());
        cache.put(miss, "a", "key_1");
        assert!(cache.get("a", 0).is_err());
    }

    #[test]
    fn nothing_is_trusted_without_a_recent_poll() {
        let cache = KeyCache::new(Duration::from_secs(60));
        assert!(cache.get("a", 0).is_err(), "never polled");
        cache.observe(0, Instant::now() - TRUSTED_FOR);
        remember(&cache, "a", "key_1");
        assert!(cache.get("a", 0).is_err(), "the last poll is too old");
        cache.observe(0, Instant::now());
        assert!(cache.get("a", 0).is_ok());
    }
}

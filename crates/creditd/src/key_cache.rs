//! Verified secret keys, remembered for a short TTL so the hot path does not ask the database
//! on every request. Only successful lookups are cached: an unknown key always reaches the
//! database. The price is revocation latency: a revoked key keeps working for at most the TTL
//! in processes that verified it just before (`api_key_cache_seconds`, 0 turns caching off).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// More distinct keys than any app uses; past it the cache starts over rather than grow.
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    /// SHA-256 of the secret → (key id, trusted until).
    entries: Mutex<HashMap<String, (String, Instant)>>,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> KeyCache {
        KeyCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The key id of a secret verified less than the TTL ago.
    pub fn get(&self, secret: &str) -> Option<String> {
        if self.ttl.is_zero() {
            return None;
        }
        let hash = creditd_store::hash_secret(secret);
        let entries = self.entries.lock().expect("key cache lock");
        entries
            .get(&hash)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(id, _)| id.clone())
    }

    pub fn put(&self, secret: &str, key_id: &str) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().expect("key cache lock");
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            creditd_store::hash_secret(secret),
            (key_id.to_string(), Instant::now() + self.ttl),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::KeyCache;

    #[test]
    fn remembers_a_key_for_its_ttl_only() {
        let cache = KeyCache::new(Duration::from_millis(50));
        assert_eq!(cache.get("cd_sk_a"), None);
        cache.put("cd_sk_a", "key_1");
        assert_eq!(cache.get("cd_sk_a").as_deref(), Some("key_1"));
        assert_eq!(cache.get("cd_sk_b"), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("cd_sk_a"), None, "expired");
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let cache = KeyCache::new(Duration::ZERO);
        cache.put("cd_sk_a", "key_1");
        assert_eq!(cache.get("cd_sk_a"), None);
    }
}

//! Internal tokens already verified, so a token the gateway reuses across a caller's requests is
//! checked for its signature once rather than on every request.
//!
//! Entries are keyed by the token's exact text (never by a hash of it alone, so no other string
//! can match one) and are added only after the full check passed, so a forged or tampered token
//! always goes through that check and fails it. An entry is served only while the token has not
//! reached its `exp` (without the verifier's leeway), so a cached token never outlives what a
//! fresh check would allow. Nothing else is cached: internal tokens carry no revocable state
//! (the gateway checks live sessions before minting or reusing one), so signature and expiry are
//! all a service checks, with or without the cache.
//!
//! The cache is bounded: a full shard is swept of expired entries, then cleared.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Mutex;

use crate::InternalClaims;

const SHARDS: usize = 8;
/// Tokens kept per shard: the gateway mints one token per caller and replaces it half-way to its
/// expiry, so this is the number of distinct callers seen in about one token lifetime.
const MAX_PER_SHARD: usize = 256;

type Shard = Mutex<HashMap<Box<str>, InternalClaims>>;

/// The bounded map of verified tokens to their claims.
pub(crate) struct VerifiedTokens {
    hasher: RandomState,
    shards: Box<[Shard]>,
}

impl VerifiedTokens {
    pub(crate) fn new() -> Self {
        Self {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, token: &str) -> &Shard {
        &self.shards[(self.hasher.hash_one(token) as usize) % SHARDS]
    }

    /// The claims of `token` if it was verified before and is not expired at `now` (Unix
    /// seconds).
    pub(crate) fn get(&self, token: &str, now: i64) -> Option<InternalClaims> {
        let shard = self.shard(token).lock().unwrap_or_else(|e| e.into_inner());
        shard.get(token).filter(|claims| now < claims.exp).cloned()
    }

    /// Remembers a token that has just passed the full check (ignored once expired).
    pub(crate) fn insert(&self, token: &str, claims: &InternalClaims, now: i64) {
        if now >= claims.exp {
            return;
        }
        let mut shard = self.shard(token).lock().unwrap_or_else(|e| e.into_inner());
        if shard.len() >= MAX_PER_SHARD && !shard.contains_key(token) {
            shard.retain(|_, c| now < c.exp);
            if shard.len() >= MAX_PER_SHARD {
                shard.clear();
            }
        }
        shard.insert(token.into(), claims.clone());
    }

    /// How many tokens are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    /// The most tokens ever held.
    #[cfg(test)]
    pub(crate) const CAPACITY: usize = SHARDS * MAX_PER_SHARD;
}

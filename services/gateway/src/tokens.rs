//! Access-token verification at the gateway: [`auth_client::JwksVerifier`] does the work; this
//! adds a bounded cache of tokens already verified, keyed by the whole token, so a client sending
//! the same token on every request pays for the RSA signature check once. A cached token is still
//! refused once expired, and the cache is dropped whenever auth's key set changes.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};

use auth_client::{AccessClaims, JwksError, JwksVerifier};

const SHARDS: usize = 16;
const MAX_PER_SHARD: usize = 512;

struct Shard {
    generation: u64,
    /// By the token's hash (computed once per request: a token is several hundred bytes), with
    /// the whole token kept and compared, so only the exact bytes of a verified token match.
    tokens: HashMap<u64, (Box<str>, Arc<AccessClaims>), BuildHasherDefault<Prehashed>>,
}

/// The hasher of keys that are hashes already.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Verifies access tokens, remembering the good ones until they expire.
pub struct TokenVerifier {
    jwks: JwksVerifier,
    hasher: RandomState,
    shards: Vec<Mutex<Shard>>,
}

impl TokenVerifier {
    /// A verifier over `jwks`.
    pub fn new(jwks: JwksVerifier) -> Self {
        Self {
            jwks,
            hasher: RandomState::new(),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        generation: 0,
                        tokens: HashMap::default(),
                    })
                })
                .collect(),
        }
    }

    /// The JWKS behind it.
    pub fn jwks(&self) -> &JwksVerifier {
        &self.jwks
    }

    fn shard(&self, hash: u64) -> &Mutex<Shard> {
        &self.shards[(hash as usize) % SHARDS]
    }

    /// The token's claims, if it is a valid access token now.
    pub async fn verify(&self, token: &str) -> Result<Arc<AccessClaims>, JwksError> {
        let generation = self.jwks.generation();
        let now = chrono::Utc::now().timestamp();
        let hash = self.hasher.hash_one(token);
        {
            let shard = self.shard(hash).lock().unwrap_or_else(|e| e.into_inner());
            if shard.generation == generation
                && let Some((known, claims)) = shard.tokens.get(&hash)
                && **known == *token
            {
                if claims.exp > now {
                    return Ok(claims.clone());
                }
                return Err(JwksError::Invalid("ExpiredSignature".to_owned()));
            }
        }
        let claims = Arc::new(self.jwks.verify(token).await?);
        let mut shard = self.shard(hash).lock().unwrap_or_else(|e| e.into_inner());
        let generation = self.jwks.generation();
        if shard.generation != generation {
            shard.tokens.clear();
            shard.generation = generation;
        }
        if shard.tokens.len() >= MAX_PER_SHARD {
            shard.tokens.retain(|_, (_, c)| c.exp > now);
            if shard.tokens.len() >= MAX_PER_SHARD {
                shard.tokens.clear();
            }
        }
        // A different token with the same hash is replaced: it is verified again when it returns.
        shard.tokens.insert(hash, (token.into(), claims.clone()));
        Ok(claims)
    }
}

//! Verifying access tokens against auth's published keys (`GET /.well-known/jwks.json`).
//!
//! The gateway verifies every client's access token locally: RS256 only (the algorithm is pinned,
//! so `none` and HS/RS confusion fail before any key is looked at), a `kid` header naming one of
//! auth's published keys, and `iss`/`aud`/`exp` checked. The keys are fetched once, cached, and
//! refreshed in the background ([`JwksVerifier::run_refresh`]); a token naming a `kid` the cache
//! does not know triggers a refetch (keys rotate), but at most one per
//! [`JwksConfig::min_refetch_interval`], so spraying made-up `kid`s cannot hammer auth.
//!
//! Auth, like every service, only answers requests carrying an internal token, so the verifier
//! mints one naming its own service for each fetch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::access::{ACCESS_AUDIENCE, ACCESS_ISSUER, AccessClaims};
use crate::{INTERNAL_TOKEN_HEADER, InternalClaims, InternalKeys};

/// Longest access token accepted, in bytes: anything longer is refused before it is parsed.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Shortest pause between background fetches after a failure.
const MIN_RETRY: Duration = Duration::from_secs(1);

/// Where the keys are and how eagerly to refresh them.
#[derive(Debug, Clone)]
pub struct JwksConfig {
    /// The JWKS document, e.g. `http://127.0.0.1:3001/.well-known/jwks.json`.
    pub url: String,
    /// How often the background task refetches the keys.
    pub refresh_interval: Duration,
    /// Smallest gap between two fetches triggered by unknown `kid`s (and between retries after
    /// a failed background fetch).
    pub min_refetch_interval: Duration,
    /// How long one fetch may take.
    pub fetch_timeout: Duration,
    /// Clock skew tolerated on `exp`, in seconds.
    pub leeway_secs: u64,
}

impl JwksConfig {
    /// Defaults for `url`: refresh every 5 minutes, refetch on unknown `kid` at most every 5 s.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            refresh_interval: Duration::from_secs(300),
            min_refetch_interval: Duration::from_secs(5),
            fetch_timeout: Duration::from_secs(3),
            leeway_secs: 5,
        }
    }
}

/// Why an access token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Not a JWT, no `kid`, a pinned-out algorithm, or too long.
    #[error("malformed access token: {0}")]
    Malformed(String),
    /// The `kid` names no key auth publishes.
    #[error("access token signed with an unknown key")]
    UnknownKey,
    /// Bad signature, expired, wrong issuer or audience, unreadable claims.
    #[error("invalid access token: {0}")]
    Invalid(String),
    /// The keys could not be fetched, so nothing can be verified right now.
    #[error("the signing keys are unavailable: {0}")]
    Unavailable(String),
}

impl JwksError {
    /// Whether the fault is ours (keys unreachable), not the token's.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// `kid` → RSA public key.
pub type KeyMap = HashMap<String, Arc<DecodingKey>>;

struct Inner {
    config: JwksConfig,
    http: reqwest::Client,
    minter: Option<(InternalKeys, String)>,
    keys: RwLock<Arc<KeyMap>>,
    generation: AtomicU64,
    /// When the last on-demand fetch started; held while one runs (single flight).
    refetch: tokio::sync::Mutex<Option<Instant>>,
    /// Whether the last fetch failed (so an unknown `kid` is "cannot tell", not "forged").
    last_failed: std::sync::atomic::AtomicBool,
    validation: Validation,
}

/// Verifies access tokens against auth's JWKS. Cheap to clone.
#[derive(Clone)]
pub struct JwksVerifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for JwksVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksVerifier")
            .field("url", &self.inner.config.url)
            .field("keys", &self.key_ids())
            .finish()
    }
}

impl JwksVerifier {
    /// A verifier with no keys yet. `service` names the caller in the internal token sent to
    /// auth when `keys` can mint (pass `None` for a JWKS that needs no internal token).
    pub fn new(
        config: JwksConfig,
        internal: Option<(InternalKeys, &str)>,
    ) -> Result<Self, JwksError> {
        let http = reqwest::Client::builder()
            .timeout(config.fetch_timeout)
            .connect_timeout(config.fetch_timeout)
            .build()
            .map_err(|e| JwksError::Unavailable(e.to_string()))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[ACCESS_ISSUER]);
        validation.set_audience(&[ACCESS_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = config.leeway_secs;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http,
                minter: internal.map(|(keys, name)| (keys, name.to_owned())),
                keys: RwLock::new(Arc::new(HashMap::new())),
                generation: AtomicU64::new(0),
                refetch: tokio::sync::Mutex::new(None),
                last_failed: std::sync::atomic::AtomicBool::new(false),
                validation,
            }),
        })
    }

    /// A verifier holding exactly `keys` (`kid` → RSA public key), fetching nothing until asked.
    pub fn with_keys(
        config: JwksConfig,
        keys: Vec<(String, DecodingKey)>,
    ) -> Result<Self, JwksError> {
        let verifier = Self::new(config, None)?;
        verifier.install(keys.into_iter().map(|(k, v)| (k, Arc::new(v))).collect());
        Ok(verifier)
    }

    /// The `kid`s currently cached, sorted.
    pub fn key_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.snapshot().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Increases whenever the set of keys changes; a cache of verified tokens must be dropped
    /// when it does (a key withdrawn from the JWKS no longer vouches for anything).
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    fn snapshot(&self) -> Arc<KeyMap> {
        match self.inner.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn lookup(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        let keys = match self.inner.keys.read() {
            Ok(keys) => keys,
            Err(poisoned) => poisoned.into_inner(),
        };
        keys.get(kid).cloned()
    }

    fn install(&self, keys: KeyMap) {
        let mut slot = match self.inner.keys.write() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        let changed = slot.len() != keys.len() || keys.keys().any(|k| !slot.contains_key(k));
        *slot = Arc::new(keys);
        drop(slot);
        if changed {
            self.inner.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Fetches the JWKS now and replaces the cached keys; returns how many usable keys it holds.
    pub async fn refresh(&self) -> Result<usize, JwksError> {
        let result = self.fetch().await;
        self.inner
            .last_failed
            .store(result.is_err(), Ordering::Release);
        let keys = result?;
        let count = keys.len();
        self.install(keys);
        Ok(count)
    }

    async fn fetch(&self) -> Result<KeyMap, JwksError> {
        let mut request = self.inner.http.get(&self.inner.config.url);
        if let Some((keys, service)) = &self.inner.minter {
            let token = keys
                .mint(InternalClaims::service(service))
                .map_err(|e| JwksError::Unavailable(e.to_string()))?;
            request = request.header(INTERNAL_TOKEN_HEADER, token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| JwksError::Unavailable(format!("fetching the JWKS: {e}")))?;
        if !response.status().is_success() {
            return Err(JwksError::Unavailable(format!(
                "the JWKS endpoint answered {}",
                response.status()
            )));
        }
        let document: serde_json::Value = response
            .json()
            .await
            .map_err(|e| JwksError::Unavailable(format!("reading the JWKS: {e}")))?;
        parse_jwks(&document)
    }

    /// Verifies `token`: RS256 only, a known `kid`, a good signature, `iss`, `aud` and `exp`.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, JwksError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwksError::Malformed("too long".to_owned()));
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| JwksError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(JwksError::Malformed(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| JwksError::Malformed("no `kid` header".to_owned()))?;
        let key = self.key_for(&kid).await?;
        jsonwebtoken::decode::<AccessClaims>(token, &key, &self.inner.validation)
            .map(|data| data.claims)
            .map_err(|e| JwksError::Invalid(e.to_string()))
    }

    /// The key named `kid`, refetching the JWKS (single flight, rate-limited) when unknown.
    async fn key_for(&self, kid: &str) -> Result<Arc<DecodingKey>, JwksError> {
        if let Some(key) = self.lookup(kid) {
            return Ok(key);
        }
        let mut last = self.inner.refetch.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(key) = self.lookup(kid) {
            return Ok(key);
        }
        let recent = last.is_some_and(|at| at.elapsed() < self.inner.config.min_refetch_interval);
        if recent {
            return Err(self.unknown_key());
        }
        *last = Some(Instant::now());
        match self.refresh().await {
            Ok(_) => self.lookup(kid).ok_or(JwksError::UnknownKey),
            Err(error) => Err(error),
        }
    }

    fn unknown_key(&self) -> JwksError {
        if self.snapshot().is_empty() || self.inner.last_failed.load(Ordering::Acquire) {
            JwksError::Unavailable("the JWKS could not be fetched".to_owned())
        } else {
            JwksError::UnknownKey
        }
    }

    /// Refreshes the keys forever: at once, then every `refresh_interval` (every
    /// `min_refetch_interval`, but at least a second, while fetches fail). Run it as a background task and drop it to stop.
    pub async fn run_refresh(&self) {
        loop {
            let wait = match self.refresh().await {
                Ok(count) => {
                    tracing::debug!(keys = count, "refreshed the JWKS");
                    self.inner.config.refresh_interval
                }
                Err(error) => {
                    tracing::warn!(%error, url = %self.inner.config.url, "cannot refresh the JWKS");
                    self.inner
                        .config
                        .min_refetch_interval
                        .max(MIN_RETRY)
                        .min(self.inner.config.refresh_interval)
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// The usable keys of a JWKS document: RSA keys with a `kid`, meant for signatures (`use` absent
/// or `sig`) with algorithm RS256 (or none stated). Others are skipped.
pub fn parse_jwks(document: &serde_json::Value) -> Result<KeyMap, JwksError> {
    let entries = document
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| JwksError::Unavailable("the JWKS has no `keys` array".to_owned()))?;
    let mut keys = HashMap::new();
    for entry in entries {
        let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
            continue;
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        if !matches!(jwk.algorithm, AlgorithmParameters::RSA(_)) {
            continue;
        }
        if !matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::RS256)) {
            continue;
        }
        if !matches!(
            jwk.common.public_key_use,
            None | Some(PublicKeyUse::Signature)
        ) {
            continue;
        }
        if let Ok(key) = DecodingKey::from_jwk(&jwk) {
            keys.insert(kid, Arc::new(key));
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_of_other_kinds_and_algorithms_are_skipped() {
        let doc = serde_json::json!({ "keys": [
            { "kty": "RSA", "kid": "a", "alg": "RS256", "use": "sig", "n": "sXch", "e": "AQAB" },
            { "kty": "RSA", "kid": "b", "alg": "RS512", "n": "sXch", "e": "AQAB" },
            { "kty": "RSA", "alg": "RS256", "n": "sXch", "e": "AQAB" },
            { "kty": "RSA", "kid": "c", "use": "enc", "n": "sXch", "e": "AQAB" },
            { "kty": "oct", "kid": "d", "k": "c2VjcmV0" },
            { "kty": "weird", "kid": "e" }
        ]});
        let keys = parse_jwks(&doc).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), vec!["a"]);
    }

    #[test]
    fn a_document_without_keys_is_refused() {
        assert!(parse_jwks(&serde_json::json!({ "nope": [] })).is_err());
    }

    #[tokio::test]
    async fn tokens_without_kid_or_with_other_algorithms_are_malformed() {
        let verifier =
            JwksVerifier::with_keys(JwksConfig::new("http://127.0.0.1:1/jwks"), vec![]).unwrap();
        let hs = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &serde_json::json!({ "sub": "x" }),
            &jsonwebtoken::EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert!(matches!(
            verifier.verify(&hs).await,
            Err(JwksError::Malformed(_))
        ));
        assert!(matches!(
            verifier.verify("not.a.jwt").await,
            Err(JwksError::Malformed(_))
        ));
        let long = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert!(matches!(
            verifier.verify(&long).await,
            Err(JwksError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn an_unreachable_jwks_makes_verification_unavailable_and_refetches_are_spaced() {
        let verifier = JwksVerifier::new(JwksConfig::new("http://127.0.0.1:1/jwks"), None).unwrap();
        let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
        header.kid = Some("k1".to_owned());
        let token = format!(
            "{}.{}.{}",
            b64(&serde_json::to_vec(&header).unwrap()),
            b64(br#"{"sub":"x"}"#),
            b64(b"sig")
        );
        let first = verifier.verify(&token).await;
        assert!(matches!(first, Err(JwksError::Unavailable(_))), "{first:?}");
        // Within the refetch interval no second fetch happens, and the answer stays "unavailable".
        let second = verifier.verify(&token).await;
        assert!(
            matches!(second, Err(JwksError::Unavailable(_))),
            "{second:?}"
        );
    }

    fn b64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}

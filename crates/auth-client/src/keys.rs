use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

use crate::verified::VerifiedTokens;
use crate::{INTERNAL_AUDIENCE, InternalClaims};

/// Seconds of clock skew tolerated on `exp` by the full check.
const LEEWAY_SECS: u64 = 5;

/// Why an internal key or token was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A PEM that is not an Ed25519 key.
    #[error("invalid Ed25519 key: {0}")]
    InvalidKey(String),
    /// This holder has only the public key.
    #[error("no private key configured for minting internal tokens")]
    CannotMint,
    /// Signing failed.
    #[error("could not sign the internal token: {0}")]
    Signing(String),
    /// Missing, malformed, forged, expired or for another audience.
    #[error("invalid internal token: {0}")]
    InvalidToken(String),
}

/// The internal key pair: every service has the public half; the gateway and services that call
/// peers also hold the private half.
///
/// Verification remembers the tokens that passed it (shared by clones, bounded, each until its
/// `exp`), because the gateway sends the same token with every request of a caller and an
/// Ed25519 check costs more than the rest of a small request; see [`InternalKeys::verify`].
///
/// Cloning is one reference count: services hand the keys to their middleware as axum state,
/// which clones it for every request.
#[derive(Clone)]
pub struct InternalKeys {
    inner: Arc<Inner>,
}

struct Inner {
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: i64,
    verified: VerifiedTokens,
}

impl std::fmt::Debug for InternalKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InternalKeys")
            .field("can_mint", &self.inner.encoding.is_some())
            .field("ttl_secs", &self.inner.ttl_secs)
            .finish()
    }
}

impl InternalKeys {
    /// Keys from PEM text; tokens minted live `ttl_secs`.
    pub fn from_pem(
        public_pem: &str,
        private_pem: Option<&str>,
        ttl_secs: i64,
    ) -> Result<Self, KeyError> {
        let decoding = DecodingKey::from_ed_pem(public_pem.as_bytes())
            .map_err(|e| KeyError::InvalidKey(e.to_string()))?;
        let encoding = private_pem
            .map(|pem| {
                EncodingKey::from_ed_pem(pem.as_bytes())
                    .map_err(|e| KeyError::InvalidKey(e.to_string()))
            })
            .transpose()?;
        // Pinned to EdDSA: a token claiming any other algorithm (none, HS256, RS256) fails.
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[INTERNAL_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "aud", "iat"]);
        validation.leeway = LEEWAY_SECS;
        Ok(Self {
            inner: Arc::new(Inner {
                encoding,
                decoding,
                validation,
                ttl_secs,
                verified: VerifiedTokens::new(),
            }),
        })
    }

    /// The development pair (local runs and tests only).
    pub fn development() -> Self {
        match Self::from_pem(
            crate::DEV_PUBLIC_KEY_PEM,
            Some(crate::DEV_PRIVATE_KEY_PEM),
            60,
        ) {
            Ok(keys) => keys,
            Err(error) => unreachable!("the embedded development keys are valid: {error}"),
        }
    }

    /// How long a minted token lives, in seconds.
    pub fn ttl_secs(&self) -> i64 {
        self.inner.ttl_secs
    }

    /// Whether these keys can mint tokens.
    pub fn can_mint(&self) -> bool {
        self.inner.encoding.is_some()
    }

    /// Signs `claims`, setting `iat` now and `exp` after the configured lifetime.
    pub fn mint(&self, mut claims: InternalClaims) -> Result<String, KeyError> {
        let key = self.inner.encoding.as_ref().ok_or(KeyError::CannotMint)?;
        let now = chrono::Utc::now().timestamp();
        claims.iat = now;
        claims.exp = now + self.inner.ttl_secs;
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, key)
            .map_err(|e| KeyError::Signing(e.to_string()))
    }

    /// Verifies a token's signature, algorithm, audience and expiry.
    ///
    /// A token that passed before is answered from memory, with the same claims, until its `exp`
    /// (the full check would accept it `LEEWAY_SECS` longer); only the exact text of a verified
    /// token matches, so anything altered is checked in full.
    pub fn verify(&self, token: &str) -> Result<InternalClaims, KeyError> {
        self.verify_at(token, chrono::Utc::now().timestamp())
    }

    /// [`Self::verify`] as of `now` (Unix seconds).
    fn verify_at(&self, token: &str, now: i64) -> Result<InternalClaims, KeyError> {
        if let Some(claims) = self.inner.verified.get(token, now) {
            return Ok(claims);
        }
        let claims = jsonwebtoken::decode::<InternalClaims>(
            token,
            &self.inner.decoding,
            &self.inner.validation,
        )
        .map(|data| data.claims)
        .map_err(|e| KeyError::InvalidToken(e.to_string()))?;
        // jsonwebtoken judges expiry by the system clock; this holds it to `now` as well.
        if claims.exp.saturating_add(LEEWAY_SECS as i64) < now {
            return Err(KeyError::InvalidToken("ExpiredSignature".to_owned()));
        }
        self.inner.verified.insert(token, &claims, now);
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use base64_like::encode as b64;
    use uuid::Uuid;

    use super::*;
    use crate::Role;

    mod base64_like {
        // A tiny URL-safe base64 encoder for forging tokens in tests.
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        pub fn encode(input: &[u8]) -> String {
            let mut out = String::new();
            for chunk in input.chunks(3) {
                let b = [
                    chunk[0],
                    *chunk.get(1).unwrap_or(&0),
                    *chunk.get(2).unwrap_or(&0),
                ];
                let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
                let chars = chunk.len() + 1;
                for i in 0..chars {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                }
            }
            out
        }
    }

    fn user_claims() -> InternalClaims {
        InternalClaims::user("gateway", Uuid::now_v7(), Role::Customer, Uuid::now_v7())
            .with_request_id("req-1")
    }

    #[test]
    fn minted_tokens_verify_with_their_claims() {
        let keys = InternalKeys::development();
        let claims = user_claims();
        let token = keys.mint(claims.clone()).unwrap();
        let verified = keys.verify(&token).unwrap();
        assert_eq!(verified.sub, claims.sub);
        assert_eq!(verified.role, Some(Role::Customer));
        assert_eq!(verified.rid.as_deref(), Some("req-1"));
        assert!(verified.exp > verified.iat);
        assert_eq!(verified.user_id().map(|u| u.to_string()), claims.sub);
    }

    #[test]
    fn public_only_keys_verify_but_cannot_mint() {
        let keys = InternalKeys::from_pem(crate::DEV_PUBLIC_KEY_PEM, None, 60).unwrap();
        assert!(matches!(
            keys.mint(user_claims()),
            Err(KeyError::CannotMint)
        ));
        let token = InternalKeys::development().mint(user_claims()).unwrap();
        assert!(keys.verify(&token).is_ok());
    }

    #[test]
    fn alg_none_is_refused() {
        let keys = InternalKeys::development();
        let mut claims = user_claims();
        claims.iat = chrono::Utc::now().timestamp();
        claims.exp = claims.iat + 60;
        let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
        let body = b64(&serde_json::to_vec(&claims).unwrap());
        assert!(keys.verify(&format!("{header}.{body}.")).is_err());
    }

    #[test]
    fn hs256_signed_with_the_public_key_is_refused() {
        let keys = InternalKeys::development();
        let mut claims = user_claims();
        claims.iat = chrono::Utc::now().timestamp();
        claims.exp = claims.iat + 60;
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(crate::DEV_PUBLIC_KEY_PEM.as_bytes()),
        )
        .unwrap();
        assert!(keys.verify(&forged).is_err());
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let keys = InternalKeys::development();
        let token = keys.mint(user_claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut claims = user_claims();
        claims.role = Some(Role::SuperAdmin);
        claims.iat = chrono::Utc::now().timestamp();
        claims.exp = claims.iat + 60;
        let body = b64(&serde_json::to_vec(&claims).unwrap());
        assert!(
            keys.verify(&format!("{}.{body}.{}", parts[0], parts[2]))
                .is_err()
        );
    }

    #[test]
    fn an_expired_token_is_refused() {
        let keys = InternalKeys::from_pem(
            crate::DEV_PUBLIC_KEY_PEM,
            Some(crate::DEV_PRIVATE_KEY_PEM),
            -60,
        )
        .unwrap();
        let token = keys.mint(user_claims()).unwrap();
        assert!(InternalKeys::development().verify(&token).is_err());
    }

    #[test]
    fn a_token_signed_by_another_key_is_refused() {
        // A different, valid Ed25519 key (RFC 8032 test vector 1 seed, wrapped as PKCS#8).
        let other = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n";
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            &{
                let mut c = user_claims();
                c.iat = chrono::Utc::now().timestamp();
                c.exp = c.iat + 60;
                c
            },
            &EncodingKey::from_ed_pem(other.as_bytes()).unwrap(),
        )
        .unwrap();
        assert!(InternalKeys::development().verify(&forged).is_err());
    }

    fn minted(keys: &InternalKeys) -> (String, InternalClaims) {
        let token = keys.mint(user_claims()).unwrap();
        let claims = keys.verify(&token).unwrap();
        (token, claims)
    }

    #[test]
    fn a_verified_token_is_remembered_with_its_claims_by_every_clone() {
        let keys = InternalKeys::development();
        let (token, claims) = minted(&keys);
        assert_eq!(keys.inner.verified.len(), 1);
        let now = chrono::Utc::now().timestamp();
        assert_eq!(keys.inner.verified.get(&token, now), Some(claims.clone()));
        let clone = keys.clone();
        assert_eq!(clone.verify(&token).unwrap(), claims);
        assert_eq!(clone.inner.verified.len(), 1, "a hit adds nothing");
        // Other keys have their own memory: a token is never vouched for by another key set.
        let other = InternalKeys::from_pem(crate::DEV_PUBLIC_KEY_PEM, None, 60).unwrap();
        assert_eq!(other.inner.verified.len(), 0);
    }

    #[test]
    fn a_remembered_token_is_refused_once_expired() {
        let keys = InternalKeys::development();
        let (token, claims) = minted(&keys);
        assert!(keys.inner.verified.get(&token, claims.exp - 1).is_some());
        assert!(
            keys.inner.verified.get(&token, claims.exp).is_none(),
            "the memory ends at exp"
        );
        // Past exp and the leeway, the token is refused although it was verified before.
        let err = keys.verify_at(&token, claims.exp + 6).unwrap_err();
        assert!(matches!(err, KeyError::InvalidToken(_)), "{err}");
        // Within the leeway the full check still accepts it, as before the cache, without
        // remembering it again.
        assert_eq!(keys.verify_at(&token, claims.exp + 1).unwrap(), claims);
        assert!(keys.inner.verified.get(&token, claims.exp + 1).is_none());
    }

    #[test]
    fn altered_tokens_are_never_answered_from_memory() {
        let keys = InternalKeys::development();
        let (token, _) = minted(&keys);
        let parts: Vec<&str> = token.split('.').collect();
        // Another payload under the remembered signature.
        let mut claims = user_claims();
        claims.role = Some(Role::SuperAdmin);
        claims.iat = chrono::Utc::now().timestamp();
        claims.exp = claims.iat + 60;
        let body = b64(&serde_json::to_vec(&claims).unwrap());
        let payload_swapped = format!("{}.{body}.{}", parts[0], parts[2]);
        // The remembered payload with one signature character changed.
        let mut signature = parts[2].to_owned();
        let last = signature.pop().unwrap();
        signature.push(if last == 'A' { 'B' } else { 'A' });
        let signature_changed = format!("{}.{}.{signature}", parts[0], parts[1]);
        // A prefix and an extension of the remembered text.
        let truncated = token[..token.len() - 1].to_owned();
        let extended = format!("{token}A");
        for forged in [payload_swapped, signature_changed, truncated, extended] {
            assert!(keys.verify(&forged).is_err(), "{forged}");
        }
        assert_eq!(
            keys.inner.verified.len(),
            1,
            "refused tokens are not remembered"
        );
        assert!(keys.verify(&token).is_ok());
    }

    #[test]
    fn the_memory_is_bounded() {
        let keys = InternalKeys::development();
        let now = chrono::Utc::now().timestamp();
        let claims = {
            let mut c = user_claims();
            c.iat = now;
            c.exp = now + 60;
            c
        };
        for i in 0..(crate::verified::VerifiedTokens::CAPACITY * 2) {
            keys.inner
                .verified
                .insert(&format!("token-{i}"), &claims, now);
            assert!(keys.inner.verified.len() <= crate::verified::VerifiedTokens::CAPACITY);
        }
        // Entries that are already expired are not stored at all.
        let fresh = InternalKeys::development();
        fresh.inner.verified.insert("expired", &claims, claims.exp);
        assert_eq!(fresh.inner.verified.len(), 0);
    }

    #[test]
    fn service_tokens_name_the_service() {
        let keys = InternalKeys::development();
        let token = keys.mint(InternalClaims::service("notification")).unwrap();
        let claims = keys.verify(&token).unwrap();
        assert_eq!(claims.service_name(), Some("notification"));
        assert_eq!(claims.user_id(), None);
    }
}

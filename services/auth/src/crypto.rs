//! The primitives: argon2id password hashes, token hashes, HMACs, random secrets and the cipher
//! that keeps signing keys encrypted at rest.

use std::sync::Arc;

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// Why hashing or a cipher operation failed (never for a wrong password: that is `Ok(false)`).
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// argon2 refused its input or parameters.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The blocking task died.
    #[error("password hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// Encryption or decryption failed (a wrong key or tampered data).
    #[error("signing key cipher failed")]
    Cipher,
}

/// argon2id with OWASP's parameters (m = 19456 KiB, t = 2, p = 1), run on the blocking pool and
/// bounded to a few at a time so a burst of logins cannot exhaust memory (19 MiB each).
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
}

/// What a login with an unknown email is verified against, so both paths of a login cost the
/// same: an argon2id hash with [`argon2`]'s parameters of a random password nobody kept. A
/// constant rather than a hash made at start-up: that cost a third of a second of start-up and
/// left argon2's 19 MiB of working memory resident in an idle service. Knowing its password
/// would gain nothing: an unknown email never signs in.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$d19JxtJWSxEThitO7OWabg$DLYs3dawcja7N7xyQUzFZwNtmhFE1HxREuRZtL3fAWU";

fn argon2() -> Argon2<'static> {
    // OWASP Password Storage Cheat Sheet, argon2id option 2 (= argon2's defaults).
    let params = Params::new(19_456, 2, 1, None).unwrap_or(Params::DEFAULT);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl PasswordHasher {
    /// A hasher allowing `concurrency` hashes at once (at least one).
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// The argon2id PHC string of `password`, with a fresh salt.
    pub async fn hash(&self, password: &str) -> Result<String, CryptoError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| CryptoError::Hash(e.to_string()))?;
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_blocking(&password)).await?
    }

    /// Whether `password` matches `hash`; with no hash (unknown user), a dummy hash is checked so
    /// the answer takes as long, and is `false`.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, CryptoError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| CryptoError::Hash(e.to_string()))?;
        let known = hash.is_some();
        let hash = hash.unwrap_or(DUMMY_HASH).to_owned();
        let password = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || {
            // A stored hash that does not parse never matches.
            argon2()
                .verify_password(password.as_bytes(), hash.as_str())
                .is_ok()
        })
        .await?;
        Ok(known && matches)
    }
}

/// One argon2id hash outside a running service (`create_admin`).
pub async fn hash_password(password: &str) -> Result<String, CryptoError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await?
}

fn hash_blocking(password: &str) -> Result<String, CryptoError> {
    argon2()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| CryptoError::Hash(e.to_string()))
}

/// 32 random bytes, base64url without padding (refresh tokens).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A uniformly random six-digit code.
pub fn otp_code() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// SHA-256 of a token (refresh tokens are 256 random bits, so an unkeyed hash suffices).
pub fn sha256(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Keyed hashes for values with little entropy kept in Redis (OTPs, emails, client
/// addresses): without the key, a leaked Redis reveals none of them.
#[derive(Clone)]
pub struct Hmacer {
    key: Arc<Vec<u8>>,
}

impl Hmacer {
    /// An HMAC-SHA256 keyed with `secret`.
    pub fn new(secret: &str) -> Self {
        Self {
            key: Arc::new(secret.as_bytes().to_vec()),
        }
    }

    /// Hex HMAC of the parts, each length-prefixed so that no two inputs collide.
    pub fn hex(&self, parts: &[&str]) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            // HMAC accepts keys of any length.
            unreachable!("HMAC-SHA256 takes any key length");
        };
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        hex::encode(mac.finalize().into_bytes())
    }
}

/// AES-256-GCM under the SHA-256 of the configured secret; the output is `nonce || ciphertext`.
#[derive(Clone)]
pub struct KeyCipher {
    cipher: Arc<Aes256Gcm>,
}

const NONCE_LEN: usize = 12;

impl KeyCipher {
    /// A cipher keyed by `secret`.
    pub fn new(secret: &str) -> Self {
        let key = Sha256::digest(secret.as_bytes());
        let Ok(cipher) = Aes256Gcm::new_from_slice(&key) else {
            unreachable!("SHA-256 output is a valid AES-256 key");
        };
        Self {
            cipher: Arc::new(cipher),
        }
    }

    /// Encrypts `plaintext`, binding it to `aad`.
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce = Nonce::generate();
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Cipher)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Decrypts what [`encrypt`](Self::encrypt) made with the same `aad`.
    pub fn decrypt(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < NONCE_LEN {
            return Err(CryptoError::Cipher);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| CryptoError::Cipher)?;
        self.cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Cipher)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn passwords_verify_against_their_hash_only() {
        let hasher = PasswordHasher::new(2);
        let hash = hasher.hash("correct horse battery").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            hasher
                .verify("correct horse battery", Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify("wrong horse battery", Some(&hash))
                .await
                .unwrap()
        );
        assert!(!hasher.verify("correct horse battery", None).await.unwrap());
        assert!(!hasher.verify("x", Some("not a hash")).await.unwrap());
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let parsed = argon2::PasswordHash::new(DUMMY_HASH).unwrap();
        let params = Params::try_from(&parsed).unwrap();
        let ours = argon2().params().clone();
        assert_eq!(parsed.algorithm, argon2::Algorithm::Argon2id.ident());
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (ours.m_cost(), ours.t_cost(), ours.p_cost())
        );
        assert_eq!(
            parsed.hash.map(|h| h.len()),
            Some(argon2::Params::DEFAULT_OUTPUT_LEN)
        );
    }

    #[test]
    fn the_key_cipher_round_trips_and_detects_tampering() {
        let cipher = KeyCipher::new("secret");
        let sealed = cipher.encrypt(b"private key", b"kid-1").unwrap();
        assert_eq!(cipher.decrypt(&sealed, b"kid-1").unwrap(), b"private key");
        assert!(cipher.decrypt(&sealed, b"kid-2").is_err());
        assert!(KeyCipher::new("other").decrypt(&sealed, b"kid-1").is_err());
    }

    #[test]
    fn codes_have_six_digits_and_tokens_256_bits() {
        for _ in 0..100 {
            let code = otp_code();
            assert_eq!(code.len(), 6);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
        assert_eq!(URL_SAFE_NO_PAD.decode(random_token()).unwrap().len(), 32);
    }

    #[test]
    fn hmac_parts_do_not_run_together() {
        let h = Hmacer::new("k");
        assert_ne!(h.hex(&["ab", "c"]), h.hex(&["a", "bc"]));
        assert_eq!(h.hex(&["a"]), h.hex(&["a"]));
    }
}

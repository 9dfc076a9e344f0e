//! Access-token signing keys: RS256 (RSA-2048), stored in the database with the private half
//! encrypted, published at `/.well-known/jwks.json`, rotated without downtime.
//!
//! Exactly one key is *active* (not retired) and signs new tokens. Rotating retires it and
//! activates a fresh one in one transaction; a retired key stays published (and keeps verifying)
//! until `retired_at + access-token TTL + grace`, by which time every token it signed has
//! expired. Each replica caches the keys and reloads them every [`RELOAD_EVERY`], so after a
//! rotation elsewhere it may sign with the retired key for that long: the grace covers it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use auth_client::AccessClaims;
use auth_client::access::{ACCESS_AUDIENCE, ACCESS_ISSUER};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use service_kit::{Caller, Role};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::crypto::KeyCipher;
use crate::error::AuthResult;

/// How often a replica re-reads the keys (to notice rotations made elsewhere).
pub const RELOAD_EVERY: Duration = Duration::from_secs(30);
/// How long past `retired_at + access TTL` a retired key stays published.
pub const PUBLICATION_GRACE: Duration = Duration::from_secs(60);
/// Serialises key creation and rotation across replicas.
const KEYS_LOCK: i64 = 0x6175_7468_6b65_7973; // "authkeys"
/// RSA modulus size.
const RSA_BITS: usize = 2048;

/// Why an access token was refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Malformed, forged, expired, another algorithm, issuer or audience.
    #[error("invalid access token: {0}")]
    Invalid(String),
    /// Signed with a key this service does not (or no longer) publish.
    #[error("unknown signing key")]
    UnknownKey,
}

#[derive(Clone)]
struct ActiveKey {
    kid: String,
    encoding: EncodingKey,
}

#[derive(Clone)]
struct Loaded {
    at: Instant,
    active: Option<ActiveKey>,
    verifying: HashMap<String, DecodingKey>,
}

/// The keys of this replica: the active signing key and every published verification key,
/// cached and reloaded from the database.
#[derive(Clone)]
pub struct KeyStore {
    pool: PgPool,
    cipher: KeyCipher,
    published_for: Duration,
    loaded: Arc<RwLock<Loaded>>,
    reloading: Arc<tokio::sync::Mutex<()>>,
    validation: Arc<Validation>,
}

impl KeyStore {
    /// Makes sure an active key exists (generating one on the very first start), then loads.
    pub async fn open(
        pool: PgPool,
        cipher: KeyCipher,
        access_ttl: Duration,
    ) -> anyhow::Result<Self> {
        ensure_active_key(&pool, &cipher).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[ACCESS_ISSUER]);
        validation.set_audience(&[ACCESS_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 5;
        let store = Self {
            pool,
            cipher,
            published_for: access_ttl + PUBLICATION_GRACE,
            loaded: Arc::new(RwLock::new(Loaded {
                at: Instant::now(),
                active: None,
                verifying: HashMap::new(),
            })),
            reloading: Arc::new(tokio::sync::Mutex::new(())),
            validation: Arc::new(validation),
        };
        store.reload().await?;
        Ok(store)
    }

    fn snapshot(&self) -> Loaded {
        self.loaded
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Re-reads the keys now.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let _guard = self.reloading.lock().await;
        self.reload_locked().await
    }

    async fn reload_locked(&self) -> anyhow::Result<()> {
        let current = self.snapshot();
        let published = published_keys(&self.pool, self.published_for).await?;
        let verifying = published
            .iter()
            .map(|key| {
                DecodingKey::from_rsa_components(&key.n, &key.e)
                    .map(|decoding| (key.kid.clone(), decoding))
            })
            .collect::<Result<HashMap<_, _>, _>>()?;
        let active_row = sqlx::query!(
            "SELECT kid, private_key_encrypted FROM signing_keys WHERE retired_at IS NULL"
        )
        .fetch_optional(&self.pool)
        .await?;
        let active = match (active_row, current.active) {
            (Some(row), Some(cached)) if cached.kid == row.kid => Some(cached),
            (Some(row), _) => {
                let pem = self
                    .cipher
                    .decrypt(&row.private_key_encrypted, row.kid.as_bytes())?;
                Some(ActiveKey {
                    encoding: EncodingKey::from_rsa_pem(&pem)?,
                    kid: row.kid,
                })
            }
            (None, cached) => cached,
        };
        let mut loaded = self
            .loaded
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *loaded = Loaded {
            at: Instant::now(),
            active,
            verifying,
        };
        Ok(())
    }

    /// Reloads when the cache is older than `max_age`, unless another task is already at it;
    /// a failed reload keeps the keys in hand.
    async fn refresh_if_older_than(&self, max_age: Duration) {
        if self.snapshot().at.elapsed() < max_age {
            return;
        }
        let Ok(_guard) = self.reloading.try_lock() else {
            return;
        };
        if let Err(error) = self.reload_locked().await {
            tracing::warn!(
                error = format!("{error:#}"),
                "could not reload signing keys"
            );
        }
    }

    /// Signs `claims` with the active key (RS256, `kid` in the header).
    pub async fn sign(&self, claims: &AccessClaims) -> AuthResult<String> {
        self.refresh_if_older_than(RELOAD_EVERY).await;
        let Some(active) = self.snapshot().active else {
            return Err(anyhow::anyhow!("no active signing key").into());
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(active.kid.clone());
        jsonwebtoken::encode(&header, claims, &active.encoding)
            .map_err(|e| anyhow::anyhow!("signing the access token failed: {e}").into())
    }

    /// The kid of the key signing new tokens.
    pub fn active_kid(&self) -> Option<String> {
        self.snapshot().active.map(|active| active.kid)
    }

    /// Verifies an access token: RS256 only, a published `kid`, issuer, audience and expiry.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| VerifyError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(VerifyError::Invalid(format!(
                "algorithm {:?} refused",
                header.alg
            )));
        }
        let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
        self.refresh_if_older_than(RELOAD_EVERY).await;
        let mut key = self.snapshot().verifying.get(&kid).cloned();
        if key.is_none() {
            // Perhaps rotated elsewhere since the last reload (at most one reload a second).
            self.refresh_if_older_than(Duration::from_secs(1)).await;
            key = self.snapshot().verifying.get(&kid).cloned();
        }
        let key = key.ok_or(VerifyError::UnknownKey)?;
        jsonwebtoken::decode::<AccessClaims>(token, &key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| VerifyError::Invalid(e.to_string()))
    }
}

/// A published public key.
#[derive(Debug, Clone)]
pub struct PublishedKey {
    /// Key id.
    pub kid: String,
    /// Modulus, base64url.
    pub n: String,
    /// Exponent, base64url.
    pub e: String,
}

/// Keys that may still verify a token: the active one and those retired less than
/// `published_for` ago, newest first.
pub async fn published_keys(
    pool: &PgPool,
    published_for: Duration,
) -> Result<Vec<PublishedKey>, sqlx::Error> {
    let secs = published_for.as_secs_f64();
    let rows = sqlx::query!(
        r#"SELECT kid, public_n, public_e FROM signing_keys
           WHERE retired_at IS NULL OR retired_at > now() - make_interval(secs => $1)
           ORDER BY activated_at DESC"#,
        secs
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| PublishedKey {
            kid: row.kid,
            n: row.public_n,
            e: row.public_e,
        })
        .collect())
}

struct NewKey {
    kid: String,
    private_key_encrypted: Vec<u8>,
    n: String,
    e: String,
}

/// Generates an RSA-2048 key on the blocking pool; its kid is its RFC 7638 JWK thumbprint.
async fn generate_key(cipher: &KeyCipher) -> anyhow::Result<NewKey> {
    let (pem, n, e) = tokio::task::spawn_blocking(|| -> anyhow::Result<_> {
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS)?;
        let pem = key.to_pkcs8_pem(LineEnding::LF)?;
        let n = URL_SAFE_NO_PAD.encode(key.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(key.e().to_bytes_be());
        Ok((pem.as_bytes().to_vec(), n, e))
    })
    .await??;
    let thumbprint_input = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint_input.as_bytes()));
    let private_key_encrypted = cipher.encrypt(&pem, kid.as_bytes())?;
    Ok(NewKey {
        kid,
        private_key_encrypted,
        n,
        e,
    })
}

async fn insert_key(conn: &mut sqlx::PgConnection, key: &NewKey) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"INSERT INTO signing_keys (kid, private_key_encrypted, public_n, public_e)
           VALUES ($1, $2, $3, $4)"#,
        key.kid,
        key.private_key_encrypted,
        key.n,
        key.e
    )
    .execute(conn)
    .await?;
    Ok(())
}

async fn lock_keys(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", KEYS_LOCK)
        .execute(conn)
        .await?;
    Ok(())
}

/// Creates the first key when there is no active one; returns the active kid.
pub async fn ensure_active_key(pool: &PgPool, cipher: &KeyCipher) -> anyhow::Result<String> {
    if let Some(kid) = sqlx::query_scalar!("SELECT kid FROM signing_keys WHERE retired_at IS NULL")
        .fetch_optional(pool)
        .await?
    {
        return Ok(kid);
    }
    let key = generate_key(cipher).await?;
    let mut tx = pool.begin().await?;
    lock_keys(&mut tx).await?;
    // Another replica may have created one while this one generated.
    if let Some(kid) = sqlx::query_scalar!("SELECT kid FROM signing_keys WHERE retired_at IS NULL")
        .fetch_optional(&mut *tx)
        .await?
    {
        return Ok(kid);
    }
    insert_key(&mut tx, &key).await?;
    tx.commit().await?;
    tracing::info!(kid = %key.kid, "generated the first access-token signing key");
    Ok(key.kid)
}

/// Retires the active key and activates a new one; keys whose tokens expired long ago are
/// deleted. Returns the new kid.
pub async fn rotate(
    pool: &PgPool,
    cipher: &KeyCipher,
    access_ttl: Duration,
) -> anyhow::Result<String> {
    let key = generate_key(cipher).await?;
    let mut tx = pool.begin().await?;
    lock_keys(&mut tx).await?;
    sqlx::query!("UPDATE signing_keys SET retired_at = now() WHERE retired_at IS NULL")
        .execute(&mut *tx)
        .await?;
    insert_key(&mut tx, &key).await?;
    // Expired keys verify nothing; keep a day of history, then drop their private halves.
    let keep_secs = (access_ttl + PUBLICATION_GRACE).as_secs_f64() + 86_400.0;
    sqlx::query!(
        "DELETE FROM signing_keys WHERE retired_at < now() - make_interval(secs => $1)",
        keep_secs
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(kid = %key.kid, "rotated the access-token signing key");
    Ok(key.kid)
}

/// One public key of the JWKS.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Jwk {
    /// Key type: `RSA`.
    #[schema(example = "RSA")]
    pub kty: String,
    /// Intended use: `sig`.
    #[serde(rename = "use")]
    #[schema(example = "sig")]
    pub key_use: String,
    /// Algorithm: `RS256`.
    #[schema(example = "RS256")]
    pub alg: String,
    /// Key id, as in the `kid` header of the tokens it signed.
    pub kid: String,
    /// Modulus, base64url.
    pub n: String,
    /// Public exponent, base64url.
    pub e: String,
}

/// The JSON Web Key Set of access-token verification keys.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Jwks {
    /// Every key that may still verify an unexpired token, the active one first.
    pub keys: Vec<Jwk>,
}

/// The public keys verifying access tokens.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "keys",
    responses(
        (status = 200, description = "The published keys (cacheable for 5 minutes)", body = Jwks),
    )
)]
async fn jwks(State(state): State<AppState>) -> AuthResult<Response> {
    let keys = published_keys(&state.db, state.keys.published_for).await?;
    let body = Jwks {
        keys: keys
            .into_iter()
            .map(|key| Jwk {
                kty: "RSA".to_owned(),
                key_use: "sig".to_owned(),
                alg: "RS256".to_owned(),
                kid: key.kid,
                n: key.n,
                e: key.e,
            })
            .collect(),
    };
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(response)
}

/// The outcome of a rotation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rotated {
    /// The kid of the new active key.
    pub kid: String,
    /// When it became active.
    pub activated_at: DateTime<Utc>,
}

/// Rotates the signing key (SUPER_ADMIN): new tokens carry the new kid; tokens signed before
/// keep verifying until they expire.
#[utoipa::path(
    post,
    path = "/v1/auth/keys/rotate",
    tag = "keys",
    responses(
        (status = 200, description = "A new key is active", body = Rotated),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a SUPER_ADMIN", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn rotate_keys(State(state): State<AppState>, caller: Caller) -> AuthResult<Json<Rotated>> {
    caller.require(&[Role::SuperAdmin])?;
    let kid = rotate(
        &state.db,
        &state.keys.cipher,
        state.settings.access_token_ttl,
    )
    .await?;
    state.keys.reload().await?;
    tracing::info!(user_id = %caller.user_id, %kid, "signing key rotated by an administrator");
    Ok(Json(Rotated {
        kid,
        activated_at: Utc::now(),
    }))
}

/// The key routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(jwks))
        .routes(routes!(rotate_keys))
}

//! The internal tokens the gateway hands to services, minted once per caller and reused.
//!
//! Signing an Ed25519 token costs tens of microseconds — more than the rest of a proxied request.
//! A token says who the caller is (user, role, session, sign-in methods), not which request it
//! belongs to (that travels in `X-Request-Id`), so the same token serves every request of that
//! caller until it is half-way to expiry; then the next request mints a fresh one. Services see a
//! token with at least half its lifetime left, so clock skew and slow requests never expire it
//! mid-flight. The cache is bounded: a full shard is swept of stale entries, then cleared.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use auth_client::{AccessClaims, InternalClaims, InternalKeys, KeyError, Role};
use axum::http::HeaderValue;
use uuid::Uuid;

const SHARDS: usize = 16;
const MAX_PER_SHARD: usize = 1024;

/// Who a token vouches for, less its sign-in methods (kept with the token and compared on use,
/// so looking a caller up allocates nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Identity {
    Anonymous,
    User {
        user: Uuid,
        role: Role,
        session: Uuid,
    },
}

impl Identity {
    fn of(claims: Option<&AccessClaims>) -> Self {
        match claims {
            None => Self::Anonymous,
            Some(c) => Self::User {
                user: c.sub,
                role: c.role,
                session: c.sid,
            },
        }
    }

    fn claims(self, amr: &[String]) -> InternalClaims {
        match self {
            Self::Anonymous => InternalClaims::anonymous("gateway"),
            Self::User {
                user,
                role,
                session,
            } => InternalClaims::user("gateway", user, role, session).with_amr(amr.to_vec()),
        }
    }
}

/// A minted token and what it was minted for.
struct Minted {
    token: HeaderValue,
    amr: Vec<String>,
    at: Instant,
}

/// Mints internal tokens, reusing each caller's until it is half-way to expiry.
pub struct InternalTokens {
    keys: InternalKeys,
    reuse_for: Duration,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<Identity, Minted>>>,
}

impl InternalTokens {
    /// Tokens signed with `keys` (which must be able to mint).
    pub fn new(keys: InternalKeys) -> Self {
        let reuse_for = Duration::from_secs((keys.ttl_secs().max(0) / 2) as u64);
        Self {
            keys,
            reuse_for,
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// The token for a caller with these access-token claims (`None`: anonymous).
    pub fn for_caller(&self, claims: Option<&AccessClaims>) -> Result<HeaderValue, KeyError> {
        let identity = Identity::of(claims);
        let amr: &[String] = claims.map_or(&[], |c| &c.amr);
        let shard = &self.shards[(self.hasher.hash_one(identity) as usize) % SHARDS];
        let now = Instant::now();
        {
            let tokens = shard.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(minted) = tokens.get(&identity)
                && minted.amr == amr
                && now.duration_since(minted.at) < self.reuse_for
            {
                return Ok(minted.token.clone());
            }
        }
        let token = self.keys.mint(identity.claims(amr))?;
        let token = HeaderValue::try_from(token).map_err(|e| KeyError::Signing(e.to_string()))?;
        let mut tokens = shard.lock().unwrap_or_else(|e| e.into_inner());
        if tokens.len() >= MAX_PER_SHARD {
            tokens.retain(|_, minted| now.duration_since(minted.at) < self.reuse_for);
            if tokens.len() >= MAX_PER_SHARD {
                tokens.clear();
            }
        }
        tokens.insert(
            identity,
            Minted {
                token: token.clone(),
                amr: amr.to_vec(),
                at: now,
            },
        );
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn claims(role: Role) -> AccessClaims {
        AccessClaims {
            iss: "lomash-auth".to_owned(),
            aud: "lomash-api".to_owned(),
            sub: Uuid::now_v7(),
            role,
            sid: Uuid::now_v7(),
            amr: vec!["pwd".to_owned()],
            jti: Uuid::now_v7(),
            iat: 0,
            exp: i64::MAX,
        }
    }

    #[test]
    fn a_callers_token_is_reused_and_names_that_caller() {
        let tokens = InternalTokens::new(InternalKeys::development());
        let alice = claims(Role::Customer);
        let first = tokens.for_caller(Some(&alice)).unwrap();
        let second = tokens.for_caller(Some(&alice)).unwrap();
        assert_eq!(first, second);
        let verified = InternalKeys::development()
            .verify(first.to_str().unwrap())
            .unwrap();
        assert_eq!(verified.user_id(), Some(alice.sub));
        assert_eq!(verified.sid, Some(alice.sid));
        assert_eq!(verified.role, Some(Role::Customer));
        assert_eq!(verified.rid, None);
    }

    #[test]
    fn different_callers_never_share_a_token() {
        let tokens = InternalTokens::new(InternalKeys::development());
        let alice = claims(Role::Customer);
        let mut admin_alice = alice.clone();
        admin_alice.role = Role::Admin;
        let mut other_session = alice.clone();
        other_session.sid = Uuid::now_v7();
        let anonymous = tokens.for_caller(None).unwrap();
        let a = tokens.for_caller(Some(&alice)).unwrap();
        let b = tokens.for_caller(Some(&admin_alice)).unwrap();
        let c = tokens.for_caller(Some(&other_session)).unwrap();
        let all = [&anonymous, &a, &b, &c];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
        let verified = InternalKeys::development()
            .verify(anonymous.to_str().unwrap())
            .unwrap();
        assert_eq!(verified.user_id(), None);
    }

    #[test]
    fn a_change_of_sign_in_methods_gets_a_token_naming_them() {
        let tokens = InternalTokens::new(InternalKeys::development());
        let password_only = claims(Role::Admin);
        let mut with_otp = password_only.clone();
        with_otp.amr = vec!["pwd".to_owned(), "otp".to_owned()];
        let first = tokens.for_caller(Some(&password_only)).unwrap();
        let second = tokens.for_caller(Some(&with_otp)).unwrap();
        assert_ne!(first, second);
        let keys = InternalKeys::development();
        assert_eq!(
            keys.verify(first.to_str().unwrap()).unwrap().amr,
            vec!["pwd".to_owned()]
        );
        assert_eq!(
            keys.verify(second.to_str().unwrap()).unwrap().amr,
            with_otp.amr
        );
        // The newer token is the one reused from then on.
        assert_eq!(tokens.for_caller(Some(&with_otp)).unwrap(), second);
    }

    #[test]
    fn a_token_past_half_its_life_is_replaced() {
        // A lifetime of 0 s means "never reuse".
        let keys = InternalKeys::from_pem(
            auth_client::DEV_PUBLIC_KEY_PEM,
            Some(auth_client::DEV_PRIVATE_KEY_PEM),
            0,
        )
        .unwrap();
        let tokens = InternalTokens::new(keys);
        let alice = claims(Role::Customer);
        let first = tokens.for_caller(Some(&alice)).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        let second = tokens.for_caller(Some(&alice)).unwrap();
        assert_ne!(first, second);
    }
}

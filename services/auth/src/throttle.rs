//! Failed-password throttling, in Redis.
//!
//! - **Per account** (keyed by an HMAC of the normalised email, so unknown addresses behave
//!   exactly like known ones): after `LOGIN_MAX_FAILURES` failures the email is locked for 30 s,
//!   doubling with every further failure up to `LOGIN_LOCK_MAX_SECS` (15 min). A lock always
//!   ends, so an attacker can delay the real user but never shut them out for good; a successful
//!   login clears the count. The count itself fades an hour after the last failure.
//! - **Per client address** (the gateway's last `X-Forwarded-For` hop): more than
//!   `LOGIN_IP_MAX_FAILURES` failures within `LOGIN_IP_WINDOW_SECS` refuse further attempts from
//!   it until the window ends (credential stuffing across many accounts).
//!
//! Throttled attempts get 429 with `Retry-After` *before* the password is checked, so a locked
//! account cannot be probed. If Redis is down, password checks answer 503 (fail closed).

use redis::Script;
use std::sync::LazyLock;

use crate::AppState;
use crate::account::User;
use crate::client::ClientMeta;
use crate::error::{AuthError, AuthResult};

/// Base of the exponential account lock.
const LOCK_BASE_SECS: u64 = 30;

/// KEYS: account lock, address counter. ARGV: address limit. Returns seconds to wait (0 = go).
static CHECK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local lock = redis.call('PTTL', KEYS[1])
        if lock > 0 then return math.ceil(lock / 1000) end
        local failures = tonumber(redis.call('GET', KEYS[2]) or '0')
        if failures >= tonumber(ARGV[1]) then
            local window = redis.call('PTTL', KEYS[2])
            if window > 0 then return math.ceil(window / 1000) end
            return 1
        end
        return 0
        ",
    )
});

/// KEYS: account counter, account lock, address counter.
/// ARGV: max failures, lock base, lock cap, counter TTL, address window.
static RECORD_FAILURE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local failures = redis.call('INCR', KEYS[1])
        redis.call('EXPIRE', KEYS[1], ARGV[4])
        if redis.call('INCR', KEYS[3]) == 1 then redis.call('EXPIRE', KEYS[3], ARGV[5]) end
        local max = tonumber(ARGV[1])
        if failures >= max then
            local secs = tonumber(ARGV[2]) * (2 ^ math.min(failures - max, 20))
            secs = math.min(secs, tonumber(ARGV[3]))
            redis.call('SET', KEYS[2], '1', 'EX', math.floor(secs))
        end
        return failures
        ",
    )
});

struct Keys {
    account_failures: String,
    account_lock: String,
    address_failures: String,
}

fn keys(state: &AppState, email: &str, meta: &ClientMeta) -> Keys {
    let account = state.hmac.hex(&["login-account", email]);
    let address = state.hmac.hex(&["login-address", &meta.ip_text()]);
    Keys {
        account_failures: state.redis.key("login-failures", &account),
        account_lock: state.redis.key("login-lock", &account),
        address_failures: state.redis.key("login-address-failures", &address),
    }
}

/// Normalises what the client typed as an email for keying (even when it is not a valid one).
pub(crate) fn account_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// 429 when the account or the address is throttled.
pub(crate) async fn check(state: &AppState, email: &str, meta: &ClientMeta) -> AuthResult<()> {
    let keys = keys(state, email, meta);
    let mut redis = state.redis.conn();
    let wait: u64 = CHECK
        .key(&keys.account_lock)
        .key(&keys.address_failures)
        .arg(state.settings.login_ip_max_failures)
        .invoke_async(&mut redis)
        .await?;
    if wait > 0 {
        return Err(AuthError::Throttled(wait));
    }
    Ok(())
}

/// Counts a failed password for the account and the address, locking when over the limit.
pub(crate) async fn record_failure(
    state: &AppState,
    email: &str,
    meta: &ClientMeta,
) -> AuthResult<()> {
    let keys = keys(state, email, meta);
    let settings = &state.settings;
    let lock_cap = settings.login_lock_max.as_secs();
    let counter_ttl = (2 * lock_cap).max(3600);
    let mut redis = state.redis.conn();
    let failures: u64 = RECORD_FAILURE
        .key(&keys.account_failures)
        .key(&keys.account_lock)
        .key(&keys.address_failures)
        .arg(settings.login_max_failures)
        .arg(LOCK_BASE_SECS)
        .arg(lock_cap)
        .arg(counter_ttl)
        .arg(settings.login_ip_window.as_secs())
        .invoke_async(&mut redis)
        .await?;
    if failures >= u64::from(settings.login_max_failures) {
        tracing::warn!(failures, "account locked after failed passwords");
    }
    Ok(())
}

/// Clears the account's failures and lock (after a successful login or a password reset).
pub(crate) async fn reset(state: &AppState, email: &str) -> AuthResult<()> {
    let account = state.hmac.hex(&["login-account", email]);
    let mut redis = state.redis.conn();
    redis::cmd("DEL")
        .arg(state.redis.key("login-failures", &account))
        .arg(state.redis.key("login-lock", &account))
        .query_async::<()>(&mut redis)
        .await?;
    Ok(())
}

/// Confirms a signed-in user's password before a sensitive change, under the same throttle as
/// login; a wrong one is a 422 on `field`.
pub(crate) async fn confirm_password(
    state: &AppState,
    user: &User,
    password: &str,
    meta: &ClientMeta,
    field: &str,
) -> AuthResult<()> {
    let email = account_key(&user.email);
    check(state, &email, meta).await?;
    if state
        .hasher
        .verify(password, user.password_hash.as_deref())
        .await?
    {
        return Ok(());
    }
    record_failure(state, &email, meta).await?;
    Err(AuthError::field(field, "is incorrect"))
}

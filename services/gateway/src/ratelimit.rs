//! Rate limits and the live-session check, with Redis as the shared count.
//!
//! Fixed windows in Redis: one counter per rule and client (`<prefix>:ratelimit:<rule>:ip:<ip>`
//! or `...:user:<id>`), advanced by a Lua script that also sets its expiry and — when the request
//! carries a token whose session is not in the ≤ 1 s positive cache — checks that the session key
//! exists.
//!
//! Generous rules are counted in **leases**: a gateway takes a small block of the window's
//! requests from Redis at once (`INCRBY n`, `n` about 2 % of the limit, at most 64) and hands them
//! out from memory until they are used up or the window ends, so a busy client costs one Redis
//! round trip per block rather than one per request. A gateway never admits more than Redis
//! granted it, so the limit is never exceeded; at worst the unused part of each replica's last
//! block is lost, and a client is refused slightly early (by fewer than `n` requests per replica).
//! The strict rules — login, registration, OTP — take blocks of one: exact, and checked in Redis
//! on every request.
//!
//! Anonymous callers are counted by IP (IPv6 by /64), signed-in callers by user id on general
//! routes; login, registration, OTP and tracking rules always count by IP.
//!
//! When Redis cannot be reached (or does not answer within `REDIS_TIMEOUT_MS`), requests that
//! carry a token get 503 — a session that cannot be checked is never let through — and so do the
//! login, registration and OTP routes; other anonymous requests fall back to an in-process
//! limiter with the same rules, counted in `gateway_rate_limit_fallback_total` and logged.
//! After a failure Redis is left alone for a second, so an outage costs no time per request.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use uuid::Uuid;

/// Which rule a route is limited by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// Everything else: generous, per IP for anonymous callers and per user for signed-in ones.
    #[default]
    Default,
    /// Account creation, per IP; refused when Redis is down.
    Register,
    /// Sign-in, per IP; refused when Redis is down.
    Login,
    /// Forgot/reset password, verify email, resend OTP, per IP; refused when Redis is down.
    Otp,
    /// Analytics tracking, per IP.
    Track,
}

impl RuleKind {
    /// The rule's name in keys and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Register => "register",
            Self::Login => "login",
            Self::Otp => "otp",
            Self::Track => "track",
        }
    }

    /// Whether the route is refused (rather than limited in-process) while Redis is down.
    pub fn fails_closed(self) -> bool {
        matches!(self, Self::Register | Self::Login | Self::Otp)
    }
}

/// `count` requests per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Requests allowed in one window.
    pub count: u64,
    /// The window.
    pub window: Duration,
}

impl Limit {
    /// `count` per `secs` seconds.
    pub const fn per_secs(count: u64, secs: u64) -> Self {
        Self {
            count,
            window: Duration::from_secs(secs),
        }
    }
}

impl FromStr for Limit {
    type Err = String;
    /// `<count>/<window>`: `5/60s`, `100/1m`, `3/1h`, `10/min`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("expected <count>/<window> such as 10/60s, 100/1m or 3/1h, not `{s}`");
        let (count, window) = s.trim().split_once('/').ok_or_else(bad)?;
        let count: u64 = count.trim().parse().map_err(|_| bad())?;
        let window = window.trim();
        let split = window
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(window.len());
        let (amount, unit) = window.split_at(split);
        let amount: u64 = if amount.is_empty() {
            1
        } else {
            amount.parse().map_err(|_| bad())?
        };
        let unit_secs = match unit {
            "s" | "sec" | "" => 1,
            "m" | "min" => 60,
            "h" | "hour" => 3600,
            _ => return Err(bad()),
        };
        if count == 0 || amount == 0 {
            return Err(bad());
        }
        Ok(Self {
            count,
            window: Duration::from_secs(amount * unit_secs),
        })
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}s", self.count, self.window.as_secs())
    }
}

/// The configured limits.
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    /// General routes, anonymous callers, per IP.
    pub default_ip: Limit,
    /// General routes, signed-in callers, per user.
    pub default_user: Limit,
    /// Registration, per IP.
    pub register: Limit,
    /// Login, per IP.
    pub login: Limit,
    /// OTP and password-reset routes, per IP.
    pub otp: Limit,
    /// Analytics tracking, per IP.
    pub track: Limit,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            default_ip: Limit::per_secs(600, 60),
            default_user: Limit::per_secs(1200, 60),
            register: Limit::per_secs(5, 60),
            login: Limit::per_secs(10, 60),
            otp: Limit::per_secs(5, 60),
            track: Limit::per_secs(100, 60),
        }
    }
}

/// What is counted: a client address or a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    /// An address (IPv6 reduced to its /64).
    Ip(IpAddr),
    /// A signed-in user.
    User(Uuid),
}

impl Subject {
    /// The subject for a client address: IPv4 as is, IPv6 by its /64 network.
    pub fn ip(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                Self::Ip(IpAddr::V6(bits.into()))
            }
            v4 => Self::Ip(v4),
        }
    }
}

impl RateLimits {
    /// The limit and the subject that counts for `rule`, given the client and the user if any.
    pub fn resolve(&self, rule: RuleKind, ip: IpAddr, user: Option<Uuid>) -> (Limit, Subject) {
        match (rule, user) {
            (RuleKind::Default, Some(user)) => (self.default_user, Subject::User(user)),
            (RuleKind::Default, None) => (self.default_ip, Subject::ip(ip)),
            (RuleKind::Register, _) => (self.register, Subject::ip(ip)),
            (RuleKind::Login, _) => (self.login, Subject::ip(ip)),
            (RuleKind::Otp, _) => (self.otp, Subject::ip(ip)),
            (RuleKind::Track, _) => (self.track, Subject::ip(ip)),
        }
    }
}

/// Where a client stands after a request was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// The limit of the window.
    pub limit: u64,
    /// Requests left in the window.
    pub remaining: u64,
    /// Seconds until the window resets (at least 1).
    pub reset_secs: u64,
    /// Whether this request is over the limit.
    pub exceeded: bool,
}

impl Quota {
    fn new(limit: Limit, count: u64, ttl: Duration) -> Self {
        Self {
            limit: limit.count,
            remaining: limit.count.saturating_sub(count),
            reset_secs: ttl.as_millis().div_ceil(1000).max(1) as u64,
            exceeded: count > limit.count,
        }
    }
}

/// The verdict on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Counted; the session (if any) is live.
    Pass(Quota),
    /// Over the limit.
    Limited(Quota),
    /// The session has ended (logged out, revoked, suspended, expired).
    SessionEnded,
    /// Redis is unreachable and this request cannot be let through without it.
    Unavailable,
}

/// The counter script: advances the counter by `ARGV[2]` (a lease; 0 when only the session is
/// checked), sets the window's expiry on first use (or when a key has somehow lost it), and
/// checks the session key when one is given.
const SCRIPT: &str = r"
local n = redis.call('INCRBY', KEYS[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
local live = -1
if KEYS[2] then
  live = redis.call('EXISTS', KEYS[2])
end
return {n, ttl, live}
";

/// How long Redis is left alone after it failed.
const REDIS_BACKOFF: Duration = Duration::from_secs(1);
/// How often the fallback is reported in the log while it is in use.
const FALLBACK_WARN_EVERY: Duration = Duration::from_secs(10);
const SHARDS: usize = 16;
const MAX_ENTRIES_PER_SHARD: usize = 4096;
/// How often the gate checks that Redis answers.
const HEALTH_PROBE_EVERY: Duration = Duration::from_millis(25);
/// How long a successful probe vouches for Redis: leased requests are handed out only while it
/// does, so once Redis stops answering every request goes back to asking it (and a signed-in one
/// gets 503) within this long.
const HEALTH_VOUCHES_FOR: Duration = Duration::from_millis(75);
/// The largest block of requests taken from Redis at once.
const MAX_LEASE: u64 = 64;

/// How many of a window's requests a gateway takes from Redis at once for `rule`.
fn lease_size(rule: RuleKind, limit: Limit) -> u64 {
    if rule.fails_closed() {
        1
    } else {
        (limit.count / 50).clamp(1, MAX_LEASE)
    }
}

/// Rate limits and session checks.
pub struct Gate {
    redis: redis::aio::ConnectionManager,
    script: redis::Script,
    key_prefix: String,
    session_prefix: String,
    limits: RateLimits,
    redis_timeout: Duration,
    sessions: SessionCache,
    leases: Leases,
    fallback: FallbackLimiter,
    epoch: Instant,
    /// Milliseconds since `epoch` until which Redis is not tried.
    redis_down_until: AtomicU64,
    /// Milliseconds since `epoch` of the last fallback warning.
    last_fallback_warn: AtomicU64,
    /// Milliseconds since `epoch` until which the last health probe vouches for Redis.
    redis_vouched_until: AtomicU64,
}

/// How the gate is set up.
pub struct GateConfig {
    /// Prefix of the gateway's own keys.
    pub key_prefix: String,
    /// Auth's Redis prefix, under which live sessions are mirrored.
    pub session_prefix: String,
    /// The limits.
    pub limits: RateLimits,
    /// Longest wait for Redis before it counts as down.
    pub redis_timeout: Duration,
    /// How long a live session is believed without asking Redis again (≤ 1 s).
    pub session_cache: Duration,
}

impl Gate {
    /// A gate over `redis`.
    pub fn new(redis: redis::aio::ConnectionManager, config: GateConfig) -> Self {
        Self {
            redis,
            script: redis::Script::new(SCRIPT),
            key_prefix: config.key_prefix,
            session_prefix: config.session_prefix,
            limits: config.limits,
            redis_timeout: config.redis_timeout,
            sessions: SessionCache::new(config.session_cache),
            leases: Leases::new(),
            fallback: FallbackLimiter::new(),
            epoch: Instant::now(),
            redis_down_until: AtomicU64::new(0),
            last_fallback_warn: AtomicU64::new(0),
            redis_vouched_until: AtomicU64::new(0),
        }
    }

    /// The configured limits.
    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Probes Redis until `shutdown`; leased requests are handed out only while it answers.
    pub async fn watch_redis(&self, shutdown: tokio_util::sync::CancellationToken) {
        let mut interval = tokio::time::interval(HEALTH_PROBE_EVERY);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            let sent = self.now_ms();
            let mut conn = self.redis.clone();
            let answered = tokio::time::timeout(
                self.redis_timeout,
                redis::cmd("PING").query_async::<String>(&mut conn),
            )
            .await
            .is_ok_and(|reply| reply.is_ok());
            if answered {
                self.redis_vouched_until.fetch_max(
                    sent + HEALTH_VOUCHES_FOR.as_millis() as u64,
                    Ordering::Relaxed,
                );
            }
        }
    }

    fn redis_vouched_for(&self) -> bool {
        self.now_ms() < self.redis_vouched_until.load(Ordering::Relaxed)
    }

    /// Counts the request against `rule` and, for a signed-in caller, checks the session.
    pub async fn check(
        &self,
        rule: RuleKind,
        ip: IpAddr,
        session: Option<(Uuid, Uuid)>,
    ) -> Verdict {
        let (limit, subject) = self.limits.resolve(rule, ip, session.map(|(user, _)| user));
        let session_to_check = session
            .map(|(_, sid)| sid)
            .filter(|sid| !self.sessions.is_live(*sid));
        let lease_key = (rule, subject);
        let leased = self.leases.take(&lease_key, limit);
        // A leased request passes without Redis only while the health probe vouches for it;
        // otherwise Redis is asked (for nothing but its answer) so an outage is noticed.
        if let Some(quota) = leased
            && session_to_check.is_none()
            && self.redis_vouched_for()
        {
            return Verdict::Pass(quota);
        }

        let key = match subject {
            Subject::Ip(ip) => format!("{}:ratelimit:{}:ip:{ip}", self.key_prefix, rule.as_str()),
            Subject::User(id) => {
                format!("{}:ratelimit:{}:user:{id}", self.key_prefix, rule.as_str())
            }
        };
        // With a leased request in hand, Redis is only asked about the session.
        let wanted = if leased.is_some() {
            0
        } else {
            lease_size(rule, limit)
        };
        match self
            .count_in_redis(&key, limit, wanted, session_to_check)
            .await
        {
            Ok((count, ttl, live)) => {
                if let Some(sid) = session_to_check {
                    if !live {
                        self.sessions.forget(sid);
                        return Verdict::SessionEnded;
                    }
                    self.sessions.remember(sid);
                }
                if let Some(quota) = leased {
                    return Verdict::Pass(quota);
                }
                // `count` includes the whole block; this request is the block's first.
                let before = count.saturating_sub(wanted);
                let granted = wanted.min(limit.count.saturating_sub(before));
                let quota = Quota::new(limit, before + 1, ttl);
                if granted == 0 {
                    // Redis has handed out the whole window, but a concurrent request may have
                    // just brought back a block with requests to spare.
                    if let Some(quota) = self.leases.take(&lease_key, limit) {
                        return Verdict::Pass(quota);
                    }
                    return Verdict::Limited(quota);
                }
                if granted > 1 {
                    self.leases
                        .store(lease_key, before + 2, granted - 1, Instant::now() + ttl);
                }
                Verdict::Pass(quota)
            }
            Err(reason) => {
                if session.is_some() || rule.fails_closed() {
                    return Verdict::Unavailable;
                }
                self.report_fallback(reason);
                let quota = self.fallback.count(&key, limit);
                if quota.exceeded {
                    Verdict::Limited(quota)
                } else {
                    Verdict::Pass(quota)
                }
            }
        }
    }

    /// One `EVALSHA` advancing the counter by `wanted`: `(count, window ttl, session live)`.
    async fn count_in_redis(
        &self,
        key: &str,
        limit: Limit,
        wanted: u64,
        session: Option<Uuid>,
    ) -> Result<(u64, Duration, bool), String> {
        if self.now_ms() < self.redis_down_until.load(Ordering::Relaxed) {
            return Err("Redis failed less than a second ago".to_owned());
        }
        let mut invocation = self.script.key(key);
        if let Some(sid) = session {
            invocation.key(auth_client::session_key(&self.session_prefix, sid));
        }
        invocation.arg(limit.window.as_millis() as u64);
        invocation.arg(wanted);
        let mut conn = self.redis.clone();
        let result = tokio::time::timeout(
            self.redis_timeout,
            invocation.invoke_async::<(u64, i64, i64)>(&mut conn),
        )
        .await;
        match result {
            Ok(Ok((count, ttl_ms, live))) => Ok((
                count,
                Duration::from_millis(ttl_ms.max(0) as u64),
                live == 1,
            )),
            Ok(Err(error)) => {
                self.mark_redis_down();
                Err(error.to_string())
            }
            Err(_) => {
                self.mark_redis_down();
                Err(format!("no answer within {:?}", self.redis_timeout))
            }
        }
    }

    fn mark_redis_down(&self) {
        let until = self.now_ms() + REDIS_BACKOFF.as_millis() as u64;
        self.redis_down_until.store(until, Ordering::Relaxed);
    }

    fn report_fallback(&self, reason: String) {
        metrics::counter!("gateway_rate_limit_fallback_total").increment(1);
        let now = self.now_ms();
        let last = self.last_fallback_warn.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= FALLBACK_WARN_EVERY.as_millis() as u64;
        if due
            && self
                .last_fallback_warn
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                %reason,
                "Redis unreachable: rate limiting in-process for anonymous requests; \
                 signed-in, login, registration and OTP requests get 503"
            );
        }
    }
}

fn shard_of<K: Hash>(hasher: &std::collections::hash_map::RandomState, key: &K) -> usize {
    (hasher.hash_one(key) as usize) % SHARDS
}

/// Blocks of requests taken from Redis and not yet handed out, by rule and subject.
struct Leases {
    hasher: std::collections::hash_map::RandomState,
    shards: Vec<Mutex<HashMap<(RuleKind, Subject), Lease>>>,
}

struct Lease {
    /// The window count the next request handed out stands at.
    next_count: u64,
    /// Requests left in the block.
    remaining: u64,
    /// When the Redis window (and so the block) ends.
    ends: Instant,
}

impl Leases {
    fn new() -> Self {
        Self {
            hasher: Default::default(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(
        &self,
        key: &(RuleKind, Subject),
    ) -> std::sync::MutexGuard<'_, HashMap<(RuleKind, Subject), Lease>> {
        let shard = &self.shards[shard_of(&self.hasher, key)];
        shard.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands out one leased request, if a live block has one left.
    fn take(&self, key: &(RuleKind, Subject), limit: Limit) -> Option<Quota> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        let lease = shard.get_mut(key)?;
        if lease.remaining == 0 || lease.ends <= now {
            shard.remove(key);
            return None;
        }
        let quota = Quota::new(limit, lease.next_count, lease.ends - now);
        lease.next_count += 1;
        lease.remaining -= 1;
        Some(quota)
    }

    /// Keeps `remaining` requests of a block for later; blocks taken concurrently add up.
    fn store(&self, key: (RuleKind, Subject), next_count: u64, remaining: u64, ends: Instant) {
        let now = Instant::now();
        let mut shard = self.shard(&key);
        if shard.len() >= MAX_ENTRIES_PER_SHARD && !shard.contains_key(&key) {
            shard.retain(|_, lease| lease.ends > now && lease.remaining > 0);
            if shard.len() >= MAX_ENTRIES_PER_SHARD {
                shard.clear();
            }
        }
        match shard.get_mut(&key) {
            Some(lease) if lease.ends > now && lease.remaining > 0 => {
                lease.remaining += remaining;
                lease.next_count = lease.next_count.max(next_count);
            }
            _ => {
                shard.insert(
                    key,
                    Lease {
                        next_count,
                        remaining,
                        ends,
                    },
                );
            }
        }
    }
}

/// Sessions Redis said were live moments ago.
struct SessionCache {
    ttl: Duration,
    hasher: std::collections::hash_map::RandomState,
    shards: Vec<Mutex<HashMap<Uuid, Instant>>>,
}

impl SessionCache {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            hasher: Default::default(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, sid: Uuid) -> std::sync::MutexGuard<'_, HashMap<Uuid, Instant>> {
        let shard = &self.shards[shard_of(&self.hasher, &sid)];
        shard.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_live(&self, sid: Uuid) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        self.shard(sid)
            .get(&sid)
            .is_some_and(|until| Instant::now() < *until)
    }

    fn remember(&self, sid: Uuid) {
        if self.ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut shard = self.shard(sid);
        if shard.len() >= MAX_ENTRIES_PER_SHARD {
            shard.retain(|_, until| *until > now);
            if shard.len() >= MAX_ENTRIES_PER_SHARD {
                shard.clear();
            }
        }
        shard.insert(sid, now + self.ttl);
    }

    fn forget(&self, sid: Uuid) {
        self.shard(sid).remove(&sid);
    }
}

/// Fixed windows in process memory, used only while Redis is down.
struct FallbackLimiter {
    hasher: std::collections::hash_map::RandomState,
    shards: Vec<Mutex<HashMap<String, (u64, Instant)>>>,
}

impl FallbackLimiter {
    fn new() -> Self {
        Self {
            hasher: Default::default(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn count(&self, key: &str, limit: Limit) -> Quota {
        let now = Instant::now();
        let shard = &self.shards[shard_of(&self.hasher, &key)];
        let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        if shard.len() >= MAX_ENTRIES_PER_SHARD && !shard.contains_key(key) {
            shard.retain(|_, (_, ends)| *ends > now);
        }
        let entry = shard
            .entry(key.to_owned())
            .or_insert((0, now + limit.window));
        if entry.1 <= now {
            *entry = (0, now + limit.window);
        }
        entry.0 += 1;
        Quota::new(limit, entry.0, entry.1 - now)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn limits_parse_in_several_spellings() {
        assert_eq!("5/60s".parse::<Limit>().unwrap(), Limit::per_secs(5, 60));
        assert_eq!("100/1m".parse::<Limit>().unwrap(), Limit::per_secs(100, 60));
        assert_eq!("3/1h".parse::<Limit>().unwrap(), Limit::per_secs(3, 3600));
        assert_eq!("10/min".parse::<Limit>().unwrap(), Limit::per_secs(10, 60));
        assert_eq!("7/30".parse::<Limit>().unwrap(), Limit::per_secs(7, 30));
        for bad in ["", "5", "x/60s", "5/60x", "0/60s", "5/0s", "5/-1s"] {
            assert!(bad.parse::<Limit>().is_err(), "{bad}");
        }
        let limit = Limit::per_secs(5, 60);
        assert_eq!(limit.to_string().parse::<Limit>().unwrap(), limit);
    }

    #[test]
    fn signed_in_callers_are_counted_by_user_on_general_routes_only() {
        let limits = RateLimits::default();
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let user = Uuid::now_v7();
        assert_eq!(
            limits.resolve(RuleKind::Default, ip, Some(user)).1,
            Subject::User(user)
        );
        assert_eq!(
            limits.resolve(RuleKind::Default, ip, None).1,
            Subject::Ip(ip)
        );
        assert_eq!(
            limits.resolve(RuleKind::Login, ip, Some(user)).1,
            Subject::Ip(ip)
        );
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_network() {
        let a = Subject::ip("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = Subject::ip("2001:db8:1:2:bbbb::2".parse().unwrap());
        assert_eq!(a, b);
        let mapped = Subject::ip("::ffff:192.0.2.1".parse().unwrap());
        assert_eq!(mapped, Subject::Ip("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn the_fallback_limiter_refuses_after_the_limit_and_resets_with_the_window() {
        let limiter = FallbackLimiter::new();
        let limit = Limit {
            count: 2,
            window: Duration::from_millis(50),
        };
        assert!(!limiter.count("k", limit).exceeded);
        assert_eq!(limiter.count("k", limit).remaining, 0);
        assert!(limiter.count("k", limit).exceeded);
        std::thread::sleep(Duration::from_millis(60));
        assert!(!limiter.count("k", limit).exceeded);
    }

    #[test]
    fn strict_rules_take_single_requests_and_generous_ones_small_blocks() {
        assert_eq!(lease_size(RuleKind::Login, Limit::per_secs(1000, 60)), 1);
        assert_eq!(lease_size(RuleKind::Register, Limit::per_secs(5, 60)), 1);
        assert_eq!(lease_size(RuleKind::Default, Limit::per_secs(4, 60)), 1);
        assert_eq!(lease_size(RuleKind::Default, Limit::per_secs(600, 60)), 12);
        assert_eq!(
            lease_size(RuleKind::Default, Limit::per_secs(1_000_000_000, 60)),
            MAX_LEASE
        );
    }

    #[test]
    fn a_lease_hands_out_exactly_its_requests_and_ends_with_its_window() {
        let leases = Leases::new();
        let key = (RuleKind::Default, Subject::Ip("192.0.2.7".parse().unwrap()));
        let limit = Limit::per_secs(100, 60);
        assert!(leases.take(&key, limit).is_none());
        leases.store(key, 11, 2, Instant::now() + Duration::from_secs(60));
        let first = leases.take(&key, limit).unwrap();
        assert_eq!(first.remaining, 89);
        assert!(!first.exceeded);
        assert_eq!(leases.take(&key, limit).unwrap().remaining, 88);
        assert!(leases.take(&key, limit).is_none());

        leases.store(key, 20, 5, Instant::now() + Duration::from_millis(20));
        std::thread::sleep(Duration::from_millis(30));
        assert!(leases.take(&key, limit).is_none());
    }

    #[test]
    fn blocks_taken_concurrently_add_up() {
        let leases = Leases::new();
        let key = (RuleKind::Default, Subject::User(Uuid::now_v7()));
        let limit = Limit::per_secs(100, 60);
        let ends = Instant::now() + Duration::from_secs(60);
        leases.store(key, 2, 1, ends);
        leases.store(key, 4, 1, ends);
        assert!(leases.take(&key, limit).is_some());
        assert!(leases.take(&key, limit).is_some());
        assert!(leases.take(&key, limit).is_none());
    }

    #[test]
    fn the_session_cache_forgets_after_its_ttl() {
        let cache = SessionCache::new(Duration::from_millis(30));
        let sid = Uuid::now_v7();
        assert!(!cache.is_live(sid));
        cache.remember(sid);
        assert!(cache.is_live(sid));
        std::thread::sleep(Duration::from_millis(40));
        assert!(!cache.is_live(sid));
        let off = SessionCache::new(Duration::ZERO);
        off.remember(sid);
        assert!(!off.is_live(sid));
    }
}

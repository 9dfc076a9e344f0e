//! Circuit breaking and retry budgets for calls to another service.
//!
//! A [`Breaker`] guards one upstream. It starts *closed* (every call goes through). It *opens*
//! after [`BreakerConfig::consecutive_failures`] failures in a row, or when at least
//! [`BreakerConfig::failure_rate_percent`] of the calls in the last [`BreakerConfig::window`]
//! failed once that window holds [`BreakerConfig::min_requests`] calls. While open, every call is
//! refused at once ([`Rejected`], with how long until the next try) and the upstream sees nothing.
//! After [`BreakerConfig::cool_down`] it goes *half-open*: up to
//! [`BreakerConfig::half_open_probes`] calls are let through as probes; the first probe that
//! succeeds closes it (with a clean window), a probe that fails opens it for another cool-down.
//! What counts as a failure is the caller's decision ([`Permit::record`]); a permit dropped
//! without a verdict (the caller gave up, or the request was refused for its own fault) counts as
//! neither.
//!
//! A [`RetryBudget`] bounds retries so that they can never multiply the load on an upstream that
//! is down: every first attempt deposits [`RetryConfig::budget_percent`] % of a token, a floor of
//! [`RetryConfig::budget_floor_per_sec`] tokens a second trickles in regardless, and each retry
//! spends one whole token. The balance is capped at ten tokens or ten seconds of floor, whichever
//! is more, and starts full, so a quiet service can still retry a blip. Backoff between attempts
//! is exponential with jitter ([`RetryBudget::backoff`]).
//!
//! Only idempotent methods are ever retried ([`is_idempotent`]); `POST` and `PATCH` never are.
//!
//! The closed path is lock-free and allocation-free (an atomic load to admit, a few atomic adds
//! to record); the mutex is only taken on state changes and while half-open. State and
//! transitions are exported through the process's metrics recorder ([`crate::metrics`]):
//! `circuit_breaker_state{upstream}` (0 closed, 1 open, 2 half-open),
//! `circuit_breaker_transitions_total{upstream,to}`, `circuit_breaker_rejected_total{upstream}`,
//! `upstream_retries_total{upstream}` and `upstream_retry_budget_exhausted_total{upstream}`.

use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::Method;

use crate::config::{ConfigError, Env};

/// Whether a request with this method may be sent again after a failure: `GET`, `HEAD`,
/// `OPTIONS`, `TRACE`, `PUT` and `DELETE` (idempotent by RFC 9110 §9.2.2). `POST`, `PATCH` and
/// extension methods never are.
pub fn is_idempotent(method: &Method) -> bool {
    is_safe(method) || method == Method::PUT || method == Method::DELETE
}

/// Whether a method is safe (RFC 9110 §9.2.1): `GET`, `HEAD`, `OPTIONS`, `TRACE`. The gateway,
/// which cannot know how each service implements `PUT` and `DELETE`, only replays these.
pub fn is_safe(method: &Method) -> bool {
    method == Method::GET
        || method == Method::HEAD
        || method == Method::OPTIONS
        || method == Method::TRACE
}

/// When a [`Breaker`] opens and how it recovers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Failures in a row that open the breaker (0: never on this rule).
    pub consecutive_failures: u32,
    /// Share of failed calls in the window, in percent, that opens the breaker (0: never on this
    /// rule).
    pub failure_rate_percent: u32,
    /// Calls the window must hold before the failure rate is believed.
    pub min_requests: u32,
    /// The sliding window the failure rate is measured over (kept as ten buckets).
    pub window: Duration,
    /// How long an open breaker refuses every call before it lets a probe through.
    pub cool_down: Duration,
    /// Calls let through at once while half-open.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            failure_rate_percent: 50,
            min_requests: 20,
            window: Duration::from_secs(10),
            cool_down: Duration::from_secs(5),
            half_open_probes: 1,
        }
    }
}

/// How often and how soon a failed call may be tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryConfig {
    /// Retries of one call at most (0: no retries).
    pub max_retries: u32,
    /// Retries allowed per hundred first attempts.
    pub budget_percent: u32,
    /// Retries a second allowed on top, however few calls there are.
    pub budget_floor_per_sec: u32,
    /// The first retry's backoff; each further retry doubles it.
    pub backoff_base: Duration,
    /// The longest backoff.
    pub backoff_max: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 2,
            budget_percent: 10,
            budget_floor_per_sec: 1,
            backoff_base: Duration::from_millis(25),
            backoff_max: Duration::from_millis(250),
        }
    }
}

/// Circuit breaking and retries for the calls to one kind of upstream, read from the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResilienceConfig {
    /// The breaker.
    pub breaker: BreakerConfig,
    /// Retries.
    pub retry: RetryConfig,
}

impl ResilienceConfig {
    /// Reads `{prefix}BREAKER_FAILURES`, `{prefix}BREAKER_FAILURE_RATE_PERCENT`,
    /// `{prefix}BREAKER_MIN_REQUESTS`, `{prefix}BREAKER_WINDOW_MS`, `{prefix}BREAKER_COOL_DOWN_MS`,
    /// `{prefix}BREAKER_HALF_OPEN_PROBES`, `{prefix}RETRY_MAX`, `{prefix}RETRY_BUDGET_PERCENT`,
    /// `{prefix}RETRY_BUDGET_FLOOR_PER_SEC`, `{prefix}RETRY_BACKOFF_MS` and
    /// `{prefix}RETRY_BACKOFF_MAX_MS`, each defaulting to [`ResilienceConfig::default`].
    pub fn from_env(env: &Env, prefix: &str) -> Result<Self, ConfigError> {
        let d = Self::default();
        let name = |suffix: &str| format!("{prefix}{suffix}");
        let breaker = BreakerConfig {
            consecutive_failures: env.get(
                &name("BREAKER_FAILURES"),
                d.breaker.consecutive_failures,
                "Failures in a row that open an upstream's circuit breaker (0 = not on this rule)",
            )?,
            failure_rate_percent: env.get(
                &name("BREAKER_FAILURE_RATE_PERCENT"),
                d.breaker.failure_rate_percent,
                "Percentage of failed calls within the window that opens the breaker (0 = not on this rule)",
            )?,
            min_requests: env.get(
                &name("BREAKER_MIN_REQUESTS"),
                d.breaker.min_requests,
                "Calls the window must hold before its failure rate can open the breaker",
            )?,
            window: env.millis(
                &name("BREAKER_WINDOW_MS"),
                d.breaker.window,
                "Sliding window of the breaker's failure rate, in milliseconds",
            )?,
            cool_down: env.millis(
                &name("BREAKER_COOL_DOWN_MS"),
                d.breaker.cool_down,
                "How long an open breaker answers 503 at once before probing the upstream again, in milliseconds",
            )?,
            half_open_probes: env.get(
                &name("BREAKER_HALF_OPEN_PROBES"),
                d.breaker.half_open_probes,
                "Probe calls let through at once after the cool-down",
            )?,
        };
        let retry = RetryConfig {
            max_retries: env.get(
                &name("RETRY_MAX"),
                d.retry.max_retries,
                "Retries of one idempotent call at most (0 = never retry)",
            )?,
            budget_percent: env.get(
                &name("RETRY_BUDGET_PERCENT"),
                d.retry.budget_percent,
                "Retries allowed per hundred calls to one upstream",
            )?,
            budget_floor_per_sec: env.get(
                &name("RETRY_BUDGET_FLOOR_PER_SEC"),
                d.retry.budget_floor_per_sec,
                "Retries a second allowed on top of the percentage",
            )?,
            backoff_base: env.millis(
                &name("RETRY_BACKOFF_MS"),
                d.retry.backoff_base,
                "Backoff before the first retry, doubled for each further one (jittered), in milliseconds",
            )?,
            backoff_max: env.millis(
                &name("RETRY_BACKOFF_MAX_MS"),
                d.retry.backoff_max,
                "Longest backoff between retries, in milliseconds",
            )?,
        };
        if breaker.half_open_probes == 0 {
            return Err(ConfigError {
                variable: name("BREAKER_HALF_OPEN_PROBES"),
                reason: "at least 1, or an open breaker could never close".to_owned(),
            });
        }
        if breaker.failure_rate_percent > 100 {
            return Err(ConfigError {
                variable: name("BREAKER_FAILURE_RATE_PERCENT"),
                reason: "a percentage, 0 to 100".to_owned(),
            });
        }
        if breaker.window < Duration::from_millis(BUCKETS as u64) {
            return Err(ConfigError {
                variable: name("BREAKER_WINDOW_MS"),
                reason: format!("at least {BUCKETS} milliseconds"),
            });
        }
        Ok(Self { breaker, retry })
    }
}

/// Where a [`Breaker`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused until the cool-down has passed.
    Open,
    /// A few probe calls go through; the rest are refused.
    HalfOpen,
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

impl BreakerState {
    fn from_u8(value: u8) -> Self {
        match value {
            OPEN => Self::Open,
            HALF_OPEN => Self::HalfOpen,
            _ => Self::Closed,
        }
    }
}

/// The failure-rate window is kept as this many buckets, each a tenth of it.
const BUCKETS: usize = 10;
/// A bucket that has never been used.
const UNUSED: u64 = u64::MAX;

struct Bucket {
    /// Which bucket-length period since the breaker's epoch the counts belong to.
    period: AtomicU64,
    calls: AtomicU32,
    failures: AtomicU32,
}

/// What the mutex guards: only touched on transitions and while half-open.
struct Transitions {
    /// Bumped on every state change, so a probe's late verdict cannot affect a later state.
    generation: u64,
    probes_in_flight: u32,
}

struct BreakerMetrics {
    state: metrics::Gauge,
    to_closed: metrics::Counter,
    to_open: metrics::Counter,
    to_half_open: metrics::Counter,
    rejected: metrics::Counter,
}

/// A circuit breaker for one upstream; see the [module documentation](self).
pub struct Breaker {
    upstream: &'static str,
    config: BreakerConfig,
    epoch: Instant,
    bucket_ms: u64,
    state: AtomicU8,
    consecutive: AtomicU32,
    /// Milliseconds since `epoch` when the breaker last opened.
    opened_at: AtomicU64,
    buckets: [Bucket; BUCKETS],
    transitions: Mutex<Transitions>,
    metrics: BreakerMetrics,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("upstream", &self.upstream)
            .field("state", &self.state())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The breaker refused a call: the upstream is considered down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// How long until the breaker lets a probe through (for `Retry-After`).
    pub retry_after: Duration,
}

impl Rejected {
    /// [`Rejected::retry_after`] in whole seconds, rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_millis().div_ceil(1000).max(1) as u64
    }
}

/// Leave to make one call, from [`Breaker::try_acquire`]; report how it went with
/// [`Permit::record`]. Dropping it unrecorded counts as neither success nor failure.
#[must_use = "a permit records nothing unless its outcome is recorded"]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    /// The generation of the half-open state this probe belongs to; `None` for a normal call.
    probe: Option<u64>,
}

impl Permit<'_> {
    /// Records the call's outcome: `true` when the upstream did its part (whatever the answer to
    /// the caller), `false` when it was unreachable, timed out or failed.
    pub fn record(mut self, succeeded: bool) {
        let now = self.breaker.now_ms();
        // Taken, so that dropping the permit afterwards does not also release the probe.
        self.breaker.settle(self.probe.take(), succeeded, now);
    }

    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe.is_some()
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Some(generation) = self.probe {
            let mut t = self.breaker.lock();
            if t.generation == generation {
                t.probes_in_flight = t.probes_in_flight.saturating_sub(1);
            }
        }
    }
}

impl Breaker {
    /// A closed breaker for `upstream` (the `upstream` label of its metrics).
    pub fn new(upstream: &'static str, config: BreakerConfig) -> Self {
        // The handles below bind to the recorder installed at this point.
        let _ = crate::metrics::handle();
        let transition = |to: &'static str| metrics::counter!("circuit_breaker_transitions_total", "upstream" => upstream, "to" => to);
        let metrics = BreakerMetrics {
            state: metrics::gauge!("circuit_breaker_state", "upstream" => upstream),
            to_closed: transition("closed"),
            to_open: transition("open"),
            to_half_open: transition("half_open"),
            rejected: metrics::counter!("circuit_breaker_rejected_total", "upstream" => upstream),
        };
        metrics.state.set(f64::from(CLOSED));
        let bucket_ms = (config.window.as_millis() as u64 / BUCKETS as u64).max(1);
        Self {
            upstream,
            config,
            epoch: Instant::now(),
            bucket_ms,
            state: AtomicU8::new(CLOSED),
            consecutive: AtomicU32::new(0),
            opened_at: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| Bucket {
                period: AtomicU64::new(UNUSED),
                calls: AtomicU32::new(0),
                failures: AtomicU32::new(0),
            }),
            transitions: Mutex::new(Transitions {
                generation: 0,
                probes_in_flight: 0,
            }),
            metrics,
        }
    }

    /// The upstream this breaker guards.
    pub fn upstream(&self) -> &'static str {
        self.upstream
    }

    /// Its configuration.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Where it stands now (an open breaker whose cool-down has passed still reads `Open` until
    /// the next call turns it half-open).
    pub fn state(&self) -> BreakerState {
        BreakerState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Whether the last call failed or the breaker is not closed: the upstream is having trouble.
    /// Callers use it to decide whether keeping a replayable copy of a request is worth it.
    pub fn is_troubled(&self) -> bool {
        self.state.load(Ordering::Relaxed) != CLOSED || self.consecutive.load(Ordering::Relaxed) > 0
    }

    /// Leave to call the upstream, or the refusal when the breaker is open (or half-open with
    /// all its probes out).
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        if self.state.load(Ordering::Acquire) == CLOSED {
            return Ok(Permit {
                breaker: self,
                probe: None,
            });
        }
        self.acquire_slow(self.now_ms())
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Transitions> {
        // Nothing done under the lock can leave it inconsistent, so a poisoned lock is usable.
        self.transitions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cool_down_left(&self, now: u64) -> Option<Duration> {
        let opened = self.opened_at.load(Ordering::Acquire);
        let cool_down = self.config.cool_down.as_millis() as u64;
        let elapsed = now.saturating_sub(opened);
        (elapsed < cool_down).then(|| Duration::from_millis(cool_down - elapsed))
    }

    fn reject(&self, retry_after: Duration) -> Rejected {
        self.metrics.rejected.increment(1);
        Rejected { retry_after }
    }

    fn acquire_slow(&self, now: u64) -> Result<Permit<'_>, Rejected> {
        // An open breaker refuses without the lock for as long as it cools down.
        if self.state.load(Ordering::Acquire) == OPEN
            && let Some(left) = self.cool_down_left(now)
        {
            return Err(self.reject(left));
        }
        let mut t = self.lock();
        match self.state.load(Ordering::Acquire) {
            CLOSED => {
                return Ok(Permit {
                    breaker: self,
                    probe: None,
                });
            }
            OPEN => {
                if let Some(left) = self.cool_down_left(now) {
                    drop(t);
                    return Err(self.reject(left));
                }
                self.enter(&mut t, HALF_OPEN, now);
            }
            _ => {}
        }
        if t.probes_in_flight < self.config.half_open_probes {
            t.probes_in_flight += 1;
            return Ok(Permit {
                breaker: self,
                probe: Some(t.generation),
            });
        }
        drop(t);
        // The probes out will decide within their own timeout; a second is an honest guess.
        Err(self.reject(Duration::from_secs(1)))
    }

    /// Moves to `to` under the transitions lock.
    fn enter(&self, t: &mut Transitions, to: u8, now: u64) {
        t.generation += 1;
        t.probes_in_flight = 0;
        match to {
            OPEN => {
                self.opened_at.store(now, Ordering::Release);
                self.metrics.to_open.increment(1);
            }
            HALF_OPEN => self.metrics.to_half_open.increment(1),
            _ => {
                self.consecutive.store(0, Ordering::Relaxed);
                for bucket in &self.buckets {
                    bucket.period.store(UNUSED, Ordering::Relaxed);
                }
                self.metrics.to_closed.increment(1);
            }
        }
        self.state.store(to, Ordering::Release);
        self.metrics.state.set(f64::from(to));
        tracing::info!(
            upstream = self.upstream,
            state = ?BreakerState::from_u8(to),
            "circuit breaker changed state"
        );
    }

    fn settle(&self, probe: Option<u64>, succeeded: bool, now: u64) {
        if let Some(generation) = probe {
            let mut t = self.lock();
            if t.generation == generation && self.state.load(Ordering::Acquire) == HALF_OPEN {
                self.enter(&mut t, if succeeded { CLOSED } else { OPEN }, now);
            }
            return;
        }
        self.count(now, succeeded);
        if succeeded {
            // Read first: a write on every success would bounce the cache line between cores.
            if self.consecutive.load(Ordering::Relaxed) != 0 {
                self.consecutive.store(0, Ordering::Relaxed);
            }
            return;
        }
        let in_a_row = self.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
        let trips = (self.config.consecutive_failures > 0
            && in_a_row >= self.config.consecutive_failures)
            || self.rate_exceeded(now);
        if trips && self.state.load(Ordering::Acquire) == CLOSED {
            let mut t = self.lock();
            // Calls admitted before the breaker opened may still be finishing: they change nothing.
            if self.state.load(Ordering::Acquire) == CLOSED {
                self.enter(&mut t, OPEN, now);
            }
        }
    }

    fn count(&self, now: u64, succeeded: bool) {
        let period = now / self.bucket_ms;
        let bucket = &self.buckets[(period % BUCKETS as u64) as usize];
        let seen = bucket.period.load(Ordering::Acquire);
        if seen != period
            && bucket
                .period
                .compare_exchange(seen, period, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // A call counted by another thread between the exchange and these stores is lost:
            // the rate is an estimate, and one call in a bucket does not change it.
            bucket.calls.store(0, Ordering::Relaxed);
            bucket.failures.store(0, Ordering::Relaxed);
        }
        bucket.calls.fetch_add(1, Ordering::Relaxed);
        if !succeeded {
            bucket.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn rate_exceeded(&self, now: u64) -> bool {
        let rate = u64::from(self.config.failure_rate_percent);
        if rate == 0 {
            return false;
        }
        let current = now / self.bucket_ms;
        let (mut calls, mut failures) = (0u64, 0u64);
        for bucket in &self.buckets {
            let period = bucket.period.load(Ordering::Acquire);
            if period != UNUSED && period <= current && current - period < BUCKETS as u64 {
                calls += u64::from(bucket.calls.load(Ordering::Relaxed));
                failures += u64::from(bucket.failures.load(Ordering::Relaxed));
            }
        }
        calls > 0 && calls >= u64::from(self.config.min_requests) && failures * 100 >= calls * rate
    }
}

/// A thousandth of a retry token.
const MILLI: i64 = 1000;

/// A token bucket of retries for one upstream; see the [module documentation](self).
pub struct RetryBudget {
    config: RetryConfig,
    epoch: Instant,
    /// In thousandths of a token.
    balance: AtomicI64,
    capacity: i64,
    /// Milliseconds since `epoch` up to which the floor has been paid in.
    floor_paid_until: AtomicU64,
    retries: metrics::Counter,
    exhausted: metrics::Counter,
}

impl std::fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryBudget")
            .field("config", &self.config)
            .field("balance", &self.balance.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl RetryBudget {
    /// A full budget for `upstream` (the `upstream` label of its metrics).
    pub fn new(upstream: &'static str, config: RetryConfig) -> Self {
        let _ = crate::metrics::handle();
        let capacity = i64::from(config.budget_floor_per_sec.saturating_mul(10)).max(10) * MILLI;
        Self {
            config,
            epoch: Instant::now(),
            balance: AtomicI64::new(capacity),
            capacity,
            floor_paid_until: AtomicU64::new(0),
            retries: metrics::counter!("upstream_retries_total", "upstream" => upstream),
            exhausted: metrics::counter!("upstream_retry_budget_exhausted_total", "upstream" => upstream),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &RetryConfig {
        &self.config
    }

    /// Counts a first attempt, earning [`RetryConfig::budget_percent`] % of a retry.
    pub fn deposit(&self) {
        let earned = i64::from(self.config.budget_percent) * MILLI / 100;
        if earned > 0 && self.balance.load(Ordering::Relaxed) < self.capacity {
            // May overshoot the cap by a few concurrent deposits; it only matters as a bound.
            self.balance.fetch_add(earned, Ordering::Relaxed);
        }
    }

    /// Whether a retry could be paid for now (without spending it).
    pub fn has_funds(&self) -> bool {
        self.config.max_retries > 0 && self.balance.load(Ordering::Relaxed) >= MILLI
    }

    /// Spends one token for the `retry`-th retry (from 1) of a call, or refuses when retries are
    /// spent or past [`RetryConfig::max_retries`]. Each granted retry is counted in
    /// `upstream_retries_total`, each refusal for want of tokens in
    /// `upstream_retry_budget_exhausted_total`.
    pub fn try_spend(&self, retry: u32) -> bool {
        if retry == 0 || retry > self.config.max_retries {
            return false;
        }
        self.pay_floor(self.epoch.elapsed().as_millis() as u64);
        let mut balance = self.balance.load(Ordering::Relaxed);
        loop {
            if balance < MILLI {
                self.exhausted.increment(1);
                return false;
            }
            match self.balance.compare_exchange_weak(
                balance,
                balance - MILLI,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.retries.increment(1);
                    return true;
                }
                Err(current) => balance = current,
            }
        }
    }

    fn pay_floor(&self, now: u64) {
        let per_sec = i64::from(self.config.budget_floor_per_sec);
        if per_sec == 0 {
            return;
        }
        let paid = self.floor_paid_until.load(Ordering::Acquire);
        // A token a second is a thousandth of a token a millisecond.
        let earned = now.saturating_sub(paid) as i64 * per_sec;
        if earned < MILLI / 10 {
            return;
        }
        if self
            .floor_paid_until
            .compare_exchange(paid, now, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let room = self.capacity - self.balance.load(Ordering::Relaxed);
            if room > 0 {
                self.balance.fetch_add(earned.min(room), Ordering::Relaxed);
            }
        }
    }

    /// How long to wait before the `retry`-th retry (from 1): `backoff_base × 2^(retry-1)`, at
    /// most `backoff_max`, of which a random half is waited ("equal jitter": never zero, and
    /// callers that failed together do not come back together).
    pub fn backoff(&self, retry: u32) -> Duration {
        let shift = retry.saturating_sub(1).min(20);
        let ceiling = self
            .config
            .backoff_base
            .saturating_mul(1u32 << shift)
            .min(self.config.backoff_max);
        let half = ceiling / 2;
        let span = (ceiling - half).as_nanos() as u64;
        let jitter = if span == 0 { 0 } else { random() % (span + 1) };
        half + Duration::from_nanos(jitter)
    }
}

/// A random number without a dependency: the standard library seeds every `RandomState` afresh.
fn random() -> u64 {
    RandomState::new().hash_one(Instant::now())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config() -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: 3,
            failure_rate_percent: 50,
            min_requests: 10,
            window: Duration::from_secs(10),
            cool_down: Duration::from_millis(500),
            half_open_probes: 1,
        }
    }

    /// Records one call's outcome at `now` milliseconds.
    fn call(breaker: &Breaker, now: u64, succeeded: bool) -> Result<(), Rejected> {
        let mut permit = breaker.acquire_slow(now)?;
        breaker.settle(permit.probe.take(), succeeded, now);
        Ok(())
    }

    fn rendered(name: &str) -> Vec<String> {
        crate::metrics::handle()
            .render()
            .lines()
            .filter(|l| l.contains(&format!("upstream=\"{name}\"")))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn consecutive_failures_open_it_and_a_success_resets_the_count() {
        let breaker = Breaker::new("unit-consecutive", config());
        call(&breaker, 0, false).unwrap();
        call(&breaker, 1, false).unwrap();
        call(&breaker, 2, true).unwrap();
        call(&breaker, 3, false).unwrap();
        call(&breaker, 4, false).unwrap();
        assert_eq!(breaker.state(), BreakerState::Closed);
        call(&breaker, 5, false).unwrap();
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    #[test]
    fn an_open_breaker_refuses_until_the_cool_down_then_probes_once() {
        let breaker = Breaker::new("unit-cool-down", config());
        for now in 0..3 {
            call(&breaker, now, false).unwrap();
        }
        let opened = breaker.opened_at.load(Ordering::Relaxed);
        let refused = breaker.acquire_slow(opened + 100).err().unwrap();
        assert_eq!(refused.retry_after, Duration::from_millis(400));
        assert_eq!(refused.retry_after_secs(), 1);

        let probe = breaker.acquire_slow(opened + 500).ok().unwrap();
        assert!(probe.is_probe());
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(
            breaker.acquire_slow(opened + 501).is_err(),
            "one probe at a time"
        );
        drop(probe);
        let mut probe = breaker.acquire_slow(opened + 502).ok().unwrap();
        assert!(probe.is_probe(), "an abandoned probe frees its place");
        breaker.settle(probe.probe.take(), true, opened + 503);
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(!breaker.is_troubled());
    }

    #[test]
    fn a_failed_probe_opens_it_for_another_cool_down() {
        let breaker = Breaker::new("unit-reopen", config());
        for now in 0..3 {
            call(&breaker, now, false).unwrap();
        }
        let mut probe = breaker.acquire_slow(602).ok().unwrap();
        let generation = probe.probe.take();
        breaker.settle(generation, false, 602);
        assert_eq!(breaker.state(), BreakerState::Open);
        // The re-opening restarted the cool-down.
        assert_eq!(
            breaker.acquire_slow(700).err().unwrap().retry_after,
            Duration::from_millis(402)
        );
        // A verdict from the old probe generation changes nothing.
        breaker.settle(generation, true, 603);
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    #[test]
    fn the_failure_rate_opens_it_only_over_enough_calls_in_the_window() {
        let breaker = Breaker::new(
            "unit-rate",
            BreakerConfig {
                consecutive_failures: 0,
                ..config()
            },
        );
        // Alternating outcomes: 50 % failures, never two in a row.
        for i in 0..9u64 {
            call(&breaker, i * 10, i % 2 == 0).unwrap();
        }
        assert_eq!(breaker.state(), BreakerState::Closed, "fewer than 10 calls");
        call(&breaker, 95, false).unwrap();
        assert_eq!(breaker.state(), BreakerState::Open);

        // The same calls spread over more than a window never add up.
        let spread = Breaker::new(
            "unit-rate-spread",
            BreakerConfig {
                consecutive_failures: 0,
                ..config()
            },
        );
        for i in 0..40u64 {
            call(&spread, i * 2_000, i % 2 == 0).unwrap();
        }
        assert_eq!(spread.state(), BreakerState::Closed);
    }

    #[test]
    fn calls_admitted_before_it_opened_change_nothing_when_they_finish() {
        let breaker = Breaker::new("unit-late", config());
        let late = breaker.try_acquire().ok().unwrap();
        for now in 0..3 {
            call(&breaker, now, false).unwrap();
        }
        late.record(true);
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    #[test]
    fn state_and_transitions_are_exported() {
        let breaker = Breaker::new("unit-metrics", config());
        for now in 0..3 {
            call(&breaker, now, false).unwrap();
        }
        let _ = breaker.acquire_slow(0);
        let lines = rendered("unit-metrics");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("circuit_breaker_state{") && l.ends_with(" 1")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("circuit_breaker_transitions_total{")
                    && l.contains("to=\"open\"")
                    && l.ends_with(" 1")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("circuit_breaker_rejected_total{") && l.ends_with(" 1")),
            "{lines:?}"
        );
    }

    #[test]
    fn the_budget_allows_a_percentage_of_calls_and_never_more_retries_than_configured() {
        let budget = RetryBudget::new(
            "unit-budget",
            RetryConfig {
                max_retries: 2,
                budget_percent: 20,
                budget_floor_per_sec: 0,
                ..RetryConfig::default()
            },
        );
        assert!(!budget.try_spend(3), "beyond max_retries");
        assert!(!budget.try_spend(0));
        // It starts with ten tokens.
        let spent = (0..100).filter(|_| budget.try_spend(1)).count();
        assert_eq!(spent, 10);
        assert!(!budget.has_funds());
        // Forty calls earn eight retries.
        for _ in 0..40 {
            budget.deposit();
        }
        let spent = (0..20).filter(|_| budget.try_spend(1)).count();
        assert_eq!(spent, 8);
        // Savings are capped at ten retries.
        for _ in 0..1000 {
            budget.deposit();
        }
        let spent = (0..20).filter(|_| budget.try_spend(2)).count();
        assert_eq!(spent, 10);
        let lines = rendered("unit-budget");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("upstream_retries_total{") && l.ends_with(" 28")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("upstream_retry_budget_exhausted_total{")
                    && l.ends_with(" 112")),
            "{lines:?}"
        );
    }

    #[test]
    fn the_floor_trickles_in_with_time_up_to_the_cap() {
        let budget = RetryBudget::new(
            "unit-floor",
            RetryConfig {
                budget_percent: 0,
                budget_floor_per_sec: 2,
                ..RetryConfig::default()
            },
        );
        let spent = (0..100).filter(|_| budget.try_spend(1)).count();
        assert_eq!(spent, 20, "ten seconds of floor saved up");
        let paid = budget.floor_paid_until.load(Ordering::Relaxed);
        budget.pay_floor(paid + 1_500);
        assert_eq!(budget.balance.load(Ordering::Relaxed) / MILLI, 3);
        budget.pay_floor(paid + 60_000);
        assert_eq!(budget.balance.load(Ordering::Relaxed), 20 * MILLI);
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_maximum() {
        let budget = RetryBudget::new("unit-backoff", RetryConfig::default());
        for _ in 0..50 {
            let first = budget.backoff(1);
            assert!(
                first >= Duration::from_micros(12_500) && first <= Duration::from_millis(25),
                "{first:?}"
            );
            let second = budget.backoff(2);
            assert!(
                second >= Duration::from_millis(25) && second <= Duration::from_millis(50),
                "{second:?}"
            );
            let late = budget.backoff(30);
            assert!(
                late >= Duration::from_millis(125) && late <= Duration::from_millis(250),
                "{late:?}"
            );
        }
        let distinct: std::collections::HashSet<Duration> =
            (0..20).map(|_| budget.backoff(3)).collect();
        assert!(distinct.len() > 1, "jittered");
    }

    #[test]
    fn only_idempotent_methods_are_retryable() {
        for method in [
            Method::GET,
            Method::HEAD,
            Method::OPTIONS,
            Method::PUT,
            Method::DELETE,
        ] {
            assert!(is_idempotent(&method), "{method}");
        }
        for method in [
            Method::POST,
            Method::PATCH,
            Method::from_bytes(b"PURGE").unwrap(),
        ] {
            assert!(!is_idempotent(&method), "{method}");
        }
        assert!(!is_safe(&Method::PUT) && !is_safe(&Method::DELETE));
    }

    #[test]
    fn configuration_is_read_with_a_prefix_and_checked() {
        let env = Env::from_pairs([
            ("UPSTREAM_BREAKER_FAILURES", "7"),
            ("UPSTREAM_RETRY_BUDGET_PERCENT", "25"),
            ("UPSTREAM_BREAKER_COOL_DOWN_MS", "1500"),
        ]);
        let config = ResilienceConfig::from_env(&env, "UPSTREAM_").unwrap();
        assert_eq!(config.breaker.consecutive_failures, 7);
        assert_eq!(config.breaker.cool_down, Duration::from_millis(1500));
        assert_eq!(config.retry.budget_percent, 25);
        assert_eq!(config.retry.max_retries, RetryConfig::default().max_retries);
        assert!(
            env.described()
                .iter()
                .any(|v| v.name == "UPSTREAM_RETRY_BACKOFF_MAX_MS")
        );

        let env = Env::from_pairs([("PEER_BREAKER_HALF_OPEN_PROBES", "0")]);
        let error = ResilienceConfig::from_env(&env, "PEER_").unwrap_err();
        assert_eq!(error.variable, "PEER_BREAKER_HALF_OPEN_PROBES");
        let env = Env::from_pairs([("PEER_BREAKER_FAILURE_RATE_PERCENT", "150")]);
        assert!(ResilienceConfig::from_env(&env, "PEER_").is_err());
    }
}

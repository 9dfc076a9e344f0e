//! A read-through response cache in Redis, with versioned invalidation and ETags (first written
//! for product-service; shared here since content-service caches its public lists the same way).
//!
//! Keys are `<prefix>:<namespace>:v<version>:<kind>:<sha256 of the normalised request>`, where
//! `<version>` is the integer at `<prefix>:<namespace>:version` (the namespace is `cache` unless
//! [`ResponseCache::with_namespace`] names another, so one service can keep independent caches).
//! Every write that can change a public response increments the version after its transaction
//! commits, so all older entries become unreachable at once (no `KEYS`/`SCAN`) and expire by
//! their TTL. A reader fetches the version *before* it reads Postgres, so an entry can never hold
//! data older than the version it is filed under.
//!
//! Entries hold the exact response body and its strong ETag (a hash of the body). Redis is
//! optional: every call is bounded by the configured timeout, and an error or timeout counts as a
//! miss (or, for the version bump, as a warning: stale entries then live at most one TTL).
//!
//! **The version is remembered in-process** for [`DEFAULT_LOCAL_VERSION_TTL`] (1 s; see
//! [`ResponseCache::with_local_version_ttl`]), so a hit costs one Redis `GET` rather than two.
//! The replica that makes a write adopts the new version as soon as its `INCR` answers, so its
//! own next read already misses the old entries; **other replicas stop serving the entries of
//! the old version at most that long after the bump** (the remembered version is dated from when
//! it was requested from Redis). The ordering argument above still holds: a reader only files an
//! entry under a version it saw in Redis, and it saw it before reading Postgres.
//!
//! **Entries may be held in-process too** ([`ResponseCache::with_local_entries`], off unless a
//! service asks): an entry read from Redis or rendered here is kept in memory with the version it
//! was filed under, and served without any Redis round trip only while that version is the one
//! remembered *and still trusted* as above — so it is exactly what a Redis read under the
//! remembered version would give, and a write makes it unreachable as fast as it makes the Redis
//! entry unreachable (at once here, within the version bound elsewhere). A held entry is dropped
//! [`LOCAL_ENTRY_LIFE`] after it was read or rendered (or at its kind's TTL, if sooner), so a
//! failed version bump cannot extend an entry's life by more than that; and Redis remains the
//! authority on the version across replicas. Services that delete single Redis entries by key
//! (rather than bumping the version) must not hold entries in-process.
//!
//! Bodies are [`Bytes`]: a hit hands the body to the response by reference count, never by copy.
//!
//! **Misses are rendered once per replica:** requests that miss the same entry at the same time
//! (typically right after an invalidation, when every reader misses at once) queue behind the
//! first, which renders and stores it; the others then read what it stored. If the first fails,
//! the next renders in its turn, so an error is never handed to a request that did not cause it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::redis::Redis;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use redis::AsyncCommands;
use sha2::{Digest, Sha256};

/// The version key outlives every entry by far, so a version key that expires (after a day
/// without writes) cannot resurrect entries of an earlier epoch.
const VERSION_TTL_SECS: i64 = 24 * 3600;

/// What a public response may be cached as by browsers and CDNs: cached, but revalidated with
/// `If-None-Match` on every use (a 304 from Redis is cheap, and admins see their changes at once).
pub const PUBLIC_CACHE_CONTROL: &str = "public, max-age=0, must-revalidate";

/// How long a replica trusts the version it last read before asking Redis again: the bound on
/// how long other replicas serve entries a write has made stale.
pub const DEFAULT_LOCAL_VERSION_TTL: Duration = Duration::from_secs(1);

/// The longest an entry is held in-process after it was read from Redis or rendered: short, so
/// that holding entries never stretches an entry's life by more than this past its Redis TTL,
/// yet long enough that a hot entry costs one Redis read every few seconds.
pub const LOCAL_ENTRY_LIFE: Duration = Duration::from_secs(5);

/// A response body with its ETag.
#[derive(Debug, Clone)]
pub struct Cached {
    /// Strong ETag, quoted, ready to send.
    pub etag: HeaderValue,
    /// The body (cloning it shares the buffer).
    pub body: Bytes,
}

impl Cached {
    /// Wraps a freshly rendered body.
    pub fn new(body: impl Into<Bytes>) -> Self {
        let body = body.into();
        let digest = Sha256::digest(&body);
        let etag = format!("\"{}\"", hex::encode(&digest[..12]));
        Self {
            // Quotes and hex digits are always valid header bytes.
            etag: HeaderValue::from_str(&etag).unwrap_or_else(|_| HeaderValue::from_static("\"\"")),
            body,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let etag = self.etag.as_bytes();
        let mut out = Vec::with_capacity(etag.len() + 1 + self.body.len());
        out.extend_from_slice(etag);
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        out
    }

    fn decode(bytes: Vec<u8>) -> Option<Self> {
        let split = bytes.iter().position(|b| *b == b'\n')?;
        let etag = HeaderValue::from_bytes(&bytes[..split]).ok()?;
        // The body stays in the buffer Redis filled.
        let body = Bytes::from(bytes).slice(split + 1..);
        Some(Self { etag, body })
    }

    /// Whether `If-None-Match` in `request_headers` names this ETag (or `*`).
    fn matches(&self, request_headers: &HeaderMap) -> bool {
        let Some(value) = request_headers.get(header::IF_NONE_MATCH) else {
            return false;
        };
        let ours = self.etag.as_bytes();
        value.as_bytes().split(|b| *b == b',').any(|tag| {
            let tag = tag.trim_ascii();
            let tag = tag.strip_prefix(b"W/").unwrap_or(tag);
            tag == ours || tag == b"*"
        })
    }

    /// 200 with the body, or 304 when `If-None-Match` names this ETag.
    pub fn respond(&self, request_headers: &HeaderMap, cache_hit: bool) -> Response {
        let mut response = if self.matches(request_headers) {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut response = Response::new(Body::from(self.body.clone()));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        };
        let headers = response.headers_mut();
        headers.insert(header::ETAG, self.etag.clone());
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(PUBLIC_CACHE_CONTROL),
        );
        headers.insert(
            "x-cache",
            HeaderValue::from_static(if cache_hit { "HIT" } else { "MISS" }),
        );
        response
    }
}

/// How long an entry of each kind lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// Lists (and other answers that change often).
    List,
    /// One item.
    Detail,
}

/// An entry held in-process.
#[derive(Debug)]
struct Held {
    /// The version it is filed under.
    version: u64,
    /// When it stops being served from memory.
    until: Instant,
    entry: Cached,
}

/// The entries held in-process, by kind then normalised request (two levels, so a lookup needs
/// no key built for it).
#[derive(Debug, Default)]
struct HeldEntries {
    by_kind: HashMap<Box<str>, HashMap<Box<str>, Held>>,
    /// Sum of the held bodies' lengths.
    bytes: usize,
    count: usize,
}

impl HeldEntries {
    fn get(&self, version: u64, kind: &str, normalised: &str, now: Instant) -> Option<&Cached> {
        self.by_kind
            .get(kind)?
            .get(normalised)
            .filter(|held| held.version == version && now < held.until)
            .map(|held| &held.entry)
    }

    /// Keeps only what may still be served: `version`'s entries, not past their life.
    fn retain(&mut self, version: Option<u64>, now: Instant) {
        let (mut bytes, mut count) = (0, 0);
        for entries in self.by_kind.values_mut() {
            entries.retain(|_, held| Some(held.version) == version && now < held.until);
            count += entries.len();
            bytes += entries.values().map(|h| h.entry.body.len()).sum::<usize>();
        }
        self.by_kind.retain(|_, entries| !entries.is_empty());
        self.bytes = bytes;
        self.count = count;
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

/// How much a replica holds in-process.
#[derive(Debug, Clone, Copy)]
struct LocalLimits {
    max_bytes: usize,
    max_entries: usize,
}

/// The version as this replica last saw it, and the entries held under it.
#[derive(Debug, Default)]
struct LocalVersion {
    /// The version and when it was requested from Redis (`None`: not yet, or not trusted).
    seen: Option<(u64, Instant)>,
    /// Bumps made by this replica: a read of Redis that started before one is not remembered,
    /// since it may return the version the bump replaced.
    bumps: u64,
    held: HeldEntries,
}

impl LocalVersion {
    /// The remembered version while it is trusted.
    fn trusted(&self, ttl: Duration) -> Option<u64> {
        self.seen
            .filter(|(_, seen)| seen.elapsed() < ttl)
            .map(|(version, _)| version)
    }
}

/// The locks of the entries being rendered, by Redis key.
type Rendering = Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>;

/// A request's turn to render an entry (see the module docs). Dropping it — also when the
/// request is cancelled while it waits or renders — lets the next request go and forgets the
/// entry's lock once nobody else holds or waits for it.
struct RenderTurn {
    rendering: Rendering,
    key: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl RenderTurn {
    fn new(rendering: &Rendering, key: &str) -> Self {
        let lock = rendering
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_owned())
            .or_default()
            .clone();
        Self {
            rendering: rendering.clone(),
            key: key.to_owned(),
            lock,
            guard: None,
        }
    }

    /// Takes the turn; whether another request had it first.
    async fn wait(&mut self) -> bool {
        let (guard, waited) = match self.lock.clone().try_lock_owned() {
            Ok(guard) => (guard, false),
            Err(_) => (self.lock.clone().lock_owned().await, true),
        };
        self.guard = Some(guard);
        waited
    }
}

impl Drop for RenderTurn {
    fn drop(&mut self) {
        self.guard.take();
        let mut rendering = self.rendering.lock().unwrap_or_else(|e| e.into_inner());
        // The map's and ours: nobody else holds or waits for it.
        if Arc::strong_count(&self.lock) <= 2 {
            rendering.remove(&self.key);
        }
    }
}

/// The response cache.
#[derive(Clone, Debug)]
pub struct ResponseCache {
    redis: Redis,
    namespace: &'static str,
    list_ttl: Duration,
    detail_ttl: Duration,
    timeout: Duration,
    local_version_ttl: Duration,
    local_limits: Option<LocalLimits>,
    local: Arc<Mutex<LocalVersion>>,
    /// One lock per entry being rendered (see the module docs).
    rendering: Rendering,
}

impl ResponseCache {
    /// A cache over `redis`.
    pub fn new(redis: Redis, list_ttl: Duration, detail_ttl: Duration, timeout: Duration) -> Self {
        Self {
            redis,
            namespace: "cache",
            list_ttl,
            detail_ttl,
            timeout,
            local_version_ttl: DEFAULT_LOCAL_VERSION_TTL,
            local_limits: None,
            local: Arc::default(),
            rendering: Arc::default(),
        }
    }

    /// How long the version read from Redis is trusted before it is read again (the bound on
    /// how stale other replicas can be after a write); zero reads it on every request.
    pub fn with_local_version_ttl(mut self, ttl: Duration) -> Self {
        self.local_version_ttl = ttl;
        self
    }

    /// Also holds entries in-process (at most `max_bytes` of bodies in `max_entries` entries),
    /// served while their version is the trusted remembered one: a hit then costs no Redis
    /// round trip. Only for services that invalidate by version alone (see the module docs).
    pub fn with_local_entries(mut self, max_bytes: usize, max_entries: usize) -> Self {
        self.local_limits = Some(LocalLimits {
            max_bytes,
            max_entries,
        });
        self
    }

    /// The same cache filed under another key namespace (`<prefix>:<namespace>:...`), with its
    /// own version: invalidating one namespace leaves the others alone.
    pub fn with_namespace(mut self, namespace: &'static str) -> Self {
        self.namespace = namespace;
        self
    }

    fn version_key(&self) -> String {
        self.redis.key(self.namespace, "version")
    }

    fn local(&self) -> std::sync::MutexGuard<'_, LocalVersion> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ttl(&self, ttl: Ttl) -> Duration {
        match ttl {
            Ttl::List => self.list_ttl,
            Ttl::Detail => self.detail_ttl,
        }
    }

    /// The version to read and file entries under: the remembered one while it is trusted,
    /// otherwise Redis's (then remembered); `None` when Redis does not answer in time.
    async fn current_version(&self) -> Option<u64> {
        let bumps = {
            let local = self.local();
            if let Some(version) = local.trusted(self.local_version_ttl) {
                return Some(version);
            }
            local.bumps
        };
        let asked = Instant::now();
        let version = self.version().await?;
        let mut local = self.local();
        if local.bumps == bumps {
            if local.seen.map(|(seen, _)| seen) != Some(version) {
                local.held.retain(Some(version), Instant::now());
            }
            local.seen = Some((version, asked));
        }
        Some(version)
    }

    /// The entry held in-process for (`kind`, `normalised`), if its version is the trusted one.
    fn held(&self, kind: &str, normalised: &str) -> Option<Cached> {
        self.local_limits?;
        let local = self.local();
        let version = local.trusted(self.local_version_ttl)?;
        local
            .held
            .get(version, kind, normalised, Instant::now())
            .cloned()
    }

    /// Holds `entry`, filed under `version`, in-process — only while `version` is still the
    /// remembered one (a bump made meanwhile makes it unreachable anyway).
    fn hold(&self, version: u64, kind: &str, normalised: &str, entry: &Cached, ttl: Ttl) {
        let Some(limits) = self.local_limits else {
            return;
        };
        let size = entry.body.len();
        if size > limits.max_bytes / 8 {
            return;
        }
        let mut local = self.local();
        if local.seen.map(|(seen, _)| seen) != Some(version) {
            return;
        }
        let now = Instant::now();
        let held = &mut local.held;
        if held.bytes + size > limits.max_bytes || held.count >= limits.max_entries {
            held.retain(Some(version), now);
            if held.bytes + size > limits.max_bytes || held.count >= limits.max_entries {
                held.clear();
            }
        }
        let until = now + self.ttl(ttl).min(LOCAL_ENTRY_LIFE);
        let entries = match held.by_kind.get_mut(kind) {
            Some(entries) => entries,
            None => held.by_kind.entry(kind.into()).or_default(),
        };
        let previous = entries.insert(
            normalised.into(),
            Held {
                version,
                until,
                entry: entry.clone(),
            },
        );
        match previous {
            Some(previous) => held.bytes -= previous.entry.body.len(),
            None => held.count += 1,
        }
        held.bytes += size;
    }

    /// The current version in Redis (0 when unset); `None` when Redis does not answer in time.
    pub async fn version(&self) -> Option<u64> {
        let mut conn = self.redis.conn();
        let key = self.version_key();
        let result = tokio::time::timeout(self.timeout, async move {
            conn.get::<_, Option<u64>>(key).await
        })
        .await;
        match result {
            Ok(Ok(version)) => Some(version.unwrap_or(0)),
            Ok(Err(error)) => {
                tracing::warn!(%error, "cache unavailable: reading uncached");
                None
            }
            Err(_) => {
                tracing::warn!("cache timed out: reading uncached");
                None
            }
        }
    }

    /// The key of a request of `kind` described by `normalised` under `version`.
    pub fn key(&self, version: u64, kind: &str, normalised: &str) -> String {
        let digest = Sha256::digest(normalised.as_bytes());
        self.redis.key(
            self.namespace,
            format!("v{version}:{kind}:{}", hex::encode(&digest[..16])),
        )
    }

    /// The entry at `key`, if any (a Redis failure is a miss).
    pub async fn get(&self, key: &str) -> Option<Cached> {
        let mut conn = self.redis.conn();
        let key = key.to_owned();
        let result = tokio::time::timeout(self.timeout, async move {
            conn.get::<_, Option<Vec<u8>>>(key).await
        })
        .await;
        match result {
            Ok(Ok(Some(bytes))) => Cached::decode(bytes),
            Ok(Ok(None)) => None,
            Ok(Err(error)) => {
                tracing::warn!(%error, "cache read failed");
                None
            }
            Err(_) => None,
        }
    }

    /// Stores `entry` at `key` for the TTL of its kind (failures are logged and ignored).
    pub async fn put(&self, key: &str, entry: &Cached, ttl: Ttl) {
        let seconds = self.ttl(ttl).as_secs();
        let mut conn = self.redis.conn();
        let key = key.to_owned();
        let bytes = entry.encode();
        let result = tokio::time::timeout(self.timeout, async move {
            conn.set_ex::<_, _, ()>(key, bytes, seconds).await
        })
        .await;
        if !matches!(result, Ok(Ok(()))) {
            tracing::warn!("cache write failed or timed out");
        }
    }

    /// Makes every cached response unreachable (call after the write commits): at once on this
    /// replica, within the local version TTL on the others.
    pub async fn invalidate(&self) {
        let mut conn = self.redis.conn();
        let key = self.version_key();
        {
            // Reads of Redis already in flight may answer the version this bump replaces.
            let mut local = self.local();
            local.bumps += 1;
            local.seen = None;
            local.held.clear();
        }
        let asked = Instant::now();
        let result = tokio::time::timeout(self.timeout, async move {
            redis::pipe()
                .atomic()
                .incr(&key, 1)
                .expire(&key, VERSION_TTL_SECS)
                .ignore()
                .query_async::<(u64,)>(&mut conn)
                .await
        })
        .await;
        match result {
            Ok(Ok((version,))) => {
                let mut local = self.local();
                // Concurrent bumps may answer out of order: keep the newest this replica saw.
                let newest = match local.seen {
                    Some((seen, _)) => seen.max(version),
                    None => version,
                };
                local.bumps += 1;
                local.seen = Some((newest, asked));
            }
            _ => tracing::warn!(
                "cache invalidation failed: cached responses may be stale until their TTL ends"
            ),
        }
    }

    /// The cached entry for (`kind`, `normalised`), or a fresh one rendered by `render` and
    /// stored; with whether it was a hit.
    pub async fn fetch<F, Fut, B, E>(
        &self,
        kind: &str,
        normalised: &str,
        ttl: Ttl,
        render: F,
    ) -> Result<(Cached, bool), E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<B, E>>,
        B: Into<Bytes>,
    {
        if self.ttl(ttl).is_zero() {
            // A TTL of zero turns caching off for the kind.
            return Ok((Cached::new(render().await?), false));
        }
        if let Some(hit) = self.held(kind, normalised) {
            return Ok((hit, true));
        }
        let version = self.current_version().await;
        let key = version.map(|v| self.key(v, kind, normalised));
        let (Some(version), Some(key)) = (version, key) else {
            // Redis is not answering: render, and cache nothing.
            return Ok((Cached::new(render().await?), false));
        };
        if let Some(hit) = self.get(&key).await {
            self.hold(version, kind, normalised, &hit, ttl);
            return Ok((hit, true));
        }
        let mut turn = RenderTurn::new(&self.rendering, &key);
        if turn.wait().await {
            // Whoever rendered before us has stored the entry.
            let stored = match self.held(kind, normalised) {
                Some(hit) => Some(hit),
                None => self.get(&key).await,
            };
            if let Some(hit) = stored {
                self.hold(version, kind, normalised, &hit, ttl);
                return Ok((hit, true));
            }
        }
        let entry = Cached::new(render().await?);
        self.put(&key, &entry, ttl).await;
        self.hold(version, kind, normalised, &entry, ttl);
        Ok((entry, false))
    }

    /// Serves the cached response for (`kind`, `normalised`) or renders, stores and serves a
    /// fresh one with `render`.
    pub async fn serve<F, Fut, B, E>(
        &self,
        headers: &HeaderMap,
        kind: &str,
        normalised: &str,
        ttl: Ttl,
        render: F,
    ) -> Result<Response, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<B, E>>,
        B: Into<Bytes>,
    {
        let (entry, hit) = self.fetch(kind, normalised, ttl, render).await?;
        Ok(entry.respond(headers, hit))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Two replicas of one service: the same Redis prefix, each with its own memory (holding
    /// entries in-process too when `hold`).
    async fn replicas_holding(
        local_ttl: Duration,
        hold: bool,
    ) -> (ResponseCache, ResponseCache, Redis) {
        let prefix = format!("test-cache-{}", uuid::Uuid::now_v7());
        let redis = Redis::connect("redis://127.0.0.1:6379", &prefix)
            .await
            .unwrap();
        let replica = || {
            let cache = ResponseCache::new(
                redis.clone(),
                Duration::from_secs(60),
                Duration::from_secs(60),
                Duration::from_secs(2),
            )
            .with_local_version_ttl(local_ttl);
            if hold {
                cache.with_local_entries(1 << 20, 64)
            } else {
                cache
            }
        };
        (replica(), replica(), redis)
    }

    async fn drop_keys(redis: &Redis) {
        let mut conn = redis.conn();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", redis.prefix()))
            .query_async(&mut conn)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: () = conn.del(keys).await.unwrap();
        }
    }

    /// Reads through `cache`, rendering `body` on a miss.
    async fn read(cache: &ResponseCache, body: &str) -> (String, bool) {
        let (entry, hit) = cache
            .fetch("list", "q=1", Ttl::List, || async {
                Ok::<_, std::convert::Infallible>(body.as_bytes().to_vec())
            })
            .await
            .unwrap();
        (String::from_utf8(entry.body.to_vec()).unwrap(), hit)
    }

    #[tokio::test]
    async fn concurrent_misses_of_one_entry_render_it_once() {
        let (cache, _, redis) = replicas_holding(Duration::from_secs(60), false).await;
        let renders = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let readers = (0..16).map(|_| {
            let (cache, renders) = (cache.clone(), renders.clone());
            tokio::spawn(async move {
                cache
                    .fetch("list", "q=stampede", Ttl::List, || async move {
                        renders.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        // Long enough that every reader arrives while this one renders.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Ok::<_, std::convert::Infallible>(b"rendered".to_vec())
                    })
                    .await
                    .unwrap()
            })
        });
        let answers = futures::future::join_all(readers).await;
        assert_eq!(renders.load(std::sync::atomic::Ordering::SeqCst), 1);
        let hits = answers
            .into_iter()
            .map(|answer| {
                let (entry, hit) = answer.unwrap();
                assert_eq!(&entry.body[..], b"rendered");
                hit
            })
            .filter(|hit| *hit)
            .count();
        assert_eq!(hits, 15, "one rendered, the others read what it stored");
        assert!(cache.rendering.lock().unwrap().is_empty());
        drop_keys(&redis).await;
    }

    #[tokio::test]
    async fn a_failed_render_passes_the_turn_on_without_its_error() {
        let (cache, _, redis) = replicas_holding(Duration::from_secs(60), false).await;
        let first = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .fetch("list", "q=fails", Ttl::List, || async {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Err::<Vec<u8>, _>("the database is down")
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (entry, hit) = cache
            .fetch("list", "q=fails", Ttl::List, || async {
                Ok::<_, &str>(b"second try".to_vec())
            })
            .await
            .unwrap();
        assert_eq!(first.await.unwrap().unwrap_err(), "the database is down");
        assert_eq!((&entry.body[..], hit), (&b"second try"[..], false));
        assert!(cache.rendering.lock().unwrap().is_empty());
        drop_keys(&redis).await;
    }

    #[tokio::test]
    async fn a_kind_with_a_zero_ttl_is_rendered_every_time() {
        let prefix = format!("test-cache-{}", uuid::Uuid::now_v7());
        let redis = Redis::connect("redis://127.0.0.1:6379", &prefix)
            .await
            .unwrap();
        let cache = ResponseCache::new(
            redis.clone(),
            Duration::ZERO,
            Duration::from_secs(60),
            Duration::from_secs(2),
        )
        .with_local_entries(1 << 20, 64);
        assert_eq!(read(&cache, "first").await, ("first".to_owned(), false));
        assert_eq!(read(&cache, "second").await, ("second".to_owned(), false));
        drop_keys(&redis).await;
    }

    #[tokio::test]
    async fn a_cancelled_render_leaves_no_lock_behind() {
        let (cache, _, redis) = replicas_holding(Duration::from_secs(60), false).await;
        let render = cache.fetch("list", "q=cancelled", Ttl::List, || async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<_, std::convert::Infallible>(Vec::new())
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(100), render)
                .await
                .is_err()
        );
        assert!(cache.rendering.lock().unwrap().is_empty());
        drop_keys(&redis).await;
    }

    #[tokio::test]
    async fn a_write_is_seen_at_once_by_its_replica_and_within_the_bound_by_others() {
        for hold in [false, true] {
            write_seen_at_once_here_and_within_the_bound_elsewhere(hold).await;
        }
    }

    async fn write_seen_at_once_here_and_within_the_bound_elsewhere(hold: bool) {
        let bound = Duration::from_millis(300);
        let (writer, other, redis) = replicas_holding(bound, hold).await;
        assert_eq!(read(&writer, "old").await, ("old".to_owned(), false));
        assert_eq!(read(&writer, "new").await, ("old".to_owned(), true));
        assert_eq!(read(&other, "new").await, ("old".to_owned(), true));

        writer.invalidate().await;
        assert_eq!(writer.version().await, Some(1));
        // The writing replica misses the old entry on its very next read.
        assert_eq!(read(&writer, "new").await, ("new".to_owned(), false));
        // Once the bound has passed, the other replica reads the new version too.
        tokio::time::sleep(bound + Duration::from_millis(50)).await;
        assert_eq!(read(&other, "newer").await, ("new".to_owned(), true));
        drop_keys(&redis).await;
    }

    #[tokio::test]
    async fn without_local_memory_every_replica_sees_a_write_at_once() {
        for hold in [false, true] {
            every_replica_sees_a_write_at_once_without_memory(hold).await;
        }
    }

    async fn every_replica_sees_a_write_at_once_without_memory(hold: bool) {
        let (writer, other, redis) = replicas_holding(Duration::ZERO, hold).await;
        assert_eq!(read(&other, "old").await, ("old".to_owned(), false));
        assert_eq!(read(&other, "new").await, ("old".to_owned(), true));
        writer.invalidate().await;
        assert_eq!(read(&other, "new").await, ("new".to_owned(), false));
        drop_keys(&redis).await;
    }

    #[tokio::test]
    async fn a_hit_reads_redis_once_while_the_version_is_remembered() {
        for hold in [false, true] {
            hits_file_under_the_remembered_version(hold).await;
        }
    }

    async fn hits_file_under_the_remembered_version(hold: bool) {
        let (cache, _, redis) = replicas_holding(Duration::from_secs(60), hold).await;
        assert_eq!(read(&cache, "v0").await, ("v0".to_owned(), false));
        // Another process bumps the version behind this replica's back; it keeps filing under
        // the version it remembers until the bound, as documented.
        let mut conn = redis.conn();
        let _: u64 = conn.incr(cache.version_key(), 1).await.unwrap();
        assert_eq!(read(&cache, "v1").await, ("v0".to_owned(), true));
        // Its own write moves it to the newest version at once.
        cache.invalidate().await;
        assert_eq!(cache.version().await, Some(2));
        assert_eq!(read(&cache, "v2").await, ("v2".to_owned(), false));
        drop_keys(&redis).await;
    }

    #[tokio::test]
    async fn held_entries_skip_redis_only_while_their_version_is_trusted() {
        let bound = Duration::from_millis(300);
        let (holder, writer, redis) = replicas_holding(bound, true).await;
        assert_eq!(read(&holder, "old").await, ("old".to_owned(), false));
        // The Redis entry vanishes behind the holder's back: it answers from memory.
        drop_keys(&redis).await;
        assert_eq!(read(&holder, "new").await, ("old".to_owned(), true));
        // Another replica's write: once the bound has passed, the held entry is not served.
        writer.invalidate().await;
        tokio::time::sleep(bound + Duration::from_millis(50)).await;
        assert_eq!(read(&holder, "new").await, ("new".to_owned(), false));
        assert_eq!(read(&holder, "newer").await, ("new".to_owned(), true));
        // Its own write: at once.
        holder.invalidate().await;
        assert_eq!(read(&holder, "newest").await, ("newest".to_owned(), false));
        drop_keys(&redis).await;
    }

    #[tokio::test]
    async fn held_entries_are_bounded() {
        let (cache, _, redis) = replicas_holding(Duration::from_secs(60), true).await;
        let cache = cache.with_local_entries(4096, 8);
        for i in 0..40 {
            let body = vec![b'x'; 100 + i];
            let (_, hit) = cache
                .fetch("list", &format!("q={i}"), Ttl::List, || async {
                    Ok::<_, std::convert::Infallible>(body)
                })
                .await
                .unwrap();
            assert!(!hit);
            let local = cache.local();
            assert!(local.held.count <= 8, "{} entries", local.held.count);
            assert!(local.held.bytes <= 4096, "{} bytes", local.held.bytes);
        }
        // A body over an eighth of the budget is never held: read twice, Redis answers.
        cache.local().held.clear();
        let large = vec![b'y'; 600];
        for expected_hit in [false, true] {
            let (entry, hit) = cache
                .fetch("list", "large", Ttl::List, || async {
                    Ok::<_, std::convert::Infallible>(large.clone())
                })
                .await
                .unwrap();
            assert_eq!((entry.body.len(), hit), (600, expected_hit));
        }
        assert_eq!(cache.local().held.count, 0);
        drop_keys(&redis).await;
    }

    #[test]
    fn entries_round_trip_and_honour_if_none_match() {
        let entry = Cached::new(br#"{"data":[]}"#.to_vec());
        let decoded = Cached::decode(entry.encode()).expect("decodes");
        assert_eq!(decoded.etag, entry.etag);
        assert_eq!(decoded.body, entry.body);

        let mut headers = HeaderMap::new();
        assert_eq!(entry.respond(&headers, false).status(), StatusCode::OK);
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"other\", W/{}", entry.etag.to_str().unwrap()))
                .expect("header"),
        );
        assert_eq!(
            entry.respond(&headers, true).status(),
            StatusCode::NOT_MODIFIED
        );
    }
}

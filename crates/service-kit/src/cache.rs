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

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::redis::Redis;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
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

/// A response body with its ETag.
#[derive(Debug, Clone)]
pub struct Cached {
    /// Strong ETag, quoted.
    pub etag: String,
    /// The JSON body.
    pub body: Vec<u8>,
}

impl Cached {
    /// Wraps a freshly rendered body.
    pub fn new(body: Vec<u8>) -> Self {
        let digest = Sha256::digest(&body);
        Self {
            etag: format!("\"{}\"", hex::encode(&digest[..12])),
            body,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.etag.len() + 1 + self.body.len());
        out.extend_from_slice(self.etag.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        out
    }

    fn decode(mut bytes: Vec<u8>) -> Option<Self> {
        let split = bytes.iter().position(|b| *b == b'\n')?;
        // The body stays in the buffer Redis filled; only the short ETag is copied out.
        let mut etag: Vec<u8> = bytes.drain(..=split).collect();
        etag.pop();
        Some(Self {
            etag: String::from_utf8(etag).ok()?,
            body: bytes,
        })
    }

    /// 200 with the body, or 304 when `If-None-Match` names this ETag.
    pub fn respond(&self, request_headers: &HeaderMap, cache_hit: bool) -> Response {
        let matches = request_headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .map(|tag| tag.trim().trim_start_matches("W/"))
                    .any(|tag| tag == self.etag || tag == "*")
            });
        let mut response = if matches {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                self.body.clone(),
            )
                .into_response()
        };
        let headers = response.headers_mut();
        if let Ok(etag) = HeaderValue::from_str(&self.etag) {
            headers.insert(header::ETAG, etag);
        }
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

/// The version as this replica last saw it.
#[derive(Debug, Default)]
struct LocalVersion {
    /// The version and when it was requested from Redis (`None`: not yet, or not trusted).
    seen: Option<(u64, Instant)>,
    /// Bumps made by this replica: a read of Redis that started before one is not remembered,
    /// since it may return the version the bump replaced.
    bumps: u64,
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
    local: Arc<Mutex<LocalVersion>>,
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
            local: Arc::default(),
        }
    }

    /// How long the version read from Redis is trusted before it is read again (the bound on
    /// how stale other replicas can be after a write); zero reads it on every request.
    pub fn with_local_version_ttl(mut self, ttl: Duration) -> Self {
        self.local_version_ttl = ttl;
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

    /// The version to read and file entries under: the remembered one while it is trusted,
    /// otherwise Redis's (then remembered); `None` when Redis does not answer in time.
    async fn current_version(&self) -> Option<u64> {
        let bumps = {
            let local = self.local();
            if let Some((version, seen)) = local.seen
                && seen.elapsed() < self.local_version_ttl
            {
                return Some(version);
            }
            local.bumps
        };
        let asked = Instant::now();
        let version = self.version().await?;
        let mut local = self.local();
        if local.bumps == bumps {
            local.seen = Some((version, asked));
        }
        Some(version)
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
        let seconds = match ttl {
            Ttl::List => self.list_ttl,
            Ttl::Detail => self.detail_ttl,
        }
        .as_secs();
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
    pub async fn fetch<F, Fut, E>(
        &self,
        kind: &str,
        normalised: &str,
        ttl: Ttl,
        render: F,
    ) -> Result<(Cached, bool), E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<u8>, E>>,
    {
        let version = self.current_version().await;
        let key = version.map(|v| self.key(v, kind, normalised));
        if let Some(key) = &key
            && let Some(hit) = self.get(key).await
        {
            return Ok((hit, true));
        }
        let entry = Cached::new(render().await?);
        if let Some(key) = &key {
            self.put(key, &entry, ttl).await;
        }
        Ok((entry, false))
    }

    /// Serves the cached response for (`kind`, `normalised`) or renders, stores and serves a
    /// fresh one with `render`.
    pub async fn serve<F, Fut, E>(
        &self,
        headers: &HeaderMap,
        kind: &str,
        normalised: &str,
        ttl: Ttl,
        render: F,
    ) -> Result<Response, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<u8>, E>>,
    {
        let (entry, hit) = self.fetch(kind, normalised, ttl, render).await?;
        Ok(entry.respond(headers, hit))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Two replicas of one service: the same Redis prefix, each with its own memory.
    async fn replicas(local_ttl: Duration) -> (ResponseCache, ResponseCache, Redis) {
        let prefix = format!("test-cache-{}", uuid::Uuid::now_v7());
        let redis = Redis::connect("redis://127.0.0.1:6379", &prefix)
            .await
            .unwrap();
        let replica = || {
            ResponseCache::new(
                redis.clone(),
                Duration::from_secs(60),
                Duration::from_secs(60),
                Duration::from_secs(2),
            )
            .with_local_version_ttl(local_ttl)
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
        (String::from_utf8(entry.body).unwrap(), hit)
    }

    #[tokio::test]
    async fn a_write_is_seen_at_once_by_its_replica_and_within_the_bound_by_others() {
        let bound = Duration::from_millis(300);
        let (writer, other, redis) = replicas(bound).await;
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
        let (writer, other, redis) = replicas(Duration::ZERO).await;
        assert_eq!(read(&other, "old").await, ("old".to_owned(), false));
        assert_eq!(read(&other, "new").await, ("old".to_owned(), true));
        writer.invalidate().await;
        assert_eq!(read(&other, "new").await, ("new".to_owned(), false));
        drop_keys(&redis).await;
    }

    #[tokio::test]
    async fn a_hit_reads_redis_once_while_the_version_is_remembered() {
        let (cache, _, redis) = replicas(Duration::from_secs(60)).await;
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
            HeaderValue::from_str(&format!("\"other\", W/{}", entry.etag)).expect("header"),
        );
        assert_eq!(
            entry.respond(&headers, true).status(),
            StatusCode::NOT_MODIFIED
        );
    }
}

//! The read-through response cache in Redis, with versioned invalidation and ETags: the generic
//! part lives in `service_kit::cache` (content-service uses it too). Product keeps the default
//! `cache` namespace, so its keys are `<prefix>:cache:v<version>:<kind>:<hash>` with the version
//! at `<prefix>:cache:version`; lists live `PRODUCT_CACHE_LIST_TTL_SECS`, details
//! `PRODUCT_CACHE_DETAIL_TTL_SECS`. Product only ever invalidates by bumping the version, so it
//! also holds entries in memory (`with_local_entries`): a hit on a hot list or detail whose
//! version is known current costs no Redis round trip.

pub use service_kit::cache::{Cached, PUBLIC_CACHE_CONTROL, ResponseCache, Ttl};

//! Object storage for media, behind one small interface with two real backends:
//! [`s3::S3Store`] (production: an S3 bucket behind the CDN) and [`local::LocalStore`] (a
//! directory, the default for `cargo xtask up`, served by the service at `GET /media/{*key}`).
//!
//! This is one of the edges we swap, so it is a trait object ([`Storage`]). Keys are validated
//! [`ObjectKey`]s: relative, `/`-separated segments of `[A-Za-z0-9._-]`, none empty, none
//! starting with a dot. That makes a key safe to join under a directory (no `..`, no absolute
//! path) and unambiguous in a bucket. Every object we write is immutable (its key carries a
//! fresh UUID), so it is cached for a year ([`IMMUTABLE_CACHE_CONTROL`]).

pub mod local;
pub mod s3;

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;

/// `Cache-Control` of stored media: keys never change content, so caches keep them for a year.
pub const IMMUTABLE_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// Longest key accepted, in bytes (S3 allows 1024; ours are far shorter).
const MAX_KEY_LEN: usize = 512;

/// A validated object key such as `media/2026/12/0193….jpg`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Parses a key: non-empty `/`-separated segments of ASCII letters, digits, `.`, `_` and `-`,
    /// none empty or starting with `.` (so neither `..` nor hidden files), at most 512 bytes.
    pub fn parse(raw: &str) -> Result<Self, StorageError> {
        let valid = !raw.is_empty()
            && raw.len() <= MAX_KEY_LEN
            && raw.split('/').all(|segment| {
                !segment.is_empty()
                    && !segment.starts_with('.')
                    && segment
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            });
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(StorageError::InvalidKey)
        }
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The media type our keys imply by their extension (we write only these).
    pub fn content_type(&self) -> &'static str {
        let extension = self.0.rsplit_once('.').map_or("", |(_, ext)| ext);
        match extension.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" => "image/jpeg",
            "png" => "image/png",
            "webp" => "image/webp",
            "mp4" => "video/mp4",
            _ => "application/octet-stream",
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An object read back from storage.
#[derive(Debug, Clone)]
pub struct StoredObject {
    /// Its bytes.
    pub bytes: Bytes,
    /// Its media type.
    pub content_type: String,
}

/// What a storage backend can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The key is not a valid [`ObjectKey`].
    #[error("invalid object key")]
    InvalidKey,
    /// The backend could not be reached (network, timeout).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The backend answered with an error.
    #[error("storage error: {0}")]
    Backend(String),
    /// A local file operation failed.
    #[error("storage i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// A place to keep media objects.
pub trait ObjectStore: Send + Sync + 'static {
    /// The backend's name for logs (`local`, `s3`).
    fn backend(&self) -> &'static str;

    /// Stores `body` under `key` (replacing any object there) with its media type and the
    /// immutable cache policy.
    fn put<'a>(
        &'a self,
        key: &'a ObjectKey,
        body: Bytes,
        content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), StorageError>>;

    /// The object under `key`, `None` when there is none.
    fn get<'a>(
        &'a self,
        key: &'a ObjectKey,
    ) -> BoxFuture<'a, Result<Option<StoredObject>, StorageError>>;

    /// Removes the object under `key`; removing a missing object succeeds.
    fn delete<'a>(&'a self, key: &'a ObjectKey) -> BoxFuture<'a, Result<(), StorageError>>;

    /// Whether the backend is usable (for `/ready`).
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// The storage the service uses.
pub type Storage = Arc<dyn ObjectStore>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn keys_of_the_media_layout_are_accepted() {
        for key in [
            "media/2026/12/0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.jpg",
            "media/2026/01/x-large.webp",
            "a",
        ] {
            assert_eq!(ObjectKey::parse(key).unwrap().as_str(), key);
        }
    }

    #[test]
    fn keys_that_could_escape_a_directory_are_refused() {
        for key in [
            "",
            "..",
            "../etc/passwd",
            "media/../../etc/passwd",
            "/etc/passwd",
            "media//x.jpg",
            "media/x.jpg/",
            "media/.hidden",
            "media\\..\\x",
            "media/x y.jpg",
            "media/%2e%2e/x",
            "media/ü.jpg",
            "media/x\0.jpg",
        ] {
            assert!(ObjectKey::parse(key).is_err(), "{key:?} must be refused");
        }
        assert!(ObjectKey::parse(&"a".repeat(MAX_KEY_LEN + 1)).is_err());
    }

    #[test]
    fn the_content_type_follows_the_extension_we_write() {
        let of = |key: &str| ObjectKey::parse(key).unwrap().content_type();
        assert_eq!(of("media/a.jpg"), "image/jpeg");
        assert_eq!(of("media/a.png"), "image/png");
        assert_eq!(of("media/a-thumb.webp"), "image/webp");
        assert_eq!(of("media/a.mp4"), "video/mp4");
        assert_eq!(of("media/a.exe"), "application/octet-stream");
        assert_eq!(of("media/noext"), "application/octet-stream");
    }
}

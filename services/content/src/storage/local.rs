//! The local-directory backend: objects are files under a root directory (by default
//! `target/dev-media/`), written atomically (a temporary file renamed into place) so a reader
//! never sees half an object. Keys are [`ObjectKey`]s, which cannot name anything outside the
//! root.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::future::BoxFuture;
use uuid::Uuid;

use super::{ObjectKey, ObjectStore, StorageError, StoredObject};

/// Media kept in a local directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &ObjectKey) -> PathBuf {
        // ObjectKey segments are plain names (no `..`, no leading `/`), so this stays under root.
        key.as_str()
            .split('/')
            .fold(self.root.clone(), |path, segment| path.join(segment))
    }

    async fn write(&self, key: &ObjectKey, body: Bytes) -> Result<(), StorageError> {
        let path = self.path_of(key);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        // Same directory, so the rename is atomic; a leading dot keeps it out of valid keys.
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("object");
        let temporary = path.with_file_name(format!(".{file_name}.{}.tmp", Uuid::new_v4()));
        if let Err(error) = tokio::fs::write(&temporary, &body).await {
            let _ = tokio::fs::remove_file(&temporary).await;
            return Err(error.into());
        }
        if let Err(error) = tokio::fs::rename(&temporary, &path).await {
            let _ = tokio::fs::remove_file(&temporary).await;
            return Err(error.into());
        }
        Ok(())
    }
}

impl ObjectStore for LocalStore {
    fn backend(&self) -> &'static str {
        "local"
    }

    fn put<'a>(
        &'a self,
        key: &'a ObjectKey,
        body: Bytes,
        _content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        // The media type is implied by the key's extension when the file is served.
        Box::pin(self.write(key, body))
    }

    fn get<'a>(
        &'a self,
        key: &'a ObjectKey,
    ) -> BoxFuture<'a, Result<Option<StoredObject>, StorageError>> {
        Box::pin(async move {
            match tokio::fs::read(self.path_of(key)).await {
                Ok(bytes) => Ok(Some(StoredObject {
                    bytes: Bytes::from(bytes),
                    content_type: key.content_type().to_owned(),
                })),
                // A directory where a file was expected is "no such object" too.
                Err(error)
                    if matches!(error.kind(), ErrorKind::NotFound | ErrorKind::IsADirectory) =>
                {
                    Ok(None)
                }
                Err(error) => Err(error.into()),
            }
        })
    }

    fn delete<'a>(&'a self, key: &'a ObjectKey) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            match tokio::fs::remove_file(self.path_of(key)).await {
                Ok(()) => Ok(()),
                Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
                Err(error) => Err(error.into()),
            }
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            tokio::fs::create_dir_all(&self.root)
                .await
                .map_err(|e| format!("media directory {}: {e}", self.root.display()))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            Self(std::env::temp_dir().join(format!("content-local-store-{}", Uuid::new_v4())))
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn key(raw: &str) -> ObjectKey {
        ObjectKey::parse(raw).unwrap()
    }

    #[tokio::test]
    async fn an_object_put_can_be_read_back_and_deleted() {
        let dir = TempDir::new();
        let store = LocalStore::new(&dir.0);
        let key = key("media/2026/12/abc.png");
        store
            .put(&key, Bytes::from_static(b"\x89PNG..."), "image/png")
            .await
            .unwrap();

        let object = store.get(&key).await.unwrap().unwrap();
        assert_eq!(&object.bytes[..], b"\x89PNG...");
        assert_eq!(object.content_type, "image/png");
        assert!(dir.0.join("media/2026/12/abc.png").is_file());

        store.delete(&key).await.unwrap();
        assert!(store.get(&key).await.unwrap().is_none());
        // Deleting again is not an error.
        store.delete(&key).await.unwrap();
    }

    #[tokio::test]
    async fn a_put_leaves_no_temporary_file_behind() {
        let dir = TempDir::new();
        let store = LocalStore::new(&dir.0);
        store
            .put(&key("media/a.jpg"), Bytes::from_static(b"x"), "image/jpeg")
            .await
            .unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.0.join("media"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["a.jpg".to_owned()]);
    }

    #[tokio::test]
    async fn a_missing_object_or_a_directory_is_none() {
        let dir = TempDir::new();
        let store = LocalStore::new(&dir.0);
        assert!(store.get(&key("media/none.jpg")).await.unwrap().is_none());
        store
            .put(
                &key("media/2026/a.jpg"),
                Bytes::from_static(b"x"),
                "image/jpeg",
            )
            .await
            .unwrap();
        assert!(store.get(&key("media/2026")).await.unwrap().is_none());
    }
}

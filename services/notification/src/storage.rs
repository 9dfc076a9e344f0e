//! Object storage for the files messages attach (brochure PDFs): S3 in production (and against
//! a local AWS-compatible server in tests), a local directory for `cargo xtask up`.

use std::path::PathBuf;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use futures::future::BoxFuture;

use crate::config::{BrochureSettings, StorageKind};
use crate::providers::ProviderError;

/// Reads objects by key.
pub trait ObjectStore: Send + Sync {
    /// The bytes of `key`; a missing object is a permanent error, an unreachable store a
    /// transient one.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<u8>, ProviderError>>;
}

/// The store `settings` choose.
pub async fn from_settings(
    settings: &BrochureSettings,
    aws: &event_bus::aws::AwsSettings,
) -> std::sync::Arc<dyn ObjectStore> {
    match settings.storage {
        StorageKind::File => std::sync::Arc::new(FileStore {
            dir: PathBuf::from(&settings.dir),
        }),
        StorageKind::S3 => {
            let config = aws_sdk_s3::config::Builder::from(&event_bus::aws::sdk_config(aws).await)
                // Local AWS-compatible servers serve buckets by path, not by host name.
                .force_path_style(aws.endpoint_url.is_some())
                .build();
            std::sync::Arc::new(S3Store {
                client: Client::from_conf(config),
                bucket: settings.bucket.clone(),
            })
        }
    }
}

/// A directory of files named by key.
pub struct FileStore {
    dir: PathBuf,
}

impl ObjectStore for FileStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<u8>, ProviderError>> {
        Box::pin(async move {
            if key.split('/').any(|part| part == ".." || part.is_empty()) {
                return Err(ProviderError::Permanent(format!("bad key {key:?}")));
            }
            tokio::fs::read(self.dir.join(key)).await.map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    ProviderError::Permanent(format!("no file for {key}"))
                } else {
                    ProviderError::Transient(format!("reading {key}: {e}"))
                }
            })
        })
    }
}

/// An S3 bucket.
pub struct S3Store {
    client: Client,
    bucket: String,
}

impl ObjectStore for S3Store {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<u8>, ProviderError>> {
        Box::pin(async move {
            let object = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map_err(|error| {
                    let missing = error.as_service_error().is_some_and(
                        aws_sdk_s3::operation::get_object::GetObjectError::is_no_such_key,
                    );
                    let detail = format!("S3 {key}: {}", DisplayErrorContext(&error));
                    if missing {
                        ProviderError::Permanent(detail)
                    } else {
                        ProviderError::Transient(detail)
                    }
                })?;
            let bytes = object
                .body
                .collect()
                .await
                .map_err(|e| ProviderError::Transient(format!("S3 {key}: {e}")))?;
            Ok(bytes.into_bytes().to_vec())
        })
    }
}

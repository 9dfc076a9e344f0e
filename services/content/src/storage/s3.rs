//! The S3 backend (production), built on the shared AWS SDK setup
//! (`event_bus::aws::sdk_config`). With an endpoint override (`AWS_ENDPOINT_URL`, e.g. moto in
//! tests) requests use path-style addressing, which local servers need.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use futures::future::BoxFuture;
use service_kit::event_bus::aws::{AwsSettings, sdk_config};

use super::{IMMUTABLE_CACHE_CONTROL, ObjectKey, ObjectStore, StorageError, StoredObject};

/// Where the S3 backend keeps media.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// Region, endpoint override and credentials.
    pub aws: AwsSettings,
    /// The bucket.
    pub bucket: String,
}

/// Media kept in an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
}

fn sdk_error<E, R>(error: SdkError<E, R>) -> StorageError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            StorageError::Unavailable(DisplayErrorContext(&error).to_string())
        }
        other => StorageError::Backend(DisplayErrorContext(&other).to_string()),
    }
}

impl S3Store {
    /// A store for `settings.bucket` (which must exist).
    pub async fn new(settings: &S3Settings) -> Self {
        let shared = sdk_config(&settings.aws).await;
        let config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(settings.aws.endpoint_url.is_some())
            .build();
        Self {
            client: Client::from_conf(config),
            bucket: settings.bucket.clone(),
        }
    }

    /// The underlying client (tests create and inspect buckets with it).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

impl ObjectStore for S3Store {
    fn backend(&self) -> &'static str {
        "s3"
    }

    fn put<'a>(
        &'a self,
        key: &'a ObjectKey,
        body: Bytes,
        content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key.as_str())
                .content_type(content_type)
                .cache_control(IMMUTABLE_CACHE_CONTROL)
                .content_length(i64::try_from(body.len()).unwrap_or(i64::MAX))
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(sdk_error)?;
            Ok(())
        })
    }

    fn get<'a>(
        &'a self,
        key: &'a ObjectKey,
    ) -> BoxFuture<'a, Result<Option<StoredObject>, StorageError>> {
        Box::pin(async move {
            let output = match self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key.as_str())
                .send()
                .await
            {
                Ok(output) => output,
                Err(error)
                    if matches!(error.as_service_error(), Some(GetObjectError::NoSuchKey(_))) =>
                {
                    return Ok(None);
                }
                Err(error) => return Err(sdk_error(error)),
            };
            let content_type = output
                .content_type()
                .map_or_else(|| key.content_type().to_owned(), str::to_owned);
            let bytes = output
                .body
                .collect()
                .await
                .map_err(|e| StorageError::Unavailable(e.to_string()))?
                .into_bytes();
            Ok(Some(StoredObject {
                bytes,
                content_type,
            }))
        })
    }

    fn delete<'a>(&'a self, key: &'a ObjectKey) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            // S3 answers 204 for a missing key too, which is what we want.
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(key.as_str())
                .send()
                .await
                .map_err(sdk_error)?;
            Ok(())
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.client
                .head_bucket()
                .bucket(&self.bucket)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("bucket {}: {}", self.bucket, DisplayErrorContext(&e)))
        })
    }
}

//! Media and CDN settings, read once at start through `service_kit::Env`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use service_kit::config::{CommonConfig, ConfigError, Env};
use service_kit::event_bus::aws::AwsSettings;

use super::variants::DecodeLimits;

/// Which storage backend keeps media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    /// A local directory served at `/media` (development).
    Local,
    /// An S3 bucket (production).
    S3,
}

impl FromStr for StorageKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "local" => Ok(Self::Local),
            "s3" => Ok(Self::S3),
            other => Err(format!("expected `local` or `s3`, not `{other}`")),
        }
    }
}

impl fmt::Display for StorageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Local => "local",
            Self::S3 => "s3",
        })
    }
}

/// Bytes allowed in a multipart body beyond the file itself (boundaries, part headers, alt
/// text), so the whole-body limit never refuses a file the upload limit accepts.
pub const MULTIPART_OVERHEAD_BYTES: usize = 64 * 1024;

/// Settings of media uploads, storage and the CDN.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// The backend.
    pub storage: StorageKind,
    /// Root directory of the local backend.
    pub local_dir: PathBuf,
    /// Bucket of the S3 backend.
    pub bucket: Option<String>,
    /// Region, endpoint override (moto) and credentials of the AWS clients.
    pub aws: AwsSettings,
    /// Base of public media URLs (no trailing `/`); a URL is this + `/` + key.
    pub cdn_base_url: String,
    /// Largest file accepted, in bytes.
    pub max_upload_bytes: usize,
    /// Decoder guards.
    pub decode: DecodeLimits,
    /// Quality of the lossy WebP variants, 0–100.
    pub webp_quality: f32,
    /// Images decoded and resized at the same time.
    pub resize_concurrency: usize,
    /// CloudFront distribution to invalidate after media changes and publishes; log only when
    /// unset.
    pub cloudfront_distribution_id: Option<String>,
    /// Longest wait for one CloudFront call.
    pub cdn_timeout: Duration,
}

impl MediaSettings {
    /// Reads the media settings; the AWS region and endpoint come from the shared settings.
    pub fn from_env(env: &Env, common: &CommonConfig) -> Result<Self, ConfigError> {
        let storage: StorageKind = env.get(
            "MEDIA_STORAGE",
            StorageKind::Local,
            "Where media objects are stored: local (a directory served at /media) or s3",
        )?;
        let local_dir: String = env.get(
            "MEDIA_LOCAL_DIR",
            "target/dev-media".to_owned(),
            "Directory of the local media backend (MEDIA_STORAGE=local)",
        )?;
        let bucket: Option<String> = env.optional(
            "MEDIA_BUCKET",
            "S3 bucket of the media objects (required with MEDIA_STORAGE=s3)",
        )?;
        if storage == StorageKind::S3 && bucket.is_none() {
            return Err(ConfigError {
                variable: "MEDIA_BUCKET".to_owned(),
                reason: "must be set when MEDIA_STORAGE=s3".to_owned(),
            });
        }
        let cdn_base_url: String = env.get(
            "CDN_BASE_URL",
            "http://127.0.0.1:3000".to_owned(),
            "Base URL of public media URLs (the CDN; locally the gateway, which serves /media)",
        )?;
        if !(cdn_base_url.starts_with("http://") || cdn_base_url.starts_with("https://")) {
            return Err(ConfigError {
                variable: "CDN_BASE_URL".to_owned(),
                reason: format!("must be an http(s) URL (got {cdn_base_url:?})"),
            });
        }
        let max_upload_bytes: usize = env.get(
            "MEDIA_MAX_UPLOAD_BYTES",
            10 * 1024 * 1024,
            "Largest media file accepted by POST /v1/uploads, in bytes",
        )?;
        if max_upload_bytes == 0 {
            return Err(ConfigError {
                variable: "MEDIA_MAX_UPLOAD_BYTES".to_owned(),
                reason: "must be positive".to_owned(),
            });
        }
        let defaults = DecodeLimits::default();
        let max_pixels: u64 = env.get(
            "MEDIA_MAX_IMAGE_PIXELS",
            defaults.max_pixels,
            "Most pixels (width × height) an uploaded image may have; larger ones are refused",
        )?;
        let webp_quality: f32 = env.get(
            "MEDIA_WEBP_QUALITY",
            80.0,
            "Quality of the lossy WebP variants, 0-100",
        )?;
        if !(0.0..=100.0).contains(&webp_quality) {
            return Err(ConfigError {
                variable: "MEDIA_WEBP_QUALITY".to_owned(),
                reason: format!("must be between 0 and 100 (got {webp_quality})"),
            });
        }
        let resize_concurrency: usize = env.get(
            "MEDIA_RESIZE_CONCURRENCY",
            2,
            "Images decoded and resized at the same time (each may use a core and ~500 MB)",
        )?;
        let cloudfront_distribution_id: Option<String> = env.optional(
            "CLOUDFRONT_DISTRIBUTION_ID",
            "CloudFront distribution invalidated after media changes and publishes (logged only when unset)",
        )?;
        let cdn_timeout = env.millis(
            "CDN_INVALIDATION_TIMEOUT_MS",
            Duration::from_secs(5),
            "Longest wait for a CloudFront invalidation call, in milliseconds",
        )?;
        Ok(Self {
            storage,
            local_dir: PathBuf::from(local_dir),
            bucket,
            aws: AwsSettings {
                region: common.aws_region.clone(),
                endpoint_url: common.sqs_endpoint.clone(),
                credentials: None,
            },
            cdn_base_url: cdn_base_url.trim_end_matches('/').to_owned(),
            max_upload_bytes,
            decode: DecodeLimits {
                max_pixels: max_pixels.max(1),
                ..defaults
            },
            webp_quality,
            resize_concurrency: resize_concurrency.max(1),
            cloudfront_distribution_id,
            cdn_timeout: cdn_timeout.max(Duration::from_millis(1)),
        })
    }

    /// The request-body limit the service needs: the upload limit plus multipart framing.
    pub fn body_limit_bytes(&self) -> usize {
        self.max_upload_bytes
            .saturating_add(MULTIPART_OVERHEAD_BYTES)
    }
}

//! Media (seed 001 flow 7): uploads of images and videos, their resized WebP variants, the
//! `media_assets` table and its admin API, and serving stored objects at `GET /media/{*key}`.
//!
//! # Flow of an upload (`POST /v1/uploads`, ADMIN or SUPER_ADMIN)
//! 1. The multipart `file` part is read in chunks and refused with 413 past
//!    `MEDIA_MAX_UPLOAD_BYTES` (10 MB), before anything is decoded or stored.
//! 2. Its type comes from its magic bytes ([`sniff`]): JPEG, PNG, WebP or MP4; anything else is
//!    415. The declared content type and file name are ignored.
//! 3. Images are decoded and resized on the blocking pool, at most `MEDIA_RESIZE_CONCURRENCY` at
//!    a time ([`variants`]); bombs, truncated and lying files are 422. MP4s are stored as they
//!    are after a structural check (every box fits the file, a `moov` box exists); their track
//!    size is recorded when the file states it.
//! 4. The original goes to `media/{yyyy}/{mm}/{id}.{ext}` and the variants beside it as
//!    `{id}-large.webp`, `{id}-medium.webp`, `{id}-thumb.webp`. If a later step fails (another
//!    write, the database), the objects already written are removed again.
//! 5. The `media_assets` row and the `media.uploaded` event are written in one transaction.
//!
//! URLs are `CDN_BASE_URL` + `/` + key. For the local backend the default base is the gateway
//! (`http://127.0.0.1:3000`), which routes `/media/**` here; in production it is the CloudFront
//! distribution in front of the bucket.
//!
//! # Deleting
//! `DELETE /v1/media/{id}` refuses with 409 `media-in-use` while the asset is referenced by live
//! content: its id or any URL of it (both contain the id) in a blog post (cover, body, SEO), a
//! page's working copy or published version, a hero slide, the media wall, a project, an
//! accreditation or a testimonial. Otherwise the row is soft-deleted (kept for the audit trail:
//! who uploaded what, when), its objects are removed and the CDN paths invalidated. Objects that
//! cannot be removed at that point are logged and counted
//! (`content_media_cleanup_failures_total`), never resurrected.

pub mod api;
pub mod serve;
pub mod settings;
pub mod sniff;
pub mod variants;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use service_kit::shared_types::content::MediaUploaded;
use service_kit::{FieldError, Problem, event_bus};
use sqlx::PgPool;
use tokio::sync::Semaphore;
use utoipa::ToSchema;
use uuid::Uuid;

pub use settings::{MediaSettings, StorageKind};
pub use sniff::{MediaKind, MediaType};

use crate::error::{ContentError, ContentResult};
use crate::storage::local::LocalStore;
use crate::storage::s3::{S3Settings, S3Store};
use crate::storage::{ObjectKey, Storage, StorageError};
use variants::{DecodeLimits, ImageProblem, ProcessedImage, VariantName};

/// What the media handlers share: the storage backend, the settings and the resize permits.
#[derive(Clone)]
pub struct Media {
    /// Where objects go.
    pub storage: Storage,
    /// The media settings.
    pub settings: Arc<MediaSettings>,
    /// Bounds concurrent image decodes (each can take hundreds of MB and a core).
    resize_permits: Arc<Semaphore>,
}

impl Media {
    /// Media over an explicit storage backend.
    pub fn new(storage: Storage, settings: MediaSettings) -> Self {
        let permits = settings.resize_concurrency.max(1);
        Self {
            storage,
            settings: Arc::new(settings),
            resize_permits: Arc::new(Semaphore::new(permits)),
        }
    }

    /// Media over the backend `settings` name (`MEDIA_STORAGE`).
    pub async fn from_settings(settings: MediaSettings) -> anyhow::Result<Self> {
        let storage: Storage = match settings.storage {
            StorageKind::Local => Arc::new(LocalStore::new(settings.local_dir.clone())),
            StorageKind::S3 => {
                let bucket = settings.bucket.clone().ok_or_else(|| {
                    anyhow::anyhow!("MEDIA_BUCKET is required with MEDIA_STORAGE=s3")
                })?;
                Arc::new(
                    S3Store::new(&S3Settings {
                        aws: settings.aws.clone(),
                        bucket,
                    })
                    .await,
                )
            }
        };
        Ok(Self::new(storage, settings))
    }

    /// The public (CDN) URL of `key`.
    pub fn url(&self, key: &str) -> String {
        format!("{}/{key}", self.settings.cdn_base_url)
    }
}

/// One stored variant, as kept in `media_assets.variants`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredVariant {
    /// Storage key.
    pub key: String,
    /// Pixel width.
    pub width: u32,
    /// Pixel height.
    pub height: u32,
    /// Size in bytes.
    pub size_bytes: u64,
}

/// URLs of an asset's original and variants (variants are null for videos).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VariantUrls {
    /// The file as uploaded.
    pub original: String,
    /// Longest side at most 1920 px (WebP).
    pub large: Option<String>,
    /// Longest side at most 800 px (WebP).
    pub medium: Option<String>,
    /// Longest side at most 300 px (WebP).
    pub thumb: Option<String>,
}

/// A media asset.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MediaAsset {
    /// Id (also part of every key and URL of the asset).
    pub media_id: Uuid,
    /// `IMAGE` or `VIDEO`.
    pub kind: MediaKind,
    /// The type sniffed from the bytes: `image/jpeg`, `image/png`, `image/webp` or `video/mp4`.
    pub mime_type: String,
    /// Size of the original in bytes.
    pub size_bytes: i64,
    /// Pixel width (upright, after EXIF orientation); videos only when the file states it.
    pub width: Option<i32>,
    /// Pixel height.
    pub height: Option<i32>,
    /// Alternative text for accessibility.
    pub alt_text: Option<String>,
    /// CDN URL of the original.
    pub url: String,
    /// CDN URLs of the original and the variants.
    pub variants: VariantUrls,
    /// Storage key of the original.
    pub key: String,
    /// The admin who uploaded it.
    pub uploaded_by: Option<Uuid>,
    /// Uploaded.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A `media_assets` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AssetRow {
    pub id: Uuid,
    pub storage_key: String,
    pub kind: String,
    pub mime_type: String,
    pub size_bytes: i64,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub variants: sqlx::types::Json<BTreeMap<String, StoredVariant>>,
    pub alt_text: Option<String>,
    pub owner_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The columns of [`AssetRow`].
pub(crate) const ASSET_COLUMNS: &str = "id, storage_key, kind, mime_type, size_bytes, width, \
     height, variants, alt_text, owner_id, created_at, updated_at";

impl AssetRow {
    pub(crate) fn into_asset(self, media: &Media) -> MediaAsset {
        let variant =
            |name: VariantName| self.variants.get(name.as_str()).map(|v| media.url(&v.key));
        let variants = VariantUrls {
            original: media.url(&self.storage_key),
            large: variant(VariantName::Large),
            medium: variant(VariantName::Medium),
            thumb: variant(VariantName::Thumb),
        };
        MediaAsset {
            media_id: self.id,
            kind: MediaKind::from_db(&self.kind).unwrap_or(MediaKind::Image),
            mime_type: self.mime_type,
            size_bytes: self.size_bytes,
            width: self.width,
            height: self.height,
            alt_text: self.alt_text,
            url: variants.original.clone(),
            variants,
            key: self.storage_key,
            uploaded_by: self.owner_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// Every key of the asset: the original and its variants.
    pub(crate) fn keys(&self) -> Vec<String> {
        std::iter::once(self.storage_key.clone())
            .chain(self.variants.values().map(|v| v.key.clone()))
            .collect()
    }
}

/// What an upload carries once the multipart body is read.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The file's bytes.
    pub bytes: Bytes,
    /// Alternative text.
    pub alt_text: Option<String>,
    /// The uploading admin.
    pub owner: Uuid,
}

/// Longest alternative text, in characters.
pub const MAX_ALT_TEXT: usize = 500;

/// Checks and normalises alternative text: trimmed, blank is none, at most 500 characters.
pub fn alt_text(raw: Option<&str>) -> Result<Option<String>, FieldError> {
    let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > MAX_ALT_TEXT {
        return Err(FieldError::new(
            "altText",
            format!("must be at most {MAX_ALT_TEXT} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(FieldError::new(
            "altText",
            "must not contain control characters",
        ));
    }
    Ok(Some(text.to_owned()))
}

fn counted(reason: &'static str, problem: Problem) -> ContentError {
    metrics::counter!("content_media_rejected_total", "reason" => reason).increment(1);
    ContentError::Problem(problem)
}

/// 413 for a file over the limit.
pub(crate) fn too_large(limit: usize) -> ContentError {
    counted(
        "too_large",
        Problem::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "file-too-large",
            "File too large",
        )
        .with_detail(format!(
            "The file is larger than the {limit}-byte ({} MB) upload limit.",
            limit / (1024 * 1024)
        ))
        .with_extension("maxBytes", serde_json::json!(limit)),
    )
}

fn unsupported() -> ContentError {
    counted(
        "unsupported_type",
        Problem::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
        )
        .with_detail(format!(
            "The file's content is not one of the accepted types ({}); its name and declared \
             type are not taken into account.",
            MediaType::ACCEPTED
        ))
        .with_extension(
            "accepted",
            serde_json::json!(["image/jpeg", "image/png", "image/webp", "video/mp4"]),
        ),
    )
}

fn unprocessable(reason: &'static str, code: &str, title: &str, detail: String) -> ContentError {
    counted(
        reason,
        Problem::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, code, title).with_detail(detail),
    )
}

impl From<ImageProblem> for ContentError {
    fn from(problem: ImageProblem) -> Self {
        match problem {
            ImageProblem::TooLarge(detail) => unprocessable(
                "image_too_large",
                "image-too-large",
                "Image too large",
                detail,
            ),
            ImageProblem::Unreadable(detail) => {
                unprocessable("unreadable", "unreadable-media", "Unreadable file", detail)
            }
            ImageProblem::Encode(detail) => {
                ContentError::Internal(anyhow::anyhow!("webp encoding: {detail}"))
            }
        }
    }
}

impl From<StorageError> for ContentError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Unavailable(detail) => {
                tracing::warn!(%detail, "media storage unavailable");
                ContentError::Problem(Problem::unavailable(
                    "Media storage cannot be reached; try again shortly.",
                ))
            }
            other => ContentError::Internal(other.into()),
        }
    }
}

/// An object to write: key, bytes, media type.
struct PendingObject {
    key: ObjectKey,
    bytes: Bytes,
    content_type: &'static str,
}

/// The decoded facts of an upload and the objects it becomes.
struct Prepared {
    media_type: MediaType,
    width: Option<u32>,
    height: Option<u32>,
    variants: BTreeMap<String, StoredVariant>,
    objects: Vec<PendingObject>,
}

async fn prepare(
    media: &Media,
    id: Uuid,
    now: DateTime<Utc>,
    bytes: Bytes,
) -> ContentResult<Prepared> {
    let media_type = MediaType::sniff(&bytes).ok_or_else(unsupported)?;
    let stem = format!("media/{:04}/{:02}/{id}", now.year(), now.month());
    let key = |suffix: &str| {
        ObjectKey::parse(&format!("{stem}{suffix}")).map_err(|e| ContentError::Internal(e.into()))
    };
    let original = PendingObject {
        key: key(&format!(".{}", media_type.extension()))?,
        bytes: bytes.clone(),
        content_type: media_type.mime(),
    };
    match media_type.kind() {
        MediaKind::Video => {
            let info = sniff::inspect_mp4(&bytes).map_err(|e| {
                unprocessable(
                    "unreadable",
                    "unreadable-media",
                    "Unreadable file",
                    e.to_string(),
                )
            })?;
            Ok(Prepared {
                media_type,
                width: info.dimensions.map(|d| d.0),
                height: info.dimensions.map(|d| d.1),
                variants: BTreeMap::new(),
                objects: vec![original],
            })
        }
        MediaKind::Image => {
            let processed = resize(media, bytes, media_type).await?;
            let mut variants = BTreeMap::new();
            let mut objects = vec![original];
            for variant in processed.variants {
                let key = key(&format!("-{}.webp", variant.name.as_str()))?;
                variants.insert(
                    variant.name.as_str().to_owned(),
                    StoredVariant {
                        key: key.as_str().to_owned(),
                        width: variant.width,
                        height: variant.height,
                        size_bytes: variant.webp.len() as u64,
                    },
                );
                objects.push(PendingObject {
                    key,
                    bytes: Bytes::from(variant.webp),
                    content_type: "image/webp",
                });
            }
            Ok(Prepared {
                media_type,
                width: Some(processed.width),
                height: Some(processed.height),
                variants,
                objects,
            })
        }
    }
}

/// Decodes and resizes on the blocking pool, bounded by the resize permits.
async fn resize(
    media: &Media,
    bytes: Bytes,
    media_type: MediaType,
) -> ContentResult<ProcessedImage> {
    let _permit = media
        .resize_permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| ContentError::Internal(e.into()))?;
    let limits: DecodeLimits = media.settings.decode;
    let quality = media.settings.webp_quality;
    let processed =
        tokio::task::spawn_blocking(move || variants::process(&bytes, media_type, limits, quality))
            .await
            .map_err(|e| ContentError::Internal(anyhow::anyhow!("image task failed: {e}")))??;
    Ok(processed)
}

/// Removes `keys`, logging and counting what cannot be removed (never fails).
pub(crate) async fn remove_objects(storage: &Storage, keys: &[ObjectKey]) {
    let results = futures::future::join_all(keys.iter().map(|key| storage.delete(key))).await;
    for (key, result) in keys.iter().zip(results) {
        if let Err(error) = result {
            metrics::counter!("content_media_cleanup_failures_total").increment(1);
            tracing::error!(%key, %error, "could not remove a media object; it is orphaned");
        }
    }
}

/// Writes every object; on any failure removes the ones written and returns the error.
async fn write_all(
    storage: &Storage,
    objects: Vec<PendingObject>,
) -> ContentResult<Vec<ObjectKey>> {
    let results = futures::future::join_all(
        objects
            .iter()
            .map(|o| storage.put(&o.key, o.bytes.clone(), o.content_type)),
    )
    .await;
    let mut written = Vec::new();
    let mut failure = None;
    for (object, result) in objects.into_iter().zip(results) {
        match result {
            Ok(()) => written.push(object.key),
            Err(error) => {
                failure.get_or_insert(error);
            }
        }
    }
    match failure {
        None => Ok(written),
        Some(error) => {
            remove_objects(storage, &written).await;
            Err(error.into())
        }
    }
}

/// Stores an upload: sniff, decode and resize, write the objects, then the row and its
/// `media.uploaded` event in one transaction. Nothing is left behind on failure.
pub async fn store_upload(media: &Media, db: &PgPool, upload: Upload) -> ContentResult<MediaAsset> {
    store_upload_by(media, db, upload, None).await
}

/// [`store_upload`] by `caller`, whose upload is recorded in the audit trail in the row's
/// transaction.
pub async fn store_upload_by(
    media: &Media,
    db: &PgPool,
    upload: Upload,
    caller: Option<&service_kit::Caller>,
) -> ContentResult<MediaAsset> {
    let id = Uuid::now_v7();
    let size = upload.bytes.len();
    let Prepared {
        media_type,
        width,
        height,
        variants,
        objects,
    } = prepare(media, id, Utc::now(), upload.bytes).await?;
    let original_key = objects[0].key.as_str().to_owned();
    let written = write_all(&media.storage, objects).await?;
    let facts = Facts {
        id,
        key: &original_key,
        media_type,
        width,
        height,
        variants: &variants,
        size,
        alt_text: upload.alt_text.as_deref(),
        owner: upload.owner,
    };
    match save(db, &facts, caller).await {
        Ok(row) => {
            metrics::counter!("content_media_uploads_total", "kind" => media_type.kind().as_str())
                .increment(1);
            Ok(row.into_asset(media))
        }
        Err(error) => {
            remove_objects(&media.storage, &written).await;
            Err(error)
        }
    }
}

/// What the row of a new asset says.
struct Facts<'a> {
    id: Uuid,
    key: &'a str,
    media_type: MediaType,
    width: Option<u32>,
    height: Option<u32>,
    variants: &'a BTreeMap<String, StoredVariant>,
    size: usize,
    alt_text: Option<&'a str>,
    owner: Uuid,
}

async fn save(
    db: &PgPool,
    facts: &Facts<'_>,
    caller: Option<&service_kit::Caller>,
) -> ContentResult<AssetRow> {
    let size = i64::try_from(facts.size).map_err(|e| ContentError::Internal(e.into()))?;
    let dimension = |v: Option<u32>| v.and_then(|v| i32::try_from(v).ok());
    let mut tx = db.begin().await?;
    let row: AssetRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO media_assets (id, storage_key, kind, mime_type, size_bytes, width, height, \
         variants, alt_text, owner_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         RETURNING {ASSET_COLUMNS}"
    )))
    .bind(facts.id)
    .bind(facts.key)
    .bind(facts.media_type.kind().as_str())
    .bind(facts.media_type.mime())
    .bind(size)
    .bind(dimension(facts.width))
    .bind(dimension(facts.height))
    .bind(sqlx::types::Json(facts.variants))
    .bind(facts.alt_text)
    .bind(facts.owner)
    .fetch_one(&mut *tx)
    .await?;
    event_bus::outbox::publish(
        &mut tx,
        &crate::event(MediaUploaded {
            asset_id: facts.id,
            storage_key: facts.key.to_owned(),
            content_type: facts.media_type.mime().to_owned(),
            size_bytes: size,
            width: facts.width,
            height: facts.height,
            uploaded_by: Some(facts.owner),
            uploaded_at: row.created_at,
        }),
    )
    .await?;
    if let Some(caller) = caller {
        // Alt text is redacted by name; the rest describes the file, not a person.
        service_kit::audit::Entry::new(caller, "media", facts.id, "create")
            .after(&serde_json::json!({
                "kind": row.kind,
                "mimeType": row.mime_type,
                "sizeBytes": row.size_bytes,
                "storageKey": row.storage_key,
                "altText": row.alt_text,
            }))
            .record(&mut tx)
            .await?;
    }
    tx.commit().await?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The media routes this service serves; a change here is an API change (and the gateway's
    /// route table must follow: it routes `/v1/uploads/**`, `/v1/media/**` and `/media/**`).
    #[test]
    fn the_openapi_document_lists_the_media_routes() {
        let routes: Vec<String> = service_kit::service::route_list::<crate::ContentService>()
            .into_iter()
            .filter(|r| r.contains("/media/") || r.ends_with("/v1/media") || r.contains("/uploads"))
            .collect();
        assert_eq!(
            routes,
            [
                "DELETE /v1/media/{id}",
                "GET /media/{key}",
                "GET /v1/media",
                "GET /v1/media/{id}",
                "PATCH /v1/media/{id}",
                "POST /v1/uploads",
            ]
        );
    }

    #[test]
    fn alt_text_is_trimmed_bounded_and_blank_is_none() {
        assert_eq!(alt_text(None), Ok(None));
        assert_eq!(alt_text(Some("   ")), Ok(None));
        assert_eq!(alt_text(Some("  Oak  ")), Ok(Some("Oak".to_owned())));
        assert_eq!(
            alt_text(Some(&"é".repeat(MAX_ALT_TEXT))).map(|t| t.map(|t| t.chars().count())),
            Ok(Some(MAX_ALT_TEXT))
        );
        assert!(alt_text(Some(&"a".repeat(MAX_ALT_TEXT + 1))).is_err());
        assert!(alt_text(Some("line\u{0}break")).is_err());
    }
}

//! The media admin API: `POST /v1/uploads`, `GET /v1/media`, `GET`/`PATCH`/`DELETE
//! /v1/media/{id}` (ADMIN and SUPER_ADMIN; there is no editor role, and consultants do not edit
//! the site).

use axum::Json;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use bytes::BytesMut;
use serde::Deserialize;
use service_kit::{
    AdminCaller, FieldError, OffsetPage, PageParams, Problem, ValidatedJson, ValidatedQuery,
};
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use super::{
    ASSET_COLUMNS, AssetRow, MediaAsset, MediaKind, Upload, alt_text, remove_objects,
    store_upload_by, too_large,
};
use crate::AppState;
use crate::error::{ContentError, ContentResult};
use crate::storage::ObjectKey;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .routes(routes!(list))
        .routes(routes!(get_one, patch, delete))
}

/// The multipart form of an upload: a `file` part and an optional `altText` part (the names
/// the handler reads).
#[derive(Debug, ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
struct UploadForm {
    /// The file: JPEG, PNG or WebP image, or MP4 video; at most 10 MB.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// Alternative text, at most 500 characters, no control characters.
    #[schema(
        nullable = false,
        max_length = 500,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    alt_text: Option<String>,
}

fn multipart_problem(error: &MultipartError, limit: usize) -> ContentError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        ContentError::Problem(Problem::bad_request(
            "The multipart body could not be read.",
        ))
    }
}

/// Reads a part into memory, refusing it with `too_long()` as soon as it passes `limit` bytes
/// (the rest of it is never read).
async fn read_limited(
    field: &mut Field<'_>,
    limit: usize,
    body_limit: usize,
    too_long: impl FnOnce() -> ContentError,
) -> ContentResult<bytes::Bytes> {
    let mut buffer = BytesMut::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| multipart_problem(&e, body_limit))?
    {
        if buffer.len() + chunk.len() > limit {
            return Err(too_long());
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}

/// Uploads an image or video (multipart/form-data: `file`, optional `altText`). The type is
/// decided from the file's bytes; images get `large` (1920 px), `medium` (800 px) and `thumb`
/// (300 px) WebP variants, bounded by the longest side and never upscaled.
#[utoipa::path(
    post,
    path = "/v1/uploads",
    tag = "media",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored, with its CDN URLs", body = MediaAsset),
        (status = 400, description = "The multipart body could not be read", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The file is over the upload limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not multipart, or the file is not JPEG, PNG, WebP or MP4", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing file, invalid alt text, or a truncated, corrupt or oversized image", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn upload(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    multipart: Result<Multipart, MultipartRejection>,
) -> ContentResult<(StatusCode, Json<MediaAsset>)> {
    let mut multipart = multipart.map_err(|_| {
        ContentError::Problem(
            Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            )
            .with_detail("Send the upload as multipart/form-data with a `file` part."),
        )
    })?;
    let limit = state.media.settings.max_upload_bytes;
    let mut file = None;
    let mut alt = None;
    let mut errors = Vec::new();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_problem(&e, limit))?
    {
        match field.name() {
            Some("file") if file.is_none() => {
                file = Some(read_limited(&mut field, limit, limit, || too_large(limit)).await?);
            }
            Some("file") => errors.push(FieldError::new("file", "send exactly one file")),
            Some("altText") if alt.is_none() => {
                // At most 4 bytes a character in UTF-8.
                let raw = read_limited(&mut field, super::MAX_ALT_TEXT * 4, limit, || {
                    ContentError::field("altText", "must be at most 500 characters")
                })
                .await?;
                match std::str::from_utf8(&raw) {
                    Ok(text) => alt = Some(text.to_owned()),
                    Err(_) => errors.push(FieldError::new("altText", "must be UTF-8 text")),
                }
            }
            Some(other) => errors.push(FieldError::new(other, "is not a field of an upload")),
            None => errors.push(FieldError::new("", "every part needs a name")),
        }
    }
    let alt_text = match alt_text(alt.as_deref()) {
        Ok(text) => text,
        Err(error) => {
            errors.push(error);
            None
        }
    };
    match &file {
        None => errors.push(FieldError::new("file", "is required")),
        Some(bytes) if bytes.is_empty() => errors.push(FieldError::new("file", "is empty")),
        Some(_) => {}
    }
    if !errors.is_empty() {
        return Err(ContentError::Validation(errors));
    }
    let Some(bytes) = file else {
        return Err(ContentError::field("file", "is required"));
    };
    let asset = store_upload_by(
        &state.media,
        &state.db,
        Upload {
            bytes,
            alt_text,
            owner: caller.user_id,
        },
        Some(&caller),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(asset)))
}

/// Filters and paging of the admin media table.
#[derive(Debug, Default, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MediaQuery {
    /// Page number from 1.
    #[validate(range(min = 1, max = 100000, message = "must be at least 1"))]
    #[param(minimum = 1, maximum = 100000)]
    pub page: Option<u32>,
    /// Rows a page, 1–100 (default 20).
    #[serde(rename = "pageSize")]
    #[param(rename = "pageSize", minimum = 1, maximum = 100)]
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    pub page_size: Option<u32>,
    /// Kinds to include, comma-separated: `IMAGE`, `VIDEO`.
    #[serde(rename = "filter[type]")]
    #[param(rename = "filter[type]")]
    #[param(
        pattern = r"^(?:[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*,)*[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:IMAGE|VIDEO)[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:,[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:(?:IMAGE|VIDEO)[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?)*$"
    )]
    pub kind: Option<String>,
}

fn kinds(raw: Option<&str>) -> ContentResult<Option<Vec<String>>> {
    let Some(raw) = raw else { return Ok(None) };
    let items: Vec<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() || items.iter().any(|item| MediaKind::from_db(item).is_none()) {
        return Err(ContentError::field(
            "filter[type]",
            "must be IMAGE, VIDEO or both, comma-separated",
        ));
    }
    Ok(Some(items.into_iter().map(str::to_owned).collect()))
}

/// Media assets, newest first (ADMIN, SUPER_ADMIN).
#[utoipa::path(
    get,
    path = "/v1/media",
    tag = "media",
    params(MediaQuery),
    responses(
        (status = 200, description = "One page of media assets", body = OffsetPage<MediaAsset>),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown filter or value", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ValidatedQuery(query): ValidatedQuery<MediaQuery>,
) -> ContentResult<Json<OffsetPage<MediaAsset>>> {
    let kinds = kinds(query.kind.as_deref())?;
    let paging = PageParams {
        page: query.page,
        page_size: query.page_size,
    };
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM media_assets WHERE deleted_at IS NULL \
         AND ($1::text[] IS NULL OR kind = ANY($1))",
    )
    .bind(kinds.as_deref())
    .fetch_one(&state.db)
    .await?;
    let rows: Vec<AssetRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ASSET_COLUMNS} FROM media_assets WHERE deleted_at IS NULL \
         AND ($1::text[] IS NULL OR kind = ANY($1)) \
         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    )))
    .bind(kinds.as_deref())
    .bind(i64::from(paging.page_size()))
    .bind(paging.offset())
    .fetch_all(&state.db)
    .await?;
    Ok(Json(OffsetPage {
        data: rows
            .into_iter()
            .map(|r| r.into_asset(&state.media))
            .collect(),
        page: paging.page(),
        page_size: paging.page_size(),
        total,
    }))
}

async fn load(conn: &mut PgConnection, id: Uuid, lock: bool) -> ContentResult<AssetRow> {
    let row: Option<AssetRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ASSET_COLUMNS} FROM media_assets WHERE id = $1 AND deleted_at IS NULL{}",
        if lock { " FOR UPDATE" } else { "" }
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.ok_or(ContentError::NotFound("media asset"))
}

/// One media asset (ADMIN, SUPER_ADMIN).
#[utoipa::path(
    get,
    path = "/v1/media/{id}",
    tag = "media",
    params(("id" = Uuid, Path, description = "Media id")),
    responses(
        (status = 200, description = "The asset", body = MediaAsset),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such asset", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_one(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Path(id): Path<Uuid>,
) -> ContentResult<Json<MediaAsset>> {
    let mut conn = state.db.acquire().await?;
    Ok(Json(
        load(&mut conn, id, false).await?.into_asset(&state.media),
    ))
}

/// What `PATCH /v1/media/{id}` may change (JSON Merge Patch: `null` clears).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MediaPatch {
    /// Alternative text (at most 500 characters, no control characters); `null` removes it.
    #[serde(default, deserialize_with = "service_kit::merge_patch::nullable")]
    #[schema(value_type = Option<String>, max_length = 500, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub alt_text: Option<Option<String>>,
}

/// Changes an asset's alternative text (ADMIN, SUPER_ADMIN).
#[utoipa::path(
    patch,
    path = "/v1/media/{id}",
    tag = "media",
    params(("id" = Uuid, Path, description = "Media id")),
    request_body(content = MediaPatch, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The updated asset", body = MediaAsset),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such asset", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid alt text", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn patch(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
    ValidatedJson(input): ValidatedJson<MediaPatch>,
) -> ContentResult<Json<MediaAsset>> {
    let mut tx = state.db.begin().await?;
    let mut row = load(&mut tx, id, true).await?;
    let before = serde_json::json!({ "altText": row.alt_text });
    if let Some(raw) = input.alt_text {
        let text = alt_text(raw.as_deref()).map_err(|e| ContentError::Validation(vec![e]))?;
        row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE media_assets SET alt_text = $2 WHERE id = $1 RETURNING {ASSET_COLUMNS}"
        )))
        .bind(id)
        .bind(text)
        .fetch_one(&mut *tx)
        .await?;
        // Alt text is free text: redacted by name, the trail shows that it changed.
        service_kit::audit::Entry::new(&admin, "media", id, "update")
            .before(&before)
            .after(&serde_json::json!({ "altText": row.alt_text }))
            .record(&mut tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Json(row.into_asset(&state.media)))
}

/// Where live content refers to the asset (by id, or by a URL, which contains the id).
async fn references(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT array_remove(ARRAY[
            CASE WHEN EXISTS (SELECT 1 FROM blog_posts WHERE deleted_at IS NULL AND (
                cover_media_id = $1 OR strpos(concat_ws(' ', cover_image_url, content_md, seo::text), $2) > 0))
              THEN 'blog post' END,
            CASE WHEN EXISTS (SELECT 1 FROM pages p WHERE p.deleted_at IS NULL AND (
                strpos(p.blocks::text || p.seo::text, $2) > 0 OR EXISTS (
                    SELECT 1 FROM page_versions v WHERE v.page_id = p.id
                    AND v.version = p.published_version
                    AND strpos(v.blocks::text || v.seo::text, $2) > 0)))
              THEN 'page' END,
            CASE WHEN EXISTS (SELECT 1 FROM hero_slides WHERE deleted_at IS NULL
                AND strpos(media::text, $2) > 0) THEN 'hero slide' END,
            CASE WHEN EXISTS (SELECT 1 FROM media_wall WHERE background_media_id = $1
                OR strpos(concat_ws(' ', background_image_url, images::text), $2) > 0)
              THEN 'media wall' END,
            CASE WHEN EXISTS (SELECT 1 FROM projects WHERE deleted_at IS NULL
                AND strpos(images::text, $2) > 0) THEN 'project' END,
            CASE WHEN EXISTS (SELECT 1 FROM accreditations WHERE deleted_at IS NULL AND (
                logo_media_id = $1 OR strpos(coalesce(logo_url, ''), $2) > 0))
              THEN 'accreditation' END,
            CASE WHEN EXISTS (SELECT 1 FROM testimonials WHERE deleted_at IS NULL
                AND strpos(coalesce(media::text, ''), $2) > 0) THEN 'testimonial' END
         ], NULL)",
    )
    .bind(id)
    .bind(id.to_string())
    .fetch_one(conn)
    .await
}

/// Deletes an asset and its objects, unless live content uses it (ADMIN, SUPER_ADMIN).
#[utoipa::path(
    delete,
    path = "/v1/media/{id}",
    tag = "media",
    params(("id" = Uuid, Path, description = "Media id")),
    responses(
        (status = 204, description = "Deleted; its objects are removed and the CDN invalidated"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such asset", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Live content still uses it", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn delete(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
) -> ContentResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let row = load(&mut tx, id, true).await?;
    let used_by = references(&mut tx, id).await?;
    if !used_by.is_empty() {
        return Err(ContentError::Problem(
            Problem::conflict(
                "media-in-use",
                format!(
                    "This media is still used by: {}. Remove it there first.",
                    used_by.join(", ")
                ),
            )
            .with_extension("usedBy", serde_json::json!(used_by)),
        ));
    }
    sqlx::query("UPDATE media_assets SET deleted_at = now() WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    service_kit::audit::Entry::new(&admin, "media", id, "delete")
        .before(&serde_json::json!({
            "kind": row.kind,
            "mimeType": row.mime_type,
            "sizeBytes": row.size_bytes,
            "storageKey": row.storage_key,
        }))
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    // After the commit: a failed removal leaves an orphaned object (logged and counted), never a
    // live row pointing at nothing.
    let keys: Vec<ObjectKey> = row
        .keys()
        .iter()
        .filter_map(|k| ObjectKey::parse(k).ok())
        .collect();
    remove_objects(&state.media.storage, &keys).await;
    // In the background: the CDN API must not hold up (or fail) a delete that has committed.
    state.cdn.invalidate_in_background(row.keys());
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use crate::ContentService;

    /// The upload's documented form names its parts as [`super::upload`] reads them (it
    /// answers 422 "is not a field of an upload" to any other name).
    #[test]
    fn the_documented_upload_form_names_the_parts_the_handler_reads() {
        let doc = serde_json::to_value(service_kit::service::openapi::<ContentService>())
            .expect("the document serialises");
        let form = &doc["components"]["schemas"]["UploadForm"];
        let mut parts: Vec<&str> = form["properties"]
            .as_object()
            .expect("the form has properties")
            .keys()
            .map(String::as_str)
            .collect();
        parts.sort_unstable();
        assert_eq!(parts, ["altText", "file"]);
        assert_eq!(form["properties"]["altText"]["maxLength"], 500);
    }
}

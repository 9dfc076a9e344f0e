//! The media wall: one object (title, description, background image, ordered images), read by
//! the storefront and replaced whole by admins.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::cache::Ttl;
use service_kit::{AdminCaller, ValidatedJson};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use super::{MediaRef, validate_http_url};
use crate::AppState;
use crate::error::{ContentError, ContentResult};

/// The media wall as an admin sets it.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MediaWallInput {
    /// Heading, 1–120 characters.
    #[validate(length(min = 1, max = 120, message = "must be 1–120 characters"))]
    #[schema(min_length = 1, max_length = 120)]
    pub title: String,
    /// Text, at most 2000 characters.
    #[serde(default)]
    #[validate(length(max = 2000, message = "must be at most 2000 characters"))]
    #[schema(max_length = 2000)]
    pub description: String,
    /// Background image URL.
    #[serde(default)]
    #[validate(custom(function = "validate_http_url"))]
    #[schema(
        max_length = 2000,
        pattern = r"^(?:https://[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|http://[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]{2,})$"
    )]
    pub background_image_url: Option<String>,
    /// Background image media id.
    #[serde(default)]
    pub background_media_id: Option<Uuid>,
    /// The wall's pictures and films, in order (at most 100).
    #[serde(default)]
    #[validate(length(max = 100, message = "at most 100 images"), nested)]
    #[schema(max_items = 100)]
    pub images: Vec<MediaRef>,
}

/// The media wall.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MediaWall {
    /// Heading.
    pub title: String,
    /// Text.
    pub description: String,
    /// Background image URL.
    pub background_image_url: Option<String>,
    /// Background image media id.
    pub background_media_id: Option<Uuid>,
    /// Pictures and films, in order.
    pub images: Vec<MediaRef>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

type Row = (
    String,
    String,
    Option<String>,
    Option<Uuid>,
    sqlx::types::Json<Vec<MediaRef>>,
    DateTime<Utc>,
);

fn wall(
    (title, description, background_image_url, background_media_id, images, updated_at): Row,
) -> MediaWall {
    MediaWall {
        title,
        description,
        background_image_url,
        background_media_id,
        images: images.0,
        updated_at,
    }
}

/// The media wall (404 until an admin has set it).
#[utoipa::path(
    get,
    path = "/v1/media-wall",
    tag = "storefront",
    responses(
        (status = 200, description = "The media wall", body = MediaWall),
        (status = 404, description = "Not set yet", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn get_wall(State(state): State<AppState>, headers: HeaderMap) -> ContentResult<Response> {
    state
        .blog_cache
        .serve(&headers, "media-wall", "", Ttl::Detail, || async {
            let row: Option<Row> = sqlx::query_as(
                "SELECT title, description, background_image_url, background_media_id, images,
                        updated_at
                 FROM media_wall",
            )
            .fetch_optional(&state.db)
            .await?;
            let wall = row.map(wall).ok_or(ContentError::NotFound("media wall"))?;
            Ok::<_, ContentError>(serde_json::to_vec(&wall).map_err(anyhow::Error::from)?)
        })
        .await
}

/// Sets the media wall, replacing it whole (ADMIN).
#[utoipa::path(
    put,
    path = "/v1/media-wall",
    tag = "storefront",
    request_body = MediaWallInput,
    responses(
        (status = 200, description = "The media wall", body = MediaWall),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid media wall", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn put_wall(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ValidatedJson(input): ValidatedJson<MediaWallInput>,
) -> ContentResult<Json<MediaWall>> {
    let mut tx = state.db.begin().await?;
    let before: Option<Row> = sqlx::query_as(
        "SELECT title, description, background_image_url, background_media_id, images,
                updated_at
         FROM media_wall FOR UPDATE",
    )
    .fetch_optional(&mut *tx)
    .await?;
    let row: Row = sqlx::query_as(
        "INSERT INTO media_wall (id, title, description, background_image_url,
             background_media_id, images)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT ON CONSTRAINT media_wall_singleton DO UPDATE
            SET title = EXCLUDED.title, description = EXCLUDED.description,
                background_image_url = EXCLUDED.background_image_url,
                background_media_id = EXCLUDED.background_media_id, images = EXCLUDED.images
         RETURNING title, description, background_image_url, background_media_id, images,
                   updated_at",
    )
    .bind(Uuid::now_v7())
    .bind(&input.title)
    .bind(&input.description)
    .bind(&input.background_image_url)
    .bind(input.background_media_id)
    .bind(sqlx::types::Json(&input.images))
    .fetch_one(&mut *tx)
    .await?;
    let after = wall(row);
    let mut entry = service_kit::audit::Entry::new(&admin, "media_wall", "media-wall", "update")
        .after(&after)
        .redact(&["description"]);
    if let Some(before) = before {
        entry = entry.before(&wall(before));
    }
    entry.record(&mut tx).await?;
    tx.commit().await?;
    state.content_changed(&["/v1/media-wall".to_owned()]).await;
    Ok(Json(after))
}

/// The media wall's routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_wall, put_wall))
}

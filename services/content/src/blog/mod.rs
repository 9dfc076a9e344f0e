//! The blog (seed 001 flow 6): posts written in Markdown, published now or on schedule.
//!
//! - **Slugs** come from the title, transliterated to ASCII ("Crème Brûlée Kitchens" →
//!   `creme-brulee-kitchens`); a derived slug that is taken gets the first free numeric suffix
//!   (`-2`, `-3`, ...). An admin may set a slug explicitly; an explicit slug that is taken is a
//!   409, never silently changed. `"slug": null` in a patch derives it from the title again.
//! - **Content** is stored as Markdown and rendered once, on save, to sanitised HTML
//!   ([`crate::markdown`]) with its reading time.
//! - **Statuses** `DRAFT → SCHEDULED → PUBLISHED → DRAFT (unpublish)`, and `ARCHIVED` from any.
//!   Publishing an already published post changes nothing. `publishedAt` is set by the first
//!   publication and kept when a post is unpublished and published again, so it keeps its place
//!   in the newest-first list.
//! - **`blog.published`** is written to the outbox in the publishing transaction, once per post:
//!   `announced_at` records it, and the publish `UPDATE` runs on the row locked `FOR UPDATE`, so
//!   an admin's publish and the scheduler ([`schedule`]) racing for the same post emit it once.
//! - **Public reads** (`GET /v1/blog`, `/v1/blog/{id}`, `/related`) see published, undeleted posts
//!   only (anything else is 404) and are served from the Redis response cache; every admin write
//!   invalidates it after its commit ([`crate::AppState::content_changed`]).

pub mod schedule;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::audit;
use service_kit::cache::Ttl;
use service_kit::extract::decode_cursor;
use service_kit::shared_types::content::BlogPublished;
use service_kit::{
    AdminCaller, Caller, CursorPage, OffsetPage, PageParams, ValidatedJson, ValidatedQuery,
};
use sqlx::{PgConnection, Postgres, Transaction};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use crate::error::{ContentError, ContentResult};
use crate::seo::SeoMeta;
use crate::{AppState, event, markdown};
use service_kit::merge_patch::{MergePatch, patched};

/// Where a post is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PostStatus {
    /// Being written; invisible to the public.
    Draft,
    /// Goes live by itself at `scheduledFor`.
    Scheduled,
    /// Live.
    Published,
    /// Withdrawn for good (kept for the record).
    Archived,
}

impl PostStatus {
    fn as_db(self) -> &'static str {
        match self {
            Self::Draft => "DRAFT",
            Self::Scheduled => "SCHEDULED",
            Self::Published => "PUBLISHED",
            Self::Archived => "ARCHIVED",
        }
    }

    fn from_db(value: &str) -> Self {
        match value {
            "SCHEDULED" => Self::Scheduled,
            "PUBLISHED" => Self::Published,
            "ARCHIVED" => Self::Archived,
            _ => Self::Draft,
        }
    }
}

/// A blog post as admins see it (the public detail is the same document).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlogPost {
    /// Id.
    pub id: Uuid,
    /// URL slug.
    pub slug: String,
    /// Title.
    pub title: String,
    /// Short summary for lists and cards.
    pub excerpt: String,
    /// The body as written (Markdown).
    pub content: String,
    /// The body rendered to sanitised HTML.
    pub content_html: String,
    /// Minutes to read, rounded up.
    pub reading_minutes: i32,
    /// Cover image: a media asset id.
    pub cover_media_id: Option<Uuid>,
    /// Cover image URL (for images not in the media library, or as resolved by the editor).
    pub cover_image_url: Option<String>,
    /// The admin who created it.
    pub author_id: Option<Uuid>,
    /// The byline shown.
    pub author_name: Option<String>,
    /// Tags (slugs).
    pub tags: Vec<String>,
    /// Category (slug).
    pub category: Option<String>,
    /// Search and sharing metadata.
    pub seo: SeoMeta,
    /// Status.
    pub status: PostStatus,
    /// When a SCHEDULED post goes live.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// When it first went live.
    pub published_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A post in a public list (no body).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlogSummary {
    /// Id.
    pub id: Uuid,
    /// URL slug.
    pub slug: String,
    /// Title.
    pub title: String,
    /// Short summary.
    pub excerpt: String,
    /// Minutes to read.
    pub reading_minutes: i32,
    /// Cover image media id.
    pub cover_media_id: Option<Uuid>,
    /// Cover image URL.
    pub cover_image_url: Option<String>,
    /// Byline.
    pub author_name: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Category.
    pub category: Option<String>,
    /// When it went live.
    pub published_at: Option<DateTime<Utc>>,
}

impl From<BlogPost> for BlogSummary {
    fn from(post: BlogPost) -> Self {
        Self {
            id: post.id,
            slug: post.slug,
            title: post.title,
            excerpt: post.excerpt,
            reading_minutes: post.reading_minutes,
            cover_media_id: post.cover_media_id,
            cover_image_url: post.cover_image_url,
            author_name: post.author_name,
            tags: post.tags,
            category: post.category,
            published_at: post.published_at,
        }
    }
}

/// What an admin writes (`POST` body; `PATCH` is a merge patch of it).
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlogInput {
    /// Title, 1–200 characters with an ASCII letter or digit (the slug is made from it).
    #[validate(length(min = 1, max = 200, message = "must be 1–200 characters"))]
    #[schema(min_length = 1, max_length = 200, pattern = "[A-Za-z0-9]")]
    pub title: String,
    /// URL slug (lower-case letters, digits, single hyphens); derived from the title when absent.
    #[serde(default)]
    #[schema(max_length = 120, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    pub slug: Option<String>,
    /// Summary, at most 500 characters.
    #[serde(default)]
    #[validate(length(max = 500, message = "must be at most 500 characters"))]
    #[schema(max_length = 500)]
    pub excerpt: String,
    /// Body in Markdown, at most 200 000 characters.
    #[serde(default)]
    #[validate(length(max = 200000, message = "must be at most 200000 characters"))]
    #[schema(max_length = 200000)]
    pub content: String,
    /// Cover image media id.
    #[serde(default)]
    pub cover_media_id: Option<Uuid>,
    /// Cover image URL (http or https).
    #[serde(default)]
    #[validate(url(message = "must be an absolute URL"))]
    #[schema(format = "uri")]
    pub cover_image_url: Option<String>,
    /// Byline, 1–100 characters.
    #[serde(default)]
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    #[schema(min_length = 1, max_length = 100)]
    pub author_name: Option<String>,
    /// At most 20 tags, each made into a slug (`Kitchen Design` → `kitchen-design`).
    #[serde(default)]
    #[validate(length(max = 20, message = "at most 20 tags"))]
    #[schema(schema_with = tags_schema)]
    pub tags: Vec<String>,
    /// Category, 1–60 characters with a letter or digit, made into a slug.
    #[serde(default)]
    #[validate(length(min = 1, max = 60, message = "must be 1–60 characters"))]
    #[schema(min_length = 1, max_length = 60, pattern = "[A-Za-z0-9]")]
    pub category: Option<String>,
    /// Search and sharing metadata.
    #[serde(default)]
    #[validate(nested)]
    pub seo: SeoMeta,
}

/// What a tag may be, as the document states it: 1–40 ASCII letters, digits, spaces or hyphens
/// with at least one letter or digit. Every such tag makes a slug of 1–40 characters, which is
/// what [`prepare`] requires. (`prepare` also transliterates other letters, `Crème` → `creme`,
/// which no portable pattern can state; the document promises only the ASCII form.)
pub const TAG_PATTERN: &str = "^[ -]*[A-Za-z0-9][A-Za-z0-9 -]*$";

fn tags_schema() -> utoipa::openapi::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(40))
                .pattern(Some(TAG_PATTERN)),
        )
        .max_items(Some(20))
        .description(Some(
            "At most 20 tags, each 1–40 letters, digits, spaces or hyphens, made into a slug \
             (`Kitchen Design` → `kitchen-design`).",
        ))
        .build()
}

impl From<&BlogPost> for BlogInput {
    fn from(post: &BlogPost) -> Self {
        Self {
            title: post.title.clone(),
            slug: Some(post.slug.clone()),
            excerpt: post.excerpt.clone(),
            content: post.content.clone(),
            cover_media_id: post.cover_media_id,
            cover_image_url: post.cover_image_url.clone(),
            author_name: post.author_name.clone(),
            tags: post.tags.clone(),
            category: post.category.clone(),
            seo: post.seo.clone(),
        }
    }
}

/// A [`BlogInput`] checked beyond its field rules: slug, tags and category normalised, the
/// Markdown rendered.
struct Prepared {
    input: BlogInput,
    /// `Some` when the admin chose the slug (a clash is then a 409).
    explicit_slug: Option<String>,
    /// The slug derived from the title (suffixed on a clash).
    derived_slug: String,
    tags: Vec<String>,
    category: Option<String>,
    html: String,
    reading_minutes: i32,
}

/// A tag as the document's tag pattern states it: 1–40 ASCII letters, digits, spaces or
/// hyphens, with a letter or digit (so its slug is the tag lower-cased and hyphenated).
fn is_tag(tag: &str) -> bool {
    (1..=40).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'-')
        && validation::has_ascii_alphanumeric(tag)
}

fn prepare(input: BlogInput) -> ContentResult<Prepared> {
    let mut errors = Vec::new();
    let explicit_slug = match input.slug.as_deref() {
        Some(slug) => match validation::Slug::parse(slug) {
            Ok(slug) => Some(String::from(slug.as_str())),
            Err(e) => {
                errors.push(service_kit::FieldError::new("slug", e.message()));
                None
            }
        },
        None => None,
    };
    // The document's title rule (an ASCII letter or digit) is this one exactly, whether or
    // not a slug is given: a schema-valid title is never refused, nor a refused one valid.
    let derived_slug = match validation::slugify(&input.title) {
        Ok(slug) if validation::has_ascii_alphanumeric(&input.title) => String::from(slug.as_str()),
        _ => {
            errors.push(service_kit::FieldError::new(
                "title",
                "must contain an ASCII letter or digit (the slug is made from it)",
            ));
            String::new()
        }
    };
    let mut tags = Vec::with_capacity(input.tags.len());
    for (index, tag) in input.tags.iter().enumerate() {
        match validation::slugify(tag) {
            Ok(slug) if is_tag(tag) => {
                let slug = String::from(slug.as_str());
                if !tags.contains(&slug) {
                    tags.push(slug);
                }
            }
            _ => errors.push(service_kit::FieldError::new(
                format!("tags[{index}]"),
                "must be 1–40 letters, digits or hyphens",
            )),
        }
    }
    let category = match input.category.as_deref() {
        Some(category) => match validation::slugify(category) {
            Ok(slug) if validation::has_ascii_alphanumeric(category) => {
                Some(String::from(slug.as_str()))
            }
            _ => {
                errors.push(service_kit::FieldError::new(
                    "category",
                    "must contain an ASCII letter or digit",
                ));
                None
            }
        },
        None => None,
    };
    if let Some(url) = &input.cover_image_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        errors.push(service_kit::FieldError::new(
            "coverImageUrl",
            "must be an http(s) URL",
        ));
    }
    if !errors.is_empty() {
        return Err(ContentError::Validation(errors));
    }
    let html = markdown::to_safe_html(&input.content);
    let reading_minutes = markdown::reading_minutes(&input.content);
    Ok(Prepared {
        input,
        explicit_slug,
        derived_slug,
        tags,
        category,
        html,
        reading_minutes,
    })
}

// ---------------------------------------------------------------------------------------------
// Queries

/// The columns a [`PostRow`] reads (a macro so queries stay `&'static str` literals).
macro_rules! post_columns {
    () => {
        "id, slug, title, excerpt, content_md, content_html, reading_minutes, cover_media_id, \
         cover_image_url, author_id, author_name, tags, category, seo, status, scheduled_for, \
         published_at, created_at, updated_at"
    };
}

#[derive(sqlx::FromRow)]
struct PostRow {
    id: Uuid,
    slug: String,
    title: String,
    excerpt: String,
    content_md: String,
    content_html: String,
    reading_minutes: i32,
    cover_media_id: Option<Uuid>,
    cover_image_url: Option<String>,
    author_id: Option<Uuid>,
    author_name: Option<String>,
    tags: Vec<String>,
    category: Option<String>,
    seo: sqlx::types::Json<SeoMeta>,
    status: String,
    scheduled_for: Option<DateTime<Utc>>,
    published_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<PostRow> for BlogPost {
    fn from(row: PostRow) -> Self {
        Self {
            id: row.id,
            slug: row.slug,
            title: row.title,
            excerpt: row.excerpt,
            content: row.content_md,
            content_html: row.content_html,
            reading_minutes: row.reading_minutes,
            cover_media_id: row.cover_media_id,
            cover_image_url: row.cover_image_url,
            author_id: row.author_id,
            author_name: row.author_name,
            tags: row.tags,
            category: row.category,
            seo: row.seo.0,
            status: PostStatus::from_db(&row.status),
            scheduled_for: row.scheduled_for,
            published_at: row.published_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// An undeleted post by id, whatever its status.
async fn load(conn: &mut PgConnection, id: Uuid) -> ContentResult<Option<BlogPost>> {
    let row: Option<PostRow> = sqlx::query_as(concat!(
        "SELECT ",
        post_columns!(),
        " FROM blog_posts WHERE id = $1 AND deleted_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(BlogPost::from))
}

/// A published post by slug (or id).
async fn load_public(db: &sqlx::PgPool, key: &str) -> ContentResult<Option<BlogPost>> {
    let id = Uuid::parse_str(key).ok();
    let row: Option<PostRow> = sqlx::query_as(concat!(
        "SELECT ",
        post_columns!(),
        " FROM blog_posts
         WHERE (slug = $1 OR id = $2) AND status = 'PUBLISHED' AND deleted_at IS NULL
         LIMIT 1"
    ))
    .bind(key)
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(BlogPost::from))
}

/// The first free slug among `base`, `base-2`, `base-3`, ... (live posts other than `except`).
async fn free_slug(conn: &mut PgConnection, base: &str, except: Uuid) -> ContentResult<String> {
    let taken: Vec<String> = sqlx::query_scalar(
        "SELECT slug FROM blog_posts
         WHERE deleted_at IS NULL AND id <> $2 AND (slug = $1 OR slug LIKE $1 || '-%')",
    )
    .bind(base)
    .bind(except)
    .fetch_all(conn)
    .await?;
    Ok(first_free(base, &taken))
}

/// `base` if not in `taken`, else `base-N` with the smallest N ≥ 2 not in `taken` (kept within
/// the slug length limit by shortening the base).
pub(crate) fn first_free(base: &str, taken: &[String]) -> String {
    if !taken.iter().any(|t| t == base) {
        return base.to_owned();
    }
    let mut n = 2u32;
    loop {
        let suffix = format!("-{n}");
        let room = validation::MAX_SLUG_LEN.saturating_sub(suffix.len());
        let stem = base[..base.len().min(room)].trim_end_matches('-');
        let candidate = format!("{stem}{suffix}");
        if !taken.contains(&candidate) {
            return candidate;
        }
        n += 1;
    }
}

/// Whether `slug` is used by a live post other than `except`.
async fn slug_taken(conn: &mut PgConnection, slug: &str, except: Uuid) -> ContentResult<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM blog_posts WHERE slug = $1 AND id <> $2 AND deleted_at IS NULL)",
    )
    .bind(slug)
    .bind(except)
    .fetch_one(conn)
    .await?)
}

/// The slug a save should use: the explicit one (409 when taken) or the derived one with the
/// first free suffix.
async fn choose_slug(
    conn: &mut PgConnection,
    prepared: &Prepared,
    id: Uuid,
) -> ContentResult<String> {
    match &prepared.explicit_slug {
        Some(slug) => {
            if slug_taken(conn, slug, id).await? {
                return Err(ContentError::Conflict(
                    "slug-taken",
                    format!("Another blog post already uses the slug `{slug}`."),
                ));
            }
            Ok(slug.clone())
        }
        None => free_slug(conn, &prepared.derived_slug, id).await,
    }
}

/// Whether `error` is the live-slug unique index (two saves raced for the same slug).
fn is_slug_race(error: &ContentError) -> bool {
    matches!(error, ContentError::Database(e)
        if service_kit::problem::violated_constraint(e) == Some("blog_posts_slug_live_key"))
}

// ---------------------------------------------------------------------------------------------
// Admin writes

/// Creates a draft post (ADMIN).
#[utoipa::path(
    post,
    path = "/v1/blog",
    tag = "blog",
    request_body = BlogInput,
    responses(
        (status = 201, description = "Created as a draft", body = BlogPost),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The explicit slug is taken", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid post", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn create_post(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ValidatedJson(input): ValidatedJson<BlogInput>,
) -> ContentResult<(StatusCode, Json<BlogPost>)> {
    let prepared = prepare(input)?;
    let id = Uuid::now_v7();
    // A concurrent save may take the derived slug between the check and the insert; the unique
    // index refuses the loser, which then picks the next free suffix.
    let mut attempts = 0;
    let post = loop {
        attempts += 1;
        match insert(&state, &prepared, id, &admin).await {
            Err(e) if attempts < 5 && prepared.explicit_slug.is_none() && is_slug_race(&e) => {}
            other => break other?,
        }
    };
    state.content_changed(&[]).await;
    Ok((StatusCode::CREATED, Json(post)))
}

async fn insert(
    state: &AppState,
    prepared: &Prepared,
    id: Uuid,
    admin: &Caller,
) -> ContentResult<BlogPost> {
    let author = admin.user_id;
    let mut tx = state.db.begin().await?;
    let slug = choose_slug(&mut tx, prepared, id).await?;
    let input = &prepared.input;
    sqlx::query(
        "INSERT INTO blog_posts (id, slug, title, excerpt, content_md, content_html,
             reading_minutes, cover_media_id, cover_image_url, author_id, author_name, tags,
             category, seo, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $10)",
    )
    .bind(id)
    .bind(&slug)
    .bind(&input.title)
    .bind(&input.excerpt)
    .bind(&input.content)
    .bind(&prepared.html)
    .bind(prepared.reading_minutes)
    .bind(input.cover_media_id)
    .bind(&input.cover_image_url)
    .bind(author)
    .bind(&input.author_name)
    .bind(&prepared.tags)
    .bind(&prepared.category)
    .bind(sqlx::types::Json(&input.seo))
    .execute(&mut *tx)
    .await?;
    let post = load(&mut tx, id)
        .await?
        .ok_or(ContentError::NotFound("blog post"))?;
    audit_post(&mut tx, admin, "create", None, Some(&post)).await?;
    tx.commit().await?;
    Ok(post)
}

/// Records `action` on a post in the audit trail, in the change's transaction. The text fields
/// are long and the post's own history shows them; the trail says only that they changed.
async fn audit_post(
    conn: &mut PgConnection,
    admin: &Caller,
    action: &str,
    before: Option<&BlogPost>,
    after: Option<&BlogPost>,
) -> Result<(), sqlx::Error> {
    let Some(id) = after.or(before).map(|post| post.id) else {
        return Ok(());
    };
    let mut entry = audit::Entry::new(admin, "blog_post", id, action).redact(&[
        "excerpt",
        "content",
        "contentHtml",
    ]);
    if let Some(before) = before {
        entry = entry.before(before);
    }
    if let Some(after) = after {
        entry = entry.after(after);
    }
    entry.record(conn).await
}

/// Changes a post with a JSON Merge Patch of [`BlogInput`] (ADMIN). `"slug": null` derives the
/// slug from the (new) title again; a published post changes live at once.
#[utoipa::path(
    patch,
    path = "/v1/blog/{id}",
    tag = "blog",
    params(("id" = Uuid, Path, description = "Post id")),
    request_body(content = BlogInput, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "Updated", body = BlogPost),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such post", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The explicit slug is taken", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not a JSON merge patch", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid patch", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn patch_post(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
    MergePatch(patch): MergePatch,
) -> ContentResult<Json<BlogPost>> {
    let mut tx = state.db.begin().await?;
    let current = lock(&mut tx, id).await?;
    let document = serde_json::to_value(BlogInput::from(&current)).map_err(anyhow::Error::from)?;
    let prepared = prepare(patched::<BlogInput>(document, &patch)?)?;
    // The current slug is no clash with itself; a changed explicit slug must be free.
    let slug = choose_slug(&mut tx, &prepared, id).await?;
    let input = &prepared.input;
    sqlx::query(
        "UPDATE blog_posts SET slug = $2, title = $3, excerpt = $4, content_md = $5,
             content_html = $6, reading_minutes = $7, cover_media_id = $8, cover_image_url = $9,
             author_name = $10, tags = $11, category = $12, seo = $13
         WHERE id = $1",
    )
    .bind(id)
    .bind(&slug)
    .bind(&input.title)
    .bind(&input.excerpt)
    .bind(&input.content)
    .bind(&prepared.html)
    .bind(prepared.reading_minutes)
    .bind(input.cover_media_id)
    .bind(&input.cover_image_url)
    .bind(&input.author_name)
    .bind(&prepared.tags)
    .bind(&prepared.category)
    .bind(sqlx::types::Json(&input.seo))
    .execute(&mut *tx)
    .await?;
    let post = load(&mut tx, id)
        .await?
        .ok_or(ContentError::NotFound("blog post"))?;
    audit_post(&mut tx, &admin, "update", Some(&current), Some(&post)).await?;
    tx.commit().await?;
    state
        .content_changed(&post_paths(&current, Some(&post)))
        .await;
    Ok(Json(post))
}

/// Locks an undeleted post for a change; 404 when there is none.
async fn lock(tx: &mut Transaction<'_, Postgres>, id: Uuid) -> ContentResult<BlogPost> {
    let found: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM blog_posts WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    if found.is_none() {
        return Err(ContentError::NotFound("blog post"));
    }
    load(tx, id)
        .await?
        .ok_or(ContentError::NotFound("blog post"))
}

/// The public URL paths a change to a post affects (for the CDN).
fn post_paths(before: &BlogPost, after: Option<&BlogPost>) -> Vec<String> {
    let mut paths = vec!["/v1/blog".to_owned(), format!("/v1/blog/{}", before.slug)];
    if let Some(after) = after
        && after.slug != before.slug
    {
        paths.push(format!("/v1/blog/{}", after.slug));
    }
    paths
}

/// Publishes the locked post `id` at `at` (when it is not live already), writing
/// `blog.published` to the outbox the first time the post ever goes live. Returns whether the
/// status changed.
pub(crate) async fn publish_locked(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    at: DateTime<Utc>,
) -> ContentResult<bool> {
    let changed: Option<(bool,)> = sqlx::query_as(
        "WITH old AS (SELECT id, announced_at FROM blog_posts WHERE id = $1 AND deleted_at IS NULL)
         UPDATE blog_posts p
            SET status = 'PUBLISHED', published_at = coalesce(p.published_at, $2),
                scheduled_for = NULL, announced_at = coalesce(p.announced_at, now())
           FROM old
          WHERE p.id = old.id AND p.status <> 'PUBLISHED'
         RETURNING old.announced_at IS NULL",
    )
    .bind(id)
    .bind(at)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((first_time,)) = changed else {
        return Ok(false);
    };
    if first_time {
        let post = load(tx, id)
            .await?
            .ok_or(ContentError::NotFound("blog post"))?;
        let payload = BlogPublished {
            post_id: post.id,
            slug: post.slug,
            title: post.title,
            author_id: post.author_id,
            tags: post.tags,
            published_at: post.published_at.unwrap_or(at),
        };
        service_kit::event_bus::outbox::publish(tx, &event(payload)).await?;
    }
    Ok(true)
}

/// Publishes a post now (ADMIN). Publishing a published post changes nothing.
#[utoipa::path(
    post,
    path = "/v1/blog/{id}/publish",
    tag = "blog",
    params(("id" = Uuid, Path, description = "Post id")),
    responses(
        (status = 200, description = "Published", body = BlogPost),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such post", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn publish(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
) -> ContentResult<Json<BlogPost>> {
    let mut tx = state.db.begin().await?;
    let before = lock(&mut tx, id).await?;
    let changed = publish_locked(&mut tx, id, Utc::now()).await?;
    let post = load(&mut tx, id)
        .await?
        .ok_or(ContentError::NotFound("blog post"))?;
    if changed {
        audit_post(&mut tx, &admin, "publish", Some(&before), Some(&post)).await?;
    }
    tx.commit().await?;
    if changed {
        state
            .content_changed(&post_paths(&before, Some(&post)))
            .await;
    }
    Ok(Json(post))
}

/// Takes a post off the site (ADMIN): PUBLISHED or SCHEDULED → DRAFT; its public URL is 404.
#[utoipa::path(
    post,
    path = "/v1/blog/{id}/unpublish",
    tag = "blog",
    params(("id" = Uuid, Path, description = "Post id")),
    responses(
        (status = 200, description = "Back to draft", body = BlogPost),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such post", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn unpublish(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
) -> ContentResult<Json<BlogPost>> {
    set_status(&state, &admin, id, PostStatus::Draft).await
}

/// Archives a post (ADMIN): withdrawn from the site, kept for the record.
#[utoipa::path(
    post,
    path = "/v1/blog/{id}/archive",
    tag = "blog",
    params(("id" = Uuid, Path, description = "Post id")),
    responses(
        (status = 200, description = "Archived", body = BlogPost),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such post", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn archive(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
) -> ContentResult<Json<BlogPost>> {
    set_status(&state, &admin, id, PostStatus::Archived).await
}

/// DRAFT (from PUBLISHED or SCHEDULED; a draft stays a draft) or ARCHIVED (from anything).
async fn set_status(
    state: &AppState,
    admin: &Caller,
    id: Uuid,
    to: PostStatus,
) -> ContentResult<Json<BlogPost>> {
    let mut tx = state.db.begin().await?;
    let before = lock(&mut tx, id).await?;
    let applies = match to {
        PostStatus::Draft => matches!(before.status, PostStatus::Published | PostStatus::Scheduled),
        _ => before.status != to,
    };
    if applies {
        sqlx::query("UPDATE blog_posts SET status = $2, scheduled_for = NULL WHERE id = $1")
            .bind(id)
            .bind(to.as_db())
            .execute(&mut *tx)
            .await?;
    }
    let post = load(&mut tx, id)
        .await?
        .ok_or(ContentError::NotFound("blog post"))?;
    if applies {
        let action = match to {
            PostStatus::Draft => "unpublish",
            _ => "archive",
        };
        audit_post(&mut tx, admin, action, Some(&before), Some(&post)).await?;
    }
    tx.commit().await?;
    if applies {
        state.content_changed(&post_paths(&before, None)).await;
    }
    Ok(Json(post))
}

/// When a post should go live.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleRequest {
    /// When the post goes live (RFC 3339 date-time); must be in the future (a time not after
    /// the server's clock is refused with 422).
    pub publish_at: DateTime<Utc>,
}

/// Schedules a post to go live by itself (ADMIN). A published post must be unpublished first.
#[utoipa::path(
    post,
    path = "/v1/blog/{id}/schedule",
    tag = "blog",
    params(("id" = Uuid, Path, description = "Post id")),
    request_body = ScheduleRequest,
    responses(
        (status = 200, description = "Scheduled", body = BlogPost),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such post", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already published", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not in the future", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn schedule_post(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
    ValidatedJson(request): ValidatedJson<ScheduleRequest>,
) -> ContentResult<Json<BlogPost>> {
    if request.publish_at <= Utc::now() {
        return Err(ContentError::field("publishAt", "must be in the future"));
    }
    let mut tx = state.db.begin().await?;
    let before = lock(&mut tx, id).await?;
    if before.status == PostStatus::Published {
        return Err(ContentError::Conflict(
            "already-published",
            "The post is live; unpublish it before scheduling it.".to_owned(),
        ));
    }
    sqlx::query("UPDATE blog_posts SET status = 'SCHEDULED', scheduled_for = $2 WHERE id = $1")
        .bind(id)
        .bind(request.publish_at)
        .execute(&mut *tx)
        .await?;
    let post = load(&mut tx, id)
        .await?
        .ok_or(ContentError::NotFound("blog post"))?;
    audit_post(&mut tx, &admin, "schedule", Some(&before), Some(&post)).await?;
    tx.commit().await?;
    Ok(Json(post))
}

/// Deletes a post (ADMIN; soft: the row stays, every read treats it as gone and its slug is free
/// again).
#[utoipa::path(
    delete,
    path = "/v1/blog/{id}",
    tag = "blog",
    params(("id" = Uuid, Path, description = "Post id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such post", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_post(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
) -> ContentResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let before = lock(&mut tx, id).await?;
    // A deleted post is never published: its schedule is cancelled (status back to DRAFT, as
    // the schedule needs a time).
    sqlx::query(
        "UPDATE blog_posts SET deleted_at = now(), scheduled_for = NULL, \
         status = CASE WHEN status = 'SCHEDULED' THEN 'DRAFT' ELSE status END WHERE id = $1",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    audit_post(&mut tx, &admin, "delete", Some(&before), None).await?;
    tx.commit().await?;
    state.content_changed(&post_paths(&before, None)).await;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Admin reads

/// Admin table filters.
#[derive(Debug, Clone, Deserialize, Validate, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct AdminListQuery {
    /// Page number from 1.
    #[validate(range(min = 1, max = 100000, message = "must be at least 1"))]
    #[param(minimum = 1, maximum = 100000)]
    pub page: Option<u32>,
    /// Rows a page, 1–100 (default 20).
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<u32>,
    /// Only posts with this status.
    pub status: Option<PostStatus>,
}

/// Every undeleted post, newest first (ADMIN).
#[utoipa::path(
    get,
    path = "/v1/admin/blog",
    tag = "blog",
    params(AdminListQuery),
    responses(
        (status = 200, description = "A page of posts", body = OffsetPage<BlogPost>),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid parameters", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn admin_list(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ValidatedQuery(query): ValidatedQuery<AdminListQuery>,
) -> ContentResult<Json<OffsetPage<BlogPost>>> {
    let paging = PageParams {
        page: query.page,
        page_size: query.page_size,
    };
    let status = query.status.map(PostStatus::as_db);
    let rows: Vec<PostRow> = sqlx::query_as(concat!(
        "SELECT ",
        post_columns!(),
        " FROM blog_posts
         WHERE deleted_at IS NULL AND ($1::text IS NULL OR status = $1)
         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(status)
    .bind(i64::from(paging.page_size()))
    .bind(paging.offset())
    .fetch_all(&state.db)
    .await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM blog_posts WHERE deleted_at IS NULL AND ($1::text IS NULL OR status = $1)",
    )
    .bind(status)
    .fetch_one(&state.db)
    .await?;
    Ok(Json(OffsetPage {
        data: rows.into_iter().map(BlogPost::from).collect(),
        page: paging.page(),
        page_size: paging.page_size(),
        total,
    }))
}

/// One undeleted post in any status (ADMIN: the editor's preview).
#[utoipa::path(
    get,
    path = "/v1/admin/blog/{id}",
    tag = "blog",
    params(("id" = Uuid, Path, description = "Post id")),
    responses(
        (status = 200, description = "The post", body = BlogPost),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such post", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn admin_get(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Path(id): Path<Uuid>,
) -> ContentResult<Json<BlogPost>> {
    let mut conn = state.db.acquire().await?;
    load(&mut conn, id)
        .await?
        .map(Json)
        .ok_or(ContentError::NotFound("blog post"))
}

// ---------------------------------------------------------------------------------------------
// Public reads

/// Public list parameters.
#[derive(Debug, Clone, Default, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BlogListQuery {
    /// Only posts with this tag (slug).
    #[validate(length(min = 1, max = 40, message = "must be 1–40 characters"))]
    #[param(min_length = 1, max_length = 40)]
    pub tag: Option<String>,
    /// Only posts in this category (slug).
    #[validate(length(min = 1, max = 60, message = "must be 1–60 characters"))]
    #[param(min_length = 1, max_length = 60)]
    pub category: Option<String>,
    /// Opaque cursor from a previous page's `nextCursor`.
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 20).
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// The keyset position of a list cursor.
#[derive(Debug, Serialize, Deserialize)]
struct ListCursor {
    at: DateTime<Utc>,
    id: Uuid,
}

/// Published posts, newest first, optionally by tag and category (cursor pages; cached).
#[utoipa::path(
    get,
    path = "/v1/blog",
    tag = "blog",
    params(BlogListQuery),
    responses(
        (status = 200, description = "A page of posts", body = CursorPage<BlogSummary>),
        (status = 422, description = "Invalid parameters", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_public(
    State(state): State<AppState>,
    headers: HeaderMap,
    ValidatedQuery(query): ValidatedQuery<BlogListQuery>,
) -> ContentResult<Response> {
    let tag = query.tag.as_deref().map(str::to_ascii_lowercase);
    let category = query.category.as_deref().map(str::to_ascii_lowercase);
    let cursor: Option<ListCursor> = match query.cursor.as_deref() {
        Some(c) => Some(
            decode_cursor(c)
                .ok_or_else(|| ContentError::field("cursor", "is not a valid cursor"))?,
        ),
        None => None,
    };
    let limit = query.limit.unwrap_or(20);
    let normalised = format!(
        "tag={}&category={}&cursor={}&limit={limit}",
        tag.as_deref().unwrap_or_default(),
        category.as_deref().unwrap_or_default(),
        query.cursor.as_deref().unwrap_or_default(),
    );
    state
        .blog_cache
        .serve(&headers, "list", &normalised, Ttl::List, || async {
            let rows: Vec<PostRow> = sqlx::query_as(concat!(
                "SELECT ",
                post_columns!(),
                " FROM blog_posts
                 WHERE status = 'PUBLISHED' AND deleted_at IS NULL
                   AND ($1::text IS NULL OR tags @> ARRAY[$1::text])
                   AND ($2::text IS NULL OR category = $2)
                   AND ($3::timestamptz IS NULL OR (published_at, id) < ($3, $4))
                 ORDER BY published_at DESC, id DESC
                 LIMIT $5"
            ))
            .bind(&tag)
            .bind(&category)
            .bind(cursor.as_ref().map(|c| c.at))
            .bind(cursor.as_ref().map(|c| c.id))
            .bind(i64::from(limit) + 1)
            .fetch_all(&state.db)
            .await?;
            let summaries: Vec<BlogSummary> = rows
                .into_iter()
                .map(|r| BlogSummary::from(BlogPost::from(r)))
                .collect();
            let page = CursorPage::from_rows(summaries, limit, |s| ListCursor {
                at: s.published_at.unwrap_or_default(),
                id: s.id,
            });
            Ok::<_, ContentError>(serde_json::to_vec(&page).map_err(anyhow::Error::from)?)
        })
        .await
}

/// A published post by slug (or id); drafts, scheduled, archived and deleted posts are 404.
#[utoipa::path(
    get,
    path = "/v1/blog/{id}",
    tag = "blog",
    params(("id" = String, Path, description = "Post slug (or id)")),
    responses(
        (status = 200, description = "The post", body = BlogPost),
        (status = 404, description = "No such published post", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn get_public(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> ContentResult<Response> {
    state
        .blog_cache
        .serve(&headers, "post", &key, Ttl::Detail, || async {
            let post = load_public(&state.db, &key)
                .await?
                .ok_or(ContentError::NotFound("blog post"))?;
            Ok::<_, ContentError>(serde_json::to_vec(&post).map_err(anyhow::Error::from)?)
        })
        .await
}

/// Related-posts parameters.
#[derive(Debug, Clone, Default, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RelatedQuery {
    /// How many, 1–12 (default 3).
    #[validate(range(min = 1, max = 12, message = "must be between 1 and 12"))]
    #[param(minimum = 1, maximum = 12)]
    pub limit: Option<u32>,
}

/// Related posts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RelatedPosts {
    /// Most related first.
    pub data: Vec<BlogSummary>,
}

/// Published posts sharing the most tags with this one (then its category), newest first
/// among equals.
#[utoipa::path(
    get,
    path = "/v1/blog/{id}/related",
    tag = "blog",
    params(("id" = String, Path, description = "Post slug (or id)"), RelatedQuery),
    responses(
        (status = 200, description = "Related posts", body = RelatedPosts),
        (status = 404, description = "No such published post", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid parameters", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn related(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
    ValidatedQuery(query): ValidatedQuery<RelatedQuery>,
) -> ContentResult<Response> {
    let limit = query.limit.unwrap_or(3);
    let normalised = format!("{key}&limit={limit}");
    state
        .blog_cache
        .serve(&headers, "related", &normalised, Ttl::List, || async {
            let post = load_public(&state.db, &key)
                .await?
                .ok_or(ContentError::NotFound("blog post"))?;
            let rows: Vec<PostRow> = sqlx::query_as(concat!(
        "SELECT ",
        post_columns!(),
        " FROM blog_posts
                 WHERE status = 'PUBLISHED' AND deleted_at IS NULL AND id <> $1
                   AND (tags && $2 OR category = $3)
                 ORDER BY cardinality(ARRAY(SELECT unnest(tags) INTERSECT SELECT unnest($2::text[]))) DESC,
                          (category IS NOT DISTINCT FROM $3) DESC, published_at DESC, id DESC
                 LIMIT $4"))
            .bind(post.id)
            .bind(&post.tags)
            .bind(&post.category)
            .bind(i64::from(limit))
            .fetch_all(&state.db)
            .await?;
            let body = RelatedPosts {
                data: rows
                    .into_iter()
                    .map(|r| BlogSummary::from(BlogPost::from(r)))
                    .collect(),
            };
            Ok::<_, ContentError>(serde_json::to_vec(&body).map_err(anyhow::Error::from)?)
        })
        .await
}

/// The blog's routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_public, create_post))
        .routes(routes!(get_public, patch_post, delete_post))
        .routes(routes!(related))
        .routes(routes!(publish))
        .routes(routes!(unpublish))
        .routes(routes!(archive))
        .routes(routes!(schedule_post))
        .routes(routes!(admin_list))
        .routes(routes!(admin_get))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_slug_gets_the_first_free_numeric_suffix() {
        let taken = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(first_free("oak", &taken(&[])), "oak");
        assert_eq!(first_free("oak", &taken(&["oak"])), "oak-2");
        assert_eq!(
            first_free("oak", &taken(&["oak", "oak-2", "oak-4"])),
            "oak-3"
        );
        assert_eq!(first_free("oak", &taken(&["oak-2"])), "oak");
        let long = "a".repeat(validation::MAX_SLUG_LEN);
        let suffixed = first_free(&long, &taken(&[long.as_str()]));
        assert!(suffixed.ends_with("-2") && suffixed.len() <= validation::MAX_SLUG_LEN);
    }

    fn input_with_tags(tags: &[&str]) -> BlogInput {
        serde_json::from_value(serde_json::json!({"title": "Oak", "tags": tags}))
            .expect("a blog input")
    }

    /// Tags of the documented form ([`TAG_PATTERN`], 1–40 characters) are all accepted.
    #[test]
    fn every_tag_of_the_documented_form_is_accepted() {
        let longest = format!("{}-{}", "a".repeat(20), "B".repeat(19));
        let tags = [
            "a",
            "Kitchen Design",
            "-oak-",
            " 2024 ",
            "a - b",
            longest.as_str(),
        ];
        let prepared = prepare(input_with_tags(&tags)).expect("documented tags are accepted");
        assert!(prepared.tags.iter().all(|t| (1..=40).contains(&t.len())));
    }

    /// The document asks a title and a category for an ASCII letter or digit: enough for a slug.
    #[test]
    fn a_title_or_category_with_an_ascii_letter_or_digit_is_accepted() {
        for text in ["a", "!!1!!", "Crème & Oak", "  -- Z --  "] {
            let input: BlogInput =
                serde_json::from_value(serde_json::json!({"title": text, "category": text}))
                    .expect("a blog input");
            assert!(prepare(input).is_ok(), "{text:?}");
        }
    }

    #[test]
    fn a_tag_without_a_letter_or_digit_is_refused() {
        for tag in ["", " ", "--", "!?"] {
            assert!(prepare(input_with_tags(&[tag])).is_err(), "{tag:?}");
        }
    }

    /// What the document refuses the handler refuses too (schemathesis sent a title of "×ø" and
    /// a tag "Crème", which transliteration alone would have made slugs of).
    #[test]
    fn texts_outside_the_documented_patterns_are_refused() {
        for text in ["×ø\u{9b}", "日本", "—"] {
            let input: BlogInput =
                serde_json::from_value(serde_json::json!({"title": text, "slug": "ok"}))
                    .expect("a blog input");
            assert!(prepare(input).is_err(), "title {text:?}");
            let input: BlogInput =
                serde_json::from_value(serde_json::json!({"title": "Oak", "category": text}))
                    .expect("a blog input");
            assert!(prepare(input).is_err(), "category {text:?}");
        }
        for tag in ["Crème", "oak_veneer", &"a".repeat(41)] {
            assert!(prepare(input_with_tags(&[tag])).is_err(), "{tag:?}");
        }
    }

    #[test]
    fn the_document_states_the_tag_rule_on_each_tag() {
        let schema = serde_json::to_value(tags_schema()).expect("serialises");
        assert_eq!(schema["items"]["pattern"], TAG_PATTERN);
        assert_eq!(schema["items"]["minLength"], 1);
        assert_eq!(schema["items"]["maxLength"], 40);
        assert_eq!(schema["maxItems"], 20);
    }
}

//! CMS pages: About, Finance, Terms, landing pages... built from ordered, typed blocks, edited as
//! drafts and published as numbered versions.
//!
//! - **Blocks** are a JSON array of objects tagged by `type`: `RICH_TEXT` (Markdown, rendered to
//!   sanitised HTML on save), `IMAGE`, `GALLERY`, `CTA`, `FAQ_LIST` and `VIDEO`, each validated
//!   by its own rules; a 422 names the field as `blocks[2].alt`.
//! - **Versions**: the `pages` row holds the working copy; every save (create or patch) also
//!   records it as the next `page_versions` row. Publishing makes the latest version the live
//!   one (`page.published` through the outbox, once per version); the public reads the published
//!   version only, so later edits stay invisible until the next publish. Publishing what is
//!   already live changes nothing.
//! - **Landing pages** may have a validity window (`validFrom`, `validUntil`); outside it they
//!   are 404 and out of the sitemap. Other page types may not have one (422).
//! - Deleting is soft; the slug is then free again.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::audit;
use service_kit::cache::Ttl;
use service_kit::shared_types::content::PagePublished;
use service_kit::{
    AdminCaller, Caller, FieldError, OffsetPage, PageParams, ValidatedJson, ValidatedQuery,
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

/// Most blocks one page may hold.
const MAX_BLOCKS: usize = 100;

/// What kind of page it is (the storefront picks its template by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum PageType {
    About,
    Finance,
    Process,
    WhyChooseUs,
    Contact,
    Faqs,
    Terms,
    Privacy,
    Cookies,
    Careers,
    Landing,
}

impl PageType {
    fn as_db(self) -> String {
        crate::enum_to_db(&self)
    }
}

/// An image inside a block: a media asset id or a URL, and its alt text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageRef {
    /// Media asset id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_id: Option<Uuid>,
    /// Image URL (http or https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Alternative text, 1–200 characters (required: accessibility).
    pub alt: String,
    /// Caption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

/// Rich text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RichTextBlock {
    /// Markdown, 1–50 000 characters.
    pub markdown: String,
    /// Sanitised HTML, rendered by the service on save (ignored on input).
    #[serde(default)]
    pub html: String,
}

/// A gallery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GalleryBlock {
    /// Heading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// 1–50 images, in order.
    pub images: Vec<ImageRef>,
}

/// How a call to action is drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CtaStyle {
    /// The main button.
    #[default]
    Primary,
    /// A quieter one.
    Secondary,
}

/// A call to action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CtaBlock {
    /// Button text, 1–80 characters.
    pub text: String,
    /// Where it goes: a site path (`/book-appointment`) or an http(s) URL.
    pub link: String,
    /// Heading above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Style.
    #[serde(default)]
    pub style: CtaStyle,
}

/// One question and its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaqItem {
    /// 1–300 characters.
    pub question: String,
    /// 1–5000 characters.
    pub answer: String,
}

/// A list of questions and answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaqListBlock {
    /// Heading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// 1–100 items, in order.
    pub items: Vec<FaqItem>,
}

/// An embedded video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VideoBlock {
    /// The video's https URL (a media asset's URL or an embed).
    pub url: String,
    /// Title (also its accessible name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Poster image URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poster_url: Option<String>,
}

/// One block of a page, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Block {
    /// Rich text.
    RichText(RichTextBlock),
    /// One image.
    Image(ImageRef),
    /// Several images.
    Gallery(GalleryBlock),
    /// A call to action.
    Cta(CtaBlock),
    /// Questions and answers.
    FaqList(FaqListBlock),
    /// A video.
    Video(VideoBlock),
}

fn is_http_url(value: &str) -> bool {
    (value.starts_with("https://") || value.starts_with("http://"))
        && value.len() <= 2000
        && !value.chars().any(char::is_whitespace)
}

fn length_between(value: &str, min: usize, max: usize) -> bool {
    let n = value.chars().count();
    n >= min && n <= max
}

fn check_image(image: &ImageRef, path: &str, errors: &mut Vec<FieldError>) {
    match (&image.media_id, &image.url) {
        (None, None) => errors.push(FieldError::new(
            format!("{path}.url"),
            "give a mediaId or a url",
        )),
        (_, Some(url)) if !is_http_url(url) => errors.push(FieldError::new(
            format!("{path}.url"),
            "must be an http(s) URL",
        )),
        _ => {}
    }
    if !length_between(&image.alt, 1, 200) {
        errors.push(FieldError::new(
            format!("{path}.alt"),
            "must be 1–200 characters",
        ));
    }
    if image
        .caption
        .as_deref()
        .is_some_and(|c| c.chars().count() > 300)
    {
        errors.push(FieldError::new(
            format!("{path}.caption"),
            "must be at most 300 characters",
        ));
    }
}

fn check_title(title: &Option<String>, path: &str, errors: &mut Vec<FieldError>) {
    if title.as_deref().is_some_and(|t| !length_between(t, 1, 200)) {
        errors.push(FieldError::new(
            format!("{path}.title"),
            "must be 1–200 characters",
        ));
    }
}

/// Checks every block by its type's rules and renders rich text; the errors name each field.
pub fn check_blocks(blocks: &mut [Block]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if blocks.len() > MAX_BLOCKS {
        errors.push(FieldError::new(
            "blocks",
            format!("at most {MAX_BLOCKS} blocks"),
        ));
        return errors;
    }
    for (index, block) in blocks.iter_mut().enumerate() {
        let path = format!("blocks[{index}]");
        match block {
            Block::RichText(text) => {
                if !length_between(&text.markdown, 1, 50_000) {
                    errors.push(FieldError::new(
                        format!("{path}.markdown"),
                        "must be 1–50000 characters",
                    ));
                }
                text.html = markdown::to_safe_html(&text.markdown);
            }
            Block::Image(image) => check_image(image, &path, &mut errors),
            Block::Gallery(gallery) => {
                check_title(&gallery.title, &path, &mut errors);
                if gallery.images.is_empty() || gallery.images.len() > 50 {
                    errors.push(FieldError::new(
                        format!("{path}.images"),
                        "must hold 1–50 images",
                    ));
                }
                for (i, image) in gallery.images.iter().enumerate() {
                    check_image(image, &format!("{path}.images[{i}]"), &mut errors);
                }
            }
            Block::Cta(cta) => {
                check_title(&cta.title, &path, &mut errors);
                if !length_between(&cta.text, 1, 80) {
                    errors.push(FieldError::new(
                        format!("{path}.text"),
                        "must be 1–80 characters",
                    ));
                }
                let site_path = cta.link.starts_with('/') && !cta.link.starts_with("//");
                if !(site_path || is_http_url(&cta.link)) || cta.link.len() > 2000 {
                    errors.push(FieldError::new(
                        format!("{path}.link"),
                        "must be a site path (/...) or an http(s) URL",
                    ));
                }
            }
            Block::FaqList(faqs) => {
                check_title(&faqs.title, &path, &mut errors);
                if faqs.items.is_empty() || faqs.items.len() > 100 {
                    errors.push(FieldError::new(
                        format!("{path}.items"),
                        "must hold 1–100 questions",
                    ));
                }
                for (i, item) in faqs.items.iter().enumerate() {
                    if !length_between(&item.question, 1, 300) {
                        errors.push(FieldError::new(
                            format!("{path}.items[{i}].question"),
                            "must be 1–300 characters",
                        ));
                    }
                    if !length_between(&item.answer, 1, 5000) {
                        errors.push(FieldError::new(
                            format!("{path}.items[{i}].answer"),
                            "must be 1–5000 characters",
                        ));
                    }
                }
            }
            Block::Video(video) => {
                check_title(&video.title, &path, &mut errors);
                if !video.url.starts_with("https://") || !is_http_url(&video.url) {
                    errors.push(FieldError::new(
                        format!("{path}.url"),
                        "must be an https URL",
                    ));
                }
                if video.poster_url.as_deref().is_some_and(|u| !is_http_url(u)) {
                    errors.push(FieldError::new(
                        format!("{path}.posterUrl"),
                        "must be an http(s) URL",
                    ));
                }
            }
        }
    }
    errors
}

/// What an admin writes (`POST` body; `PATCH` is a merge patch of it).
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PageInput {
    /// Page type.
    pub page_type: PageType,
    /// Title, 1–200 characters with a letter or digit (the slug is made from it; the document
    /// asks for an ASCII one, which always makes a slug).
    #[validate(length(min = 1, max = 200, message = "must be 1–200 characters"))]
    #[schema(min_length = 1, max_length = 200, pattern = "[A-Za-z0-9]")]
    pub title: String,
    /// URL slug (lower-case letters, digits, single hyphens); derived from the title when absent.
    #[serde(default)]
    #[schema(max_length = 120, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    pub slug: Option<String>,
    /// The blocks, in order.
    #[serde(default)]
    pub blocks: Vec<Block>,
    /// Search and sharing metadata.
    #[serde(default)]
    #[validate(nested)]
    pub seo: SeoMeta,
    /// Landing pages only: live from (absent or `null` on any other type).
    #[serde(default)]
    pub valid_from: Option<DateTime<Utc>>,
    /// Landing pages only: live until (exclusive; after `validFrom`).
    #[serde(default)]
    pub valid_until: Option<DateTime<Utc>>,
}

/// A page as admins see it: the working copy and where its versions stand.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    /// Id.
    pub id: Uuid,
    /// URL slug.
    pub slug: String,
    /// Page type.
    pub page_type: PageType,
    /// Title (working copy).
    pub title: String,
    /// Blocks (working copy).
    pub blocks: Vec<Block>,
    /// SEO (working copy).
    pub seo: SeoMeta,
    /// Landing pages: live from.
    pub valid_from: Option<DateTime<Utc>>,
    /// Landing pages: live until.
    pub valid_until: Option<DateTime<Utc>>,
    /// The working copy's version number.
    pub draft_version: i32,
    /// The live version (null = not published).
    pub published_version: Option<i32>,
    /// When the live version was published.
    pub published_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A page as the public sees it: its live version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicPage {
    /// Id.
    pub id: Uuid,
    /// URL slug.
    pub slug: String,
    /// Page type.
    pub page_type: PageType,
    /// Title.
    pub title: String,
    /// Blocks, in order.
    pub blocks: Vec<Block>,
    /// SEO metadata.
    pub seo: SeoMeta,
    /// The live version's number.
    pub version: i32,
    /// When it was published.
    pub published_at: Option<DateTime<Utc>>,
}

/// One saved version of a page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageVersion {
    /// Version number, from 1.
    pub version: i32,
    /// Title.
    pub title: String,
    /// Blocks.
    pub blocks: Vec<Block>,
    /// SEO metadata.
    pub seo: SeoMeta,
    /// The admin who saved it.
    pub created_by: Option<Uuid>,
    /// When it was saved.
    pub created_at: DateTime<Utc>,
    /// When it went live (null = never published).
    pub published_at: Option<DateTime<Utc>>,
    /// Whether it is the live version now.
    pub live: bool,
}

/// The versions of a page, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PageVersions {
    /// Versions.
    pub data: Vec<PageVersion>,
}

#[derive(sqlx::FromRow)]
struct PageRow {
    id: Uuid,
    slug: String,
    page_type: String,
    title: String,
    blocks: sqlx::types::Json<Vec<Block>>,
    seo: sqlx::types::Json<SeoMeta>,
    valid_from: Option<DateTime<Utc>>,
    valid_until: Option<DateTime<Utc>>,
    draft_version: i32,
    published_version: Option<i32>,
    published_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<PageRow> for Page {
    type Error = ContentError;
    fn try_from(row: PageRow) -> ContentResult<Self> {
        Ok(Self {
            id: row.id,
            slug: row.slug,
            page_type: crate::enum_from_db(&row.page_type)?,
            title: row.title,
            blocks: row.blocks.0,
            seo: row.seo.0,
            valid_from: row.valid_from,
            valid_until: row.valid_until,
            draft_version: row.draft_version,
            published_version: row.published_version,
            published_at: row.published_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

impl From<&Page> for PageInput {
    fn from(page: &Page) -> Self {
        Self {
            page_type: page.page_type,
            title: page.title.clone(),
            slug: Some(page.slug.clone()),
            blocks: page.blocks.clone(),
            seo: page.seo.clone(),
            valid_from: page.valid_from,
            valid_until: page.valid_until,
        }
    }
}

async fn load(conn: &mut PgConnection, id: Uuid) -> ContentResult<Option<Page>> {
    let row: Option<PageRow> = sqlx::query_as(
        "SELECT id, slug, page_type, title, blocks, seo, valid_from, valid_until, draft_version,
                published_version, published_at, created_at, updated_at
         FROM pages WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(Page::try_from).transpose()
}

async fn lock(tx: &mut Transaction<'_, Postgres>, id: Uuid) -> ContentResult<Page> {
    let found: Option<Uuid> =
        sqlx::query_scalar("SELECT id FROM pages WHERE id = $1 AND deleted_at IS NULL FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    if found.is_none() {
        return Err(ContentError::NotFound("page"));
    }
    load(tx, id).await?.ok_or(ContentError::NotFound("page"))
}

/// A checked input: slug chosen, blocks validated and rendered.
struct Prepared {
    input: PageInput,
    explicit_slug: Option<String>,
    derived_slug: String,
}

fn prepare(mut input: PageInput) -> ContentResult<Prepared> {
    let mut errors = check_blocks(&mut input.blocks);
    let explicit_slug = match input.slug.as_deref() {
        Some(slug) => match validation::Slug::parse(slug) {
            Ok(slug) => Some(String::from(slug.as_str())),
            Err(e) => {
                errors.push(FieldError::new("slug", e.message()));
                None
            }
        },
        None => None,
    };
    // The document's title rule (an ASCII letter or digit) is this one exactly, whether or
    // not a slug is given.
    let derived_slug = match validation::slugify(&input.title) {
        Ok(slug) if validation::has_ascii_alphanumeric(&input.title) => String::from(slug.as_str()),
        _ => {
            errors.push(FieldError::new(
                "title",
                "must contain an ASCII letter or digit (the slug is made from it)",
            ));
            String::new()
        }
    };
    let windowed = input.valid_from.is_some() || input.valid_until.is_some();
    if windowed && input.page_type != PageType::Landing {
        errors.push(FieldError::new(
            "validFrom",
            "only LANDING pages have a validity window",
        ));
    }
    if let (Some(from), Some(until)) = (input.valid_from, input.valid_until)
        && from >= until
    {
        errors.push(FieldError::new("validUntil", "must be after validFrom"));
    }
    if !errors.is_empty() {
        return Err(ContentError::Validation(errors));
    }
    Ok(Prepared {
        input,
        explicit_slug,
        derived_slug,
    })
}

/// States in `doc` what [`PageInput`]'s derived schema cannot: only a LANDING page has a
/// validity window (`validFrom`, `validUntil` absent or `null` on any other type). The rule
/// binds merge patches too: a patch that names another type and a window is invalid whatever the
/// page holds; one that leaves either to the stored page is checked by [`window_conflict`].
pub fn document(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let landing = ObjectBuilder::new().schema_type(Type::Object).property(
        "pageType",
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["LANDING"])),
    );
    let no_window = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("validFrom", ObjectBuilder::new().schema_type(Type::Null))
        .property("validUntil", ObjectBuilder::new().schema_type(Type::Null));
    service_kit::openapi::require_any(doc, "PageInput", [landing.build(), no_window.build()], true);
}

/// A patched page with a validity window that is not a LANDING page because of what the stored
/// page holds (its type or its window, which the patch left as they were) conflicts with the
/// page's state: 409 saying what to send as well. A patch that itself names another type and a
/// window is invalid as it stands (the document says so): [`prepare`] answers 422.
fn window_conflict(input: &PageInput, patch: &serde_json::Value) -> ContentResult<()> {
    let windowed = input.valid_from.is_some() || input.valid_until.is_some();
    if !windowed || input.page_type == PageType::Landing {
        return Ok(());
    }
    let sets = |member: &str| patch.get(member).is_some_and(|v| !v.is_null());
    let patch_sets_type = sets("pageType");
    let patch_sets_window = sets("validFrom") || sets("validUntil");
    let detail = match (patch_sets_type, patch_sets_window) {
        (true, true) => return Ok(()),
        (true, false) => format!(
            "The page has a validity window, which only LANDING pages have: to make it a {} \
             page, also clear validFrom and validUntil (null) in the same patch.",
            input.page_type.as_db()
        ),
        _ => format!(
            "The page is a {} page and only LANDING pages have a validity window: set pageType \
             to LANDING in the same patch, or leave validFrom and validUntil out.",
            input.page_type.as_db()
        ),
    };
    Err(ContentError::Conflict("window-needs-landing", detail))
}

async fn choose_slug(
    conn: &mut PgConnection,
    prepared: &Prepared,
    id: Uuid,
) -> ContentResult<String> {
    if let Some(slug) = &prepared.explicit_slug {
        let taken: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pages WHERE slug = $1 AND id <> $2 AND deleted_at IS NULL)",
        )
        .bind(slug)
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
        if taken {
            return Err(ContentError::Conflict(
                "slug-taken",
                format!("Another page already uses the slug `{slug}`."),
            ));
        }
        return Ok(slug.clone());
    }
    let taken: Vec<String> = sqlx::query_scalar(
        "SELECT slug FROM pages
         WHERE deleted_at IS NULL AND id <> $2 AND (slug = $1 OR slug LIKE $1 || '-%')",
    )
    .bind(&prepared.derived_slug)
    .bind(id)
    .fetch_all(conn)
    .await?;
    Ok(crate::blog::first_free(&prepared.derived_slug, &taken))
}

/// Records the working copy of `page_id` as version `version`.
async fn record_version(
    tx: &mut Transaction<'_, Postgres>,
    page_id: Uuid,
    version: i32,
    input: &PageInput,
    by: Uuid,
) -> ContentResult<()> {
    sqlx::query(
        "INSERT INTO page_versions (page_id, version, title, blocks, seo, created_by)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(page_id)
    .bind(version)
    .bind(&input.title)
    .bind(sqlx::types::Json(&input.blocks))
    .bind(sqlx::types::Json(&input.seo))
    .bind(by)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records `action` on a page in the audit trail, in the change's transaction. The blocks are
/// long and kept in full as versions; the trail says only that they changed.
async fn audit_page(
    tx: &mut Transaction<'_, Postgres>,
    admin: &Caller,
    action: &str,
    before: Option<&Page>,
    after: Option<&Page>,
) -> Result<(), sqlx::Error> {
    let Some(id) = after.or(before).map(|page| page.id) else {
        return Ok(());
    };
    let mut entry = audit::Entry::new(admin, "page", id, action).redact(&["blocks"]);
    if let Some(before) = before {
        entry = entry.before(before);
    }
    if let Some(after) = after {
        entry = entry.after(after);
    }
    entry.record(tx).await
}

// ---------------------------------------------------------------------------------------------
// Admin writes

/// Creates a page as an unpublished draft, version 1 (ADMIN).
#[utoipa::path(
    post,
    path = "/v1/pages",
    tag = "pages",
    request_body = PageInput,
    responses(
        (status = 201, description = "Created", body = Page),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The explicit slug is taken", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid page", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn create_page(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ValidatedJson(input): ValidatedJson<PageInput>,
) -> ContentResult<(StatusCode, Json<Page>)> {
    let prepared = prepare(input)?;
    let id = Uuid::now_v7();
    let mut tx = state.db.begin().await?;
    let slug = choose_slug(&mut tx, &prepared, id).await?;
    let input = &prepared.input;
    sqlx::query(
        "INSERT INTO pages (id, slug, page_type, title, blocks, seo, valid_from, valid_until,
             draft_version, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9)",
    )
    .bind(id)
    .bind(&slug)
    .bind(input.page_type.as_db())
    .bind(&input.title)
    .bind(sqlx::types::Json(&input.blocks))
    .bind(sqlx::types::Json(&input.seo))
    .bind(input.valid_from)
    .bind(input.valid_until)
    .bind(admin.user_id)
    .execute(&mut *tx)
    .await?;
    record_version(&mut tx, id, 1, input, admin.user_id).await?;
    let page = load(&mut tx, id)
        .await?
        .ok_or(ContentError::NotFound("page"))?;
    audit_page(&mut tx, &admin, "create", None, Some(&page)).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(page)))
}

/// Changes a page's working copy with a JSON Merge Patch of [`PageInput`] (ADMIN); it is saved
/// as the next version and goes live on the next publish.
#[utoipa::path(
    patch,
    path = "/v1/pages/{id}",
    tag = "pages",
    params(("id" = Uuid, Path, description = "Page id")),
    request_body(content = PageInput, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "Saved as a new draft version", body = Page),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such page", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The explicit slug is taken, or the patched page would have a validity window without being a LANDING page because of its stored type or window (the detail says what to send as well)", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not a JSON merge patch", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid patch", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn patch_page(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
    MergePatch(patch): MergePatch,
) -> ContentResult<Json<Page>> {
    let mut tx = state.db.begin().await?;
    let current = lock(&mut tx, id).await?;
    let document = serde_json::to_value(PageInput::from(&current)).map_err(anyhow::Error::from)?;
    let input = patched::<PageInput>(document, &patch)?;
    window_conflict(&input, &patch)?;
    let prepared = prepare(input)?;
    let slug = choose_slug(&mut tx, &prepared, id).await?;
    let input = &prepared.input;
    let version = current.draft_version + 1;
    sqlx::query(
        "UPDATE pages SET slug = $2, page_type = $3, title = $4, blocks = $5, seo = $6,
             valid_from = $7, valid_until = $8, draft_version = $9
         WHERE id = $1",
    )
    .bind(id)
    .bind(&slug)
    .bind(input.page_type.as_db())
    .bind(&input.title)
    .bind(sqlx::types::Json(&input.blocks))
    .bind(sqlx::types::Json(&input.seo))
    .bind(input.valid_from)
    .bind(input.valid_until)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    record_version(&mut tx, id, version, input, admin.user_id).await?;
    let page = load(&mut tx, id)
        .await?
        .ok_or(ContentError::NotFound("page"))?;
    audit_page(&mut tx, &admin, "update", Some(&current), Some(&page)).await?;
    tx.commit().await?;
    // The slug and the validity window take effect at once (the content waits for a publish).
    state
        .content_changed(&page_paths(&current.slug, &page.slug))
        .await;
    Ok(Json(page))
}

fn page_paths(before: &str, after: &str) -> Vec<String> {
    let mut paths = vec![format!("/v1/pages/{before}")];
    if before != after {
        paths.push(format!("/v1/pages/{after}"));
    }
    paths
}

/// Publishes the working copy (ADMIN): it becomes the live version and `page.published` is
/// emitted. Publishing the version that is already live changes nothing.
#[utoipa::path(
    post,
    path = "/v1/pages/{id}/publish",
    tag = "pages",
    params(("id" = Uuid, Path, description = "Page id")),
    responses(
        (status = 200, description = "Published", body = Page),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such page", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn publish_page(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
) -> ContentResult<Json<Page>> {
    let mut tx = state.db.begin().await?;
    let current = lock(&mut tx, id).await?;
    if current.published_version == Some(current.draft_version) {
        return Ok(Json(current));
    }
    let now = Utc::now();
    sqlx::query("UPDATE page_versions SET published_at = $3 WHERE page_id = $1 AND version = $2")
        .bind(id)
        .bind(current.draft_version)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE pages SET published_version = draft_version, published_at = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let payload = PagePublished {
        page_id: id,
        slug: current.slug.clone(),
        title: current.title.clone(),
        published_at: now,
    };
    service_kit::event_bus::outbox::publish(&mut tx, &event(payload)).await?;
    let page = load(&mut tx, id)
        .await?
        .ok_or(ContentError::NotFound("page"))?;
    audit_page(&mut tx, &admin, "publish", Some(&current), Some(&page)).await?;
    tx.commit().await?;
    state
        .content_changed(&page_paths(&current.slug, &page.slug))
        .await;
    Ok(Json(page))
}

/// Takes a page off the site (ADMIN); its versions are kept.
#[utoipa::path(
    post,
    path = "/v1/pages/{id}/unpublish",
    tag = "pages",
    params(("id" = Uuid, Path, description = "Page id")),
    responses(
        (status = 200, description = "Unpublished", body = Page),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such page", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn unpublish_page(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
) -> ContentResult<Json<Page>> {
    let mut tx = state.db.begin().await?;
    let current = lock(&mut tx, id).await?;
    sqlx::query("UPDATE pages SET published_version = NULL, published_at = NULL WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let page = load(&mut tx, id)
        .await?
        .ok_or(ContentError::NotFound("page"))?;
    if current.published_version.is_some() {
        audit_page(&mut tx, &admin, "unpublish", Some(&current), Some(&page)).await?;
    }
    tx.commit().await?;
    if current.published_version.is_some() {
        state
            .content_changed(&page_paths(&current.slug, &page.slug))
            .await;
    }
    Ok(Json(page))
}

/// Deletes a page (ADMIN; soft).
#[utoipa::path(
    delete,
    path = "/v1/pages/{id}",
    tag = "pages",
    params(("id" = Uuid, Path, description = "Page id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such page", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_page(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
) -> ContentResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let current = lock(&mut tx, id).await?;
    sqlx::query("UPDATE pages SET deleted_at = now() WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit_page(&mut tx, &admin, "delete", Some(&current), None).await?;
    tx.commit().await?;
    state
        .content_changed(&page_paths(&current.slug, &current.slug))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Reads

/// Every saved version of a page, newest first (ADMIN).
#[utoipa::path(
    get,
    path = "/v1/pages/{id}/versions",
    tag = "pages",
    params(("id" = Uuid, Path, description = "Page id")),
    responses(
        (status = 200, description = "The versions", body = PageVersions),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such page", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn versions(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Path(id): Path<Uuid>,
) -> ContentResult<Json<PageVersions>> {
    let mut conn = state.db.acquire().await?;
    let page = load(&mut conn, id)
        .await?
        .ok_or(ContentError::NotFound("page"))?;
    type VersionRow = (
        i32,
        String,
        sqlx::types::Json<Vec<Block>>,
        sqlx::types::Json<SeoMeta>,
        Option<Uuid>,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
    );
    let rows: Vec<VersionRow> = sqlx::query_as(
        "SELECT version, title, blocks, seo, created_by, created_at, published_at
         FROM page_versions WHERE page_id = $1 ORDER BY version DESC",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Json(PageVersions {
        data: rows
            .into_iter()
            .map(
                |(version, title, blocks, seo, created_by, created_at, published_at)| PageVersion {
                    version,
                    title,
                    blocks: blocks.0,
                    seo: seo.0,
                    created_by,
                    created_at,
                    published_at,
                    live: page.published_version == Some(version),
                },
            )
            .collect(),
    }))
}

/// A published page by slug (or id), as its live version; landing pages only inside their
/// validity window.
#[utoipa::path(
    get,
    path = "/v1/pages/{id}",
    tag = "pages",
    params(("id" = String, Path, description = "Page slug (or id)")),
    responses(
        (status = 200, description = "The page", body = PublicPage),
        (status = 404, description = "No such published page", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn get_public(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> ContentResult<Response> {
    // The validity window is checked in SQL against now(): cache entries live at most one
    // TTL, so a landing page appears or disappears within that of its window's edge.
    state
        .blog_cache
        .serve(&headers, "page", &key, Ttl::Detail, || async {
            type Row = (
                Uuid,
                String,
                String,
                String,
                sqlx::types::Json<Vec<Block>>,
                sqlx::types::Json<SeoMeta>,
                i32,
                Option<DateTime<Utc>>,
            );
            let row: Option<Row> = sqlx::query_as(
                "SELECT p.id, p.slug, p.page_type, v.title, v.blocks, v.seo, v.version, p.published_at
                 FROM pages p
                 JOIN page_versions v ON v.page_id = p.id AND v.version = p.published_version
                 WHERE (p.slug = $1 OR p.id = $2) AND p.deleted_at IS NULL
                   AND (p.valid_from IS NULL OR p.valid_from <= now())
                   AND (p.valid_until IS NULL OR p.valid_until > now())
                 LIMIT 1",
            )
            .bind(&key)
            .bind(Uuid::parse_str(&key).ok())
            .fetch_optional(&state.db)
            .await?;
            let (id, slug, page_type, title, blocks, seo, version, published_at) =
                row.ok_or(ContentError::NotFound("page"))?;
            let page = PublicPage {
                id,
                slug,
                page_type: crate::enum_from_db(&page_type)?,
                title,
                blocks: blocks.0,
                seo: seo.0,
                version,
                published_at,
            };
            Ok::<_, ContentError>(serde_json::to_vec(&page).map_err(anyhow::Error::from)?)
        })
        .await
}

/// Admin table filters.
#[derive(Debug, Clone, Deserialize, Validate, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct AdminPagesQuery {
    /// Page number from 1.
    #[validate(range(min = 1, max = 100000, message = "must be at least 1"))]
    #[param(minimum = 1, maximum = 100000)]
    pub page: Option<u32>,
    /// Rows a page, 1–100 (default 20).
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<u32>,
    /// Only pages of this type.
    pub page_type: Option<PageType>,
}

/// Every undeleted page, newest first (ADMIN).
#[utoipa::path(
    get,
    path = "/v1/admin/pages",
    tag = "pages",
    params(AdminPagesQuery),
    responses(
        (status = 200, description = "A page of pages", body = OffsetPage<Page>),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid parameters", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn admin_list(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ValidatedQuery(query): ValidatedQuery<AdminPagesQuery>,
) -> ContentResult<Json<OffsetPage<Page>>> {
    let paging = PageParams {
        page: query.page,
        page_size: query.page_size,
    };
    let page_type = query.page_type.map(PageType::as_db);
    let rows: Vec<PageRow> = sqlx::query_as(
        "SELECT id, slug, page_type, title, blocks, seo, valid_from, valid_until, draft_version,
                published_version, published_at, created_at, updated_at
         FROM pages WHERE deleted_at IS NULL AND ($1::text IS NULL OR page_type = $1)
         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
    )
    .bind(&page_type)
    .bind(i64::from(paging.page_size()))
    .bind(paging.offset())
    .fetch_all(&state.db)
    .await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pages WHERE deleted_at IS NULL AND ($1::text IS NULL OR page_type = $1)",
    )
    .bind(&page_type)
    .fetch_one(&state.db)
    .await?;
    Ok(Json(OffsetPage {
        data: rows
            .into_iter()
            .map(Page::try_from)
            .collect::<ContentResult<_>>()?,
        page: paging.page(),
        page_size: paging.page_size(),
        total,
    }))
}

/// One undeleted page with its working copy (ADMIN).
#[utoipa::path(
    get,
    path = "/v1/admin/pages/{id}",
    tag = "pages",
    params(("id" = Uuid, Path, description = "Page id")),
    responses(
        (status = 200, description = "The page", body = Page),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such page", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn admin_get(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Path(id): Path<Uuid>,
) -> ContentResult<Json<Page>> {
    let mut conn = state.db.acquire().await?;
    load(&mut conn, id)
        .await?
        .map(Json)
        .ok_or(ContentError::NotFound("page"))
}

/// The pages' routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_page))
        .routes(routes!(get_public, patch_page, delete_page))
        .routes(routes!(publish_page))
        .routes(routes!(unpublish_page))
        .routes(routes!(versions))
        .routes(routes!(admin_list))
        .routes(routes!(admin_get))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_block_type_is_checked_by_its_own_rules() {
        let mut blocks: Vec<Block> = serde_json::from_value(json!([
            {"type": "RICH_TEXT", "markdown": "**bold**"},
            {"type": "IMAGE", "alt": ""},
            {"type": "GALLERY", "images": []},
            {"type": "CTA", "text": "Book", "link": "javascript:alert(1)"},
            {"type": "FAQ_LIST", "items": [{"question": "Q?", "answer": ""}]},
            {"type": "VIDEO", "url": "http://insecure.example/v.mp4"}
        ]))
        .unwrap();
        let errors: Vec<String> = check_blocks(&mut blocks)
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            errors,
            [
                "blocks[1].url",
                "blocks[1].alt",
                "blocks[2].images",
                "blocks[3].link",
                "blocks[4].items[0].answer",
                "blocks[5].url",
            ]
        );
        let Block::RichText(text) = &blocks[0] else {
            panic!("rich text first");
        };
        assert_eq!(text.html.trim(), "<p><strong>bold</strong></p>");
    }

    #[test]
    fn an_unknown_block_type_is_refused() {
        let parsed = serde_json::from_value::<Block>(json!({"type": "MARQUEE", "text": "hi"}));
        assert!(parsed.is_err());
    }
}

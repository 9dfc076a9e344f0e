//! The admin-managed taxonomy, public to read: categories, ranges, colours, styles, finishes and
//! sizes (and, through the same machinery, sales and packages in [`crate::offers`]).
//!
//! Each kind is a table with the same life cycle — cursor-paged public list ordered by
//! (`sort_order`, `id`), read by id, admin create / merge-patch / soft delete — so the SQL is
//! written once, generically, over [`Resource`]: a row is written from the validated input with
//! `jsonb_populate_record(NULL::<table>, $json)` (Postgres maps the members onto the typed
//! columns, so the values are bound, never interpolated; only the table and column names — our
//! own constants and struct fields — appear in the SQL text) and read back with `to_jsonb(row)`.
//! A merge patch is applied to the current input document and the result validated as a whole,
//! exactly like a create. Deleting an entry products still use is a 409.

use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use service_kit::audit::Entry;
use service_kit::merge_patch::patched;
use service_kit::{Caller, CursorPage, CursorParams};
use sqlx::{AssertSqlSafe, PgConnection};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::AppState;
use crate::common::{Family, camel_case, new_id, rename_keys, slug_or_title, snake_case};
use crate::error::{ProductError, ProductResult};

/// One kind of catalogue entry stored in its own table.
pub trait Resource: Send + Sync + 'static {
    /// The table.
    const TABLE: &'static str;
    /// What one entry is called in messages.
    const NAME: &'static str;
    /// The writable members of the API document (camelCase).
    const FIELDS: &'static [&'static str];
    /// Extra condition of the public list (`AND ...` over alias `t`), e.g. "only valid now".
    const PUBLIC_FILTER: &'static str = "";
    /// A query (`$1` = id) returning a row while non-deleted products still use the entry.
    const IN_USE: Option<&'static str> = None;
    /// The products whose search document includes this entry's name (`$1` = id).
    const SEARCHED_BY: Option<&'static str> = None;
    /// The validated input of create and (patched) update.
    type Input: DeserializeOwned + Serialize + Validate + Send + Sync;
    /// The API document.
    type View: Serialize + DeserializeOwned + Send;

    /// The row (snake_case members named like the columns) for `input`; checks what `validator`
    /// cannot and fills defaults such as the slug. Every column member must be present (null
    /// clears a column on update).
    fn to_row(input: Self::Input) -> ProductResult<Value> {
        let value = serde_json::to_value(input).map_err(anyhow::Error::from)?;
        Ok(rename_keys(value, snake_case))
    }

    /// The API document of a row read with `to_jsonb`.
    fn from_row(row: Value) -> ProductResult<Self::View> {
        Ok(serde_json::from_value(rename_keys(row, camel_case)).map_err(anyhow::Error::from)?)
    }
}

fn columns(row: &Value) -> ProductResult<Vec<&str>> {
    let object = row
        .as_object()
        .ok_or_else(|| anyhow::anyhow!("a row must be a JSON object"))?;
    Ok(object.keys().map(String::as_str).collect())
}

/// One page of the public list.
pub async fn list<R: Resource>(
    state: &AppState,
    params: &CursorParams,
) -> ProductResult<CursorPage<R::View>> {
    let after = params.decode::<(i32, Uuid)>()?;
    let sql = format!(
        "SELECT to_jsonb(t) AS row, t.sort_order, t.id FROM {table} t
         WHERE t.deleted_at IS NULL {filter}
           AND ($1::int IS NULL OR (t.sort_order, t.id) > ($1, $2))
         ORDER BY t.sort_order, t.id LIMIT $3",
        table = R::TABLE,
        filter = R::PUBLIC_FILTER,
    );
    let rows: Vec<(Value, i32, Uuid)> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(after.map(|(order, _)| order))
        .bind(after.map(|(_, id)| id))
        .bind(i64::from(params.limit()) + 1)
        .fetch_all(&state.db)
        .await?;
    let keyed = rows
        .into_iter()
        .map(|(row, order, id)| Ok(((order, id), R::from_row(row)?)))
        .collect::<ProductResult<Vec<_>>>()?;
    let page = CursorPage::from_rows(keyed, params.limit(), |(key, _)| *key);
    Ok(CursorPage {
        data: page.data.into_iter().map(|(_, view)| view).collect(),
        next_cursor: page.next_cursor,
        has_next_page: page.has_next_page,
    })
}

async fn fetch_row<R: Resource>(conn: &mut PgConnection, id: Uuid) -> ProductResult<Value> {
    let sql = format!(
        "SELECT to_jsonb(t) FROM {} t WHERE t.id = $1 AND t.deleted_at IS NULL",
        R::TABLE
    );
    sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or(ProductError::NotFound(R::NAME))
}

/// One entry by id.
pub async fn get<R: Resource>(state: &AppState, id: Uuid) -> ProductResult<R::View> {
    let mut conn = state.db.acquire().await?;
    R::from_row(fetch_row::<R>(&mut conn, id).await?)
}

/// The audit entry of a change to an entry of kind `R`: its `name` is a catalogue label, never
/// personal, so it shows in clear.
fn audit<R: Resource>(caller: &Caller, id: Uuid, action: &str) -> Entry {
    Entry::new(caller, R::NAME, id, action).reveal(&["name"])
}

/// Creates an entry.
pub async fn create<R: Resource>(
    state: &AppState,
    caller: &Caller,
    input: R::Input,
) -> ProductResult<R::View> {
    let row = R::to_row(input)?;
    let cols = columns(&row)?.join(", ");
    let sql = format!(
        "INSERT INTO {table} AS t ({cols}, id)
         SELECT {cols}, $2 FROM jsonb_populate_record(NULL::{table}, $1)
         RETURNING to_jsonb(t)",
        table = R::TABLE
    );
    let id = new_id();
    let mut tx = state.db.begin().await?;
    let stored: Value = sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(&row)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let view = R::from_row(stored)?;
    audit::<R>(caller, id, "create")
        .after(&view)
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    state.cache.invalidate().await;
    Ok(view)
}

/// Applies a JSON Merge Patch to an entry.
pub async fn patch<R: Resource>(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    patch: &Value,
) -> ProductResult<R::View> {
    let mut tx = state.db.begin().await?;
    let lock = format!(
        "SELECT 1 FROM {} WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
        R::TABLE
    );
    sqlx::query(AssertSqlSafe(lock))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let before = R::from_row(fetch_row::<R>(&mut tx, id).await?)?;
    let current = serde_json::to_value(&before).map_err(anyhow::Error::from)?;
    let document: serde_json::Map<String, Value> = current
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| R::FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let input: R::Input = patched(Value::Object(document), patch)?;
    let row = R::to_row(input)?;
    let cols = columns(&row)?.join(", ");
    let sql = format!(
        "UPDATE {table} AS t SET ({cols}) = (SELECT {cols} FROM jsonb_populate_record(NULL::{table}, $2))
         WHERE t.id = $1 AND t.deleted_at IS NULL
         RETURNING to_jsonb(t)",
        table = R::TABLE
    );
    let stored: Value = sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(id)
        .bind(&row)
        .fetch_one(&mut *tx)
        .await?;
    if let Some(searched_by) = R::SEARCHED_BY {
        let refresh = format!("SELECT product_search_refresh(array({searched_by}))");
        sqlx::query(AssertSqlSafe(refresh))
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    let after = R::from_row(stored)?;
    audit::<R>(caller, id, "update")
        .before(&before)
        .after(&after)
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    state.cache.invalidate().await;
    Ok(after)
}

/// Soft-deletes an entry; 409 while products still use it.
pub async fn delete<R: Resource>(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> ProductResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let before = R::from_row(fetch_row::<R>(&mut tx, id).await?)?;
    let sql = format!(
        "UPDATE {} SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL RETURNING id",
        R::TABLE
    );
    let deleted: Option<Uuid> = sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    if deleted.is_none() {
        return Err(ProductError::NotFound(R::NAME));
    }
    if let Some(in_use) = R::IN_USE {
        let used: Option<i32> = sqlx::query_scalar(AssertSqlSafe(in_use))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if used.is_some() {
            return Err(ProductError::Conflict(
                "in-use",
                format!("Products still use this {}; change them first.", R::NAME),
            ));
        }
    }
    audit::<R>(caller, id, "delete")
        .before(&before)
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    state.cache.invalidate().await;
    Ok(StatusCode::NO_CONTENT)
}

/// Declares the five routes of a resource with their OpenAPI descriptions.
macro_rules! resource_routes {
    ($module:ident, $kind:ty, $input:ty, $view:ty, $path:literal, $path_id:literal, $tag:literal) => {
        /// Routes of one resource kind.
        pub mod $module {
            use axum::Json;
            use axum::extract::{Path, State};
            use axum::http::StatusCode;
            use service_kit::{AdminCaller, CursorPage, CursorParams, ValidatedJson, ValidatedQuery};
            use utoipa_axum::router::OpenApiRouter;
            use utoipa_axum::routes;
            use uuid::Uuid;

            #[allow(unused_imports)]
            use super::*;
            use crate::AppState;
            use service_kit::merge_patch::MergePatch;
            use crate::error::ProductResult;
            use crate::taxonomy as generic;

            /// The public list, in display order.
            #[utoipa::path(get, path = $path, tag = $tag, params(CursorParams),
                responses(
                    (status = 200, description = "One page", body = CursorPage<$view>),
                    (status = 422, description = "Bad limit or cursor", body = service_kit::Problem, content_type = "application/problem+json"),
                ))]
            pub async fn list(
                State(state): State<AppState>,
                ValidatedQuery(params): ValidatedQuery<CursorParams>,
            ) -> ProductResult<Json<CursorPage<$view>>> {
                generic::list::<$kind>(&state, &params).await.map(Json)
            }

            /// One entry.
            #[utoipa::path(get, path = $path_id, tag = $tag,
                params(("id" = Uuid, Path, description = "Id")),
                responses(
                    (status = 200, description = "The entry", body = $view),
                    (status = 404, description = "No such entry", body = service_kit::Problem, content_type = "application/problem+json"),
                ))]
            pub async fn get(
                State(state): State<AppState>,
                Path(id): Path<Uuid>,
            ) -> ProductResult<Json<$view>> {
                generic::get::<$kind>(&state, id).await.map(Json)
            }

            /// Creates an entry (ADMIN).
            #[utoipa::path(post, path = $path, tag = $tag, request_body = $input,
                responses(
                    (status = 201, description = "Created", body = $view),
                    (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 409, description = "Slug or code taken", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 422, description = "Invalid input", body = service_kit::Problem, content_type = "application/problem+json"),
                ))]
            pub async fn create(
                State(state): State<AppState>,
                AdminCaller(admin): AdminCaller,
                ValidatedJson(input): ValidatedJson<$input>,
            ) -> ProductResult<(StatusCode, Json<$view>)> {
                let view = generic::create::<$kind>(&state, &admin, input).await?;
                Ok((StatusCode::CREATED, Json(view)))
            }

            /// Changes an entry with a JSON Merge Patch (ADMIN).
            #[utoipa::path(patch, path = $path_id, tag = $tag,
                params(("id" = Uuid, Path, description = "Id")),
                request_body(content = $input, content_type = "application/merge-patch+json"),
                responses(
                    (status = 200, description = "Updated", body = $view),
                    (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 404, description = "No such entry", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 409, description = "Slug or code taken", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 422, description = "Invalid patch", body = service_kit::Problem, content_type = "application/problem+json"),
                ))]
            pub async fn patch(
                State(state): State<AppState>,
                AdminCaller(admin): AdminCaller,
                Path(id): Path<Uuid>,
                MergePatch(patch): MergePatch,
            ) -> ProductResult<Json<$view>> {
                generic::patch::<$kind>(&state, &admin, id, &patch).await.map(Json)
            }

            /// Soft-deletes an entry (ADMIN); 409 while products use it.
            #[utoipa::path(delete, path = $path_id, tag = $tag,
                params(("id" = Uuid, Path, description = "Id")),
                responses(
                    (status = 204, description = "Deleted"),
                    (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 404, description = "No such entry", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 409, description = "Still in use", body = service_kit::Problem, content_type = "application/problem+json"),
                ))]
            pub async fn delete(
                State(state): State<AppState>,
                AdminCaller(admin): AdminCaller,
                Path(id): Path<Uuid>,
            ) -> ProductResult<StatusCode> {
                generic::delete::<$kind>(&state, &admin, id).await
            }

            /// The routes.
            pub fn router() -> OpenApiRouter<AppState> {
                OpenApiRouter::new()
                    .routes(routes!(list, create))
                    .routes(routes!(get, patch, delete))
            }
        }
    };
}
pub(crate) use resource_routes;

// ---------------------------------------------------------------------------------------------
// Categories

/// A category: a family (KITCHEN, BEDROOM) or a sub-category of one.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Category {
    /// Id.
    pub id: Uuid,
    /// The family it belongs to.
    pub family: Family,
    /// The parent category of a sub-category.
    pub parent_id: Option<Uuid>,
    /// Display name.
    pub name: String,
    /// URL slug.
    pub slug: String,
    /// Description.
    pub description: Option<String>,
    /// Image URL (content-service media).
    pub image_url: Option<String>,
    /// SEO title.
    pub seo_title: Option<String>,
    /// SEO description.
    pub seo_description: Option<String>,
    /// Display order (ascending).
    pub sort_order: i32,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// What admins write about a category.
#[derive(Debug, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CategoryInput {
    /// The family.
    pub family: Family,
    /// Parent category (for a sub-category).
    #[serde(default)]
    pub parent_id: Option<Uuid>,
    /// Display name.
    #[validate(length(min = 1, max = 120, message = "must be 1–120 characters"))]
    #[schema(min_length = 1, max_length = 120)]
    pub name: String,
    /// URL slug; made from the name when absent.
    #[serde(default)]
    #[schema(max_length = 120, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    pub slug: Option<String>,
    /// Description.
    #[serde(default)]
    #[validate(length(max = 5000, message = "must be at most 5000 characters"))]
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    /// Image URL.
    #[serde(default)]
    #[validate(length(max = 2000, message = "must be at most 2000 characters"))]
    #[schema(max_length = 2000)]
    pub image_url: Option<String>,
    /// SEO title.
    #[serde(default)]
    #[validate(length(max = 200, message = "must be at most 200 characters"))]
    #[schema(max_length = 200)]
    pub seo_title: Option<String>,
    /// SEO description.
    #[serde(default)]
    #[validate(length(max = 500, message = "must be at most 500 characters"))]
    #[schema(max_length = 500)]
    pub seo_description: Option<String>,
    /// Display order.
    #[serde(default)]
    pub sort_order: i32,
}

/// Categories.
pub struct Categories;
impl Resource for Categories {
    const TABLE: &'static str = "categories";
    const NAME: &'static str = "category";
    const FIELDS: &'static [&'static str] = &[
        "family",
        "parentId",
        "name",
        "slug",
        "description",
        "imageUrl",
        "seoTitle",
        "seoDescription",
        "sortOrder",
    ];
    const IN_USE: Option<&'static str> = Some(
        "SELECT 1 FROM products WHERE subcategory_id = $1 AND deleted_at IS NULL
         UNION ALL SELECT 1 FROM categories WHERE parent_id = $1 AND deleted_at IS NULL LIMIT 1",
    );
    type Input = CategoryInput;
    type View = Category;

    fn to_row(mut input: CategoryInput) -> ProductResult<Value> {
        input.slug = Some(slug_or_title(input.slug.as_deref(), &input.name)?);
        Ok(rename_keys(
            serde_json::to_value(input).map_err(anyhow::Error::from)?,
            snake_case,
        ))
    }
}
resource_routes!(
    categories,
    Categories,
    CategoryInput,
    Category,
    "/v1/categories",
    "/v1/categories/{id}",
    "taxonomy"
);

// ---------------------------------------------------------------------------------------------
// Ranges

/// A range: a named collection, e.g. a range of shaker doors.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Range {
    /// Id.
    pub id: Uuid,
    /// The family it belongs to, if only one.
    pub family: Option<Family>,
    /// Display name.
    pub name: String,
    /// URL slug.
    pub slug: String,
    /// Description.
    pub description: Option<String>,
    /// Image URL.
    pub image_url: Option<String>,
    /// Display order.
    pub sort_order: i32,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// What admins write about a range.
#[derive(Debug, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RangeInput {
    /// The family, if only one.
    #[serde(default)]
    pub family: Option<Family>,
    /// Display name.
    #[validate(length(min = 1, max = 120, message = "must be 1–120 characters"))]
    #[schema(min_length = 1, max_length = 120)]
    pub name: String,
    /// URL slug; made from the name when absent.
    #[serde(default)]
    #[schema(max_length = 120, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    pub slug: Option<String>,
    /// Description.
    #[serde(default)]
    #[validate(length(max = 5000, message = "must be at most 5000 characters"))]
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    /// Image URL.
    #[serde(default)]
    #[validate(length(max = 2000, message = "must be at most 2000 characters"))]
    #[schema(max_length = 2000)]
    pub image_url: Option<String>,
    /// Display order.
    #[serde(default)]
    pub sort_order: i32,
}

/// Ranges.
pub struct Ranges;
impl Resource for Ranges {
    const TABLE: &'static str = "ranges";
    const NAME: &'static str = "range";
    const FIELDS: &'static [&'static str] = &[
        "family",
        "name",
        "slug",
        "description",
        "imageUrl",
        "sortOrder",
    ];
    const IN_USE: Option<&'static str> =
        Some("SELECT 1 FROM products WHERE range_id = $1 AND deleted_at IS NULL LIMIT 1");
    const SEARCHED_BY: Option<&'static str> = Some("SELECT id FROM products WHERE range_id = $1");
    type Input = RangeInput;
    type View = Range;

    fn to_row(mut input: RangeInput) -> ProductResult<Value> {
        input.slug = Some(slug_or_title(input.slug.as_deref(), &input.name)?);
        Ok(rename_keys(
            serde_json::to_value(input).map_err(anyhow::Error::from)?,
            snake_case,
        ))
    }
}
resource_routes!(
    ranges,
    Ranges,
    RangeInput,
    Range,
    "/v1/ranges",
    "/v1/ranges/{id}",
    "taxonomy"
);

// ---------------------------------------------------------------------------------------------
// Colours

/// Which family a colour is offered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AppliesTo {
    /// Kitchens only.
    Kitchen,
    /// Bedrooms only.
    Bedroom,
    /// Both.
    Both,
}

/// A colour.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Colour {
    /// Id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// URL slug (the `filter[colour]` value).
    pub slug: String,
    /// `#RRGGBB`.
    pub hex_code: String,
    /// Which family it is offered for.
    pub applies_to: AppliesTo,
    /// Whether it is offered (the public list shows active colours only).
    pub active: bool,
    /// Display order.
    pub sort_order: i32,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

fn hex_code(value: &str) -> Result<(), validator::ValidationError> {
    let ok = value.len() == 7
        && value.starts_with('#')
        && value[1..].chars().all(|c| c.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(validator::ValidationError::new("hex").with_message("must be #RRGGBB".into()))
    }
}

fn default_true() -> bool {
    true
}

fn default_both() -> AppliesTo {
    AppliesTo::Both
}

/// What admins write about a colour.
#[derive(Debug, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ColourInput {
    /// Display name.
    #[validate(length(min = 1, max = 80, message = "must be 1–80 characters"))]
    #[schema(min_length = 1, max_length = 80)]
    pub name: String,
    /// URL slug; made from the name when absent.
    #[serde(default)]
    #[schema(max_length = 120, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    pub slug: Option<String>,
    /// `#RRGGBB`.
    #[validate(custom(function = "hex_code"))]
    #[schema(pattern = "^#[0-9A-Fa-f]{6}$")]
    pub hex_code: String,
    /// Which family it is offered for (default BOTH).
    #[serde(default = "default_both")]
    pub applies_to: AppliesTo,
    /// Whether it is offered (default true).
    #[serde(default = "default_true")]
    pub active: bool,
    /// Display order.
    #[serde(default)]
    pub sort_order: i32,
}

/// Colours.
pub struct Colours;
impl Resource for Colours {
    const TABLE: &'static str = "colours";
    const NAME: &'static str = "colour";
    const FIELDS: &'static [&'static str] = &[
        "name",
        "slug",
        "hexCode",
        "appliesTo",
        "active",
        "sortOrder",
    ];
    const PUBLIC_FILTER: &'static str = "AND t.active";
    const IN_USE: Option<&'static str> = Some(
        "SELECT 1 FROM product_colours pc JOIN products p ON p.id = pc.product_id
         WHERE pc.colour_id = $1 AND p.deleted_at IS NULL LIMIT 1",
    );
    const SEARCHED_BY: Option<&'static str> =
        Some("SELECT product_id FROM product_colours WHERE colour_id = $1");
    type Input = ColourInput;
    type View = Colour;

    fn to_row(mut input: ColourInput) -> ProductResult<Value> {
        input.slug = Some(slug_or_title(input.slug.as_deref(), &input.name)?);
        input.hex_code = input.hex_code.to_ascii_uppercase();
        Ok(rename_keys(
            serde_json::to_value(input).map_err(anyhow::Error::from)?,
            snake_case,
        ))
    }
}
resource_routes!(
    colours,
    Colours,
    ColourInput,
    Colour,
    "/v1/colours",
    "/v1/colours/{id}",
    "taxonomy"
);

// ---------------------------------------------------------------------------------------------
// Styles and finishes (data, not enums)

/// A door style (SHAKER, MODERN, HANDLELESS, ...) or a finish (GLOSS, MATT, ...).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Term {
    /// Id.
    pub id: Uuid,
    /// Stable code, SCREAMING_SNAKE_CASE.
    pub code: String,
    /// Display name.
    pub name: String,
    /// URL slug (the `filter[...]` value).
    pub slug: String,
    /// Description.
    pub description: Option<String>,
    /// Display order.
    pub sort_order: i32,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

fn screaming_snake(value: &str) -> Result<(), validator::ValidationError> {
    let mut chars = value.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && value.len() <= 40;
    if ok {
        Ok(())
    } else {
        Err(validator::ValidationError::new("code")
            .with_message("must be SCREAMING_SNAKE_CASE, at most 40 characters".into()))
    }
}

/// What admins write about a style or finish.
#[derive(Debug, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TermInput {
    /// Stable code, e.g. `SHAKER`.
    #[validate(custom(function = "screaming_snake"))]
    #[schema(pattern = "^[A-Z][A-Z0-9_]{0,39}$")]
    pub code: String,
    /// Display name, e.g. `Shaker`.
    #[validate(length(min = 1, max = 80, message = "must be 1–80 characters"))]
    #[schema(min_length = 1, max_length = 80)]
    pub name: String,
    /// URL slug; made from the name when absent.
    #[serde(default)]
    #[schema(max_length = 120, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    pub slug: Option<String>,
    /// Description.
    #[serde(default)]
    #[validate(length(max = 5000, message = "must be at most 5000 characters"))]
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    /// Display order.
    #[serde(default)]
    pub sort_order: i32,
}

fn term_row(mut input: TermInput) -> ProductResult<Value> {
    input.slug = Some(slug_or_title(input.slug.as_deref(), &input.name)?);
    Ok(rename_keys(
        serde_json::to_value(input).map_err(anyhow::Error::from)?,
        snake_case,
    ))
}

const TERM_FIELDS: &[&str] = &["code", "name", "slug", "description", "sortOrder"];

/// Styles.
pub struct Styles;
impl Resource for Styles {
    const TABLE: &'static str = "styles";
    const NAME: &'static str = "style";
    const FIELDS: &'static [&'static str] = TERM_FIELDS;
    const IN_USE: Option<&'static str> =
        Some("SELECT 1 FROM products WHERE style_id = $1 AND deleted_at IS NULL LIMIT 1");
    const SEARCHED_BY: Option<&'static str> = Some("SELECT id FROM products WHERE style_id = $1");
    type Input = TermInput;
    type View = Term;

    fn to_row(input: TermInput) -> ProductResult<Value> {
        term_row(input)
    }
}
resource_routes!(
    styles,
    Styles,
    TermInput,
    Term,
    "/v1/styles",
    "/v1/styles/{id}",
    "taxonomy"
);

/// Finishes.
pub struct Finishes;
impl Resource for Finishes {
    const TABLE: &'static str = "finishes";
    const NAME: &'static str = "finish";
    const FIELDS: &'static [&'static str] = TERM_FIELDS;
    const IN_USE: Option<&'static str> =
        Some("SELECT 1 FROM products WHERE finish_id = $1 AND deleted_at IS NULL LIMIT 1");
    const SEARCHED_BY: Option<&'static str> = Some("SELECT id FROM products WHERE finish_id = $1");
    type Input = TermInput;
    type View = Term;

    fn to_row(input: TermInput) -> ProductResult<Value> {
        term_row(input)
    }
}
resource_routes!(
    finishes,
    Finishes,
    TermInput,
    Term,
    "/v1/finishes",
    "/v1/finishes/{id}",
    "taxonomy"
);

// ---------------------------------------------------------------------------------------------
// Sizes

/// A size / unit (e.g. a 600 mm base unit).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Size {
    /// Id.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// URL slug.
    pub slug: String,
    /// Description.
    pub description: Option<String>,
    /// Image URL.
    pub image_url: Option<String>,
    /// Width in millimetres.
    pub width_mm: Option<i32>,
    /// Height in millimetres.
    pub height_mm: Option<i32>,
    /// Depth in millimetres.
    pub depth_mm: Option<i32>,
    /// Display order.
    pub sort_order: i32,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// What admins write about a size.
#[derive(Debug, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SizeInput {
    /// Title.
    #[validate(length(min = 1, max = 120, message = "must be 1–120 characters"))]
    #[schema(min_length = 1, max_length = 120)]
    pub title: String,
    /// URL slug; made from the title when absent.
    #[serde(default)]
    #[schema(max_length = 120, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    pub slug: Option<String>,
    /// Description.
    #[serde(default)]
    #[validate(length(max = 5000, message = "must be at most 5000 characters"))]
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    /// Image URL.
    #[serde(default)]
    #[validate(length(max = 2000, message = "must be at most 2000 characters"))]
    #[schema(max_length = 2000)]
    pub image_url: Option<String>,
    /// Width in millimetres.
    #[serde(default)]
    #[validate(range(min = 1, max = 100000, message = "must be 1–100000 mm"))]
    #[schema(minimum = 1, maximum = 100000)]
    pub width_mm: Option<i32>,
    /// Height in millimetres.
    #[serde(default)]
    #[validate(range(min = 1, max = 100000, message = "must be 1–100000 mm"))]
    #[schema(minimum = 1, maximum = 100000)]
    pub height_mm: Option<i32>,
    /// Depth in millimetres.
    #[serde(default)]
    #[validate(range(min = 1, max = 100000, message = "must be 1–100000 mm"))]
    #[schema(minimum = 1, maximum = 100000)]
    pub depth_mm: Option<i32>,
    /// Display order.
    #[serde(default)]
    pub sort_order: i32,
}

/// Sizes.
pub struct Sizes;
impl Resource for Sizes {
    const TABLE: &'static str = "sizes";
    const NAME: &'static str = "size";
    const FIELDS: &'static [&'static str] = &[
        "title",
        "slug",
        "description",
        "imageUrl",
        "widthMm",
        "heightMm",
        "depthMm",
        "sortOrder",
    ];
    const IN_USE: Option<&'static str> = Some(
        "SELECT 1 FROM product_sizes ps JOIN products p ON p.id = ps.product_id
         WHERE ps.size_id = $1 AND p.deleted_at IS NULL LIMIT 1",
    );
    type Input = SizeInput;
    type View = Size;

    fn to_row(mut input: SizeInput) -> ProductResult<Value> {
        input.slug = Some(slug_or_title(input.slug.as_deref(), &input.title)?);
        Ok(rename_keys(
            serde_json::to_value(input).map_err(anyhow::Error::from)?,
            snake_case,
        ))
    }
}
resource_routes!(
    sizes,
    Sizes,
    SizeInput,
    Size,
    "/v1/sizes",
    "/v1/sizes/{id}",
    "taxonomy"
);

/// Every taxonomy route.
pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .merge(categories::router())
        .merge(ranges::router())
        .merge(colours::router())
        .merge(styles::router())
        .merge(finishes::router())
        .merge(sizes::router())
}

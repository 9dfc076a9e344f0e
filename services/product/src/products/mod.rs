//! Products: the full document (with its colours, sizes and images), admin create / merge-patch
//! / soft delete with their events, detail by id and slug (cached, ETag), related products and
//! the price history. Browsing, facets and search live in [`list`].

pub mod list;

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::audit::Entry;
use service_kit::merge_patch::{MergePatch, patched};
use service_kit::shared_types::product::{
    PriceChanged, ProductCreated, ProductDeleted, ProductUpdated,
};
use service_kit::{
    AdminCaller, Caller, MaybeCaller, OffsetPage, PageParams, ValidatedJson, ValidatedQuery,
    event_bus,
};
use sqlx::PgConnection;
use sqlx::types::Json as SqlJson;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use crate::cache::Ttl;
use crate::common::{Family, Money, TermRef, new_id, slug_or_title};
use crate::error::{ProductError, ProductResult};
use crate::{AppState, event};

/// Where a product is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProductStatus {
    /// Being prepared; admins only.
    #[default]
    Draft,
    /// Visible to shoppers.
    Published,
    /// Withdrawn; admins only.
    Archived,
}

impl ProductStatus {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "DRAFT",
            Self::Published => "PUBLISHED",
            Self::Archived => "ARCHIVED",
        }
    }

    /// From the database (checked by the schema) or a query string.
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_uppercase().as_str() {
            "DRAFT" => Some(Self::Draft),
            "PUBLISHED" => Some(Self::Published),
            "ARCHIVED" => Some(Self::Archived),
            _ => None,
        }
    }
}

/// A product image (the URL points at content-service media).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Image {
    /// Image URL.
    #[validate(length(min = 1, max = 2000, message = "must be 1–2000 characters"))]
    #[schema(min_length = 1, max_length = 2000)]
    pub url: String,
    /// Alternative text.
    #[serde(default)]
    #[validate(length(max = 300, message = "must be at most 300 characters"))]
    #[schema(max_length = 300)]
    pub alt: String,
    /// Resized variants by name, e.g. `{"thumb": "…", "w800": "…"}`.
    #[serde(default)]
    pub variants: BTreeMap<String, String>,
}

/// A colour of a product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ColourRef {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Slug.
    pub slug: String,
    /// `#RRGGBB`.
    pub hex_code: String,
}

/// A size / unit of a product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SizeRef {
    /// Id.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// Slug.
    pub slug: String,
    /// Width in mm.
    pub width_mm: Option<i32>,
    /// Height in mm.
    pub height_mm: Option<i32>,
    /// Depth in mm.
    pub depth_mm: Option<i32>,
}

/// A product with its colours, sizes and images.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    /// Id.
    pub id: Uuid,
    /// Stock-keeping unit.
    pub sku: String,
    /// Title.
    pub title: String,
    /// URL slug.
    pub slug: String,
    /// Description.
    pub description: String,
    /// KITCHEN or BEDROOM.
    pub category: Family,
    /// Sub-category, if any.
    pub subcategory: Option<TermRef>,
    /// Range, if any.
    pub range: Option<TermRef>,
    /// Style, if any.
    pub style: Option<TermRef>,
    /// Finish, if any.
    pub finish: Option<TermRef>,
    /// Colours it comes in.
    pub colours: Vec<ColourRef>,
    /// Sizes / units it comes in.
    pub sizes: Vec<SizeRef>,
    /// Images, in display order.
    pub images: Vec<Image>,
    /// Price; `null` = price on consultation.
    pub price: Option<Money>,
    /// DRAFT, PUBLISHED or ARCHIVED.
    pub status: ProductStatus,
    /// Shown in featured places.
    pub featured: bool,
    /// Views (updated asynchronously).
    pub popularity: i64,
    /// SEO title.
    pub seo_title: Option<String>,
    /// SEO description.
    pub seo_description: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

struct ProductRow {
    id: Uuid,
    sku: String,
    title: String,
    slug: String,
    description: String,
    category: String,
    subcategory: Option<SqlJson<TermRef>>,
    range: Option<SqlJson<TermRef>>,
    style: Option<SqlJson<TermRef>>,
    finish: Option<SqlJson<TermRef>>,
    colours: SqlJson<Vec<ColourRef>>,
    sizes: SqlJson<Vec<SizeRef>>,
    images: SqlJson<Vec<Image>>,
    price_pence: Option<i64>,
    currency: String,
    status: String,
    featured: bool,
    popularity: i64,
    seo_title: Option<String>,
    seo_description: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<ProductRow> for Product {
    fn from(row: ProductRow) -> Self {
        Self {
            id: row.id,
            sku: row.sku,
            title: row.title,
            slug: row.slug,
            description: row.description,
            category: Family::from_db(&row.category),
            subcategory: row.subcategory.map(|j| j.0),
            range: row.range.map(|j| j.0),
            style: row.style.map(|j| j.0),
            finish: row.finish.map(|j| j.0),
            colours: row.colours.0,
            sizes: row.sizes.0,
            images: row.images.0,
            price: Money::from_columns(row.price_pence, &row.currency),
            status: ProductStatus::parse(&row.status).unwrap_or_default(),
            featured: row.featured,
            popularity: row.popularity,
            seo_title: row.seo_title,
            seo_description: row.seo_description,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// The full documents of the (non-deleted) products `ids`, in the order of `ids`.
pub async fn load(conn: &mut PgConnection, ids: &[Uuid]) -> ProductResult<Vec<Product>> {
    let rows = sqlx::query_as!(
        ProductRow,
        r#"SELECT p.id, p.sku, p.title, p.slug, p.description, p.category,
             (SELECT jsonb_build_object('id', c.id, 'name', c.name, 'slug', c.slug)
                FROM categories c WHERE c.id = p.subcategory_id) AS "subcategory: SqlJson<TermRef>",
             (SELECT jsonb_build_object('id', r.id, 'name', r.name, 'slug', r.slug)
                FROM ranges r WHERE r.id = p.range_id) AS "range: SqlJson<TermRef>",
             (SELECT jsonb_build_object('id', s.id, 'name', s.name, 'slug', s.slug)
                FROM styles s WHERE s.id = p.style_id) AS "style: SqlJson<TermRef>",
             (SELECT jsonb_build_object('id', f.id, 'name', f.name, 'slug', f.slug)
                FROM finishes f WHERE f.id = p.finish_id) AS "finish: SqlJson<TermRef>",
             COALESCE((SELECT jsonb_agg(jsonb_build_object('id', c.id, 'name', c.name,
                         'slug', c.slug, 'hexCode', c.hex_code) ORDER BY c.sort_order, c.name)
                       FROM product_colours pc JOIN colours c ON c.id = pc.colour_id
                       WHERE pc.product_id = p.id), '[]'::jsonb) AS "colours!: SqlJson<Vec<ColourRef>>",
             COALESCE((SELECT jsonb_agg(jsonb_build_object('id', z.id, 'title', z.title,
                         'slug', z.slug, 'widthMm', z.width_mm, 'heightMm', z.height_mm,
                         'depthMm', z.depth_mm) ORDER BY z.sort_order, z.title)
                       FROM product_sizes ps JOIN sizes z ON z.id = ps.size_id
                       WHERE ps.product_id = p.id), '[]'::jsonb) AS "sizes!: SqlJson<Vec<SizeRef>>",
             p.images AS "images: SqlJson<Vec<Image>>",
             p.price_pence, p.currency, p.status, p.featured, p.popularity,
             p.seo_title, p.seo_description, p.created_at, p.updated_at
           FROM products p
           WHERE p.id = ANY($1) AND p.deleted_at IS NULL"#,
        ids
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut by_id: std::collections::HashMap<Uuid, Product> =
        rows.into_iter().map(|r| (r.id, Product::from(r))).collect();
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

async fn load_one(conn: &mut PgConnection, id: Uuid) -> ProductResult<Option<Product>> {
    Ok(load(conn, &[id]).await?.into_iter().next())
}

/// What admins write about a product (create, or the document a merge patch produces).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProductInput {
    /// Title.
    #[validate(length(min = 1, max = 200, message = "must be 1–200 characters"))]
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// URL slug; made from the title when absent (or null in a patch).
    #[serde(default)]
    pub slug: Option<String>,
    /// SKU (A–Z, 0–9, -); generated when absent.
    #[serde(default)]
    pub sku: Option<String>,
    /// Description.
    #[serde(default)]
    #[validate(length(max = 20000, message = "must be at most 20000 characters"))]
    #[schema(max_length = 20000)]
    pub description: String,
    /// KITCHEN or BEDROOM.
    pub category: Family,
    /// Sub-category id.
    #[serde(default)]
    pub subcategory_id: Option<Uuid>,
    /// Range id.
    #[serde(default)]
    pub range_id: Option<Uuid>,
    /// Style id.
    #[serde(default)]
    pub style_id: Option<Uuid>,
    /// Finish id.
    #[serde(default)]
    pub finish_id: Option<Uuid>,
    /// Colour ids.
    #[serde(default)]
    #[validate(length(max = 50, message = "at most 50 colours"))]
    #[schema(max_items = 50)]
    pub colour_ids: Vec<Uuid>,
    /// Size ids.
    #[serde(default)]
    #[validate(length(max = 100, message = "at most 100 sizes"))]
    #[schema(max_items = 100)]
    pub size_ids: Vec<Uuid>,
    /// Images in display order.
    #[serde(default)]
    #[validate(length(max = 30, message = "at most 30 images"), nested)]
    #[schema(max_items = 30)]
    pub images: Vec<Image>,
    /// Price; null or absent = price on consultation.
    #[serde(default)]
    pub price: Option<Money>,
    /// Status (default DRAFT).
    #[serde(default)]
    pub status: ProductStatus,
    /// Featured.
    #[serde(default)]
    pub featured: bool,
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
}

impl From<&Product> for ProductInput {
    /// The input that would produce `p` (ids sorted, as [`normalise`] leaves them).
    fn from(p: &Product) -> Self {
        let mut colour_ids: Vec<Uuid> = p.colours.iter().map(|c| c.id).collect();
        colour_ids.sort();
        let mut size_ids: Vec<Uuid> = p.sizes.iter().map(|s| s.id).collect();
        size_ids.sort();
        Self {
            title: p.title.clone(),
            slug: Some(p.slug.clone()),
            sku: Some(p.sku.clone()),
            description: p.description.clone(),
            category: p.category,
            subcategory_id: p.subcategory.as_ref().map(|t| t.id),
            range_id: p.range.as_ref().map(|t| t.id),
            style_id: p.style.as_ref().map(|t| t.id),
            finish_id: p.finish.as_ref().map(|t| t.id),
            colour_ids,
            size_ids,
            images: p.images.clone(),
            price: p.price.clone(),
            status: p.status,
            featured: p.featured,
            seo_title: p.seo_title.clone(),
            seo_description: p.seo_description.clone(),
        }
    }
}

/// An input with its defaults filled in and its cross-field rules checked.
struct Normalised {
    input: ProductInput,
    slug: String,
    sku: String,
}

fn normalise(mut input: ProductInput) -> ProductResult<Normalised> {
    let slug = slug_or_title(input.slug.as_deref(), &input.title)?;
    let sku = match input.sku.as_deref() {
        Some(sku) => {
            let sku = sku.trim().to_ascii_uppercase();
            let ok = (3..=41).contains(&sku.len())
                && sku.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !sku.starts_with('-');
            if !ok {
                return Err(ProductError::field(
                    "sku",
                    "must be 3–41 characters of A–Z, 0–9 and -",
                ));
            }
            sku
        }
        None => generated_sku(),
    };
    if let Some(price) = &input.price {
        price.check("price")?;
    }
    for (i, image) in input.images.iter().enumerate() {
        let url = image.url.as_str();
        if !(url.starts_with("https://") || url.starts_with("http://") || url.starts_with('/')) {
            return Err(ProductError::field(
                &format!("images[{i}].url"),
                "must be an absolute URL or a /media path",
            ));
        }
    }
    input.colour_ids.sort();
    input.colour_ids.dedup();
    input.size_ids.sort();
    input.size_ids.dedup();
    input.slug = Some(slug.clone());
    input.sku = Some(sku.clone());
    Ok(Normalised { input, slug, sku })
}

/// `LW-` and ten hex digits of randomness.
fn generated_sku() -> String {
    let random = Uuid::new_v4().simple().to_string().to_ascii_uppercase();
    format!("LW-{}", &random[..10])
}

/// Maps a foreign-key violation of the product tables to the input member at fault.
fn reference_error(error: sqlx::Error) -> ProductError {
    let field = match service_kit::problem::violated_constraint(&error) {
        Some("products_subcategory_id_fkey") => "subcategoryId",
        Some("products_range_id_fkey") => "rangeId",
        Some("products_style_id_fkey") => "styleId",
        Some("products_finish_id_fkey") => "finishId",
        Some("product_colours_colour_id_fkey") => "colourIds",
        Some("product_sizes_size_id_fkey") => "sizeIds",
        _ => return ProductError::Database(error),
    };
    ProductError::field(field, "refers to something that does not exist")
}

/// Writes the colours and sizes of product `id` (replacing what it had).
async fn write_links(conn: &mut PgConnection, id: Uuid, input: &ProductInput) -> ProductResult<()> {
    sqlx::query!("DELETE FROM product_colours WHERE product_id = $1", id)
        .execute(&mut *conn)
        .await?;
    sqlx::query!(
        "INSERT INTO product_colours (product_id, colour_id) SELECT $1, unnest($2::uuid[])",
        id,
        &input.colour_ids
    )
    .execute(&mut *conn)
    .await
    .map_err(reference_error)?;
    sqlx::query!("DELETE FROM product_sizes WHERE product_id = $1", id)
        .execute(&mut *conn)
        .await?;
    sqlx::query!(
        "INSERT INTO product_sizes (product_id, size_id) SELECT $1, unnest($2::uuid[])",
        id,
        &input.size_ids
    )
    .execute(&mut *conn)
    .await
    .map_err(reference_error)?;
    sqlx::query!("SELECT product_search_refresh(ARRAY[$1::uuid])", id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records a price change in the history and the outbox.
async fn record_price(
    conn: &mut PgConnection,
    product: Uuid,
    old: Option<&Money>,
    new: Option<&Money>,
    by: Option<Uuid>,
    announce: bool,
) -> ProductResult<()> {
    let now = Utc::now();
    let currency = new
        .or(old)
        .map_or("GBP", |m| m.currency.as_str())
        .to_owned();
    sqlx::query!(
        "INSERT INTO price_history (id, product_id, old_price_pence, new_price_pence, currency,
                                    changed_by, changed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        new_id(),
        product,
        old.map(|m| m.amount),
        new.map(|m| m.amount),
        currency,
        by,
        now
    )
    .execute(&mut *conn)
    .await?;
    if announce {
        let payload = PriceChanged {
            product_id: product,
            old_price: old.map_or(0, |m| m.amount),
            new_price: new.map_or(0, |m| m.amount),
            old_price_on_consultation: old.is_none(),
            new_price_on_consultation: new.is_none(),
            currency,
            effective_from: now,
            changed_by: by,
        };
        event_bus::outbox::publish(conn, &event(payload)).await?;
    }
    Ok(())
}

/// Creates a product (ADMIN): `product.created` goes out with it.
#[utoipa::path(
    post,
    path = "/v1/products",
    tag = "products",
    request_body = ProductInput,
    responses(
        (status = 201, description = "Created", body = Product),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Slug or SKU taken", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn create_product(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ValidatedJson(input): ValidatedJson<ProductInput>,
) -> ProductResult<Response> {
    let product = create(&state, input, Some(&admin)).await?;
    let location = format!("/v1/products/{}", product.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(product),
    )
        .into_response())
}

/// Creates a product (also used by the seeder, with no admin).
pub async fn create(
    state: &AppState,
    input: ProductInput,
    admin: Option<&Caller>,
) -> ProductResult<Product> {
    let Normalised { input, slug, sku } = normalise(input)?;
    let id = new_id();
    let mut tx = state.db.begin().await?;
    let created_at: DateTime<Utc> = sqlx::query_scalar!(
        r#"INSERT INTO products (id, sku, title, slug, description, category, subcategory_id,
                                 range_id, style_id, finish_id, price_pence, currency, status,
                                 featured, images, seo_title, seo_description)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
           RETURNING created_at"#,
        id,
        sku,
        input.title,
        slug,
        input.description,
        input.category.as_str(),
        input.subcategory_id,
        input.range_id,
        input.style_id,
        input.finish_id,
        input.price.as_ref().map(|m| m.amount),
        input.price.as_ref().map_or("GBP", |m| m.currency.as_str()),
        input.status.as_str(),
        input.featured,
        SqlJson(&input.images) as _,
        input.seo_title,
        input.seo_description
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(reference_error)?;
    write_links(&mut tx, id, &input).await?;
    if input.price.is_some() {
        record_price(
            &mut tx,
            id,
            None,
            input.price.as_ref(),
            admin.map(|a| a.user_id),
            false,
        )
        .await?;
    }
    let payload = ProductCreated {
        product_id: id,
        sku,
        slug,
        name: input.title.clone(),
        category: input.category.into(),
        range_id: input.range_id,
        price: input.price.as_ref().map_or(0, |m| m.amount),
        currency: input
            .price
            .as_ref()
            .map_or("GBP", |m| m.currency.as_str())
            .to_owned(),
        price_on_consultation: input.price.is_none(),
        is_published: input.status == ProductStatus::Published,
        created_at,
    };
    event_bus::outbox::publish(&mut tx, &event(payload)).await?;
    if let Some(admin) = admin {
        Entry::new(admin, "product", id, "create")
            .after(&input)
            .record(&mut tx)
            .await?;
    }
    let product = load_one(&mut tx, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("created product vanished"))?;
    tx.commit().await?;
    state.cache.invalidate().await;
    Ok(product)
}

/// Changes a product with a JSON Merge Patch (ADMIN). `product.updated` names the changed
/// members; a price change is recorded in the history and announced as `price.changed`.
#[utoipa::path(
    patch,
    path = "/v1/products/{id}",
    tag = "products",
    params(("id" = Uuid, Path, description = "Product id")),
    request_body(content = ProductInput, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "Updated", body = Product),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Slug or SKU taken", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid patch", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn patch_product(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
    MergePatch(patch): MergePatch,
) -> ProductResult<Json<Product>> {
    let mut tx = state.db.begin().await?;
    let locked = sqlx::query_scalar!(
        "SELECT id FROM products WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
        id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if locked.is_none() {
        return Err(ProductError::NotFound("product"));
    }
    let current = load_one(&mut tx, id)
        .await?
        .ok_or(ProductError::NotFound("product"))?;
    let before = ProductInput::from(&current);
    let document = serde_json::to_value(&before).map_err(anyhow::Error::from)?;
    let Normalised { input, slug, sku } = normalise(patched::<ProductInput>(document, &patch)?)?;
    let changed = changed_fields(&before, &input)?;
    if changed.is_empty() {
        return Ok(Json(current));
    }
    let updated_at: DateTime<Utc> = sqlx::query_scalar!(
        r#"UPDATE products SET sku = $2, title = $3, slug = $4, description = $5, category = $6,
                  subcategory_id = $7, range_id = $8, style_id = $9, finish_id = $10,
                  price_pence = $11, currency = $12, status = $13, featured = $14, images = $15,
                  seo_title = $16, seo_description = $17
           WHERE id = $1 RETURNING updated_at"#,
        id,
        sku,
        input.title,
        slug,
        input.description,
        input.category.as_str(),
        input.subcategory_id,
        input.range_id,
        input.style_id,
        input.finish_id,
        input.price.as_ref().map(|m| m.amount),
        input.price.as_ref().map_or("GBP", |m| m.currency.as_str()),
        input.status.as_str(),
        input.featured,
        SqlJson(&input.images) as _,
        input.seo_title,
        input.seo_description
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(reference_error)?;
    write_links(&mut tx, id, &input).await?;
    if before.price != input.price {
        record_price(
            &mut tx,
            id,
            before.price.as_ref(),
            input.price.as_ref(),
            Some(admin.user_id),
            true,
        )
        .await?;
    }
    let payload = ProductUpdated {
        product_id: id,
        slug,
        name: input.title.clone(),
        is_published: input.status == ProductStatus::Published,
        changed_fields: changed,
        updated_at,
    };
    event_bus::outbox::publish(&mut tx, &event(payload)).await?;
    Entry::new(&admin, "product", id, "update")
        .before(&before)
        .after(&input)
        .record(&mut tx)
        .await?;
    let product = load_one(&mut tx, id)
        .await?
        .ok_or(ProductError::NotFound("product"))?;
    tx.commit().await?;
    state.cache.invalidate().await;
    Ok(Json(product))
}

/// The camelCase members whose value differs.
fn changed_fields(before: &ProductInput, after: &ProductInput) -> ProductResult<Vec<String>> {
    let before = serde_json::to_value(before).map_err(anyhow::Error::from)?;
    let after = serde_json::to_value(after).map_err(anyhow::Error::from)?;
    let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
        return Ok(Vec::new());
    };
    Ok(after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect())
}

/// Withdraws a product (ADMIN; soft delete): `product.deleted` goes out.
#[utoipa::path(
    delete,
    path = "/v1/products/{id}",
    tag = "products",
    params(("id" = Uuid, Path, description = "Product id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_product(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
) -> ProductResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let before = load_one(&mut tx, id)
        .await?
        .map(|current| ProductInput::from(&current));
    let deleted = sqlx::query!(
        r#"UPDATE products SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL
           RETURNING sku, deleted_at AS "deleted_at!""#,
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ProductError::NotFound("product"))?;
    let payload = ProductDeleted {
        product_id: id,
        sku: deleted.sku,
        deleted_at: deleted.deleted_at,
    };
    event_bus::outbox::publish(&mut tx, &event(payload)).await?;
    Entry::new(&admin, "product", id, "delete")
        .before(&before)
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    state.cache.invalidate().await;
    Ok(StatusCode::NO_CONTENT)
}

/// Serves one product: shoppers see published products only (cached, with an ETag); an
/// administrator sees any status, uncached. Counts a view.
async fn serve_product(
    state: &AppState,
    headers: &HeaderMap,
    caller: &MaybeCaller,
    id: Option<Uuid>,
    slug: Option<&str>,
) -> ProductResult<Response> {
    let admin = caller.0.as_ref().is_some_and(|c| c.role.is_admin());
    let resolve = async |state: &AppState| -> ProductResult<Option<Product>> {
        let mut conn = state.db.acquire().await?;
        let id = match (id, slug) {
            (Some(id), _) => Some(id),
            (None, Some(slug)) => {
                sqlx::query_scalar!(
                    "SELECT id FROM products WHERE slug = $1 AND deleted_at IS NULL",
                    slug
                )
                .fetch_optional(&mut *conn)
                .await?
            }
            (None, None) => None,
        };
        let Some(id) = id else { return Ok(None) };
        let product = load_one(&mut conn, id).await?;
        Ok(product.filter(|p| admin || p.status == ProductStatus::Published))
    };
    if admin {
        let product = resolve(state)
            .await?
            .ok_or(ProductError::NotFound("product"))?;
        state.views.record(product.id);
        return Ok(Json(product).into_response());
    }
    let normalised = match (id, slug) {
        (Some(id), _) => format!("id={id}"),
        (_, slug) => format!("slug={}", slug.unwrap_or_default()),
    };
    let (entry, hit) = state
        .cache
        .fetch("product", &normalised, Ttl::Detail, || async {
            let product = resolve(state)
                .await?
                .ok_or(ProductError::NotFound("product"))?;
            Ok::<_, ProductError>(serde_json::to_vec(&product).map_err(anyhow::Error::from)?)
        })
        .await?;
    match id.or_else(|| leading_id(&entry.body)) {
        Some(id) => state.views.record(id),
        None => {
            #[derive(Deserialize)]
            struct IdOnly {
                id: Uuid,
            }
            if let Ok(IdOnly { id }) = serde_json::from_slice(&entry.body) {
                state.views.record(id);
            }
        }
    }
    Ok(entry.respond(headers, hit))
}

/// The id of a product document that starts with it, as `Product` serialises (its first field),
/// so a cached hit by slug is not parsed whole just to count the view.
fn leading_id(body: &[u8]) -> Option<Uuid> {
    let rest = body.strip_prefix(br#"{"id":""#)?;
    let (id, rest) = rest.split_at_checked(36)?;
    rest.starts_with(b"\"")
        .then(|| Uuid::try_parse_ascii(id).ok())
        .flatten()
}

/// A published product by id, with its colours, sizes and images (`ETag`, 304 on a match).
#[utoipa::path(
    get,
    path = "/v1/products/{id}",
    tag = "products",
    params(("id" = Uuid, Path, description = "Product id")),
    responses(
        (status = 200, description = "The product", body = Product),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 404, description = "No such published product", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn get_product(
    State(state): State<AppState>,
    caller: MaybeCaller,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> ProductResult<Response> {
    serve_product(&state, &headers, &caller, Some(id), None).await
}

/// A published product by slug.
#[utoipa::path(
    get,
    path = "/v1/products/slug/{slug}",
    tag = "products",
    params(("slug" = String, Path, description = "Product slug")),
    responses(
        (status = 200, description = "The product", body = Product),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 404, description = "No such published product", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn get_product_by_slug(
    State(state): State<AppState>,
    caller: MaybeCaller,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> ProductResult<Response> {
    serve_product(&state, &headers, &caller, None, Some(&slug)).await
}

/// How many related products to return.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RelatedQuery {
    /// 1–24 (default 8).
    #[validate(range(min = 1, max = 24, message = "must be between 1 and 24"))]
    #[param(minimum = 1, maximum = 24)]
    pub limit: Option<u32>,
}

/// Published products of the same family, those sharing the range and style first, then the
/// most viewed.
#[utoipa::path(
    get,
    path = "/v1/products/{id}/related",
    tag = "products",
    params(("id" = Uuid, Path, description = "Product id"), RelatedQuery),
    responses(
        (status = 200, description = "Related products", body = Vec<Product>),
        (status = 404, description = "No such published product", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn related_products(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    ValidatedQuery(query): ValidatedQuery<RelatedQuery>,
) -> ProductResult<Json<Vec<Product>>> {
    let mut conn = state.db.acquire().await?;
    let ids: Vec<Uuid> = sqlx::query_scalar!(
        r#"SELECT o.id AS "id!" FROM products me
           JOIN products o ON o.category = me.category AND o.id <> me.id
                          AND o.status = 'PUBLISHED' AND o.deleted_at IS NULL
           WHERE me.id = $1 AND me.status = 'PUBLISHED' AND me.deleted_at IS NULL
           ORDER BY (o.range_id IS NOT DISTINCT FROM me.range_id AND o.range_id IS NOT NULL) DESC,
                    (o.style_id IS NOT DISTINCT FROM me.style_id AND o.style_id IS NOT NULL) DESC,
                    o.popularity DESC, o.id
           LIMIT $2"#,
        id,
        i64::from(query.limit.unwrap_or(8))
    )
    .fetch_all(&mut *conn)
    .await?;
    if ids.is_empty() {
        let exists = sqlx::query_scalar!(
            "SELECT 1 AS one FROM products WHERE id = $1 AND status = 'PUBLISHED' AND deleted_at IS NULL",
            id
        )
        .fetch_optional(&mut *conn)
        .await?;
        if exists.is_none() {
            return Err(ProductError::NotFound("product"));
        }
    }
    Ok(Json(load(&mut conn, &ids).await?))
}

/// One recorded price change.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriceChange {
    /// Id.
    pub id: Uuid,
    /// The price before (null = on consultation, or the first price).
    pub old_price: Option<Money>,
    /// The price after (null = on consultation).
    pub new_price: Option<Money>,
    /// The admin who changed it.
    pub changed_by: Option<Uuid>,
    /// When.
    pub changed_at: DateTime<Utc>,
}

/// Every price change of a product, newest first (ADMIN).
#[utoipa::path(
    get,
    path = "/v1/products/{id}/price-history",
    tag = "products",
    params(("id" = Uuid, Path, description = "Product id"), PageParams),
    responses(
        (status = 200, description = "One page of changes", body = OffsetPage<PriceChange>),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn price_history(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Path(id): Path<Uuid>,
    ValidatedQuery(paging): ValidatedQuery<PageParams>,
) -> ProductResult<Json<OffsetPage<PriceChange>>> {
    let exists = sqlx::query_scalar!("SELECT 1 AS one FROM products WHERE id = $1", id)
        .fetch_optional(&state.db)
        .await?;
    if exists.is_none() {
        return Err(ProductError::NotFound("product"));
    }
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM price_history WHERE product_id = $1"#,
        id
    )
    .fetch_one(&state.db)
    .await?;
    let rows = sqlx::query!(
        "SELECT id, old_price_pence, new_price_pence, currency, changed_by, changed_at
         FROM price_history WHERE product_id = $1
         ORDER BY changed_at DESC, id DESC LIMIT $2 OFFSET $3",
        id,
        i64::from(paging.page_size()),
        paging.offset()
    )
    .fetch_all(&state.db)
    .await?;
    let data = rows
        .into_iter()
        .map(|r| PriceChange {
            id: r.id,
            old_price: Money::from_columns(r.old_price_pence, &r.currency),
            new_price: Money::from_columns(r.new_price_pence, &r.currency),
            changed_by: r.changed_by,
            changed_at: r.changed_at,
        })
        .collect();
    Ok(Json(OffsetPage {
        data,
        page: paging.page(),
        page_size: paging.page_size(),
        total,
    }))
}

/// The admin table: every status, offset-paged, newest first.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AdminListQuery {
    /// Page number from 1.
    #[validate(range(min = 1, max = 100000, message = "must be at least 1"))]
    #[param(minimum = 1, maximum = 100000)]
    pub page: Option<u32>,
    /// Rows a page, 1–100 (default 20).
    #[serde(rename = "pageSize")]
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<u32>,
    /// Statuses to include, comma-separated (`DRAFT,ARCHIVED`).
    #[serde(rename = "filter[status]")]
    #[param(
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:[Dd][Rr][Aa][Ff][Tt]|[Pp][Uu][Bb][Ll][Ii][Ss][Hh][Ee][Dd]|[Aa][Rr][Cc][Hh][Ii][Vv][Ee][Dd])[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:,[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:[Dd][Rr][Aa][Ff][Tt]|[Pp][Uu][Bb][Ll][Ii][Ss][Hh][Ee][Dd]|[Aa][Rr][Cc][Hh][Ii][Vv][Ee][Dd])[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)*$"
    )]
    pub status: Option<String>,
}

/// Every product of any status, newest first (ADMIN, offset-paged).
#[utoipa::path(
    get,
    path = "/v1/products/admin",
    tag = "products",
    params(AdminListQuery),
    responses(
        (status = 200, description = "One page", body = OffsetPage<Product>),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown parameter or status", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn admin_list(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ValidatedQuery(query): ValidatedQuery<AdminListQuery>,
) -> ProductResult<Json<OffsetPage<Product>>> {
    let statuses: Option<Vec<String>> = match query.status.as_deref() {
        None => None,
        Some(raw) => Some(
            raw.split(',')
                .map(|s| {
                    ProductStatus::parse(s.trim())
                        .map(|s| s.as_str().to_owned())
                        .ok_or_else(|| {
                            ProductError::field("filter[status]", "contains an unknown status")
                        })
                })
                .collect::<ProductResult<_>>()?,
        ),
    };
    let paging = PageParams {
        page: query.page,
        page_size: query.page_size,
    };
    let mut conn = state.db.acquire().await?;
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM products
           WHERE deleted_at IS NULL AND ($1::text[] IS NULL OR status = ANY($1))"#,
        statuses.as_deref()
    )
    .fetch_one(&mut *conn)
    .await?;
    let ids = sqlx::query_scalar!(
        "SELECT id FROM products WHERE deleted_at IS NULL AND ($1::text[] IS NULL OR status = ANY($1))
         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
        statuses.as_deref(),
        i64::from(paging.page_size()),
        paging.offset()
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(Json(OffsetPage {
        data: load(&mut conn, &ids).await?,
        page: paging.page(),
        page_size: paging.page_size(),
        total,
    }))
}

/// The routes of this module and of [`list`].
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list::list_products, create_product))
        .routes(routes!(get_product, patch_product, delete_product))
        .routes(routes!(get_product_by_slug))
        .routes(routes!(related_products))
        .routes(routes!(price_history))
        .routes(routes!(admin_list))
        .routes(routes!(list::facets))
        .routes(routes!(list::suggest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leading_id_of_a_product_document_is_read_without_parsing_it() {
        let id = Uuid::now_v7();
        let body =
            serde_json::to_vec(&serde_json::json!({"id": id, "title": "Oak"})).expect("serialises");
        assert_eq!(leading_id(&body), Some(id));
        // Anything else is left to the full parse.
        for other in [
            format!(r#"{{"title":"Oak","id":"{id}"}}"#),
            format!(r#"{{"id":"{id}x"}}"#),
            r#"{"id":"not-a-uuid-but-thirty-six-characters"}"#.to_owned(),
            r#"{"id":"short"}"#.to_owned(),
        ] {
            assert_eq!(leading_id(other.as_bytes()), None, "{other}");
        }
    }

    #[test]
    fn generated_skus_are_valid() {
        let sku = generated_sku();
        assert!(sku.starts_with("LW-") && sku.len() == 13, "{sku}");
    }

    #[test]
    fn a_patch_reports_only_what_changed() {
        let input = ProductInput {
            title: "Oak Shaker".into(),
            slug: None,
            sku: None,
            description: String::new(),
            category: Family::Kitchen,
            subcategory_id: None,
            range_id: None,
            style_id: None,
            finish_id: None,
            colour_ids: vec![],
            size_ids: vec![],
            images: vec![],
            price: Some(Money::gbp(100)),
            status: ProductStatus::Draft,
            featured: false,
            seo_title: None,
            seo_description: None,
        };
        let mut after = input.clone();
        after.price = None;
        after.featured = true;
        let mut changed = changed_fields(&input, &after).expect("compares");
        changed.sort();
        assert_eq!(changed, ["featured", "price"]);
    }
}

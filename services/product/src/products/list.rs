//! Browsing the published catalogue: filters, sorts, keyset cursor pages, full-text search, the
//! facet counts of the filter sidebar and type-ahead suggestions.
//!
//! `GET /v1/products?category=KITCHEN&filter[colour]=white,grey&filter[style]=shaker
//! &filter[finish]=matt&filter[range]=...&filter[featured]=true&filter[price]=10000..500000
//! &q=oak&sort=-createdAt&limit=20&cursor=...`
//!
//! - Values within one filter are OR, filters are AND. Colour, style, finish and range values
//!   are slugs (case-insensitive; `WOOD_GRAIN` means `wood-grain`). A price filter keeps priced
//!   products only.
//! - Sort keys `createdAt`, `price`, `title`, `popularity`, ascending or `-` descending; with
//!   `q` and no `sort`, by relevance. Price on consultation sorts as the dearest. Ties are
//!   broken by id, so the order is total.
//! - Keyset pagination on (sort key, id): the cursor carries the sort and the last row's
//!   position, each page costs one index range scan whatever its depth, and rows inserted
//!   meanwhile never shift later pages (no duplicates, no gaps). Popularity changes as views
//!   are flushed, so a popularity-sorted walk is a snapshot only up to that.
//! - An unknown parameter or filter, a bad value, `limit` outside 1–100 or a malformed cursor
//!   is a 422 naming the parameter.
//! - Relevance: `websearch_to_tsquery('english', q)` against the weighted `search` document
//!   (title A; range, style, colours B; finish C; description D), ranked with `ts_rank_cd`.
//!   Suggestions match word prefixes of the same document (most viewed first); when that
//!   finds too few, trigram word-similarity on titles (GIN `gin_trgm_ops`) tops them up, so a
//!   typo ("handlless") still finds "Handleless". Trigrams are used only there: type-ahead is
//!   where typos happen, and ranking full searches by similarity would cost a scan.

use std::borrow::Cow;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use service_kit::CursorPage;
use service_kit::extract::decode_cursor;
use sqlx::{Postgres, QueryBuilder};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{Product, load};
use crate::AppState;
use crate::cache::Ttl;
use crate::common::Family;
use crate::error::{ProductError, ProductResult};

/// The most values one filter may list.
const MAX_FILTER_VALUES: usize = 20;

/// What a sort orders by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SortKey {
    /// Creation time.
    CreatedAt,
    /// Price (on consultation = dearest).
    Price,
    /// Title.
    Title,
    /// Views.
    Popularity,
    /// Search relevance (only with `q`).
    Relevance,
}

impl SortKey {
    fn expression(self) -> &'static str {
        match self {
            Self::CreatedAt => "p.created_at",
            Self::Price => "p.price_sort",
            Self::Title => "p.title",
            Self::Popularity => "p.popularity",
            // Integer buckets of the rank keep the cursor exact (no float round trips).
            Self::Relevance => "(ts_rank_cd(p.search, websearch_to_tsquery('english', ",
        }
    }

    fn cast(self) -> &'static str {
        match self {
            Self::CreatedAt => "::timestamptz",
            Self::Price | Self::Popularity | Self::Relevance => "::bigint",
            Self::Title => "::text",
        }
    }
}

/// A sort: key and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sort {
    /// What it orders by.
    pub key: SortKey,
    /// Descending.
    pub descending: bool,
}

impl Sort {
    fn parse(raw: &str) -> Option<Self> {
        let (descending, name) = match raw.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, raw.strip_prefix('+').unwrap_or(raw)),
        };
        let key = match name {
            "createdAt" => SortKey::CreatedAt,
            "price" => SortKey::Price,
            "title" => SortKey::Title,
            "popularity" => SortKey::Popularity,
            _ => return None,
        };
        Some(Self { key, descending })
    }

    fn label(self) -> String {
        let name = match self.key {
            SortKey::CreatedAt => "createdAt",
            SortKey::Price => "price",
            SortKey::Title => "title",
            SortKey::Popularity => "popularity",
            SortKey::Relevance => "relevance",
        };
        if self.descending {
            format!("-{name}")
        } else {
            name.to_owned()
        }
    }
}

/// The position a cursor carries: the sort it belongs to, the last row's key and id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Position {
    s: String,
    k: String,
    id: Uuid,
}

/// A parsed, normalised list query (its JSON is the cache key).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ListQuery {
    category: Option<Family>,
    colours: Option<Vec<String>>,
    styles: Option<Vec<String>>,
    finishes: Option<Vec<String>>,
    ranges: Option<Vec<String>>,
    featured: Option<bool>,
    price: Option<(Option<i64>, Option<i64>)>,
    q: Option<String>,
    sort: Option<Sort>,
    limit: u32,
    cursor: Option<String>,
}

/// The documented parameters of `GET /v1/products` (parsed by hand: unknown ones are a 422).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListParams {
    /// KITCHEN or BEDROOM.
    category: Option<Family>,
    /// Colour slugs, comma-separated (OR).
    #[serde(rename = "filter[colour]")]
    #[param(
        rename = "filter[colour]",
        pattern = r"^(?:[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*,)*[^,]*[^,\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^,]*(?:,(?:[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*,)*[^,]*[^,\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^,]*){0,19}(?:,[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)*$"
    )]
    colour: Option<String>,
    /// Style slugs, comma-separated (OR).
    #[serde(rename = "filter[style]")]
    #[param(
        rename = "filter[style]",
        pattern = r"^(?:[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*,)*[^,]*[^,\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^,]*(?:,(?:[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*,)*[^,]*[^,\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^,]*){0,19}(?:,[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)*$"
    )]
    style: Option<String>,
    /// Finish slugs, comma-separated (OR).
    #[serde(rename = "filter[finish]")]
    #[param(
        rename = "filter[finish]",
        pattern = r"^(?:[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*,)*[^,]*[^,\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^,]*(?:,(?:[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*,)*[^,]*[^,\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^,]*){0,19}(?:,[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)*$"
    )]
    finish: Option<String>,
    /// Range slugs, comma-separated (OR).
    #[serde(rename = "filter[range]")]
    #[param(
        rename = "filter[range]",
        pattern = r"^(?:[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*,)*[^,]*[^,\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^,]*(?:,(?:[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*,)*[^,]*[^,\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^,]*){0,19}(?:,[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)*$"
    )]
    range: Option<String>,
    /// `true` or `false`.
    #[serde(rename = "filter[featured]")]
    #[param(rename = "filter[featured]")]
    featured: Option<bool>,
    /// Pence, `min..max` (either side may be empty, not both); `min` must not exceed `max`.
    #[serde(rename = "filter[price]")]
    #[param(
        rename = "filter[price]",
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:\+?[0-9]{1,18}[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*\.\.[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:\+?[0-9]{1,18})?|\.\.[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*\+?[0-9]{1,18})[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    price: Option<String>,
    /// Full-text search, 1–200 characters once trimmed.
    #[param(
        max_length = 200,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    q: Option<String>,
    /// `createdAt`, `price`, `title` or `popularity`, `-` for descending (default `-createdAt`,
    /// or relevance with `q`).
    #[param(pattern = "^[-+]?(createdAt|price|title|popularity)$")]
    sort: Option<String>,
    /// 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

fn slugs(param: &str, raw: &str) -> ProductResult<Vec<String>> {
    let mut values: Vec<String> = raw
        .split(',')
        .map(|v| v.trim().to_ascii_lowercase().replace('_', "-"))
        .filter(|v| !v.is_empty())
        .collect();
    if values.is_empty() {
        return Err(ProductError::field(param, "must list at least one value"));
    }
    if values.len() > MAX_FILTER_VALUES {
        return Err(ProductError::field(param, "lists too many values"));
    }
    values.sort();
    values.dedup();
    Ok(values)
}

fn price_range(raw: &str) -> ProductResult<(Option<i64>, Option<i64>)> {
    let bad = || ProductError::field("filter[price]", "must be min..max in pence");
    let (min, max) = raw.split_once("..").ok_or_else(bad)?;
    let parse = |s: &str| -> ProductResult<Option<i64>> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        s.parse::<i64>()
            .ok()
            .filter(|v| *v >= 0)
            .map(Some)
            .ok_or_else(bad)
    };
    let (min, max) = (parse(min)?, parse(max)?);
    if min.is_none() && max.is_none() {
        return Err(bad());
    }
    if let (Some(a), Some(b)) = (min, max)
        && a > b
    {
        return Err(ProductError::field(
            "filter[price]",
            "min must not exceed max",
        ));
    }
    Ok((min, max))
}

impl ListQuery {
    /// Parses the raw query string; anything unknown or malformed is a 422 naming it.
    pub fn parse(raw: Option<&str>) -> ProductResult<Self> {
        // Borrowed from the raw query unless percent-decoding changed them; sorted by name, so
        // a repeat is found next to its first occurrence and the first bad one is named as
        // before, whatever the order of the query.
        let mut seen: Vec<(Cow<'_, str>, Cow<'_, str>)> =
            form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).collect();
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(pair) = seen.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(ProductError::field(&pair[0].0, "is given more than once"));
        }
        let mut query = Self {
            limit: 20,
            ..Self::default()
        };
        for (key, value) in &seen {
            let (key, value) = (key.as_ref(), value.as_ref());
            match key {
                "category" => {
                    query.category =
                        Some(Family::parse(value).ok_or_else(|| {
                            ProductError::field(key, "must be KITCHEN or BEDROOM")
                        })?);
                }
                "filter[colour]" => query.colours = Some(slugs(key, value)?),
                "filter[style]" => query.styles = Some(slugs(key, value)?),
                "filter[finish]" => query.finishes = Some(slugs(key, value)?),
                "filter[range]" => query.ranges = Some(slugs(key, value)?),
                "filter[featured]" => {
                    query.featured = Some(match value {
                        "true" => true,
                        "false" => false,
                        _ => return Err(ProductError::field(key, "must be true or false")),
                    });
                }
                "filter[price]" => query.price = Some(price_range(value)?),
                "q" => {
                    let q = value.trim();
                    if q.is_empty() || q.chars().count() > 200 {
                        return Err(ProductError::field(key, "must be 1–200 characters"));
                    }
                    query.q = Some(q.to_owned());
                }
                "sort" => {
                    query.sort = Some(Sort::parse(value).ok_or_else(|| {
                        ProductError::field(
                            key,
                            "must be createdAt, price, title or popularity, optionally prefixed with -",
                        )
                    })?);
                }
                "limit" => {
                    query.limit = value
                        .parse::<u32>()
                        .ok()
                        .filter(|l| (1..=100).contains(l))
                        .ok_or_else(|| ProductError::field(key, "must be between 1 and 100"))?;
                }
                "cursor" => query.cursor = Some(value.to_owned()),
                other if other.starts_with("filter[") => {
                    return Err(ProductError::field(
                        other,
                        "is not a filter; use colour, style, finish, range, featured or price",
                    ));
                }
                other => {
                    return Err(ProductError::field(
                        other,
                        "is not a parameter of this list",
                    ));
                }
            }
        }
        // The cursor must decode and belong to this sort.
        query.position()?;
        Ok(query)
    }

    /// The sort in effect.
    pub fn effective_sort(&self) -> Sort {
        self.sort.unwrap_or(match self.q {
            Some(_) => Sort {
                key: SortKey::Relevance,
                descending: true,
            },
            None => Sort {
                key: SortKey::CreatedAt,
                descending: true,
            },
        })
    }

    fn position(&self) -> ProductResult<Option<Position>> {
        let Some(cursor) = &self.cursor else {
            return Ok(None);
        };
        let position: Position = decode_cursor(cursor)
            .ok_or_else(|| ProductError::field("cursor", "is not a valid cursor"))?;
        if position.s != self.effective_sort().label() {
            return Err(ProductError::field(
                "cursor",
                "belongs to another sort; start again without it",
            ));
        }
        Ok(Some(position))
    }

    /// The cache key material: the normalised query.
    pub fn normalised(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Ids of the non-deleted entries of `table` with these slugs.
async fn resolve(
    conn: &mut sqlx::PgConnection,
    table: &str,
    slugs: &[String],
) -> ProductResult<Vec<Uuid>> {
    let sql = format!("SELECT id FROM {table} WHERE slug = ANY($1) AND deleted_at IS NULL");
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(slugs)
        .fetch_all(conn)
        .await?)
}

/// One page of published products.
pub async fn page(state: &AppState, query: &ListQuery) -> ProductResult<CursorPage<Product>> {
    let mut conn = state.db.acquire().await?;
    let sort = query.effective_sort();
    let position = query.position()?;
    let empty = || CursorPage {
        data: Vec::new(),
        next_cursor: None,
        has_next_page: false,
    };

    let mut filters: Vec<(&str, Vec<Uuid>)> = Vec::new();
    for (table, values) in [
        ("colours", &query.colours),
        ("styles", &query.styles),
        ("finishes", &query.finishes),
        ("ranges", &query.ranges),
    ] {
        if let Some(values) = values {
            let ids = resolve(&mut conn, table, values).await?;
            if ids.is_empty() {
                return Ok(empty());
            }
            filters.push((table, ids));
        }
    }

    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("SELECT p.id, ");
    let push_key = |qb: &mut QueryBuilder<Postgres>| {
        qb.push(sort.key.expression());
        if sort.key == SortKey::Relevance {
            qb.push_bind(query.q.clone().unwrap_or_default());
            qb.push(")) * 1000000)::bigint");
        }
    };
    push_key(&mut qb);
    qb.push("::text AS k FROM products p WHERE p.status = 'PUBLISHED' AND p.deleted_at IS NULL");
    if let Some(category) = query.category {
        qb.push(" AND p.category = ").push_bind(category.as_str());
    }
    for (table, ids) in filters {
        match table {
            "colours" => {
                qb.push(
                    " AND EXISTS (SELECT 1 FROM product_colours pc WHERE pc.product_id = p.id AND pc.colour_id = ANY(",
                )
                .push_bind(ids)
                .push("))");
            }
            "styles" => {
                qb.push(" AND p.style_id = ANY(").push_bind(ids).push(")");
            }
            "finishes" => {
                qb.push(" AND p.finish_id = ANY(").push_bind(ids).push(")");
            }
            _ => {
                qb.push(" AND p.range_id = ANY(").push_bind(ids).push(")");
            }
        }
    }
    if let Some(featured) = query.featured {
        qb.push(" AND p.featured = ").push_bind(featured);
    }
    if let Some((min, max)) = query.price {
        qb.push(" AND p.price_pence IS NOT NULL");
        if let Some(min) = min {
            qb.push(" AND p.price_pence >= ").push_bind(min);
        }
        if let Some(max) = max {
            qb.push(" AND p.price_pence <= ").push_bind(max);
        }
    }
    if let Some(q) = &query.q {
        qb.push(" AND p.search @@ websearch_to_tsquery('english', ")
            .push_bind(q.clone())
            .push(")");
    }
    let direction = if sort.descending { "DESC" } else { "ASC" };
    if let Some(position) = &position {
        qb.push(" AND (");
        push_key(&mut qb);
        qb.push(", p.id) ")
            .push(if sort.descending { "<" } else { ">" })
            .push(" (")
            .push_bind(position.k.clone())
            .push(sort.key.cast())
            .push(", ")
            .push_bind(position.id)
            .push(")");
    }
    qb.push(" ORDER BY ");
    push_key(&mut qb);
    qb.push(format_args!(" {direction}, p.id {direction} LIMIT "))
        .push_bind(i64::from(query.limit) + 1);

    let rows: Vec<(Uuid, String)> = qb.build_query_as().fetch_all(&mut *conn).await?;
    let label = sort.label();
    let page = CursorPage::from_rows(rows, query.limit, |(id, k)| Position {
        s: label.clone(),
        k: k.clone(),
        id: *id,
    });
    let ids: Vec<Uuid> = page.data.iter().map(|(id, _)| *id).collect();
    Ok(CursorPage {
        data: load(&mut conn, &ids).await?,
        next_cursor: page.next_cursor,
        has_next_page: page.has_next_page,
    })
}

/// Published products, filtered, sorted and cursor-paged (cached; `ETag`, 304 on a match).
#[utoipa::path(
    get,
    path = "/v1/products",
    tag = "products",
    params(ListParams),
    responses(
        (status = 200, description = "One page", body = CursorPage<Product>),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 422, description = "Unknown parameter, filter or sort; bad value, limit or cursor", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_products(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ProductResult<Response> {
    let query = ListQuery::parse(raw.as_deref())?;
    state
        .cache
        .serve(&headers, "list", &query.normalised(), Ttl::List, || async {
            let page = page(&state, &query).await?;
            Ok::<_, ProductError>(serde_json::to_vec(&page).map_err(anyhow::Error::from)?)
        })
        .await
}

// ---------------------------------------------------------------------------------------------
// Facets

/// One facet value with the number of published products that have it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FacetValue {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Slug (the filter value).
    pub slug: String,
    /// `#RRGGBB` (colours only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hex_code: Option<String>,
    /// Published products with it.
    pub count: i64,
}

/// The price bounds of the priced products.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriceBounds {
    /// Lowest price in pence (null when nothing is priced).
    pub min: Option<i64>,
    /// Highest price in pence.
    pub max: Option<i64>,
    /// Currency.
    pub currency: String,
    /// Products priced on consultation.
    pub on_consultation: i64,
}

/// The filter sidebar.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Facets {
    /// Published products in scope.
    pub total: i64,
    /// Colours.
    pub colours: Vec<FacetValue>,
    /// Styles.
    pub styles: Vec<FacetValue>,
    /// Finishes.
    pub finishes: Vec<FacetValue>,
    /// Ranges.
    pub ranges: Vec<FacetValue>,
    /// Price bounds.
    pub price: PriceBounds,
}

/// The scope of the facets.
#[derive(Debug, Deserialize, validator::Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FacetQuery {
    /// KITCHEN or BEDROOM (default both).
    pub category: Option<Family>,
}

async fn facet_values(
    conn: &mut sqlx::PgConnection,
    category: Option<&str>,
) -> ProductResult<Facets> {
    let colours = sqlx::query!(
        r#"SELECT c.id, c.name, c.slug, c.hex_code, count(*) AS "count!"
           FROM products p
           JOIN product_colours pc ON pc.product_id = p.id
           JOIN colours c ON c.id = pc.colour_id
           WHERE p.status = 'PUBLISHED' AND p.deleted_at IS NULL
             AND ($1::text IS NULL OR p.category = $1)
           GROUP BY c.id ORDER BY c.sort_order, c.name"#,
        category
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| FacetValue {
        id: r.id,
        name: r.name,
        slug: r.slug,
        hex_code: Some(r.hex_code),
        count: r.count,
    })
    .collect();
    let styles = sqlx::query!(
        r#"SELECT s.id, s.name, s.slug, count(*) AS "count!"
           FROM products p JOIN styles s ON s.id = p.style_id
           WHERE p.status = 'PUBLISHED' AND p.deleted_at IS NULL
             AND ($1::text IS NULL OR p.category = $1)
           GROUP BY s.id ORDER BY s.sort_order, s.name"#,
        category
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| FacetValue {
        id: r.id,
        name: r.name,
        slug: r.slug,
        hex_code: None,
        count: r.count,
    })
    .collect();
    let finishes = sqlx::query!(
        r#"SELECT f.id, f.name, f.slug, count(*) AS "count!"
           FROM products p JOIN finishes f ON f.id = p.finish_id
           WHERE p.status = 'PUBLISHED' AND p.deleted_at IS NULL
             AND ($1::text IS NULL OR p.category = $1)
           GROUP BY f.id ORDER BY f.sort_order, f.name"#,
        category
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| FacetValue {
        id: r.id,
        name: r.name,
        slug: r.slug,
        hex_code: None,
        count: r.count,
    })
    .collect();
    let ranges = sqlx::query!(
        r#"SELECT r.id, r.name, r.slug, count(*) AS "count!"
           FROM products p JOIN ranges r ON r.id = p.range_id
           WHERE p.status = 'PUBLISHED' AND p.deleted_at IS NULL
             AND ($1::text IS NULL OR p.category = $1)
           GROUP BY r.id ORDER BY r.sort_order, r.name"#,
        category
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| FacetValue {
        id: r.id,
        name: r.name,
        slug: r.slug,
        hex_code: None,
        count: r.count,
    })
    .collect();
    let bounds = sqlx::query!(
        r#"SELECT min(price_pence) AS min, max(price_pence) AS max,
                  count(*) FILTER (WHERE price_pence IS NULL) AS "on_consultation!",
                  count(*) AS "total!"
           FROM products p
           WHERE p.status = 'PUBLISHED' AND p.deleted_at IS NULL
             AND ($1::text IS NULL OR p.category = $1)"#,
        category
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Facets {
        total: bounds.total,
        colours,
        styles,
        finishes,
        ranges,
        price: PriceBounds {
            min: bounds.min,
            max: bounds.max,
            currency: "GBP".to_owned(),
            on_consultation: bounds.on_consultation,
        },
    })
}

/// The available filter values with their product counts, for the filter sidebar (cached).
#[utoipa::path(
    get,
    path = "/v1/products/filters",
    tag = "products",
    params(FacetQuery),
    responses(
        (status = 200, description = "Facets", body = Facets),
        (status = 422, description = "Unknown parameter or category", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn facets(
    State(state): State<AppState>,
    headers: HeaderMap,
    service_kit::ValidatedQuery(query): service_kit::ValidatedQuery<FacetQuery>,
) -> ProductResult<Response> {
    let category = query.category.map(Family::as_str);
    state
        .cache
        .serve(
            &headers,
            "facets",
            category.unwrap_or("*"),
            Ttl::List,
            || async {
                let mut conn = state.db.acquire().await?;
                let facets = facet_values(&mut conn, category).await?;
                Ok::<_, ProductError>(serde_json::to_vec(&facets).map_err(anyhow::Error::from)?)
            },
        )
        .await
}

// ---------------------------------------------------------------------------------------------
// Suggestions

/// A type-ahead query.
#[derive(Debug, Deserialize, validator::Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SuggestQuery {
    /// What has been typed so far.
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    #[param(min_length = 1, max_length = 100)]
    pub q: String,
    /// 1–20 (default 8).
    #[validate(range(min = 1, max = 20, message = "must be between 1 and 20"))]
    #[param(minimum = 1, maximum = 20)]
    pub limit: Option<u32>,
}

/// A suggestion.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    /// Product id.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// Slug.
    pub slug: String,
}

/// `sha oa` → `sha:* & oa:*` (word characters only, so the text is always a valid tsquery).
fn prefix_query(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(6)
        .map(|w| format!("{}:*", w.to_lowercase()))
        .collect();
    (!words.is_empty()).then(|| words.join(" & "))
}

/// Type-ahead: published products whose words start with what was typed (most viewed first),
/// topped up with titles close to it (typos) when there are too few; cached like lists.
#[utoipa::path(
    get,
    path = "/v1/products/suggest",
    tag = "products",
    params(SuggestQuery),
    responses(
        (status = 200, description = "Suggestions", body = Vec<Suggestion>),
        (status = 422, description = "Missing or bad q or limit", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn suggest(
    State(state): State<AppState>,
    headers: HeaderMap,
    service_kit::ValidatedQuery(query): service_kit::ValidatedQuery<SuggestQuery>,
) -> ProductResult<Response> {
    let typed = query.q.trim().to_lowercase();
    let limit = i64::from(query.limit.unwrap_or(8));
    let normalised = format!("{limit}:{typed}");
    state
        .cache
        .serve(&headers, "suggest", &normalised, Ttl::List, || async {
            let suggestions = suggestions(&state.db, &typed, limit).await?;
            Ok::<_, ProductError>(serde_json::to_vec(&suggestions).map_err(anyhow::Error::from)?)
        })
        .await
}

async fn suggestions(db: &sqlx::PgPool, typed: &str, limit: i64) -> ProductResult<Vec<Suggestion>> {
    let Some(prefixes) = prefix_query(typed) else {
        return Ok(Vec::new());
    };
    let mut found = sqlx::query_as!(
        Suggestion,
        r#"SELECT id, title, slug FROM products
           WHERE status = 'PUBLISHED' AND deleted_at IS NULL
             AND search @@ to_tsquery('english', $1)
           ORDER BY popularity DESC, id
           LIMIT $2"#,
        prefixes,
        limit
    )
    .fetch_all(db)
    .await?;
    if (found.len() as i64) < limit {
        let known: Vec<Uuid> = found.iter().map(|s| s.id).collect();
        let close = sqlx::query_as!(
            Suggestion,
            // At most 200 candidates are ranked: a common misspelling cannot turn into a
            // scan of the whole catalogue, and a rare one is found through the trigram index.
            r#"SELECT id AS "id!", title AS "title!", slug AS "slug!" FROM (
                 SELECT id, title, slug, popularity FROM products
                 WHERE status = 'PUBLISHED' AND deleted_at IS NULL
                   AND $1 <% title AND id <> ALL($2)
                 LIMIT 200) c
               ORDER BY word_similarity($1, title) DESC, popularity DESC, id
               LIMIT $3"#,
            typed,
            &known,
            limit - found.len() as i64
        )
        .fetch_all(db)
        .await?;
        found.extend(close);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use service_kit::extract::encode_cursor;

    fn field_of(error: ProductError) -> String {
        match error {
            ProductError::Validation(errors) => errors[0].field.clone(),
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn parses_filters_and_normalises_them() {
        let q = ListQuery::parse(Some(
            "category=kitchen&filter[colour]=Grey,white,grey&filter[finish]=WOOD_GRAIN&filter[price]=100..&sort=-price&limit=5",
        ))
        .expect("parses");
        assert_eq!(q.category, Some(Family::Kitchen));
        assert_eq!(q.colours, Some(vec!["grey".to_owned(), "white".to_owned()]));
        assert_eq!(q.finishes, Some(vec!["wood-grain".to_owned()]));
        assert_eq!(q.price, Some((Some(100), None)));
        assert_eq!(q.effective_sort().label(), "-price");
        assert_eq!(q.limit, 5);
    }

    #[test]
    fn unknown_or_bad_parameters_name_themselves() {
        for (query, field) in [
            ("filter[material]=oak", "filter[material]"),
            ("colour=white", "colour"),
            ("sort=-weight", "sort"),
            ("limit=101", "limit"),
            ("limit=0", "limit"),
            ("cursor=nonsense", "cursor"),
            ("filter[price]=5..1", "filter[price]"),
            ("filter[price]=abc", "filter[price]"),
            ("filter[featured]=yes", "filter[featured]"),
            ("category=GARDEN", "category"),
            ("q=a&q=b", "q"),
        ] {
            let error = ListQuery::parse(Some(query)).expect_err(query);
            assert_eq!(field_of(error), field, "{query}");
        }
    }

    #[test]
    fn a_cursor_only_works_with_its_own_sort() {
        let cursor = encode_cursor(&Position {
            s: "-createdAt".into(),
            k: "2026-01-01 00:00:00+00".into(),
            id: Uuid::nil(),
        });
        assert!(ListQuery::parse(Some(&format!("cursor={cursor}"))).is_ok());
        let error =
            ListQuery::parse(Some(&format!("cursor={cursor}&sort=price"))).expect_err("other sort");
        assert_eq!(field_of(error), "cursor");
    }

    #[test]
    fn relevance_is_the_default_sort_of_a_search() {
        let q = ListQuery::parse(Some("q=oak")).expect("parses");
        assert_eq!(q.effective_sort().key, SortKey::Relevance);
        assert_eq!(prefix_query("sha  Oa!"), Some("sha:* & oa:*".to_owned()));
        assert_eq!(prefix_query("!!"), None);
    }
}

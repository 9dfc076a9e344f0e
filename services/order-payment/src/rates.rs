//! Tax rules (VAT rate per destination country) and shipping rates (delivery methods by code),
//! with admin CRUD. The migration seeds UK VAT at 20% and the STANDARD (£9.95, free from £500)
//! and EXPRESS (£24.95) methods. Shoppers list the active shipping methods for a country.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::audit::Entry;
use service_kit::{AdminCaller, Caller, ValidatedJson, ValidatedQuery};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::{Validate, ValidationError};

use crate::AppState;
use crate::error::{OrderError, OrderResult};
use crate::pricing::{DEFAULT_VAT_BP, ShippingTerms};

fn country_code(code: &str) -> Result<(), ValidationError> {
    if code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(ValidationError::new("country")
            .with_message("must be an ISO 3166-1 alpha-2 code in upper case, e.g. GB".into()))
    }
}

/// What [`country_code`] accepts.
const COUNTRY_CODE_PATTERN: &str = "^[A-Z]{2}$";

/// A rate's countries: 1–50 codes, each what [`check_countries`] accepts.
fn countries_schema() -> utoipa::openapi::schema::Array {
    countries_array(Type::Array.into(), "Countries (default `[\"GB\"]`).")
}

/// [`countries_schema`] in a patch, where `null` (like leaving it out) keeps the countries.
fn countries_patch_schema() -> utoipa::openapi::schema::Array {
    countries_array(
        SchemaType::Array(vec![Type::Array, Type::Null]),
        "Countries (left out or `null`: unchanged).",
    )
}

fn countries_array(schema_type: SchemaType, description: &str) -> utoipa::openapi::schema::Array {
    ArrayBuilder::new()
        .schema_type(schema_type)
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(COUNTRY_CODE_PATTERN))
                .description(Some(
                    "ISO 3166-1 alpha-2 country code in upper case, e.g. `GB`.",
                )),
        )
        .min_items(Some(1))
        .max_items(Some(50))
        .description(Some(description))
        .build()
}

fn method_code(code: &str) -> Result<(), ValidationError> {
    let mut chars = code.chars();
    let ok = (2..=32).contains(&code.len())
        && chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new("code")
            .with_message("must be 2–32 upper-case letters, digits or '_', e.g. STANDARD".into()))
    }
}

// ---------------------------------------------------------------------------------------------
// Tax rules

/// A VAT rate for a destination country.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct TaxRule {
    /// Id.
    pub id: Uuid,
    /// ISO country code.
    pub country: String,
    /// Name, e.g. "UK VAT standard rate".
    pub name: String,
    /// Rate in basis points (2000 = 20%).
    pub rate_bp: i32,
    /// Whether it applies.
    pub active: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

const TAX_COLUMNS: &str = "id, country, name, rate_bp, active, created_at, updated_at";

/// The VAT rate for `country`: its active rule, else the UK standard rate.
pub async fn vat_rate(conn: &mut PgConnection, country: &str) -> OrderResult<i32> {
    let rate: Option<i32> =
        sqlx::query_scalar("SELECT rate_bp FROM tax_rules WHERE country = $1 AND active")
            .bind(country)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(rate.unwrap_or(DEFAULT_VAT_BP))
}

/// A new tax rule.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewTaxRule {
    /// ISO country code, e.g. `GB` (one rule per country).
    #[validate(custom(function = "country_code"))]
    #[schema(pattern = "^[A-Z]{2}$")]
    pub country: String,
    /// Name.
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Rate in basis points, 0–10000.
    #[validate(range(min = 0, max = 10000, message = "must be between 0 and 10000"))]
    #[schema(minimum = 0, maximum = 10000)]
    pub rate_bp: i32,
    /// Default true.
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// Changes to a tax rule (merge patch).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaxRulePatch {
    /// Name.
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// Rate in basis points, 0–10000.
    #[validate(range(min = 0, max = 10000, message = "must be between 0 and 10000"))]
    #[schema(minimum = 0, maximum = 10000)]
    pub rate_bp: Option<i32>,
    /// Whether it applies.
    pub active: Option<bool>,
}

async fn load_tax_rule(conn: &mut PgConnection, id: Uuid) -> OrderResult<TaxRule> {
    sqlx::query_as::<_, TaxRule>(sqlx::AssertSqlSafe(format!(
        "SELECT {TAX_COLUMNS} FROM tax_rules WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(OrderError::NotFound("tax rule"))
}

/// The audit entry of a rate change: a rate's `name` ("UK VAT", "Next day") is no one's name.
fn audit(admin: &Caller, entity: &str, id: Uuid, action: &str) -> Entry {
    Entry::new(admin, entity, id, action).reveal(&["name"])
}

/// Every tax rule, by country (ADMIN).
#[utoipa::path(
    get,
    path = "/v1/tax-rules",
    tag = "tax",
    responses(
        (status = 200, description = "The rules", body = Vec<TaxRule>),
        (status = 403, description = "Not an admin", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_tax_rules(
    State(state): State<AppState>,
    _admin: AdminCaller,
) -> OrderResult<Json<Vec<TaxRule>>> {
    Ok(Json(
        sqlx::query_as::<_, TaxRule>(sqlx::AssertSqlSafe(format!(
            "SELECT {TAX_COLUMNS} FROM tax_rules ORDER BY country"
        )))
        .fetch_all(&state.db)
        .await?,
    ))
}

/// Creates a tax rule (ADMIN).
#[utoipa::path(
    post,
    path = "/v1/tax-rules",
    tag = "tax",
    request_body = NewTaxRule,
    responses(
        (status = 201, description = "Created", body = TaxRule),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The country has a rule", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid rule", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn create_tax_rule(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ValidatedJson(new): ValidatedJson<NewTaxRule>,
) -> OrderResult<(StatusCode, Json<TaxRule>)> {
    let mut tx = state.db.begin().await?;
    let rule = sqlx::query_as::<_, TaxRule>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO tax_rules (id, country, name, rate_bp, active) VALUES ($1, $2, $3, $4, $5)
         RETURNING {TAX_COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(&new.country)
    .bind(new.name.trim())
    .bind(new.rate_bp)
    .bind(new.active)
    .fetch_one(&mut *tx)
    .await?;
    audit(&admin, "tax_rule", rule.id, "create")
        .after(&rule)
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(rule)))
}

/// Changes a tax rule (ADMIN; `application/merge-patch+json`). Orders keep the rate they were
/// placed with.
#[utoipa::path(
    patch,
    path = "/v1/tax-rules/{id}",
    tag = "tax",
    params(("id" = Uuid, Path, description = "Tax rule id")),
    request_body(content = TaxRulePatch, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The rule", body = TaxRule),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid change", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn update_tax_rule(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
    ValidatedJson(patch): ValidatedJson<TaxRulePatch>,
) -> OrderResult<Json<TaxRule>> {
    let mut tx = state.db.begin().await?;
    let before = load_tax_rule(&mut tx, id).await?;
    let rule = sqlx::query_as::<_, TaxRule>(sqlx::AssertSqlSafe(format!(
        "UPDATE tax_rules SET name = COALESCE($2, name), rate_bp = COALESCE($3, rate_bp),
             active = COALESCE($4, active)
         WHERE id = $1 RETURNING {TAX_COLUMNS}"
    )))
    .bind(id)
    .bind(patch.name.as_deref().map(str::trim))
    .bind(patch.rate_bp)
    .bind(patch.active)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(OrderError::NotFound("tax rule"))?;
    audit(&admin, "tax_rule", id, "update")
        .before(&before)
        .after(&rule)
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(Json(rule))
}

/// Deletes a tax rule (ADMIN); its country falls back to the UK standard rate.
#[utoipa::path(
    delete,
    path = "/v1/tax-rules/{id}",
    tag = "tax",
    params(("id" = Uuid, Path, description = "Tax rule id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_tax_rule(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
) -> OrderResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let before = load_tax_rule(&mut tx, id).await?;
    sqlx::query("DELETE FROM tax_rules WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit(&admin, "tax_rule", id, "delete")
        .before(&before)
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Shipping rates

/// A delivery method and its price.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ShippingRate {
    /// Id.
    pub id: Uuid,
    /// Method code, e.g. `STANDARD`.
    pub code: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Price in pence.
    #[sqlx(rename = "price_pence")]
    pub price: i64,
    /// Goods (after discount) of at least this ship free, in pence.
    #[sqlx(rename = "free_over_pence")]
    pub free_over: Option<i64>,
    /// Countries it delivers to.
    pub countries: Vec<String>,
    /// Fewest working days to deliver.
    pub min_days: i32,
    /// Most working days to deliver.
    pub max_days: i32,
    /// Whether shoppers can choose it.
    pub active: bool,
    /// Display order.
    pub sort_order: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl ShippingRate {
    /// Its price terms.
    pub fn terms(&self) -> ShippingTerms {
        ShippingTerms {
            price: self.price,
            free_over: self.free_over,
        }
    }
}

const RATE_COLUMNS: &str = "id, code, name, description, price_pence, free_over_pence, countries, \
    min_days, max_days, active, sort_order, created_at, updated_at";

/// The active method `code` delivering to `country`, if any.
pub async fn shipping_rate(
    conn: &mut PgConnection,
    code: &str,
    country: &str,
) -> OrderResult<Option<ShippingRate>> {
    Ok(sqlx::query_as::<_, ShippingRate>(sqlx::AssertSqlSafe(format!(
        "SELECT {RATE_COLUMNS} FROM shipping_rates WHERE code = $1 AND active AND $2 = ANY(countries)"
    )))
    .bind(code)
    .bind(country)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Which methods to list.
#[derive(Debug, Default, Deserialize, Validate, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct RateFilter {
    /// Only methods delivering to this country (default GB).
    #[validate(custom(function = "country_code"))]
    #[param(pattern = "^[A-Z]{2}$")]
    pub country: Option<String>,
}

/// The delivery methods shoppers can choose for a country, in display order.
#[utoipa::path(
    get,
    path = "/v1/shipping/methods",
    tag = "shipping",
    params(RateFilter),
    responses((status = 200, description = "Active methods", body = Vec<ShippingRate>))
)]
async fn list_methods(
    State(state): State<AppState>,
    ValidatedQuery(filter): ValidatedQuery<RateFilter>,
) -> OrderResult<Json<Vec<ShippingRate>>> {
    let country = filter.country.unwrap_or_else(|| "GB".to_owned());
    Ok(Json(
        sqlx::query_as::<_, ShippingRate>(sqlx::AssertSqlSafe(format!(
            "SELECT {RATE_COLUMNS} FROM shipping_rates WHERE active AND $1 = ANY(countries)
             ORDER BY sort_order, code"
        )))
        .bind(country)
        .fetch_all(&state.db)
        .await?,
    ))
}

/// Every shipping rate, active or not (ADMIN).
#[utoipa::path(
    get,
    path = "/v1/shipping/rates",
    tag = "shipping",
    responses(
        (status = 200, description = "The rates", body = Vec<ShippingRate>),
        (status = 403, description = "Not an admin", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_rates(
    State(state): State<AppState>,
    _admin: AdminCaller,
) -> OrderResult<Json<Vec<ShippingRate>>> {
    Ok(Json(
        sqlx::query_as::<_, ShippingRate>(sqlx::AssertSqlSafe(format!(
            "SELECT {RATE_COLUMNS} FROM shipping_rates ORDER BY sort_order, code"
        )))
        .fetch_all(&state.db)
        .await?,
    ))
}

/// A new shipping rate.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewShippingRate {
    /// Method code, e.g. `NEXT_DAY`.
    #[validate(custom(function = "method_code"))]
    #[schema(pattern = "^[A-Z][A-Z0-9_]{1,31}$")]
    pub code: String,
    /// Name.
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Description.
    #[validate(length(max = 500, message = "must be at most 500 characters"))]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// Price in pence.
    #[validate(range(min = 0, max = 10_000_000, message = "must be between 0 and 10000000"))]
    #[schema(minimum = 0, maximum = 10000000)]
    pub price: i64,
    /// Free from this much of goods, in pence.
    #[validate(range(min = 0, max = 100_000_000, message = "must not be negative"))]
    #[schema(minimum = 0, maximum = 100000000)]
    pub free_over: Option<i64>,
    /// Countries (default `["GB"]`).
    #[serde(default = "gb")]
    #[validate(length(min = 1, max = 50, message = "must list 1–50 countries"))]
    #[schema(schema_with = countries_schema)]
    pub countries: Vec<String>,
    /// Fewest working days.
    #[serde(default = "one")]
    #[validate(range(min = 0, max = 60, message = "must be between 0 and 60"))]
    #[schema(minimum = 0, maximum = 60)]
    pub min_days: i32,
    /// Most working days.
    #[serde(default = "five")]
    #[validate(range(min = 0, max = 60, message = "must be between 0 and 60"))]
    #[schema(minimum = 0, maximum = 60)]
    pub max_days: i32,
    /// Default true.
    #[serde(default = "yes")]
    pub active: bool,
    /// Display order.
    #[serde(default)]
    pub sort_order: i32,
}

fn gb() -> Vec<String> {
    vec!["GB".to_owned()]
}
fn one() -> i32 {
    1
}
fn five() -> i32 {
    5
}

fn check_countries(countries: &[String]) -> OrderResult<()> {
    for (i, country) in countries.iter().enumerate() {
        if country_code(country).is_err() {
            return Err(OrderError::field(
                &format!("countries[{i}]"),
                "must be an ISO 3166-1 alpha-2 code in upper case, e.g. GB",
            ));
        }
    }
    Ok(())
}

/// Creates a shipping rate (ADMIN).
#[utoipa::path(
    post,
    path = "/v1/shipping/rates",
    tag = "shipping",
    request_body = NewShippingRate,
    responses(
        (status = 201, description = "Created", body = ShippingRate),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The code exists", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid rate", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn create_rate(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ValidatedJson(new): ValidatedJson<NewShippingRate>,
) -> OrderResult<(StatusCode, Json<ShippingRate>)> {
    check_countries(&new.countries)?;
    if new.max_days < new.min_days {
        return Err(OrderError::field("maxDays", "must be at least minDays"));
    }
    let mut tx = state.db.begin().await?;
    let rate = sqlx::query_as::<_, ShippingRate>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO shipping_rates (id, code, name, description, price_pence, free_over_pence,
                                     countries, min_days, max_days, active, sort_order)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         RETURNING {RATE_COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(&new.code)
    .bind(new.name.trim())
    .bind(new.description)
    .bind(new.price)
    .bind(new.free_over)
    .bind(&new.countries)
    .bind(new.min_days)
    .bind(new.max_days)
    .bind(new.active)
    .bind(new.sort_order)
    .fetch_one(&mut *tx)
    .await?;
    audit(&admin, "shipping_rate", rate.id, "create")
        .after(&rate)
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(rate)))
}

/// Changes to a shipping rate (merge patch; the code cannot change).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShippingRatePatch {
    /// Name.
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// Description, at most 500 characters (`null` removes it).
    #[serde(default, deserialize_with = "service_kit::merge_patch::nullable")]
    #[schema(value_type = Option<String>, max_length = 500)]
    pub description: Option<Option<String>>,
    /// Price in pence.
    #[validate(range(min = 0, max = 10_000_000, message = "must be between 0 and 10000000"))]
    #[schema(minimum = 0, maximum = 10000000)]
    pub price: Option<i64>,
    /// Free threshold in pence, 0–100000000 as when creating a rate (`null` removes it).
    #[serde(default, deserialize_with = "service_kit::merge_patch::nullable")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 100000000)]
    pub free_over: Option<Option<i64>>,
    /// Countries (left out or `null`: unchanged).
    #[validate(length(min = 1, max = 50, message = "must list 1–50 countries"))]
    #[schema(schema_with = countries_patch_schema)]
    pub countries: Option<Vec<String>>,
    /// Fewest working days.
    #[validate(range(min = 0, max = 60, message = "must be between 0 and 60"))]
    #[schema(minimum = 0, maximum = 60)]
    pub min_days: Option<i32>,
    /// Most working days.
    #[validate(range(min = 0, max = 60, message = "must be between 0 and 60"))]
    #[schema(minimum = 0, maximum = 60)]
    pub max_days: Option<i32>,
    /// Whether shoppers can choose it.
    pub active: Option<bool>,
    /// Display order.
    pub sort_order: Option<i32>,
}

/// Changes a shipping rate (ADMIN; `application/merge-patch+json`). Orders keep the charge they
/// were placed with.
#[utoipa::path(
    patch,
    path = "/v1/shipping/rates/{id}",
    tag = "shipping",
    params(("id" = Uuid, Path, description = "Shipping rate id")),
    request_body(content = ShippingRatePatch, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The rate", body = ShippingRate),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rate", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid change", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn update_rate(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
    ValidatedJson(patch): ValidatedJson<ShippingRatePatch>,
) -> OrderResult<Json<ShippingRate>> {
    if let Some(countries) = &patch.countries {
        check_countries(countries)?;
    }
    // The bounds a new rate has (`NewShippingRate`), which `validator` cannot check through
    // the patch's `Option<Option<_>>`.
    if let Some(Some(free)) = patch.free_over
        && !(0..=100_000_000).contains(&free)
    {
        return Err(OrderError::field(
            "freeOver",
            "must be between 0 and 100000000",
        ));
    }
    if let Some(Some(description)) = &patch.description
        && description.chars().count() > 500
    {
        return Err(OrderError::field(
            "description",
            "must be at most 500 characters",
        ));
    }
    let mut tx = state.db.begin().await?;
    let current = sqlx::query_as::<_, ShippingRate>(sqlx::AssertSqlSafe(format!(
        "SELECT {RATE_COLUMNS} FROM shipping_rates WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(OrderError::NotFound("shipping rate"))?;
    let entry = audit(&admin, "shipping_rate", id, "update").before(&current);
    let min_days = patch.min_days.unwrap_or(current.min_days);
    let max_days = patch.max_days.unwrap_or(current.max_days);
    if max_days < min_days {
        return Err(OrderError::field("maxDays", "must be at least minDays"));
    }
    let rate = sqlx::query_as::<_, ShippingRate>(sqlx::AssertSqlSafe(format!(
        "UPDATE shipping_rates SET name = $2, description = $3, price_pence = $4,
             free_over_pence = $5, countries = $6, min_days = $7, max_days = $8, active = $9,
             sort_order = $10
         WHERE id = $1 RETURNING {RATE_COLUMNS}"
    )))
    .bind(id)
    .bind(
        patch
            .name
            .as_deref()
            .map_or(current.name.clone(), |n| n.trim().to_owned()),
    )
    .bind(patch.description.unwrap_or(current.description))
    .bind(patch.price.unwrap_or(current.price))
    .bind(patch.free_over.unwrap_or(current.free_over))
    .bind(patch.countries.unwrap_or(current.countries))
    .bind(min_days)
    .bind(max_days)
    .bind(patch.active.unwrap_or(current.active))
    .bind(patch.sort_order.unwrap_or(current.sort_order))
    .fetch_one(&mut *tx)
    .await?;
    entry.after(&rate).record(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(rate))
}

/// Deletes a shipping rate (ADMIN). Orders keep the code and charge they were placed with.
#[utoipa::path(
    delete,
    path = "/v1/shipping/rates/{id}",
    tag = "shipping",
    params(("id" = Uuid, Path, description = "Shipping rate id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rate", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_rate(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
) -> OrderResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let before = sqlx::query_as::<_, ShippingRate>(sqlx::AssertSqlSafe(format!(
        "DELETE FROM shipping_rates WHERE id = $1 RETURNING {RATE_COLUMNS}"
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(OrderError::NotFound("shipping rate"))?;
    audit(&admin, "shipping_rate", id, "delete")
        .before(&before)
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tax_rules, create_tax_rule))
        .routes(routes!(update_tax_rule, delete_tax_rule))
        .routes(routes!(list_methods))
        .routes(routes!(list_rates, create_rate))
        .routes(routes!(update_rate, delete_rate))
}

//! A customer's address book: UK postcodes normalised, at most 20 addresses, and exactly one
//! default per kind (shipping, billing) — at most one by a partial unique index, at least one by
//! making the first address of a kind its default and promoting another when it is deleted.
//! Every write locks the owner's profile row, so concurrent changes of one address book run one
//! after the other.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::{Caller, Problem, ValidatedJson};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use crate::AppState;
use crate::error::{CustomerError, CustomerResult};
use crate::profiles::JsonValue;

/// What an address is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AddressKind {
    /// Deliveries and fitting.
    Shipping,
    /// Invoices.
    Billing,
}

impl AddressKind {
    fn as_db(self) -> &'static str {
        match self {
            Self::Shipping => "SHIPPING",
            Self::Billing => "BILLING",
        }
    }

    fn from_db(value: &str) -> Self {
        if value == "BILLING" {
            Self::Billing
        } else {
            Self::Shipping
        }
    }
}

/// An address.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    /// Id.
    pub id: Uuid,
    /// Shipping or billing.
    pub kind: AddressKind,
    /// Whether it is the default of its kind.
    pub is_default: bool,
    /// The customer's label ("Home").
    pub label: Option<String>,
    /// Who receives.
    pub recipient_name: String,
    /// First line.
    pub line1: String,
    /// Second line.
    pub line2: Option<String>,
    /// Town or city.
    pub city: String,
    /// County.
    pub county: Option<String>,
    /// Normalised UK postcode (`SW4 0AB`).
    pub postcode: String,
    /// Country (always `GB`).
    pub country: String,
    /// Contact phone.
    pub phone: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct AddressRow {
    id: Uuid,
    kind: String,
    is_default: bool,
    label: Option<String>,
    recipient_name: String,
    line1: String,
    line2: Option<String>,
    city: String,
    county: Option<String>,
    postcode: String,
    country: String,
    phone: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<AddressRow> for Address {
    fn from(r: AddressRow) -> Self {
        Self {
            id: r.id,
            kind: AddressKind::from_db(&r.kind),
            is_default: r.is_default,
            label: r.label,
            recipient_name: r.recipient_name,
            line1: r.line1,
            line2: r.line2,
            city: r.city,
            county: r.county,
            postcode: r.postcode,
            country: r.country,
            phone: r.phone,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const COLUMNS: &str = "id, kind, is_default, label, recipient_name, line1, line2, city, county, \
     postcode, country, phone, created_at, updated_at";

/// The editable fields of an address (also what a merge patch applies to).
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddressFields {
    /// Label, up to 50 characters.
    #[serde(default)]
    #[validate(length(min = 1, max = 50, message = "must be 1–50 characters"))]
    #[schema(min_length = 1, max_length = 50)]
    pub label: Option<String>,
    /// Recipient, 1–100 characters.
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    #[schema(min_length = 1, max_length = 100)]
    pub recipient_name: String,
    /// First line, 1–200 characters.
    #[validate(length(min = 1, max = 200, message = "must be 1–200 characters"))]
    #[schema(min_length = 1, max_length = 200)]
    pub line1: String,
    /// Second line.
    #[serde(default)]
    #[validate(length(max = 200, message = "must be at most 200 characters"))]
    #[schema(max_length = 200)]
    pub line2: Option<String>,
    /// Town or city, 1–100 characters.
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    #[schema(min_length = 1, max_length = 100)]
    pub city: String,
    /// County.
    #[serde(default)]
    #[validate(length(max = 100, message = "must be at most 100 characters"))]
    #[schema(max_length = 100)]
    pub county: Option<String>,
    /// UK postcode, any spacing or case (not a BFPO number: the address is delivered to).
    #[schema(
        max_length = 32,
        pattern = r"^ *(?:[Gg] *[Ii] *[Rr] *0 *[Aa] *[Aa]|[A-PR-UWYZa-pr-uwyz] *(?:[0-9](?: *[0-9])?|[A-HK-Ya-hk-y] *[0-9](?: *(?:[0-9]|[ABEHMNPRV-Yabehmnprv-y]))?|[0-9] *[A-HJKPSTUWa-hjkpstuw]) *[0-9] *[ABD-HJLNP-UW-Zabd-hjlnp-uw-z] *[ABD-HJLNP-UW-Zabd-hjlnp-uw-z]) *$"
    )]
    pub postcode: String,
    /// Contact phone (E.164 or UK national form).
    #[serde(default)]
    #[schema(
        max_length = 64,
        pattern = r"^[ \t.-]*(?:(?:\+[ \t.-]*|0[ \t.-]*0[ \t.-]*)[1-9](?:[ \t.-]*[0-9]){7,14}|0[ \t.-]*[1-9](?:[ \t.-]*[0-9]){8,9})[ \t.-]*$"
    )]
    pub phone: Option<String>,
}

/// A new address.
#[derive(Debug, Clone, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewAddress {
    /// Shipping or billing.
    pub kind: AddressKind,
    /// Make it the default of its kind (the first of a kind always is).
    #[serde(default)]
    pub is_default: bool,
    /// Label.
    #[serde(default)]
    #[validate(length(min = 1, max = 50, message = "must be 1–50 characters"))]
    #[schema(min_length = 1, max_length = 50)]
    pub label: Option<String>,
    /// Recipient.
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    #[schema(min_length = 1, max_length = 100)]
    pub recipient_name: String,
    /// First line.
    #[validate(length(min = 1, max = 200, message = "must be 1–200 characters"))]
    #[schema(min_length = 1, max_length = 200)]
    pub line1: String,
    /// Second line.
    #[serde(default)]
    #[validate(length(max = 200, message = "must be at most 200 characters"))]
    #[schema(max_length = 200)]
    pub line2: Option<String>,
    /// Town or city.
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    #[schema(min_length = 1, max_length = 100)]
    pub city: String,
    /// County.
    #[serde(default)]
    #[validate(length(max = 100, message = "must be at most 100 characters"))]
    #[schema(max_length = 100)]
    pub county: Option<String>,
    /// UK postcode (not a BFPO number: the address is delivered to).
    #[schema(
        max_length = 32,
        pattern = r"^ *(?:[Gg] *[Ii] *[Rr] *0 *[Aa] *[Aa]|[A-PR-UWYZa-pr-uwyz] *(?:[0-9](?: *[0-9])?|[A-HK-Ya-hk-y] *[0-9](?: *(?:[0-9]|[ABEHMNPRV-Yabehmnprv-y]))?|[0-9] *[A-HJKPSTUWa-hjkpstuw]) *[0-9] *[ABD-HJLNP-UW-Zabd-hjlnp-uw-z] *[ABD-HJLNP-UW-Zabd-hjlnp-uw-z]) *$"
    )]
    pub postcode: String,
    /// Contact phone.
    #[serde(default)]
    #[schema(
        max_length = 64,
        pattern = r"^[ \t.-]*(?:(?:\+[ \t.-]*|0[ \t.-]*0[ \t.-]*)[1-9](?:[ \t.-]*[0-9]){7,14}|0[ \t.-]*[1-9](?:[ \t.-]*[0-9]){8,9})[ \t.-]*$"
    )]
    pub phone: Option<String>,
}

/// Normalised postcode and phone, or 422 naming the field.
fn normalise(postcode: &str, phone: Option<&str>) -> CustomerResult<(String, Option<String>)> {
    let postcode = validation::UkPostcode::parse(postcode)
        .map_err(|e| CustomerError::field("postcode", e.message()))?;
    let phone = phone
        .map(validation::PhoneE164::parse_uk)
        .transpose()
        .map_err(|e| CustomerError::field("phone", e.message()))?;
    Ok((String::from(postcode), phone.map(String::from)))
}

/// Locks the owner's address book (their profile row), creating the profile if needed.
pub(crate) async fn lock_book(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<()> {
    crate::profiles::ensure(conn, user_id).await?;
    sqlx::query("SELECT 1 FROM profiles WHERE user_id = $1 FOR UPDATE")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub(crate) async fn list_for(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<Vec<Address>> {
    let rows: Vec<AddressRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM addresses WHERE user_id = $1 ORDER BY created_at, id"
    )))
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Address::from).collect())
}

async fn one(conn: &mut PgConnection, user_id: Uuid, id: Uuid) -> CustomerResult<Address> {
    let row: Option<AddressRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM addresses WHERE id = $1 AND user_id = $2"
    )))
    .bind(id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    row.map(Address::from)
        .ok_or(CustomerError::NotFound("address"))
}

/// Makes `id` the only default of its kind (the book must be locked).
async fn make_default(
    conn: &mut PgConnection,
    user_id: Uuid,
    id: Uuid,
    kind: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE addresses SET is_default = false \
         WHERE user_id = $1 AND kind = $2 AND is_default AND id <> $3",
    )
    .bind(user_id)
    .bind(kind)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE addresses SET is_default = true WHERE id = $1 AND NOT is_default")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The caller's addresses, oldest first.
#[utoipa::path(
    get,
    path = "/v1/profile/addresses",
    tag = "profile",
    responses((status = 200, description = "Addresses", body = [Address]))
)]
async fn list(State(state): State<AppState>, caller: Caller) -> CustomerResult<Json<Vec<Address>>> {
    let mut conn = state.db.acquire().await?;
    Ok(Json(list_for(&mut conn, caller.user_id).await?))
}

/// Adds an address (at most 20; the first of its kind becomes the default).
#[utoipa::path(
    post,
    path = "/v1/profile/addresses",
    tag = "profile",
    request_body = NewAddress,
    responses(
        (status = 201, description = "Added", body = Address),
        (status = 409, description = "20 addresses already", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ValidatedJson(input): ValidatedJson<NewAddress>,
) -> CustomerResult<(StatusCode, Json<Address>)> {
    let (postcode, phone) = normalise(&input.postcode, input.phone.as_deref())?;
    let mut tx = state.db.begin().await?;
    lock_book(&mut tx, caller.user_id).await?;
    let (count, has_default): (i64, bool) = sqlx::query_as(
        "SELECT count(*), coalesce(bool_or(is_default AND kind = $2), false) \
         FROM addresses WHERE user_id = $1",
    )
    .bind(caller.user_id)
    .bind(input.kind.as_db())
    .fetch_one(&mut *tx)
    .await?;
    if count >= state.settings.max_addresses {
        return Err(CustomerError::Conflict(
            "address-limit",
            format!(
                "You can keep at most {} addresses; delete one first.",
                state.settings.max_addresses
            ),
        ));
    }
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO addresses (id, user_id, kind, label, recipient_name, line1, line2, city, \
         county, postcode, phone) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(id)
    .bind(caller.user_id)
    .bind(input.kind.as_db())
    .bind(&input.label)
    .bind(input.recipient_name.trim())
    .bind(input.line1.trim())
    .bind(&input.line2)
    .bind(input.city.trim())
    .bind(&input.county)
    .bind(&postcode)
    .bind(&phone)
    .execute(&mut *tx)
    .await?;
    if input.is_default || !has_default {
        make_default(&mut tx, caller.user_id, id, input.kind.as_db()).await?;
    }
    let address = one(&mut tx, caller.user_id, id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(address)))
}

/// Changes an address (JSON Merge Patch over its editable fields).
#[utoipa::path(
    patch,
    path = "/v1/profile/addresses/{id}",
    tag = "profile",
    params(("id" = Uuid, Path, description = "Address id")),
    request_body(content = AddressFields, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "Changed", body = Address),
        (status = 404, description = "No such address of yours", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    ValidatedJson(patch): ValidatedJson<JsonValue>,
) -> CustomerResult<Json<Address>> {
    let mut tx = state.db.begin().await?;
    lock_book(&mut tx, caller.user_id).await?;
    let current = one(&mut tx, caller.user_id, id).await?;
    let document = serde_json::to_value(AddressFields {
        label: current.label,
        recipient_name: current.recipient_name,
        line1: current.line1,
        line2: current.line2,
        city: current.city,
        county: current.county,
        postcode: current.postcode,
        phone: current.phone,
    })
    .map_err(anyhow::Error::from)?;
    let input: AddressFields = crate::patched(document, &patch.0)?;
    let (postcode, phone) = normalise(&input.postcode, input.phone.as_deref())?;
    sqlx::query(
        "UPDATE addresses SET label = $2, recipient_name = $3, line1 = $4, line2 = $5, city = $6, \
         county = $7, postcode = $8, phone = $9 WHERE id = $1",
    )
    .bind(id)
    .bind(&input.label)
    .bind(input.recipient_name.trim())
    .bind(input.line1.trim())
    .bind(&input.line2)
    .bind(input.city.trim())
    .bind(&input.county)
    .bind(&postcode)
    .bind(&phone)
    .execute(&mut *tx)
    .await?;
    let address = one(&mut tx, caller.user_id, id).await?;
    tx.commit().await?;
    Ok(Json(address))
}

/// Deletes an address; if it was the default, the newest other address of its kind takes over.
#[utoipa::path(
    delete,
    path = "/v1/profile/addresses/{id}",
    tag = "profile",
    params(("id" = Uuid, Path, description = "Address id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such address of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> CustomerResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    lock_book(&mut tx, caller.user_id).await?;
    let current = one(&mut tx, caller.user_id, id).await?;
    sqlx::query("DELETE FROM addresses WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if current.is_default {
        let next: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM addresses WHERE user_id = $1 AND kind = $2 \
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(caller.user_id)
        .bind(current.kind.as_db())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(next) = next {
            make_default(&mut tx, caller.user_id, next, current.kind.as_db()).await?;
        }
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Makes an address the default of its kind.
#[utoipa::path(
    post,
    path = "/v1/profile/addresses/{id}/default",
    tag = "profile",
    params(("id" = Uuid, Path, description = "Address id")),
    responses(
        (status = 200, description = "Now the default", body = Address),
        (status = 404, description = "No such address of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn set_default(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> CustomerResult<Json<Address>> {
    let mut tx = state.db.begin().await?;
    lock_book(&mut tx, caller.user_id).await?;
    let current = one(&mut tx, caller.user_id, id).await?;
    make_default(&mut tx, caller.user_id, id, current.kind.as_db()).await?;
    let address = one(&mut tx, caller.user_id, id).await?;
    tx.commit().await?;
    Ok(Json(address))
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(update, remove))
        .routes(routes!(set_default))
}

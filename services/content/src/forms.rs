//! Forms: contact, business enquiries and the newsletter, with their admin tables and CSV exports.
//!
//! - Each submission is stored and its event (`contact.received`, `business_enquiry.received`,
//!   `newsletter.subscribed`) written to the outbox in one transaction; notification acts on it.
//! - **Per-email limits** are enforced here, in Redis, because the gateway cannot read bodies:
//!   the contact form (and business enquiries, which are as easy to abuse) accept
//!   `CONTACT_LIMIT_PER_HOUR` submissions per address and hour, the newsletter
//!   `NEWSLETTER_LIMIT_PER_DAY` sign-ups per address and day; more is a 429 with `Retry-After`.
//!   Only valid submissions count. Keys hold a hash of the address, never the address. If Redis
//!   is down the limit is skipped with a warning (forms keep working; the gateway's per-IP
//!   limits still apply).
//! - **Newsletter** is double opt-in: a sign-up is PENDING until `POST
//!   /v1/newsletter/{token}/confirm`, with the token sent only in the confirmation email (via the
//!   event). The database keeps a SHA-256 of the token, not the token. Signing up an address that
//!   is already pending or confirmed answers the same 201 without a second row or event (the
//!   answer never tells whether an address is subscribed); an unsubscribed address starts a new
//!   pending subscription on the same row. `DELETE /v1/newsletter/{token}` unsubscribes (kept as
//!   a consent record).
//! - CSV exports guard against formula injection: a cell starting with `=`, `+`, `-`, `@`, tab or
//!   CR is prefixed with `'`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::keyed_limit::KeyedLimit;
use service_kit::shared_types::content::{
    BusinessEnquiryReceived, ContactReceived, EnquiryType, NewsletterSubscribed,
};
use service_kit::{AdminCaller, OffsetPage, PageParams, ValidatedJson, ValidatedQuery};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::{Validate, ValidationError};

use crate::error::{ContentError, ContentResult};
use crate::{AppState, event};

const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

fn validate_email(value: &str) -> Result<(), ValidationError> {
    validation::Email::parse(value)
        .map(|_| ())
        .map_err(|e| ValidationError::new("email").with_message(e.message().into()))
}

fn validate_phone(value: &str) -> Result<(), ValidationError> {
    validation::normalise_uk_phone(value)
        .map(|_| ())
        .map_err(|e| ValidationError::new("phone").with_message(e.message().into()))
}

/// The lower-cased address (already validated).
fn normalised_email(value: &str) -> ContentResult<String> {
    validation::Email::parse(value)
        .map(|e| e.as_str().to_owned())
        .map_err(|e| ContentError::field("email", e.message()))
}

fn normalised_phone(value: &str, field: &str) -> ContentResult<String> {
    validation::normalise_uk_phone(value)
        .map(|p| p.as_str().to_owned())
        .map_err(|e| ContentError::field(field, e.message()))
}

fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// Counts one submission of `form` for `email` in a fixed window of `window` seconds; a
/// submission beyond `max` is a 429 whose `Retry-After` is the rest of the window.
async fn limit(
    state: &AppState,
    form: &'static str,
    email: &str,
    max: u32,
    window: u64,
) -> ContentResult<()> {
    KeyedLimit::new("form-limit", form, max, window)
        .hit(&state.redis, email, state.settings.cache_timeout)
        .await
        .map_err(|limited| ContentError::RateLimited(limited.retry_after_secs))
}

/// A whole CSV document, quoted and defused by `service_kit::csv`'s rule.
fn csv(header_row: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut out = String::new();
    service_kit::csv::write_row(&mut out, header_row);
    for row in rows {
        service_kit::csv::write_row(&mut out, &row);
    }
    out
}

fn csv_response(filename: &str, body: String) -> Response {
    let disposition = format!("attachment; filename=\"{filename}\"");
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        )],
        body,
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// What a receipt says.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// The stored submission.
    pub id: Uuid,
    /// When it was received.
    pub received_at: DateTime<Utc>,
}

// ---------------------------------------------------------------------------------------------
// Contact

/// What the contact form is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum ContactEnquiryType {
    General,
    Kitchen,
    Bedroom,
    Showroom,
    Order,
    Complaint,
    Other,
}

/// The contact form.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContactInput {
    /// Name, 1–120 characters.
    #[validate(length(min = 1, max = 120, message = "must be 1–120 characters"))]
    #[schema(min_length = 1, max_length = 120)]
    pub name: String,
    /// Email address.
    #[validate(custom(function = "validate_email"))]
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// Phone (E.164 or a UK number).
    #[serde(default)]
    #[validate(custom(function = "validate_phone"))]
    #[schema(
        max_length = 64,
        pattern = r"^[ \t.-]*(?:(?:\+[ \t.-]*|0[ \t.-]*0[ \t.-]*)[1-9](?:[ \t.-]*[0-9]){7,14}|0[ \t.-]*[1-9](?:[ \t.-]*[0-9]){8,9})[ \t.-]*$"
    )]
    pub phone: Option<String>,
    /// Subject, 1–200 characters.
    #[validate(length(min = 1, max = 200, message = "must be 1–200 characters"))]
    #[schema(min_length = 1, max_length = 200)]
    pub subject: String,
    /// Message, 1–5000 characters.
    #[validate(length(min = 1, max = 5000, message = "must be 1–5000 characters"))]
    #[schema(min_length = 1, max_length = 5000)]
    pub message: String,
    /// What it is about.
    pub enquiry_type: ContactEnquiryType,
}

/// Sends the contact form (anyone; per-email limit).
#[utoipa::path(
    post,
    path = "/v1/contact",
    tag = "forms",
    request_body = ContactInput,
    responses(
        (status = 201, description = "Received", body = Receipt),
        (status = 422, description = "Invalid form", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many from this address", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn contact(
    State(state): State<AppState>,
    ValidatedJson(input): ValidatedJson<ContactInput>,
) -> ContentResult<(StatusCode, Json<Receipt>)> {
    let email = normalised_email(&input.email)?;
    let phone = input
        .phone
        .as_deref()
        .map(|p| normalised_phone(p, "phone"))
        .transpose()?;
    limit(
        &state,
        "contact",
        &email,
        state.settings.contact_limit_per_hour,
        HOUR,
    )
    .await?;
    let id = Uuid::now_v7();
    let mut tx = state.db.begin().await?;
    let received_at: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO contact_submissions (id, name, email, phone, subject, message, enquiry_type)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING created_at",
    )
    .bind(id)
    .bind(&input.name)
    .bind(&email)
    .bind(&phone)
    .bind(&input.subject)
    .bind(&input.message)
    .bind(crate::enum_to_db(&input.enquiry_type))
    .fetch_one(&mut *tx)
    .await?;
    let payload = ContactReceived {
        submission_id: id,
        name: input.name,
        email,
        phone,
        subject: Some(input.subject),
        message: input.message,
        received_at,
    };
    service_kit::event_bus::outbox::publish(&mut tx, &event(payload)).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(Receipt { id, received_at })))
}

// ---------------------------------------------------------------------------------------------
// Business enquiries

/// What kind of business is enquiring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BusinessType {
    /// A trade account (builders, fitters).
    Trade,
    /// A commercial or multi-unit project.
    Commercial,
    /// A partnership or supplier proposal.
    Partnership,
    /// Anything else.
    Other,
}

impl From<BusinessType> for EnquiryType {
    fn from(kind: BusinessType) -> Self {
        match kind {
            BusinessType::Trade => Self::Trade,
            BusinessType::Commercial => Self::Commercial,
            BusinessType::Partnership => Self::Partnership,
            BusinessType::Other => Self::Other,
        }
    }
}

/// The business-enquiry form.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BusinessEnquiryInput {
    /// The person to reply to, 1–120 characters.
    #[validate(length(min = 1, max = 120, message = "must be 1–120 characters"))]
    #[schema(min_length = 1, max_length = 120)]
    pub name: String,
    /// Their company, 1–160 characters.
    #[serde(default)]
    #[validate(length(min = 1, max = 160, message = "must be 1–160 characters"))]
    #[schema(min_length = 1, max_length = 160)]
    pub company_name: Option<String>,
    /// Email address.
    #[validate(custom(function = "validate_email"))]
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// Phone (E.164 or a UK number).
    #[validate(custom(function = "validate_phone"))]
    #[schema(
        max_length = 64,
        pattern = r"^[ \t.-]*(?:(?:\+[ \t.-]*|0[ \t.-]*0[ \t.-]*)[1-9](?:[ \t.-]*[0-9]){7,14}|0[ \t.-]*[1-9](?:[ \t.-]*[0-9]){8,9})[ \t.-]*$"
    )]
    pub phone: String,
    /// What kind of business it is.
    pub business_type: BusinessType,
    /// Message, 1–5000 characters.
    #[validate(length(min = 1, max = 5000, message = "must be 1–5000 characters"))]
    #[schema(min_length = 1, max_length = 5000)]
    pub message: String,
}

/// Sends a business enquiry (anyone; per-email limit as the contact form).
#[utoipa::path(
    post,
    path = "/v1/business-enquiries",
    tag = "forms",
    request_body = BusinessEnquiryInput,
    responses(
        (status = 201, description = "Received", body = Receipt),
        (status = 422, description = "Invalid form", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many from this address", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn business_enquiry(
    State(state): State<AppState>,
    ValidatedJson(input): ValidatedJson<BusinessEnquiryInput>,
) -> ContentResult<(StatusCode, Json<Receipt>)> {
    let email = normalised_email(&input.email)?;
    let phone = normalised_phone(&input.phone, "phone")?;
    limit(
        &state,
        "business",
        &email,
        state.settings.contact_limit_per_hour,
        HOUR,
    )
    .await?;
    let id = Uuid::now_v7();
    let mut tx = state.db.begin().await?;
    let received_at: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO business_enquiries (id, name, company_name, email, phone, business_type, message)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING created_at",
    )
    .bind(id)
    .bind(&input.name)
    .bind(&input.company_name)
    .bind(&email)
    .bind(&phone)
    .bind(crate::enum_to_db(&input.business_type))
    .bind(&input.message)
    .fetch_one(&mut *tx)
    .await?;
    let payload = BusinessEnquiryReceived {
        submission_id: id,
        company_name: input.company_name.unwrap_or_else(|| input.name.clone()),
        contact_name: input.name,
        email,
        phone: Some(phone),
        enquiry_type: input.business_type.into(),
        message: input.message,
        received_at,
    };
    service_kit::event_bus::outbox::publish(&mut tx, &event(payload)).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(Receipt { id, received_at })))
}

// ---------------------------------------------------------------------------------------------
// Newsletter

/// What a subscriber wants to hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum NewsletterTopic {
    Kitchens,
    Bedrooms,
    Offers,
    News,
    Inspiration,
}

/// A newsletter sign-up.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewsletterInput {
    /// Email address.
    #[validate(custom(function = "validate_email"))]
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// Name, 1–120 characters.
    #[serde(default)]
    #[validate(length(min = 1, max = 120, message = "must be 1–120 characters"))]
    #[schema(min_length = 1, max_length = 120)]
    pub name: Option<String>,
    /// Topics (none = everything).
    #[serde(default)]
    #[validate(length(max = 10, message = "at most 10 preferences"))]
    #[schema(max_items = 10)]
    pub preferences: Vec<NewsletterTopic>,
    /// Where the form was, e.g. `footer`.
    #[serde(default)]
    #[validate(length(min = 1, max = 40, message = "must be 1–40 characters"))]
    #[schema(min_length = 1, max_length = 40)]
    pub source: Option<String>,
}

/// The answer to a sign-up: the same whether the address was new, pending or subscribed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewsletterAccepted {
    /// The address (lower-cased).
    pub email: String,
    /// Always true: a confirmation email follows unless the address is confirmed already.
    pub accepted: bool,
}

/// Subscribes to the newsletter (anyone; double opt-in; per-email limit).
#[utoipa::path(
    post,
    path = "/v1/newsletter",
    tag = "forms",
    request_body = NewsletterInput,
    responses(
        (status = 201, description = "Accepted (a confirmation email follows)", body = NewsletterAccepted),
        (status = 422, description = "Invalid form", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many from this address", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn subscribe(
    State(state): State<AppState>,
    ValidatedJson(input): ValidatedJson<NewsletterInput>,
) -> ContentResult<(StatusCode, Json<NewsletterAccepted>)> {
    let email = normalised_email(&input.email)?;
    limit(
        &state,
        "newsletter",
        &email,
        state.settings.newsletter_limit_per_day,
        DAY,
    )
    .await?;
    let mut preferences: Vec<String> = input.preferences.iter().map(crate::enum_to_db).collect();
    preferences.sort();
    preferences.dedup();
    let token = hex::encode(rand::random::<[u8; 32]>());
    let token_hash = sha256_hex(&token);
    let mut tx = state.db.begin().await?;
    // New address: a pending row. Concurrent first sign-ups meet at the unique email.
    let inserted: Option<(Uuid, DateTime<Utc>)> = sqlx::query_as(
        "INSERT INTO newsletter_subscriptions (id, email, name, preferences, source, token)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT ON CONSTRAINT newsletter_email_key DO NOTHING
         RETURNING id, created_at",
    )
    .bind(Uuid::now_v7())
    .bind(&email)
    .bind(&input.name)
    .bind(&preferences)
    .bind(&input.source)
    .bind(&token_hash)
    .fetch_optional(&mut *tx)
    .await?;
    // An unsubscribed address starts again as pending, on its row, with a fresh token.
    let started = match inserted {
        Some(row) => Some(row),
        None => {
            sqlx::query_as(
                "UPDATE newsletter_subscriptions
                    SET status = 'PENDING', token = $2, name = coalesce($3, name),
                        preferences = $4, source = coalesce($5, source), confirmed_at = NULL,
                        unsubscribed_at = NULL
                  WHERE email = $1 AND status = 'UNSUBSCRIBED'
                 RETURNING id, updated_at",
            )
            .bind(&email)
            .bind(&token_hash)
            .bind(&input.name)
            .bind(&preferences)
            .bind(&input.source)
            .fetch_optional(&mut *tx)
            .await?
        }
    };
    if let Some((subscription_id, subscribed_at)) = started {
        let payload = NewsletterSubscribed {
            subscription_id,
            email: email.clone(),
            source: input.source,
            subscribed_at,
            confirmation_token: Some(token),
        };
        service_kit::event_bus::outbox::publish(&mut tx, &event(payload)).await?;
    }
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(NewsletterAccepted {
            email,
            accepted: true,
        }),
    ))
}

/// A subscription's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SubscriptionStatus {
    /// Signed up, not confirmed yet.
    Pending,
    /// Confirmed: mail goes out.
    Confirmed,
    /// Unsubscribed.
    Unsubscribed,
}

/// A confirmed subscription.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Confirmation {
    /// The address.
    pub email: String,
    /// Its status.
    pub status: SubscriptionStatus,
}

/// Confirms a subscription with the token from the confirmation email.
#[utoipa::path(
    post,
    path = "/v1/newsletter/{token}/confirm",
    tag = "forms",
    params(("token" = String, Path, description = "The token from the confirmation email")),
    responses(
        (status = 200, description = "Confirmed", body = Confirmation),
        (status = 404, description = "No such pending subscription", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn confirm(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> ContentResult<Json<Confirmation>> {
    let email: Option<String> = sqlx::query_scalar(
        "UPDATE newsletter_subscriptions
            SET status = 'CONFIRMED', confirmed_at = coalesce(confirmed_at, now())
          WHERE token = $1 AND status IN ('PENDING', 'CONFIRMED')
         RETURNING email",
    )
    .bind(sha256_hex(&token))
    .fetch_optional(&state.db)
    .await?;
    let email = email.ok_or(ContentError::NotFound("subscription"))?;
    Ok(Json(Confirmation {
        email,
        status: SubscriptionStatus::Confirmed,
    }))
}

/// Unsubscribes with the token from any newsletter email (idempotent).
#[utoipa::path(
    delete,
    path = "/v1/newsletter/{token}",
    tag = "forms",
    params(("token" = String, Path, description = "The subscription's token")),
    responses(
        (status = 204, description = "Unsubscribed"),
        (status = 404, description = "No such subscription", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn unsubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> ContentResult<StatusCode> {
    let found: Option<Uuid> = sqlx::query_scalar(
        "UPDATE newsletter_subscriptions
            SET status = 'UNSUBSCRIBED', unsubscribed_at = coalesce(unsubscribed_at, now())
          WHERE token = $1
         RETURNING id",
    )
    .bind(sha256_hex(&token))
    .fetch_optional(&state.db)
    .await?;
    found.ok_or(ContentError::NotFound("subscription"))?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Admin tables and exports

/// A stored contact-form submission.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ContactSubmission {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
    /// Phone (E.164).
    pub phone: Option<String>,
    /// Subject.
    pub subject: String,
    /// Message.
    pub message: String,
    /// What it is about.
    pub enquiry_type: String,
    /// Received.
    pub created_at: DateTime<Utc>,
}

/// A stored business enquiry.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct BusinessEnquiry {
    /// Id.
    pub id: Uuid,
    /// Contact name.
    pub name: String,
    /// Company.
    pub company_name: Option<String>,
    /// Email.
    pub email: String,
    /// Phone (E.164).
    pub phone: String,
    /// Business type.
    pub business_type: String,
    /// Message.
    pub message: String,
    /// Received.
    pub created_at: DateTime<Utc>,
}

/// A newsletter subscription (never its token).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Id.
    pub id: Uuid,
    /// Email.
    pub email: String,
    /// Name.
    pub name: Option<String>,
    /// Topics.
    pub preferences: Vec<String>,
    /// Where they signed up.
    pub source: Option<String>,
    /// `PENDING`, `CONFIRMED` or `UNSUBSCRIBED`.
    pub status: String,
    /// Confirmed.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// Unsubscribed.
    pub unsubscribed_at: Option<DateTime<Utc>>,
    /// Signed up.
    pub created_at: DateTime<Utc>,
}

/// Newsletter table filters.
#[derive(Debug, Clone, Deserialize, Validate, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct NewsletterQuery {
    /// Page number from 1.
    #[validate(range(min = 1, max = 100000, message = "must be at least 1"))]
    #[param(minimum = 1, maximum = 100000)]
    pub page: Option<u32>,
    /// Rows a page, 1–100 (default 20).
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<u32>,
    /// Only subscriptions with this status.
    pub status: Option<SubscriptionStatus>,
}

/// Contact-form submissions, newest first (ADMIN).
#[utoipa::path(
    get,
    path = "/v1/admin/contact",
    tag = "forms",
    params(PageParams),
    responses(
        (status = 200, description = "A page of submissions", body = OffsetPage<ContactSubmission>),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_contact(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ValidatedQuery(paging): ValidatedQuery<PageParams>,
) -> ContentResult<Json<OffsetPage<ContactSubmission>>> {
    let data: Vec<ContactSubmission> = sqlx::query_as(
        "SELECT id, name, email, phone, subject, message, enquiry_type, created_at
         FROM contact_submissions ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2",
    )
    .bind(i64::from(paging.page_size()))
    .bind(paging.offset())
    .fetch_all(&state.db)
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM contact_submissions")
        .fetch_one(&state.db)
        .await?;
    Ok(Json(OffsetPage {
        data,
        page: paging.page(),
        page_size: paging.page_size(),
        total,
    }))
}

/// Every contact-form submission as CSV, newest first (ADMIN).
#[utoipa::path(
    get,
    path = "/v1/admin/contact/export",
    tag = "forms",
    responses(
        (status = 200, description = "CSV", body = String, content_type = "text/csv"),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn export_contact(
    State(state): State<AppState>,
    _admin: AdminCaller,
) -> ContentResult<Response> {
    let rows: Vec<ContactSubmission> = sqlx::query_as(
        "SELECT id, name, email, phone, subject, message, enquiry_type, created_at
         FROM contact_submissions ORDER BY created_at DESC, id DESC",
    )
    .fetch_all(&state.db)
    .await?;
    let body = csv(
        &[
            "id",
            "receivedAt",
            "name",
            "email",
            "phone",
            "enquiryType",
            "subject",
            "message",
        ],
        rows.into_iter().map(|r| {
            vec![
                r.id.to_string(),
                r.created_at.to_rfc3339(),
                r.name,
                r.email,
                r.phone.unwrap_or_default(),
                r.enquiry_type,
                r.subject,
                r.message,
            ]
        }),
    );
    Ok(csv_response("contact-submissions.csv", body))
}

/// Business enquiries, newest first (ADMIN).
#[utoipa::path(
    get,
    path = "/v1/admin/business-enquiries",
    tag = "forms",
    params(PageParams),
    responses(
        (status = 200, description = "A page of enquiries", body = OffsetPage<BusinessEnquiry>),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_business(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ValidatedQuery(paging): ValidatedQuery<PageParams>,
) -> ContentResult<Json<OffsetPage<BusinessEnquiry>>> {
    let data: Vec<BusinessEnquiry> = sqlx::query_as(
        "SELECT id, name, company_name, email, phone, business_type, message, created_at
         FROM business_enquiries ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2",
    )
    .bind(i64::from(paging.page_size()))
    .bind(paging.offset())
    .fetch_all(&state.db)
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM business_enquiries")
        .fetch_one(&state.db)
        .await?;
    Ok(Json(OffsetPage {
        data,
        page: paging.page(),
        page_size: paging.page_size(),
        total,
    }))
}

/// Every business enquiry as CSV, newest first (ADMIN).
#[utoipa::path(
    get,
    path = "/v1/admin/business-enquiries/export",
    tag = "forms",
    responses(
        (status = 200, description = "CSV", body = String, content_type = "text/csv"),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn export_business(
    State(state): State<AppState>,
    _admin: AdminCaller,
) -> ContentResult<Response> {
    let rows: Vec<BusinessEnquiry> = sqlx::query_as(
        "SELECT id, name, company_name, email, phone, business_type, message, created_at
         FROM business_enquiries ORDER BY created_at DESC, id DESC",
    )
    .fetch_all(&state.db)
    .await?;
    let body = csv(
        &[
            "id",
            "receivedAt",
            "name",
            "companyName",
            "email",
            "phone",
            "businessType",
            "message",
        ],
        rows.into_iter().map(|r| {
            vec![
                r.id.to_string(),
                r.created_at.to_rfc3339(),
                r.name,
                r.company_name.unwrap_or_default(),
                r.email,
                r.phone,
                r.business_type,
                r.message,
            ]
        }),
    );
    Ok(csv_response("business-enquiries.csv", body))
}

/// Newsletter subscriptions, newest first (ADMIN).
#[utoipa::path(
    get,
    path = "/v1/admin/newsletter",
    tag = "forms",
    params(NewsletterQuery),
    responses(
        (status = 200, description = "A page of subscriptions", body = OffsetPage<Subscription>),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_newsletter(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ValidatedQuery(query): ValidatedQuery<NewsletterQuery>,
) -> ContentResult<Json<OffsetPage<Subscription>>> {
    let paging = PageParams {
        page: query.page,
        page_size: query.page_size,
    };
    let status = query.status.map(|s| crate::enum_to_db(&s));
    let data: Vec<Subscription> = sqlx::query_as(
        "SELECT id, email, name, preferences, source, status, confirmed_at, unsubscribed_at,
                created_at
         FROM newsletter_subscriptions WHERE ($1::text IS NULL OR status = $1)
         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
    )
    .bind(&status)
    .bind(i64::from(paging.page_size()))
    .bind(paging.offset())
    .fetch_all(&state.db)
    .await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM newsletter_subscriptions WHERE ($1::text IS NULL OR status = $1)",
    )
    .bind(&status)
    .fetch_one(&state.db)
    .await?;
    Ok(Json(OffsetPage {
        data,
        page: paging.page(),
        page_size: paging.page_size(),
        total,
    }))
}

/// Every newsletter subscription as CSV, newest first (ADMIN).
#[utoipa::path(
    get,
    path = "/v1/admin/newsletter/export",
    tag = "forms",
    responses(
        (status = 200, description = "CSV", body = String, content_type = "text/csv"),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn export_newsletter(
    State(state): State<AppState>,
    _admin: AdminCaller,
) -> ContentResult<Response> {
    let rows: Vec<Subscription> = sqlx::query_as(
        "SELECT id, email, name, preferences, source, status, confirmed_at, unsubscribed_at,
                created_at
         FROM newsletter_subscriptions ORDER BY created_at DESC, id DESC",
    )
    .fetch_all(&state.db)
    .await?;
    let time = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    let body = csv(
        &[
            "id",
            "email",
            "name",
            "status",
            "preferences",
            "source",
            "subscribedAt",
            "confirmedAt",
            "unsubscribedAt",
        ],
        rows.into_iter().map(|r| {
            vec![
                r.id.to_string(),
                r.email,
                r.name.unwrap_or_default(),
                r.status,
                r.preferences.join(" "),
                r.source.unwrap_or_default(),
                r.created_at.to_rfc3339(),
                time(r.confirmed_at),
                time(r.unsubscribed_at),
            ]
        }),
    );
    Ok(csv_response("newsletter-subscriptions.csv", body))
}

/// The forms' routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(contact))
        .routes(routes!(business_enquiry))
        .routes(routes!(subscribe))
        .routes(routes!(confirm))
        .routes(routes!(unsubscribe))
        .routes(routes!(list_contact))
        .routes(routes!(export_contact))
        .routes(routes!(list_business))
        .routes(routes!(export_business))
        .routes(routes!(list_newsletter))
        .routes(routes!(export_newsletter))
}

//! Brochure requests (seed 001 flow 5): stored, `brochure.requested` emitted; admins list and
//! export them.
//!
//! DESIGN.md §5 allows 3 brochure requests per email address per hour. The gateway cannot read
//! the body, so the limit is counted here ([`service_kit::keyed_limit`], Redis, keyed by a hash of
//! the normalised address): the 4th valid request within the hour is a 429 problem with
//! `Retry-After`, with nothing stored and no event. Invalid requests do not count; if Redis is
//! unavailable the request is accepted unchecked (the gateway's per-IP limits still apply).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::keyed_limit::KeyedLimit;
use service_kit::{
    AdminCaller, FieldError, MaybeCaller, OffsetPage, PageParams, ValidatedJson, ValidatedQuery,
};
use shared_types::appointment::{BrochureDelivery, BrochureRequested};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validation::{Email, PhoneE164, UkPostcode};
use validator::Validate;

use crate::error::{AppointmentError, AppointmentResult, collect};
use crate::{AppState, event};

/// Most rows one CSV export holds.
const EXPORT_LIMIT: i64 = 10_000;

/// 3 requests per email address per hour (DESIGN.md §5).
const PER_EMAIL: KeyedLimit = KeyedLimit::new("brochure-limit", "brochure", 3, 3600);

/// How long the limit waits for Redis before letting a request through unchecked.
const LIMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// Which brochures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Interests {
    /// Kitchens.
    Kitchen,
    /// Bedrooms.
    Bedroom,
    /// Both.
    Both,
}

impl Interests {
    fn as_str(self) -> &'static str {
        match self {
            Self::Kitchen => "KITCHEN",
            Self::Bedroom => "BEDROOM",
            Self::Both => "BOTH",
        }
    }
}

/// A brochure request.
#[derive(Debug, Clone, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BrochureRequest {
    /// First name.
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    #[schema(min_length = 1, max_length = 100)]
    pub first_name: String,
    /// Last name.
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    #[schema(min_length = 1, max_length = 100)]
    pub last_name: String,
    /// Email address (the brochure goes there).
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// Phone number.
    #[schema(
        max_length = 64,
        pattern = r"^[ \t.-]*(?:(?:\+[ \t.-]*|0[ \t.-]*0[ \t.-]*)[1-9](?:[ \t.-]*[0-9]){7,14}|0[ \t.-]*[1-9](?:[ \t.-]*[0-9]){8,9})[ \t.-]*$"
    )]
    pub phone: String,
    /// Postcode.
    #[schema(
        max_length = 32,
        pattern = r"^ *(?:[Gg] *[Ii] *[Rr] *0 *[Aa] *[Aa]|[Bb] *[Ff] *[Pp] *[Oo] *[1-9](?: *[0-9]){0,3}|[A-PR-UWYZa-pr-uwyz] *(?:[0-9](?: *[0-9])?|[A-HK-Ya-hk-y] *[0-9](?: *(?:[0-9]|[ABEHMNPRV-Yabehmnprv-y]))?|[0-9] *[A-HJKPSTUWa-hjkpstuw]) *[0-9] *[ABD-HJLNP-UW-Zabd-hjlnp-uw-z] *[ABD-HJLNP-UW-Zabd-hjlnp-uw-z]) *$"
    )]
    pub postcode: String,
    /// Address.
    #[validate(length(min = 1, max = 500, message = "must be 1–500 characters"))]
    #[schema(min_length = 1, max_length = 500)]
    pub address: String,
    /// Kitchen, bedroom or both.
    pub interests: Interests,
    /// Agreed to marketing emails.
    #[serde(default)]
    pub marketing_consent: bool,
}

/// The acknowledgement.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrochureAccepted {
    /// "Brochure on its way".
    pub message: String,
}

/// Requests a brochure: stored and emailed (via `brochure.requested`).
#[utoipa::path(
    post,
    path = "/v1/brochures",
    tag = "brochures",
    request_body = BrochureRequest,
    responses(
        (status = 201, description = "Accepted", body = BrochureAccepted),
        (status = 422, description = "Invalid", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 429, description = "More than 3 requests for this email address within the hour (`Retry-After` says when to retry)", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn request_brochure(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    ValidatedJson(request): ValidatedJson<BrochureRequest>,
) -> AppointmentResult<(StatusCode, Json<BrochureAccepted>)> {
    let mut errors: Vec<FieldError> = Vec::new();
    let email = collect(&mut errors, "email", Email::parse(&request.email));
    let phone = collect(&mut errors, "phone", PhoneE164::parse_uk(&request.phone));
    let postcode = collect(
        &mut errors,
        "postcode",
        UkPostcode::parse(&request.postcode),
    );
    let (Some(email), Some(phone), Some(postcode)) = (email, phone, postcode) else {
        return Err(AppointmentError::Validation(errors));
    };
    // `Email::parse` lower-cases, so every spelling of one address shares its count.
    PER_EMAIL
        .hit(&state.redis, email.as_str(), LIMIT_TIMEOUT)
        .await
        .map_err(|limited| {
            limited.problem("Too many brochure requests for this email address; retry later.")
        })?;
    let id = Uuid::now_v7();
    let user_id = caller.map(|c| c.user_id);
    let now = Utc::now();
    let mut tx = state.db.begin().await?;
    sqlx::query!(
        "INSERT INTO brochure_requests
             (id, user_id, first_name, last_name, email, phone, postcode, address, interests,
              marketing_consent, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        id,
        user_id,
        request.first_name.trim(),
        request.last_name.trim(),
        email.as_str(),
        phone.as_str(),
        postcode.as_str(),
        request.address.trim(),
        request.interests.as_str(),
        request.marketing_consent,
        now,
    )
    .execute(&mut *tx)
    .await?;
    let payload = BrochureRequested {
        request_id: id,
        user_id,
        name: format!("{} {}", request.first_name.trim(), request.last_name.trim()),
        email: email.as_str().to_owned(),
        phone: Some(phone.as_str().to_owned()),
        for_kitchen: matches!(request.interests, Interests::Kitchen | Interests::Both),
        for_bedroom: matches!(request.interests, Interests::Bedroom | Interests::Both),
        delivery: BrochureDelivery::Email,
        address: None,
        postcode: Some(postcode.as_str().to_owned()),
        marketing_consent: request.marketing_consent,
        requested_at: now,
    };
    event_bus::outbox::publish(&mut tx, &event(payload)).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(BrochureAccepted {
            message: "Brochure on its way".to_owned(),
        }),
    ))
}

/// A stored request.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrochureRequestView {
    /// Id.
    pub id: Uuid,
    /// The requester's account, if signed in.
    pub user_id: Option<Uuid>,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email.
    pub email: String,
    /// Phone.
    pub phone: String,
    /// Postcode.
    pub postcode: String,
    /// Address.
    pub address: String,
    /// KITCHEN, BEDROOM or BOTH.
    pub interests: String,
    /// Agreed to marketing.
    pub marketing_consent: bool,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Brochure requests, newest first (admin, offset-paged).
#[utoipa::path(
    get,
    path = "/v1/admin/brochures",
    tag = "admin",
    params(PageParams),
    responses(
        (status = 200, description = "One page", body = OffsetPage<BrochureRequestView>),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_brochures(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ValidatedQuery(paging): ValidatedQuery<PageParams>,
) -> AppointmentResult<Json<OffsetPage<BrochureRequestView>>> {
    let total = sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM brochure_requests"#)
        .fetch_one(&state.db)
        .await?;
    let data = sqlx::query_as!(
        BrochureRequestView,
        "SELECT id, user_id, first_name, last_name, email, phone, postcode, address, interests,
                marketing_consent, created_at
         FROM brochure_requests ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2",
        i64::from(paging.page_size()),
        paging.offset()
    )
    .fetch_all(&state.db)
    .await?;
    Ok(Json(OffsetPage {
        data,
        page: paging.page(),
        page_size: paging.page_size(),
        total,
    }))
}

/// Every brochure request as CSV, newest first (admin; at most 10 000 rows).
#[utoipa::path(
    get,
    path = "/v1/admin/brochures/export",
    tag = "admin",
    responses(
        (status = 200, description = "CSV", content_type = "text/csv", body = String),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn export_brochures(
    State(state): State<AppState>,
    _admin: AdminCaller,
) -> AppointmentResult<impl IntoResponse> {
    let rows = sqlx::query_as!(
        BrochureRequestView,
        "SELECT id, user_id, first_name, last_name, email, phone, postcode, address, interests,
                marketing_consent, created_at
         FROM brochure_requests ORDER BY created_at DESC, id DESC LIMIT $1",
        EXPORT_LIMIT
    )
    .fetch_all(&state.db)
    .await?;
    let mut csv = String::new();
    service_kit::csv::write_row(
        &mut csv,
        [
            "id",
            "createdAt",
            "firstName",
            "lastName",
            "email",
            "phone",
            "postcode",
            "address",
            "interests",
            "marketingConsent",
        ],
    );
    for r in rows {
        let fields = [
            r.id.to_string(),
            r.created_at.to_rfc3339(),
            r.first_name,
            r.last_name,
            r.email,
            r.phone,
            r.postcode,
            r.address,
            r.interests,
            r.marketing_consent.to_string(),
        ];
        service_kit::csv::write_row(&mut csv, &fields);
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"brochure-requests.csv\"",
            ),
        ],
        csv,
    ))
}

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_brochure))
        .routes(routes!(list_brochures))
        .routes(routes!(export_brochures))
}

//! Availability rules and exceptions (admin). Every change re-materialises the consultant's
//! slots in the same transaction, so availability follows at once.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::audit;
use service_kit::{AdminCaller, ValidatedJson};
use sqlx::postgres::types::PgRange;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use crate::AppState;
use crate::catalogue::{AppointmentKind, kind_of};
use crate::error::{AppointmentError, AppointmentResult};
use crate::slots::{self, Materialised};

/// A weekly rule.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleView {
    /// Id.
    pub id: Uuid,
    /// The consultant.
    pub consultant_id: Uuid,
    /// ISO weekday, Monday = 1.
    pub weekday: i16,
    /// From, London time.
    #[schema(value_type = String, example = "09:00:00")]
    pub starts_at: NaiveTime,
    /// Until, London time.
    #[schema(value_type = String, example = "17:00:00")]
    pub ends_at: NaiveTime,
    /// What is offered.
    pub appointment_type: AppointmentKind,
    /// Where, for showroom visits.
    pub showroom_id: Option<Uuid>,
}

/// A new weekly rule.
#[derive(Debug, Clone, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleInput {
    /// ISO weekday, Monday = 1 … Sunday = 7.
    #[validate(range(min = 1, max = 7, message = "must be 1 (Monday) to 7 (Sunday)"))]
    #[schema(minimum = 1, maximum = 7)]
    pub weekday: i16,
    /// From, London time (`HH:MM`).
    #[schema(value_type = String, example = "09:00")]
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,9})?)?$")]
    pub starts_at: NaiveTime,
    /// Until, London time (`HH:MM`).
    #[schema(value_type = String, example = "17:00")]
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,9})?)?$")]
    pub ends_at: NaiveTime,
    /// What is offered.
    pub appointment_type: AppointmentKind,
    /// Where (required for SHOWROOM_VISIT, not allowed otherwise).
    #[serde(default)]
    pub showroom_id: Option<Uuid>,
}

async fn consultant_exists(state: &AppState, id: Uuid) -> AppointmentResult<()> {
    let found = sqlx::query_scalar!("SELECT id FROM consultants WHERE id = $1", id)
        .fetch_optional(&state.db)
        .await?;
    found
        .map(|_| ())
        .ok_or(AppointmentError::NotFound("consultant"))
}

/// A consultant's weekly rules (admin).
#[utoipa::path(
    get,
    path = "/v1/admin/consultants/{id}/rules",
    tag = "admin",
    params(("id" = Uuid, Path, description = "Consultant id")),
    responses(
        (status = 200, description = "The rules", body = Vec<RuleView>),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such consultant", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_rules(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Path(id): Path<Uuid>,
) -> AppointmentResult<Json<Vec<RuleView>>> {
    consultant_exists(&state, id).await?;
    let rows = sqlx::query!(
        "SELECT id, consultant_id, weekday, starts_at, ends_at, appointment_type, showroom_id
         FROM availability_rules WHERE consultant_id = $1 ORDER BY weekday, starts_at, id",
        id
    )
    .fetch_all(&state.db)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(RuleView {
                id: r.id,
                consultant_id: r.consultant_id,
                weekday: r.weekday,
                starts_at: r.starts_at,
                ends_at: r.ends_at,
                appointment_type: kind_of(&r.appointment_type)?,
                showroom_id: r.showroom_id,
            })
        })
        .collect::<AppointmentResult<Vec<_>>>()
        .map(Json)
}

/// Adds a weekly rule and materialises its slots (admin).
#[utoipa::path(
    post,
    path = "/v1/admin/consultants/{id}/rules",
    tag = "admin",
    params(("id" = Uuid, Path, description = "Consultant id")),
    request_body = RuleInput,
    responses(
        (status = 201, description = "Created", body = RuleView),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such consultant", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn create_rule(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
    ValidatedJson(input): ValidatedJson<RuleInput>,
) -> AppointmentResult<(StatusCode, Json<RuleView>)> {
    consultant_exists(&state, id).await?;
    let rule_id = Uuid::now_v7();
    let mut tx = state.db.begin().await?;
    sqlx::query!(
        "INSERT INTO availability_rules
             (id, consultant_id, weekday, starts_at, ends_at, appointment_type, showroom_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        rule_id,
        id,
        input.weekday,
        input.starts_at,
        input.ends_at,
        input.appointment_type.as_str(),
        input.showroom_id,
    )
    .execute(&mut *tx)
    .await?;
    let done = slots::materialise_in(&mut tx, Some(id), state.settings.horizon_days).await?;
    let rule = RuleView {
        id: rule_id,
        consultant_id: id,
        weekday: input.weekday,
        starts_at: input.starts_at,
        ends_at: input.ends_at,
        appointment_type: input.appointment_type,
        showroom_id: input.showroom_id,
    };
    audit::Entry::new(&admin, "availability_rule", rule_id, "create")
        .after(&audited(&rule, done))
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    state.availability.invalidate().await;
    Ok((StatusCode::CREATED, Json(rule)))
}

/// Removes a weekly rule; its open future slots are retired, booked ones stay (admin).
#[utoipa::path(
    delete,
    path = "/v1/admin/availability-rules/{id}",
    tag = "admin",
    params(("id" = Uuid, Path, description = "Rule id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_rule(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
) -> AppointmentResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    // What the audit trail keeps of the rule; the DELETE below decides whether it exists.
    let before: Option<serde_json::Value> = sqlx::query_scalar(
        "SELECT jsonb_build_object('consultantId', consultant_id, 'weekday', weekday,
                'startsAt', starts_at, 'endsAt', ends_at, 'appointmentType', appointment_type,
                'showroomId', showroom_id)
         FROM availability_rules WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let consultant = sqlx::query_scalar!(
        "DELETE FROM availability_rules WHERE id = $1 RETURNING consultant_id",
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(AppointmentError::NotFound("rule"))?;
    let done =
        slots::materialise_in(&mut tx, Some(consultant), state.settings.horizon_days).await?;
    audit::Entry::new(&admin, "availability_rule", id, "delete")
        .before(&before)
        .after(&audited(&serde_json::json!({}), done))
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    state.availability.invalidate().await;
    Ok(StatusCode::NO_CONTENT)
}

/// A holiday or blocked period.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExceptionInput {
    /// From (inclusive).
    pub starts_at: DateTime<Utc>,
    /// Until (exclusive).
    pub ends_at: DateTime<Utc>,
    /// Why (holiday, training…).
    #[serde(default)]
    #[validate(length(max = 500, message = "must be at most 500 characters"))]
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

/// A stored exception.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionView {
    /// Id.
    pub id: Uuid,
    /// The consultant.
    pub consultant_id: Uuid,
    /// From (inclusive).
    pub starts_at: DateTime<Utc>,
    /// Until (exclusive).
    pub ends_at: DateTime<Utc>,
    /// Why.
    pub reason: Option<String>,
}

/// Blocks a period of a consultant's diary: open slots inside it are withdrawn; bookings inside
/// it stay (cancel them explicitly) (admin).
#[utoipa::path(
    post,
    path = "/v1/admin/consultants/{id}/exceptions",
    tag = "admin",
    params(("id" = Uuid, Path, description = "Consultant id")),
    request_body = ExceptionInput,
    responses(
        (status = 201, description = "Created", body = ExceptionView),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such consultant", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn create_exception(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
    ValidatedJson(input): ValidatedJson<ExceptionInput>,
) -> AppointmentResult<(StatusCode, Json<ExceptionView>)> {
    if input.ends_at <= input.starts_at {
        return Err(AppointmentError::field("endsAt", "must be after startsAt"));
    }
    consultant_exists(&state, id).await?;
    let exception_id = Uuid::now_v7();
    let during = PgRange::from(input.starts_at..input.ends_at);
    let mut tx = state.db.begin().await?;
    sqlx::query!(
        "INSERT INTO availability_exceptions (id, consultant_id, during, reason)
         VALUES ($1, $2, $3, $4)",
        exception_id,
        id,
        during,
        input.reason,
    )
    .execute(&mut *tx)
    .await?;
    let done = slots::materialise_in(&mut tx, Some(id), state.settings.horizon_days).await?;
    let exception = ExceptionView {
        id: exception_id,
        consultant_id: id,
        starts_at: input.starts_at,
        ends_at: input.ends_at,
        reason: input.reason,
    };
    audit::Entry::new(&admin, "availability_exception", exception_id, "create")
        .after(&audited(&exception, done))
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    state.availability.invalidate().await;
    Ok((StatusCode::CREATED, Json(exception)))
}

/// Lifts an exception; its slots are offered again (admin).
#[utoipa::path(
    delete,
    path = "/v1/admin/availability-exceptions/{id}",
    tag = "admin",
    params(("id" = Uuid, Path, description = "Exception id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such exception", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_exception(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
) -> AppointmentResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let before: Option<serde_json::Value> = sqlx::query_scalar(
        "SELECT jsonb_build_object('consultantId', consultant_id, 'startsAt', lower(during),
                'endsAt', upper(during))
         FROM availability_exceptions WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let consultant = sqlx::query_scalar!(
        "DELETE FROM availability_exceptions WHERE id = $1 RETURNING consultant_id",
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(AppointmentError::NotFound("exception"))?;
    let done =
        slots::materialise_in(&mut tx, Some(consultant), state.settings.horizon_days).await?;
    audit::Entry::new(&admin, "availability_exception", id, "delete")
        .before(&before)
        .after(&audited(&serde_json::json!({}), done))
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    state.availability.invalidate().await;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs the slot materialisation now for everyone (admin); idempotent.
#[utoipa::path(
    post,
    path = "/v1/admin/slots/materialise",
    tag = "admin",
    responses(
        (status = 200, description = "What changed", body = Materialised),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn materialise_now(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
) -> AppointmentResult<Json<Materialised>> {
    let mut tx = state.db.begin().await?;
    let done = slots::materialise_in(&mut tx, None, state.settings.horizon_days).await?;
    audit::Entry::new(&admin, "slots", "all", "materialise")
        .after(&done)
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    state.availability.invalidate().await;
    Ok(Json(done))
}

/// What the audit trail keeps of a rule or exception change: the item (an exception's `reason`
/// is redacted by name) and what the re-materialisation did to the consultant's slots.
fn audited(item: &impl Serialize, done: Materialised) -> serde_json::Value {
    let mut value = serde_json::to_value(item).unwrap_or_default();
    if !value.is_object() {
        value = serde_json::json!({});
    }
    if let serde_json::Value::Object(fields) = &mut value {
        fields.insert("slots".to_owned(), serde_json::json!(done));
    }
    value
}

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(delete_rule))
        .routes(routes!(create_exception))
        .routes(routes!(delete_exception))
        .routes(routes!(materialise_now))
}

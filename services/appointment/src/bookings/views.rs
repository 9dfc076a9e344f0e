//! Reading bookings: the customer's own (`/mine`), one booking (owner, assigned consultant,
//! admin), the consultant's diary and the admin table.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use service_kit::extract::CursorParams;
use service_kit::{AdminCaller, Caller, CursorPage, OffsetPage, PageParams, Role, ValidatedQuery};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use super::{BookingRow, BookingStatus, Relation};
use crate::AppState;
use crate::catalogue::{AppointmentKind, kind_of, like_escape};
use crate::error::{AppointmentError, AppointmentResult};

/// One change in a booking's life.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryView {
    /// CREATED, CONFIRMED, COMPLETED, NO_SHOW, CANCELLED, RESCHEDULED, LINKED, ANONYMISED.
    pub action: String,
    /// Status before.
    pub from_status: Option<String>,
    /// Status after.
    pub to_status: String,
    /// Who (absent for guests and the system).
    pub actor_id: Option<Uuid>,
    /// Their role, GUEST or SYSTEM.
    pub actor_role: String,
    /// Why.
    pub reason: Option<String>,
    /// Extra facts (the slots of a reschedule).
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    /// When.
    pub at: DateTime<Utc>,
}

/// A booking.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookingView {
    /// Id.
    pub id: Uuid,
    /// The customer's reference.
    pub reference_code: String,
    /// Status.
    pub status: BookingStatus,
    /// Kind.
    #[serde(rename = "type")]
    pub kind: AppointmentKind,
    /// About a kitchen.
    pub for_kitchen: bool,
    /// About a bedroom.
    pub for_bedroom: bool,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email.
    pub email: String,
    /// Phone (E.164).
    pub phone: String,
    /// Property postcode.
    pub postcode: String,
    /// Property address.
    pub address: String,
    /// Notes for the designer.
    pub notes: Option<String>,
    /// The slot taken.
    pub slot_id: Uuid,
    /// Start (UTC).
    pub starts_at: DateTime<Utc>,
    /// End (UTC).
    pub ends_at: DateTime<Utc>,
    /// The consultant.
    pub consultant_id: Uuid,
    /// The showroom (showroom visits).
    pub showroom_id: Option<Uuid>,
    /// The customer's account (absent for guests).
    pub user_id: Option<Uuid>,
    /// Slot, consultant, showroom and type as they were when booked.
    #[schema(value_type = Object)]
    pub snapshot: serde_json::Value,
    /// When cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Why cancelled.
    pub cancel_reason: Option<String>,
    /// Booked at.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Every change (staff views only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryView>>,
}

/// The view of a booking for a caller with `relation` to it (history is added separately).
pub fn view_of(row: BookingRow, _relation: Relation) -> AppointmentResult<BookingView> {
    Ok(BookingView {
        status: row.status()?,
        kind: kind_of(&row.appointment_type)?,
        id: row.id,
        reference_code: row.reference_code,
        for_kitchen: row.for_kitchen,
        for_bedroom: row.for_bedroom,
        first_name: row.first_name,
        last_name: row.last_name,
        email: row.email,
        phone: row.phone,
        postcode: row.postcode,
        address: row.address,
        notes: row.notes,
        slot_id: row.slot_id,
        starts_at: row.starts_at,
        ends_at: row.ends_at,
        consultant_id: row.consultant_id,
        showroom_id: row.showroom_id,
        user_id: row.user_id,
        snapshot: row.snapshot,
        cancelled_at: row.cancelled_at,
        cancel_reason: row.cancel_reason,
        created_at: row.created_at,
        updated_at: row.updated_at,
        history: None,
    })
}

async fn history(state: &AppState, booking_id: Uuid) -> AppointmentResult<Vec<HistoryView>> {
    Ok(sqlx::query_as!(
        HistoryView,
        r#"SELECT action, from_status, to_status, actor_id, actor_role, reason, details,
                  created_at AS at
           FROM booking_history WHERE booking_id = $1 ORDER BY created_at, id"#,
        booking_id
    )
    .fetch_all(&state.db)
    .await?)
}

/// One booking: its owner, its consultant and admins see it (staff with its history); anyone
/// else gets 404.
#[utoipa::path(
    get,
    path = "/v1/appointments/{id}",
    tag = "appointments",
    params(("id" = Uuid, Path, description = "Booking id")),
    responses(
        (status = 200, description = "The booking", body = BookingView),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such booking for this caller", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn get_booking(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> AppointmentResult<Json<BookingView>> {
    let mut conn = state.db.acquire().await?;
    let row = super::load(&mut conn, id, false)
        .await?
        .ok_or(AppointmentError::NotFound("appointment"))?;
    drop(conn);
    let relation = super::relation(&caller, &row)?;
    let mut view = view_of(row, relation)?;
    if relation != Relation::Owner {
        view.history = Some(history(&state, id).await?);
    }
    Ok(Json(view))
}

/// Keyset position in `/mine`.
#[derive(Debug, Serialize, Deserialize)]
struct MineKey {
    at: DateTime<Utc>,
    id: Uuid,
}

/// The signed-in customer's bookings, latest start first (cursor-paged).
#[utoipa::path(
    get,
    path = "/v1/appointments/mine",
    tag = "appointments",
    params(CursorParams),
    responses(
        (status = 200, description = "One page", body = CursorPage<BookingView>),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn mine(
    State(state): State<AppState>,
    caller: Caller,
    ValidatedQuery(paging): ValidatedQuery<CursorParams>,
) -> AppointmentResult<Json<CursorPage<BookingView>>> {
    let after: Option<MineKey> = paging.decode()?;
    let limit = paging.limit();
    let rows = sqlx::query_as!(
        BookingRow,
        r#"SELECT b.id, b.reference_code, b.user_id, b.appointment_type, b.for_kitchen,
                  b.for_bedroom, b.first_name, b.last_name, b.email, b.phone, b.postcode,
                  b.address, b.notes, b.slot_id, b.consultant_id,
                  c.user_id AS consultant_user_id, b.showroom_id,
                  lower(b.during) AS "starts_at!", upper(b.during) AS "ends_at!", b.status,
                  b.snapshot, b.cancelled_at, b.cancel_reason, b.created_at, b.updated_at
           FROM bookings b JOIN consultants c ON c.id = b.consultant_id
           WHERE b.user_id = $1
             AND ($2::timestamptz IS NULL OR (lower(b.during), b.id) < ($2, $3))
           ORDER BY lower(b.during) DESC, b.id DESC
           LIMIT $4"#,
        caller.user_id,
        after.as_ref().map(|k| k.at),
        after.as_ref().map(|k| k.id),
        i64::from(limit) + 1,
    )
    .fetch_all(&state.db)
    .await?;
    let views = rows
        .into_iter()
        .map(|r| view_of(r, Relation::Owner))
        .collect::<AppointmentResult<Vec<_>>>()?;
    Ok(Json(CursorPage::from_rows(views, limit, |v| MineKey {
        at: v.starts_at,
        id: v.id,
    })))
}

/// A diary window.
#[derive(Debug, Default, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DiaryQuery {
    /// First day (London), default today.
    pub from: Option<NaiveDate>,
    /// Last day (London, inclusive), default 6 days after `from`; at most 62 days after it.
    pub to: Option<NaiveDate>,
}

/// The signed-in consultant's bookings in a window, earliest first.
#[utoipa::path(
    get,
    path = "/v1/consultants/me/appointments",
    tag = "appointments",
    params(DiaryQuery),
    responses(
        (status = 200, description = "Their bookings", body = Vec<BookingView>),
        (status = 403, description = "Not a consultant", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No consultant profile for this user", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad window", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn diary(
    State(state): State<AppState>,
    caller: Caller,
    ValidatedQuery(query): ValidatedQuery<DiaryQuery>,
) -> AppointmentResult<Json<Vec<BookingView>>> {
    caller.require(&[Role::Consultant])?;
    let from = query.from.unwrap_or_else(|| Utc::now().date_naive());
    let to = query.to.unwrap_or(from + Duration::days(6));
    if to < from || (to - from).num_days() > 62 {
        return Err(AppointmentError::field(
            "to",
            "must be on or after from, and at most 62 days after it",
        ));
    }
    let consultant = sqlx::query_scalar!(
        "SELECT id FROM consultants WHERE user_id = $1",
        caller.user_id
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or(AppointmentError::NotFound("consultant profile"))?;
    let rows = sqlx::query_as!(
        BookingRow,
        r#"SELECT b.id, b.reference_code, b.user_id, b.appointment_type, b.for_kitchen,
                  b.for_bedroom, b.first_name, b.last_name, b.email, b.phone, b.postcode,
                  b.address, b.notes, b.slot_id, b.consultant_id,
                  c.user_id AS consultant_user_id, b.showroom_id,
                  lower(b.during) AS "starts_at!", upper(b.during) AS "ends_at!", b.status,
                  b.snapshot, b.cancelled_at, b.cancel_reason, b.created_at, b.updated_at
           FROM bookings b JOIN consultants c ON c.id = b.consultant_id
           WHERE b.consultant_id = $1
             AND lower(b.during) >= $2::date::timestamp AT TIME ZONE 'Europe/London'
             AND lower(b.during) < ($3::date + 1)::timestamp AT TIME ZONE 'Europe/London'
           ORDER BY lower(b.during), b.id"#,
        consultant,
        from,
        to,
    )
    .fetch_all(&state.db)
    .await?;
    rows.into_iter()
        .map(|r| view_of(r, Relation::Consultant))
        .collect::<AppointmentResult<Vec<_>>>()
        .map(Json)
}

/// Filters of the admin table.
#[derive(Debug, Default, Deserialize, Validate, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct AdminQuery {
    /// Page number from 1.
    #[validate(range(min = 1, max = 100000, message = "must be at least 1"))]
    #[param(minimum = 1, maximum = 100000)]
    pub page: Option<u32>,
    /// Rows a page, 1–100 (default 20).
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<u32>,
    /// Statuses, comma-separated (`PENDING,CONFIRMED`).
    #[param(
        pattern = r"^(?:[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*,)*[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:PENDING|CONFIRMED|COMPLETED|NO_SHOW|CANCELLED)[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:,[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:(?:PENDING|CONFIRMED|COMPLETED|NO_SHOW|CANCELLED)[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?)*$"
    )]
    pub status: Option<String>,
    /// Appointment type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<AppointmentKind>,
    /// Starting on or after this day (London).
    pub from: Option<NaiveDate>,
    /// Starting on or before this day (London).
    pub to: Option<NaiveDate>,
    /// Consultant.
    pub consultant_id: Option<Uuid>,
    /// Showroom.
    pub showroom_id: Option<Uuid>,
    /// About a kitchen.
    pub for_kitchen: Option<bool>,
    /// About a bedroom.
    pub for_bedroom: Option<bool>,
    /// A reference code (prefix) or an email address (prefix), case-insensitive.
    #[validate(length(min = 1, max = 254, message = "must be 1–254 characters"))]
    #[param(min_length = 1, max_length = 254)]
    pub search: Option<String>,
}

/// Every booking, filtered, latest start first (admin, offset-paged).
#[utoipa::path(
    get,
    path = "/v1/admin/appointments",
    tag = "admin",
    params(AdminQuery),
    responses(
        (status = 200, description = "One page", body = OffsetPage<BookingView>),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown filter or value", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn admin_list(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ValidatedQuery(query): ValidatedQuery<AdminQuery>,
) -> AppointmentResult<Json<OffsetPage<BookingView>>> {
    let statuses = match query.status.as_deref() {
        None => None,
        Some(raw) => {
            let items: Vec<String> = raw
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if items.is_empty() || items.iter().any(|s| BookingStatus::parse(s).is_none()) {
                return Err(AppointmentError::field(
                    "status",
                    "contains an unknown status",
                ));
            }
            Some(items)
        }
    };
    let search = query
        .search
        .as_deref()
        .map(|s| format!("{}%", like_escape(&s.to_lowercase())));
    let paging = PageParams {
        page: query.page,
        page_size: query.page_size,
    };
    let kind = query.kind.map(AppointmentKind::as_str);
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM bookings b
           WHERE ($1::text[] IS NULL OR b.status = ANY($1))
             AND ($2::text IS NULL OR b.appointment_type = $2)
             AND ($3::date IS NULL OR lower(b.during) >= $3::date::timestamp AT TIME ZONE 'Europe/London')
             AND ($4::date IS NULL OR lower(b.during) < ($4::date + 1)::timestamp AT TIME ZONE 'Europe/London')
             AND ($5::uuid IS NULL OR b.consultant_id = $5)
             AND ($6::uuid IS NULL OR b.showroom_id = $6)
             AND ($7::bool IS NULL OR b.for_kitchen = $7)
             AND ($8::bool IS NULL OR b.for_bedroom = $8)
             AND ($9::text IS NULL OR lower(b.reference_code) LIKE $9 OR lower(b.email) LIKE $9)"#,
        statuses.as_deref(),
        kind,
        query.from,
        query.to,
        query.consultant_id,
        query.showroom_id,
        query.for_kitchen,
        query.for_bedroom,
        search,
    )
    .fetch_one(&state.db)
    .await?;
    let rows = sqlx::query_as!(
        BookingRow,
        r#"SELECT b.id, b.reference_code, b.user_id, b.appointment_type, b.for_kitchen,
                  b.for_bedroom, b.first_name, b.last_name, b.email, b.phone, b.postcode,
                  b.address, b.notes, b.slot_id, b.consultant_id,
                  c.user_id AS consultant_user_id, b.showroom_id,
                  lower(b.during) AS "starts_at!", upper(b.during) AS "ends_at!", b.status,
                  b.snapshot, b.cancelled_at, b.cancel_reason, b.created_at, b.updated_at
           FROM bookings b JOIN consultants c ON c.id = b.consultant_id
           WHERE ($1::text[] IS NULL OR b.status = ANY($1))
             AND ($2::text IS NULL OR b.appointment_type = $2)
             AND ($3::date IS NULL OR lower(b.during) >= $3::date::timestamp AT TIME ZONE 'Europe/London')
             AND ($4::date IS NULL OR lower(b.during) < ($4::date + 1)::timestamp AT TIME ZONE 'Europe/London')
             AND ($5::uuid IS NULL OR b.consultant_id = $5)
             AND ($6::uuid IS NULL OR b.showroom_id = $6)
             AND ($7::bool IS NULL OR b.for_kitchen = $7)
             AND ($8::bool IS NULL OR b.for_bedroom = $8)
             AND ($9::text IS NULL OR lower(b.reference_code) LIKE $9 OR lower(b.email) LIKE $9)
           ORDER BY lower(b.during) DESC, b.id DESC
           LIMIT $10 OFFSET $11"#,
        statuses.as_deref(),
        kind,
        query.from,
        query.to,
        query.consultant_id,
        query.showroom_id,
        query.for_kitchen,
        query.for_bedroom,
        search,
        i64::from(paging.page_size()),
        paging.offset(),
    )
    .fetch_all(&state.db)
    .await?;
    let data = rows
        .into_iter()
        .map(|r| view_of(r, Relation::Admin))
        .collect::<AppointmentResult<Vec<_>>>()?;
    Ok(Json(OffsetPage {
        data,
        page: paging.page(),
        page_size: paging.page_size(),
        total,
    }))
}

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(mine))
        .routes(routes!(get_booking))
        .routes(routes!(diary))
        .routes(routes!(admin_list))
}

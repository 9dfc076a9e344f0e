//! The availability search: free slots by day, cached briefly.
//!
//! Answers go through a [`ResponseCache`] of their own namespace (`availability`), versioned:
//! every booking, cancellation, reschedule and slot change bumps the version, so a change is
//! visible at once on the replica that made it (within a second on the others) although entries
//! live `AVAILABILITY_CACHE_TTL_SECS`. Hot answers are held in memory, concurrent misses of one
//! answer (every search misses right after a booking) are rendered once, and a client holding
//! the current `ETag` gets a 304. Redis trouble costs only the cache.

use std::time::Duration as StdDuration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use service_kit::ValidatedQuery;
use service_kit::cache::{ResponseCache, Ttl};
use service_kit::redis::Redis;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validation::UkPostcode;
use validator::Validate;

use crate::AppState;
use crate::catalogue::AppointmentKind;
use crate::error::{AppointmentError, AppointmentResult};

/// Longest span one search may cover, in days.
pub const MAX_SPAN_DAYS: i64 = 31;

/// What to search for.
#[derive(Debug, Clone, Deserialize, Serialize, Validate, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct AvailabilityQuery {
    /// The kind of appointment.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: AppointmentKind,
    /// The property's postcode (required for HOME_MEASUREMENT).
    #[param(
        max_length = 32,
        pattern = r"^ *(?:[Gg] *[Ii] *[Rr] *0 *[Aa] *[Aa]|[Bb] *[Ff] *[Pp] *[Oo] *[1-9](?: *[0-9]){0,3}|[A-PR-UWYZa-pr-uwyz] *(?:[0-9](?: *[0-9])?|[A-HK-Ya-hk-y] *[0-9](?: *(?:[0-9]|[ABEHMNPRV-Yabehmnprv-y]))?|[0-9] *[A-HJKPSTUWa-hjkpstuw]) *[0-9] *[ABD-HJLNP-UW-Zabd-hjlnp-uw-z] *[ABD-HJLNP-UW-Zabd-hjlnp-uw-z]) *$"
    )]
    pub postcode: Option<String>,
    /// The showroom (required for SHOWROOM_VISIT).
    pub showroom_id: Option<Uuid>,
    /// First day (London), default today.
    pub from: Option<NaiveDate>,
    /// Last day (London, inclusive), default 13 days after `from`; at most 31 days after it.
    pub to: Option<NaiveDate>,
}

/// The consultant of a slot.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlotConsultant {
    /// Id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
}

/// A free slot.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FreeSlot {
    /// The slot to book.
    pub id: Uuid,
    /// Start (UTC).
    pub starts_at: DateTime<Utc>,
    /// End (UTC).
    pub ends_at: DateTime<Utc>,
    /// Who.
    pub consultant: SlotConsultant,
    /// Where, for showroom visits.
    pub showroom_id: Option<Uuid>,
}

/// The free slots of one London day.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Day {
    /// The date (London).
    pub date: NaiveDate,
    /// Its free slots, earliest first.
    pub slots: Vec<FreeSlot>,
}

/// The answer: days that have free slots.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Availability {
    /// The kind searched.
    #[serde(rename = "type")]
    pub kind: AppointmentKind,
    /// First day searched.
    pub from: NaiveDate,
    /// Last day searched.
    pub to: NaiveDate,
    /// Days with at least one free slot.
    pub days: Vec<Day>,
}

struct Search {
    kind: AppointmentKind,
    coverage: Option<Vec<String>>,
    showroom_id: Option<Uuid>,
    from: NaiveDate,
    to: NaiveDate,
}

fn parse(query: AvailabilityQuery) -> AppointmentResult<Search> {
    let mut errors = Vec::new();
    let postcode = match (query.kind, query.postcode.as_deref()) {
        (AppointmentKind::HomeMeasurement, None) => {
            errors.push(service_kit::FieldError::new(
                "postcode",
                "is required for HOME_MEASUREMENT",
            ));
            None
        }
        (_, Some(raw)) => crate::error::collect(&mut errors, "postcode", UkPostcode::parse(raw)),
        (_, None) => None,
    };
    if query.kind == AppointmentKind::ShowroomVisit && query.showroom_id.is_none() {
        errors.push(service_kit::FieldError::new(
            "showroomId",
            "is required for SHOWROOM_VISIT",
        ));
    }
    let from = query.from.unwrap_or_else(|| Utc::now().date_naive());
    let to = query.to.unwrap_or(from + Duration::days(13));
    if to < from {
        errors.push(service_kit::FieldError::new(
            "to",
            "must not be before from",
        ));
    } else if (to - from).num_days() > MAX_SPAN_DAYS {
        errors.push(service_kit::FieldError::new(
            "to",
            format!("must be at most {MAX_SPAN_DAYS} days after from"),
        ));
    }
    if !errors.is_empty() {
        return Err(AppointmentError::Validation(errors));
    }
    Ok(Search {
        kind: query.kind,
        // Home visits go to consultants covering the district or the whole area.
        coverage: match query.kind {
            AppointmentKind::HomeMeasurement => {
                postcode.map(|p| vec![p.outward().to_owned(), p.area().to_owned()])
            }
            _ => None,
        },
        showroom_id: match query.kind {
            AppointmentKind::ShowroomVisit => query.showroom_id,
            _ => None,
        },
        from,
        to,
    })
}

/// Free slots by day: never in the past, inside the minimum notice or beyond the horizon.
#[utoipa::path(
    get,
    path = "/v1/availability",
    tag = "availability",
    params(AvailabilityQuery),
    responses(
        (status = 200, description = "Days with free slots", body = Availability),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 422, description = "Missing postcode or showroom, bad dates", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    ValidatedQuery(query): ValidatedQuery<AvailabilityQuery>,
) -> AppointmentResult<Response> {
    let search = parse(query)?;
    let normalised = format!(
        "{}|{:?}|{:?}|{}|{}",
        search.kind.as_str(),
        search.coverage,
        search.showroom_id,
        search.from,
        search.to
    );
    state
        .availability
        .serve(&headers, "search", &normalised, Ttl::List, || {
            render(&state, &search)
        })
        .await
}

/// The answer to a search, as JSON.
async fn render(state: &AppState, search: &Search) -> AppointmentResult<String> {
    let now = Utc::now();
    let rows = sqlx::query!(
        r#"SELECT s.id, lower(s.during) AS "starts_at!", upper(s.during) AS "ends_at!",
                  s.consultant_id, c.name, s.showroom_id,
                  (lower(s.during) AT TIME ZONE 'Europe/London')::date AS "day!"
           FROM time_slots s
           JOIN consultants c ON c.id = s.consultant_id AND c.active
           JOIN appointment_types t ON t.code = s.appointment_type
           WHERE s.appointment_type = $1
             AND s.status = 'OPEN'
             AND lower(s.during) >= GREATEST($2::date::timestamp AT TIME ZONE 'Europe/London', $4)
             AND lower(s.during) < LEAST(($3::date + 1)::timestamp AT TIME ZONE 'Europe/London', $5)
             AND ($6::uuid IS NULL OR s.showroom_id = $6)
             AND ($7::text[] IS NULL OR c.coverage && $7)
             AND NOT EXISTS (
                 SELECT 1 FROM bookings b
                 WHERE b.consultant_id = s.consultant_id
                   AND b.status IN ('PENDING', 'CONFIRMED')
                   AND b.blocks && tstzrange(lower(s.during),
                                             upper(s.during) + make_interval(mins => t.buffer_minutes)))
           ORDER BY lower(s.during), c.name, s.id"#,
        search.kind.as_str(),
        search.from,
        search.to,
        now + state.settings.min_notice,
        now + Duration::days(i64::from(state.settings.horizon_days)),
        search.showroom_id,
        search.coverage.as_deref(),
    )
    .fetch_all(&state.db)
    .await?;
    let mut days: Vec<Day> = Vec::new();
    for row in rows {
        let slot = FreeSlot {
            id: row.id,
            starts_at: row.starts_at,
            ends_at: row.ends_at,
            consultant: SlotConsultant {
                id: row.consultant_id,
                name: row.name,
            },
            showroom_id: row.showroom_id,
        };
        match days.last_mut() {
            Some(day) if day.date == row.day => day.slots.push(slot),
            _ => days.push(Day {
                date: row.day,
                slots: vec![slot],
            }),
        }
    }
    let body = serde_json::to_string(&Availability {
        kind: search.kind,
        from: search.from,
        to: search.to,
        days,
    })
    .map_err(anyhow::Error::from)?;
    Ok(body)
}

/// Bytes of answers held in memory: a fortnight of slots for many consultants is a few hundred
/// kilobytes, and a handful of searches (type × area × window) are the hot ones.
const HELD_BYTES: usize = 32 << 20;
/// Answers held in memory at most.
const HELD_ANSWERS: usize = 256;

/// The availability cache over `redis`, its answers living `ttl`.
pub fn cache(redis: Redis, ttl: StdDuration) -> ResponseCache {
    ResponseCache::new(redis, ttl, ttl, StdDuration::from_millis(250))
        .with_namespace("availability")
        .with_local_entries(HELD_BYTES, HELD_ANSWERS)
}

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search))
}

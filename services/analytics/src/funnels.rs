//! Funnels: admin-defined ordered steps (event name + property filters + a window from the
//! previous step), reported per day of entry, computed in SQL.
//!
//! Semantics: an *actor* (the user when known, else the browser's anonymous id, else the session)
//! enters on its first step-1 event in the range; it reaches step *k* with its earliest step-*k*
//! event at or after the time it reached step *k−1* and within that step's window. Later steps
//! may fall after the range (a conversion completes after entry). The query is one statement of
//! chained CTEs, one per step, each an aggregate over the `(event, occurred_at)` index.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use service_kit::{AdminCaller, FieldError, Problem, ValidatedQuery};
use sqlx::Row;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::aggregates::DateRange;
use crate::error::{AnalyticsError, Result};

const DEFAULT_WINDOW_SECS: u32 = 7 * 24 * 3600;
const MAX_WINDOW_SECS: u32 = 90 * 24 * 3600;

/// One step of a funnel.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The event name, 1–100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub event: String,
    /// Properties the event must have (at most 10, scalar values, compared exactly).
    #[serde(default)]
    #[schema(schema_with = filters_schema)]
    pub filters: Map<String, Value>,
    /// Seconds allowed since the previous step (default 7 days, at most 90; ignored on step 1).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 7776000)]
    pub within_secs: Option<u32>,
}

/// A step's filters: an object of at most 10 scalar (string, number or boolean) members.
fn filters_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .max_properties(Some(10))
        .additional_properties(Some(AdditionalProperties::RefOr(
            ObjectBuilder::new()
                .schema_type(SchemaType::Array(vec![
                    Type::String,
                    Type::Number,
                    Type::Boolean,
                ]))
                .into(),
        )))
        .description(Some(
            "Properties the event must have (at most 10, scalar values, compared exactly).",
        ))
        .build()
}

/// A funnel to create.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewFunnel {
    /// Its name, 1–200 characters, not blank.
    #[schema(
        max_length = 200,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: String,
    /// 2–10 steps in order. A step may not have the same `event` and `filters` as the step
    /// before it (422): the report lets one event reach consecutive steps (a step is reached by
    /// an event at or after the previous step's), so such a step would count nothing new.
    #[schema(min_items = 2, max_items = 10)]
    pub steps: Vec<Step>,
}

/// A stored funnel.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Funnel {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its steps.
    pub steps: Vec<Step>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// One step's result.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepResult {
    /// The event name.
    pub event: String,
    /// Actors who reached it.
    pub count: i64,
    /// Share of the previous step's actors (1 for step 1 when any entered).
    pub conversion_from_previous: f64,
    /// Share of the actors who entered.
    pub conversion_from_start: f64,
}

/// One day of entries.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DayCounts {
    /// The day actors entered.
    pub date: NaiveDate,
    /// Actors reaching each step.
    pub counts: Vec<i64>,
}

/// A funnel's report over a range.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FunnelReport {
    /// The funnel.
    pub funnel: Funnel,
    /// Per step, over the whole range.
    pub steps: Vec<StepResult>,
    /// Per day of entry (days without entries are left out).
    pub days: Vec<DayCounts>,
}

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_funnel))
        .routes(routes!(funnel_report))
}

fn validate(new: &NewFunnel) -> Result<()> {
    let mut errors = Vec::new();
    if new.name.trim().is_empty() || new.name.chars().count() > 200 {
        errors.push(FieldError::new("name", "must be 1-200 characters"));
    }
    if !(2..=10).contains(&new.steps.len()) {
        errors.push(FieldError::new("steps", "must hold 2 to 10 steps"));
    }
    for (i, step) in new.steps.iter().enumerate() {
        if step.event.is_empty() || step.event.chars().count() > 100 {
            errors.push(FieldError::new(
                format!("steps[{i}].event"),
                "must be 1-100 characters",
            ));
        }
        if step.filters.len() > 10
            || step
                .filters
                .values()
                .any(|v| !(v.is_string() || v.is_number() || v.is_boolean()))
        {
            errors.push(FieldError::new(
                format!("steps[{i}].filters"),
                "at most 10 properties, each a string, number or boolean",
            ));
        }
        if step
            .within_secs
            .is_some_and(|w| w == 0 || w > MAX_WINDOW_SECS)
        {
            errors.push(FieldError::new(
                format!("steps[{i}].withinSecs"),
                "must be between 1 second and 90 days",
            ));
        }
        if i > 0 && new.steps[i - 1].event == step.event && new.steps[i - 1].filters == step.filters
        {
            errors.push(FieldError::new(
                format!("steps[{i}]"),
                "must differ from the previous step",
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AnalyticsError::Validation(errors))
    }
}

/// Defines a funnel.
#[utoipa::path(
    post,
    path = "/v1/analytics/funnels",
    tag = "analytics",
    request_body = NewFunnel,
    responses(
        (status = 201, description = "Created", body = Funnel),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_funnel(
    State(state): State<AppState>,
    _admin: AdminCaller,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Funnel>)> {
    let new: NewFunnel = service_kit::extract::parse_json(&body)?;
    validate(&new)?;
    let id = Uuid::now_v7();
    let steps = serde_json::to_value(&new.steps).unwrap_or(Value::Null);
    let created_at: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO funnels (id, name, steps) VALUES ($1, $2, $3) RETURNING created_at",
    )
    .bind(id)
    .bind(new.name.trim())
    .bind(steps)
    .fetch_one(&state.db)
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Funnel {
            id,
            name: new.name.trim().to_owned(),
            steps: new.steps,
            created_at,
        }),
    ))
}

/// Conversion per step and per day of entry over a range.
#[utoipa::path(
    get,
    path = "/v1/analytics/funnels/{id}/report",
    tag = "analytics",
    params(("id" = Uuid, Path, description = "Funnel id"), DateRange),
    responses(
        (status = 200, description = "The report", body = FunnelReport),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such funnel", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad range", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn funnel_report(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Path(id): Path<Uuid>,
    ValidatedQuery(range): ValidatedQuery<DateRange>,
) -> Result<Json<FunnelReport>> {
    range.check()?;
    let row = sqlx::query("SELECT name, steps, created_at FROM funnels WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.db)
        .await?
        .ok_or(AnalyticsError::NotFound("funnel"))?;
    let steps: Vec<Step> = serde_json::from_value(row.try_get("steps")?)
        .map_err(|e| AnalyticsError::Problem(Problem::internal(&e)))?;
    let funnel = Funnel {
        id,
        name: row.try_get("name")?,
        steps,
        created_at: row.try_get("created_at")?,
    };
    let days = compute(&state.db, &funnel.steps, &range).await?;
    let mut totals = vec![0_i64; funnel.steps.len()];
    for day in &days {
        for (total, n) in totals.iter_mut().zip(&day.counts) {
            *total += n;
        }
    }
    let ratio = |n: i64, d: i64| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    let steps = funnel
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| StepResult {
            event: step.event.clone(),
            count: totals[i],
            conversion_from_previous: ratio(totals[i], totals[i.saturating_sub(1)]),
            conversion_from_start: ratio(totals[i], totals[0]),
        })
        .collect();
    Ok(Json(FunnelReport {
        funnel,
        steps,
        days,
    }))
}

/// Runs the funnel query: one CTE per step, then counts per day of entry.
pub async fn compute(
    db: &sqlx::PgPool,
    steps: &[Step],
    range: &DateRange,
) -> Result<Vec<DayCounts>, sqlx::Error> {
    let from = range.from.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    let to = range
        .to
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc());
    let mut sql = String::from(
        "WITH s0 AS (SELECT actor, min(occurred_at) AS t FROM tracking_events
           WHERE event = $1 AND properties @> $2::jsonb AND occurred_at >= $3 AND occurred_at < $4
             AND actor IS NOT NULL GROUP BY actor)",
    );
    let mut n = 4;
    for i in 1..steps.len() {
        sql.push_str(&format!(
            ", s{i} AS (SELECT p.actor, min(e.occurred_at) AS t FROM s{prev} p
                 JOIN tracking_events e ON e.actor = p.actor AND e.event = ${a}
                  AND e.properties @> ${b}::jsonb AND e.occurred_at >= p.t
                  AND e.occurred_at <= p.t + make_interval(secs => ${c})
                 GROUP BY p.actor)",
            prev = i - 1,
            a = n + 1,
            b = n + 2,
            c = n + 3,
        ));
        n += 3;
    }
    let counts: Vec<String> = (0..steps.len())
        .map(|i| format!("count(s{i}.actor)"))
        .collect();
    sql.push_str(&format!(
        " SELECT (s0.t AT TIME ZONE 'UTC')::date AS day, ARRAY[{}]::bigint[] AS counts FROM s0",
        counts.join(", ")
    ));
    for i in 1..steps.len() {
        sql.push_str(&format!(" LEFT JOIN s{i} ON s{i}.actor = s0.actor"));
    }
    sql.push_str(" GROUP BY 1 ORDER BY 1");

    // Only step indexes and placeholder numbers are formatted in; every value is bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&steps[0].event)
        .bind(Value::Object(steps[0].filters.clone()))
        .bind(from)
        .bind(to);
    for step in &steps[1..] {
        query = query
            .bind(&step.event)
            .bind(Value::Object(step.filters.clone()))
            .bind(f64::from(step.within_secs.unwrap_or(DEFAULT_WINDOW_SECS)));
    }
    let rows = query.fetch_all(db).await?;
    rows.iter()
        .map(|row| {
            Ok(DayCounts {
                date: row.try_get("day")?,
                counts: row.try_get("counts")?,
            })
        })
        .collect()
}

//! Daily aggregates and the admin dashboard.
//!
//! Every statement that inserts tracking events also marks their UTC days in
//! `aggregate_dirty_days` ([`crate::store::insert`]). The job ([`run`]) takes dirty days with
//! `FOR UPDATE SKIP LOCKED`, recomputes all metrics of those days from the raw events and
//! replaces their `daily_metrics` rows in the same transaction; an insert racing with it
//! re-marks the day (it waits on the locked row, which is gone once the job commits), so the
//! day is recomputed again. The dashboard reads `daily_metrics` only, never raw events.
//!
//! Visitors and sessions are distinct counts per day; over a range the dashboard sums the days
//! (a visitor on two days counts twice), which is the usual "daily visitors" reading.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::extract::State;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use service_kit::{AdminCaller, Problem, ValidatedQuery};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use validator::Validate;

use crate::AppState;
use crate::error::{AnalyticsError, Result};

/// Days recomputed per job transaction.
const DAYS_PER_RUN: i64 = 31;

/// Recomputes the aggregates of (up to a month of) dirty days; returns how many days.
pub async fn recompute_dirty_days(db: &PgPool) -> Result<usize, sqlx::Error> {
    let mut tx = db.begin().await?;
    let days: Vec<NaiveDate> = sqlx::query_scalar(
        "DELETE FROM aggregate_dirty_days WHERE day IN (
             SELECT day FROM aggregate_dirty_days ORDER BY day LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING day",
    )
    .bind(DAYS_PER_RUN)
    .fetch_all(&mut *tx)
    .await?;
    if days.is_empty() {
        return Ok(0);
    }
    sqlx::query("DELETE FROM daily_metrics WHERE day = ANY($1)")
        .bind(&days)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        r#"WITH d AS (SELECT unnest($1::date[]) AS day),
           e AS (
               SELECT d.day, t.event, t.source, t.actor, t.session_id, t.properties,
                      t.referrer_host, t.revenue, t.currency
               FROM d JOIN tracking_events t
                 ON t.occurred_at >= (d.day::timestamp AT TIME ZONE 'UTC')
                AND t.occurred_at < ((d.day + 1)::timestamp AT TIME ZONE 'UTC')
           )
           INSERT INTO daily_metrics (day, metric, dimension, value)
           SELECT day, 'visitors', '', count(DISTINCT actor) FROM e
             WHERE source <> 'SERVER' GROUP BY 1
           UNION ALL SELECT day, 'sessions', '', count(DISTINCT session_id) FROM e
             WHERE session_id IS NOT NULL GROUP BY 1
           UNION ALL SELECT day, 'page_views', '', count(*) FROM e
             WHERE event = 'page_viewed' GROUP BY 1
           UNION ALL SELECT day, 'bookings', COALESCE(properties->>'appointmentType', ''), count(*)
             FROM e WHERE event = 'booking_created' GROUP BY 1, 3
           UNION ALL SELECT day, 'brochure_requests', '', count(*) FROM e
             WHERE event = 'brochure_requested' GROUP BY 1
           UNION ALL SELECT day, 'orders', COALESCE(currency, ''), count(*) FROM e
             WHERE event = 'purchase' GROUP BY 1, 3
           UNION ALL SELECT day, 'revenue', COALESCE(currency, ''), COALESCE(sum(revenue), 0)::bigint
             FROM e WHERE event = 'purchase' GROUP BY 1, 3
           UNION ALL SELECT day, 'product_views', properties->>'productId', count(*) FROM e
             WHERE event = 'product_viewed' AND properties->>'productId' IS NOT NULL GROUP BY 1, 3
           UNION ALL SELECT day, 'referrers', referrer_host, count(*) FROM e
             WHERE referrer_host IS NOT NULL GROUP BY 1, 3"#,
    )
    .bind(&days)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(days.len())
}

/// Deletes raw events older than `days` (in slices, so no long lock); returns how many.
pub async fn apply_retention(db: &PgPool, days: u32) -> Result<u64, sqlx::Error> {
    if days == 0 {
        return Ok(0);
    }
    let mut deleted = 0;
    loop {
        let n = sqlx::query(
            "DELETE FROM tracking_events WHERE id IN (
                 SELECT id FROM tracking_events
                 WHERE occurred_at < now() - make_interval(days => $1) LIMIT 10000)",
        )
        .bind(i32::try_from(days).unwrap_or(i32::MAX))
        .execute(db)
        .await?
        .rows_affected();
        deleted += n;
        if n < 10_000 {
            return Ok(deleted);
        }
    }
}

/// The job: aggregates every `interval`, retention once an hour, until cancelled.
pub async fn run(db: PgPool, interval: Duration, retention_days: u32, token: CancellationToken) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_retention: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = token.cancelled() => return,
        }
        loop {
            match recompute_dirty_days(&db).await {
                Ok(n) if n as i64 == DAYS_PER_RUN => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "aggregate job failed; retrying next tick");
                    break;
                }
            }
        }
        if last_retention.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
            last_retention = Some(tokio::time::Instant::now());
            if let Err(error) = apply_retention(&db, retention_days).await {
                tracing::warn!(%error, "retention failed");
            }
        }
    }
}

/// A date range, inclusive, at most 366 days.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DateRange {
    /// First day (UTC), `YYYY-MM-DD`. The range spans at most 366 days: `to` is `from` to
    /// `from` + 366 days (otherwise 422).
    pub from: NaiveDate,
    /// Last day (UTC), inclusive: not before `from` and at most 366 days after it (otherwise
    /// 422).
    pub to: NaiveDate,
}

impl DateRange {
    /// 422 unless `from <= to` and the range spans at most 366 days.
    pub fn check(&self) -> Result<()> {
        if self.to < self.from {
            return Err(AnalyticsError::field("to", "must not be before from"));
        }
        if (self.to - self.from).num_days() > 366 {
            return Err(AnalyticsError::field("to", "the range is at most 366 days"));
        }
        Ok(())
    }
}

/// An amount of money.
#[derive(Debug, Serialize, Deserialize, ToSchema, PartialEq)]
#[schema(as = AnalyticsMoney)]
pub struct Money {
    /// Minor units.
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// A ranked key with its count.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Ranked {
    /// Product id or referrer host.
    pub key: String,
    /// Its count over the range.
    pub count: i64,
}

/// One day of the time series.
#[derive(Debug, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct DayPoint {
    /// The day.
    pub date: Option<NaiveDate>,
    /// Distinct visitors.
    pub visitors: i64,
    /// Distinct sessions.
    pub sessions: i64,
    /// Page views.
    pub page_views: i64,
    /// Bookings made.
    pub bookings: i64,
    /// Brochures requested.
    pub brochure_requests: i64,
    /// Orders paid.
    pub orders: i64,
}

/// The dashboard's KPIs over a range.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Dashboard {
    /// Sum of the days' figures.
    pub totals: DayPoint,
    /// Bookings by appointment type.
    pub bookings_by_type: BTreeMap<String, i64>,
    /// Revenue of paid orders, per currency.
    pub revenue: Vec<Money>,
    /// Bookings per visitor.
    pub booking_conversion_rate: f64,
    /// Paid orders per visitor.
    pub purchase_conversion_rate: f64,
    /// The 10 most viewed products.
    pub top_products: Vec<Ranked>,
    /// The 10 commonest referrer hosts.
    pub top_referrers: Vec<Ranked>,
    /// One point per day of the range (days without data are zero).
    pub series: Vec<DayPoint>,
}

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(dashboard))
}

/// Dashboard KPIs and daily series, from the daily aggregates.
#[utoipa::path(
    get,
    path = "/v1/analytics/dashboard",
    tag = "analytics",
    params(DateRange),
    responses(
        (status = 200, description = "KPIs", body = Dashboard),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad range", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn dashboard(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ValidatedQuery(range): ValidatedQuery<DateRange>,
) -> Result<axum::Json<Dashboard>> {
    range.check()?;
    let rows: Vec<(NaiveDate, String, String, i64)> = sqlx::query_as(
        "SELECT day, metric, dimension, value FROM daily_metrics WHERE day BETWEEN $1 AND $2",
    )
    .bind(range.from)
    .bind(range.to)
    .fetch_all(&state.db)
    .await?;
    Ok(axum::Json(build(&range, rows)))
}

fn build(range: &DateRange, rows: Vec<(NaiveDate, String, String, i64)>) -> Dashboard {
    let mut days: BTreeMap<NaiveDate, DayPoint> = range
        .from
        .iter_days()
        .take_while(|d| *d <= range.to)
        .map(|d| {
            (
                d,
                DayPoint {
                    date: Some(d),
                    ..DayPoint::default()
                },
            )
        })
        .collect();
    let mut by_type = BTreeMap::new();
    let mut revenue: BTreeMap<String, i64> = BTreeMap::new();
    let mut products: HashMap<String, i64> = HashMap::new();
    let mut referrers: HashMap<String, i64> = HashMap::new();
    for (day, metric, dimension, value) in rows {
        let Some(point) = days.get_mut(&day) else {
            continue;
        };
        match metric.as_str() {
            "visitors" => point.visitors += value,
            "sessions" => point.sessions += value,
            "page_views" => point.page_views += value,
            "bookings" => {
                point.bookings += value;
                *by_type.entry(dimension).or_insert(0) += value;
            }
            "brochure_requests" => point.brochure_requests += value,
            "orders" => point.orders += value,
            "revenue" => *revenue.entry(dimension).or_insert(0) += value,
            "product_views" => *products.entry(dimension).or_insert(0) += value,
            "referrers" => *referrers.entry(dimension).or_insert(0) += value,
            _ => {}
        }
    }
    let series: Vec<DayPoint> = days.into_values().collect();
    let mut totals = DayPoint::default();
    for p in &series {
        totals.visitors += p.visitors;
        totals.sessions += p.sessions;
        totals.page_views += p.page_views;
        totals.bookings += p.bookings;
        totals.brochure_requests += p.brochure_requests;
        totals.orders += p.orders;
    }
    let rate = |n: i64| {
        if totals.visitors == 0 {
            0.0
        } else {
            n as f64 / totals.visitors as f64
        }
    };
    Dashboard {
        booking_conversion_rate: rate(totals.bookings),
        purchase_conversion_rate: rate(totals.orders),
        totals,
        bookings_by_type: by_type,
        revenue: revenue
            .into_iter()
            .map(|(currency, amount)| Money { amount, currency })
            .collect(),
        top_products: top(products),
        top_referrers: top(referrers),
        series,
    }
}

fn top(counts: HashMap<String, i64>) -> Vec<Ranked> {
    let mut ranked: Vec<Ranked> = counts
        .into_iter()
        .map(|(key, count)| Ranked { key, count })
        .collect();
    ranked.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    ranked.truncate(10);
    ranked
}

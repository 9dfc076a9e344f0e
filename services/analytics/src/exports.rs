//! CSV exports (ADMIN), streamed: `GET /v1/analytics/exports/events.csv?from&to&event=` (raw
//! events), `.../bookings.csv?from&to` and `.../revenue.csv?from&to` (summaries from the daily
//! aggregates, so they never scan raw events).
//!
//! A task reads the rows with `fetch` (rows are decoded as they arrive from Postgres) and sends
//! ~64 KiB chunks through a channel of 4; the response body is that channel. Memory stays flat
//! however many rows the range holds, and a slow client slows the query instead of growing a
//! buffer. A client that disconnects closes the channel and the task stops.

use std::fmt::Write as _;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use serde::Deserialize;
use service_kit::{AdminCaller, Problem, ValidatedQuery, csv};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{PgPool, Postgres, Row};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use validator::Validate;

use crate::AppState;
use crate::aggregates::DateRange;
use crate::error::Result;

const CHUNK: usize = 64 * 1024;
const HEADER: &[&str] = &[
    "occurredAt",
    "event",
    "messageId",
    "source",
    "userId",
    "anonymousId",
    "sessionId",
    "pageUrl",
    "referrerHost",
    "device",
    "browser",
    "os",
    "revenue",
    "currency",
    "properties",
];

/// Range and optional event name.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// First day (UTC), `YYYY-MM-DD`.
    pub from: NaiveDate,
    /// Last day (UTC), inclusive.
    pub to: NaiveDate,
    /// Only this event name.
    #[validate(length(min = 1, max = 100))]
    #[param(min_length = 1, max_length = 100)]
    pub event: Option<String>,
}

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(events_csv))
        .routes(routes!(bookings_csv))
        .routes(routes!(revenue_csv))
}

/// Tracking events of a range as CSV, streamed in time order.
#[utoipa::path(
    get,
    path = "/v1/analytics/exports/events.csv",
    tag = "analytics",
    params(ExportParams),
    responses(
        (status = 200, description = "CSV", content_type = "text/csv", body = String),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad range", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn events_csv(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ValidatedQuery(params): ValidatedQuery<ExportParams>,
) -> Result<Response> {
    DateRange {
        from: params.from,
        to: params.to,
    }
    .check()?;
    let from = params.from.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    let to = params
        .to
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc());
    let query = sqlx::query(
        "SELECT occurred_at, event, message_id, source, user_id::text AS user_id, anonymous_id,
                session_id, page_url, referrer_host, device, browser, os, revenue, currency,
                properties::text AS properties
         FROM tracking_events
         WHERE occurred_at >= $1 AND occurred_at < $2 AND ($3::text IS NULL OR event = $3)
         ORDER BY occurred_at, id",
    )
    .bind(from)
    .bind(to)
    .bind(params.event);
    Ok(stream_csv(state.db, query, HEADER, "events.csv", write_row))
}

/// Bookings made per day and appointment type, from the daily aggregates.
#[utoipa::path(
    get,
    path = "/v1/analytics/exports/bookings.csv",
    tag = "analytics",
    params(DateRange),
    responses(
        (status = 200, description = "CSV: date,appointmentType,bookings (days with bookings only)", content_type = "text/csv", body = String),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad range", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn bookings_csv(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ValidatedQuery(range): ValidatedQuery<DateRange>,
) -> Result<Response> {
    summary_csv(
        state.db,
        &range,
        "SELECT day, dimension, value FROM daily_metrics
         WHERE metric = 'bookings' AND day BETWEEN $1 AND $2
         ORDER BY day, dimension",
        &["date", "appointmentType", "bookings"],
        "bookings.csv",
    )
}

/// Paid orders and their revenue per day and currency, from the daily aggregates.
#[utoipa::path(
    get,
    path = "/v1/analytics/exports/revenue.csv",
    tag = "analytics",
    params(DateRange),
    responses(
        (status = 200, description = "CSV: date,currency,orders,revenueMinorUnits (days with orders only)", content_type = "text/csv", body = String),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad range", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn revenue_csv(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ValidatedQuery(range): ValidatedQuery<DateRange>,
) -> Result<Response> {
    // Orders are counted per currency since the aggregates carry it; days aggregated before
    // that carry one currency-less orders figure, which the full join keeps.
    summary_csv(
        state.db,
        &range,
        "SELECT day, dimension, COALESCE(o.value, 0) AS orders, COALESCE(r.value, 0) AS revenue
         FROM (SELECT day, dimension, value FROM daily_metrics
               WHERE metric = 'orders' AND day BETWEEN $1 AND $2) o
         FULL JOIN (SELECT day, dimension, value FROM daily_metrics
               WHERE metric = 'revenue' AND day BETWEEN $1 AND $2) r USING (day, dimension)
         ORDER BY day, dimension",
        &["date", "currency", "orders", "revenueMinorUnits"],
        "revenue.csv",
    )
}

/// A summary export of the daily aggregates over `range`: `sql` takes the range as `$1`, `$2`
/// and selects `day`, `dimension`, then the figures (integers), one column per `header` entry
/// after the first two.
fn summary_csv(
    db: PgPool,
    range: &DateRange,
    sql: &'static str,
    header: &'static [&'static str],
    filename: &'static str,
) -> Result<Response> {
    range.check()?;
    let query = sqlx::query(sql).bind(range.from).bind(range.to);
    Ok(stream_csv(db, query, header, filename, write_summary_row))
}

/// Streams the rows of `query` as CSV: a task decodes rows as Postgres sends them and passes
/// ~64 KiB chunks through a channel of 4, which is the response body.
fn stream_csv(
    db: PgPool,
    query: Query<'static, Postgres, PgArguments>,
    header: &'static [&'static str],
    filename: &'static str,
    write: fn(&mut String, &PgRow),
) -> Response {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut rows = query.fetch(&db);
        let mut buf = String::with_capacity(CHUNK + 1024);
        csv::write_row(&mut buf, header);
        loop {
            match rows.try_next().await {
                Ok(Some(row)) => {
                    write(&mut buf, &row);
                    if buf.len() >= CHUNK {
                        let chunk = Bytes::from(std::mem::take(&mut buf));
                        if tx.send(Ok(chunk)).await.is_err() {
                            return; // the client went away
                        }
                        buf.reserve(CHUNK + 1024);
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::error!(%error, filename, "CSV export failed mid-stream");
                    let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
                    return;
                }
            }
        }
        if !buf.is_empty() {
            let _ = tx.send(Ok(Bytes::from(buf))).await;
        }
    });
    // Polled straight off the channel: the compression layer polls a body once more after its
    // end, which a receiver answers with another `None` (an `unfold` stream would panic).
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// `day`, `dimension` (text), then every further column as an integer figure.
fn write_summary_row(buf: &mut String, row: &PgRow) {
    let day: NaiveDate = row.try_get("day").unwrap_or_default();
    let dimension: String = row.try_get("dimension").unwrap_or_default();
    let _ = write!(buf, "{day},");
    csv::write_cell(buf, &dimension);
    for column in 2..row.len() {
        let figure: i64 = row.try_get(column).unwrap_or_default();
        let _ = write!(buf, ",{figure}");
    }
    buf.push_str(csv::ROW_END);
}

fn write_row(buf: &mut String, row: &PgRow) {
    let at: DateTime<Utc> = row.try_get("occurred_at").unwrap_or_default();
    let _ = write!(
        buf,
        "{}",
        at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    for column in [
        "event",
        "message_id",
        "source",
        "user_id",
        "anonymous_id",
        "session_id",
        "page_url",
        "referrer_host",
        "device",
        "browser",
        "os",
    ] {
        buf.push(',');
        let value: Option<String> = row.try_get(column).unwrap_or_default();
        csv::write_cell(buf, value.as_deref().unwrap_or_default());
    }
    buf.push(',');
    if let Ok(Some(revenue)) = row.try_get::<Option<i64>, _>("revenue") {
        let _ = write!(buf, "{revenue}");
    }
    for column in ["currency", "properties"] {
        buf.push(',');
        let value: Option<String> = row.try_get(column).unwrap_or_default();
        csv::write_cell(buf, value.as_deref().unwrap_or_default());
    }
    buf.push_str(csv::ROW_END);
}

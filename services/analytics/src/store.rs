//! The tracking-event store: one row type for client, GTM and server-side events, written with
//! one multi-row `INSERT ... SELECT FROM UNNEST(...) ON CONFLICT (message_id) DO NOTHING`.
//!
//! The same statement marks the UTC days of the rows it inserted as dirty, so the aggregate job
//! recomputes exactly those days (see [`crate::aggregates`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

/// Where an event came from (`tracking_events.source`).
pub const SOURCE_CLIENT: &str = "CLIENT";
/// A GTM dataLayer push.
pub const SOURCE_GTM: &str = "GTM";
/// A domain event from another service.
pub const SOURCE_SERVER: &str = "SERVER";

/// One tracking event, ready to store (also the shape buffered in the Redis stream).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    /// Unique id: a redelivered event with the same id is stored once.
    pub message_id: String,
    /// The event name.
    pub event: String,
    /// `CLIENT`, `GTM` or `SERVER`.
    pub source: String,
    /// Free-form properties (bounded in size at ingest).
    pub properties: serde_json::Value,
    /// The signed-in user, if any.
    pub user_id: Option<Uuid>,
    /// The browser's anonymous id.
    pub anonymous_id: Option<String>,
    /// The browser session.
    pub session_id: Option<String>,
    /// The page the event happened on.
    pub page_url: Option<String>,
    /// Its path.
    pub page_path: Option<String>,
    /// The referring URL.
    pub referrer: Option<String>,
    /// Its host.
    pub referrer_host: Option<String>,
    /// The daily-rotating hash of the truncated client address.
    pub ip_hash: Option<String>,
    /// `DESKTOP`, `MOBILE`, `TABLET`, `BOT` or `OTHER`.
    pub device: Option<String>,
    /// Browser family.
    pub browser: Option<String>,
    /// Operating-system family.
    pub os: Option<String>,
    /// Revenue in minor units (purchases).
    pub revenue: Option<i64>,
    /// Its currency.
    pub currency: Option<String>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

impl EventRow {
    /// A server-side event with no browser context.
    pub fn server(
        message_id: String,
        event: &str,
        user_id: Option<Uuid>,
        properties: serde_json::Value,
        occurred_at: DateTime<Utc>,
    ) -> Self {
        Self {
            message_id,
            event: event.to_owned(),
            source: SOURCE_SERVER.to_owned(),
            properties,
            user_id,
            anonymous_id: None,
            session_id: None,
            page_url: None,
            page_path: None,
            referrer: None,
            referrer_host: None,
            ip_hash: None,
            device: None,
            browser: None,
            os: None,
            revenue: None,
            currency: None,
            occurred_at,
        }
    }
}

/// Inserts `rows` in one statement; returns how many were new (the rest were already stored).
pub async fn insert(conn: &mut PgConnection, rows: &[EventRow]) -> Result<u64, sqlx::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let n = rows.len();
    let mut message_id = Vec::with_capacity(n);
    let mut event = Vec::with_capacity(n);
    let mut source = Vec::with_capacity(n);
    let mut properties = Vec::with_capacity(n);
    let mut user_id = Vec::with_capacity(n);
    let mut anonymous_id = Vec::with_capacity(n);
    let mut session_id = Vec::with_capacity(n);
    let mut page_url = Vec::with_capacity(n);
    let mut page_path = Vec::with_capacity(n);
    let mut referrer = Vec::with_capacity(n);
    let mut referrer_host = Vec::with_capacity(n);
    let mut ip_hash = Vec::with_capacity(n);
    let mut device = Vec::with_capacity(n);
    let mut browser = Vec::with_capacity(n);
    let mut os = Vec::with_capacity(n);
    let mut revenue = Vec::with_capacity(n);
    let mut currency = Vec::with_capacity(n);
    let mut occurred_at = Vec::with_capacity(n);
    for row in rows {
        message_id.push(row.message_id.clone());
        event.push(row.event.clone());
        source.push(row.source.clone());
        properties.push(row.properties.clone());
        user_id.push(row.user_id);
        anonymous_id.push(row.anonymous_id.clone());
        session_id.push(row.session_id.clone());
        page_url.push(row.page_url.clone());
        page_path.push(row.page_path.clone());
        referrer.push(row.referrer.clone());
        referrer_host.push(row.referrer_host.clone());
        ip_hash.push(row.ip_hash.clone());
        device.push(row.device.clone());
        browser.push(row.browser.clone());
        os.push(row.os.clone());
        revenue.push(row.revenue);
        currency.push(row.currency.clone());
        occurred_at.push(row.occurred_at);
    }
    let inserted: i64 = sqlx::query_scalar(
        r#"WITH ins AS (
               INSERT INTO tracking_events (message_id, event, source, properties, user_id,
                   anonymous_id, session_id, page_url, page_path, referrer, referrer_host,
                   ip_hash, device, browser, os, revenue, currency, occurred_at)
               SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::uuid[],
                   $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
                   $12::text[], $13::text[], $14::text[], $15::text[], $16::bigint[],
                   $17::text[], $18::timestamptz[])
               ON CONFLICT (message_id) DO NOTHING
               RETURNING occurred_at
           ), dirty AS (
               INSERT INTO aggregate_dirty_days (day)
               SELECT DISTINCT (occurred_at AT TIME ZONE 'UTC')::date FROM ins
               ON CONFLICT (day) DO NOTHING
           )
           SELECT count(*) FROM ins"#,
    )
    .bind(message_id)
    .bind(event)
    .bind(source)
    .bind(properties)
    .bind(user_id)
    .bind(anonymous_id)
    .bind(session_id)
    .bind(page_url)
    .bind(page_path)
    .bind(referrer)
    .bind(referrer_host)
    .bind(ip_hash)
    .bind(device)
    .bind(browser)
    .bind(os)
    .bind(revenue)
    .bind(currency)
    .bind(occurred_at)
    .fetch_one(&mut *conn)
    .await?;
    Ok(u64::try_from(inserted).unwrap_or(0))
}

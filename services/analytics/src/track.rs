//! `POST /v1/analytics/track`: one event, a batch of up to 100, or a GTM dataLayer push.
//!
//! The body is validated as a whole (any invalid event → 422 naming it, nothing stored), turned
//! into [`EventRow`]s (user from the gateway's identity, IP hashed, user-agent parsed) and
//! appended to the Redis stream in one `XADD`; 202 follows. With Redis unavailable the rows go
//! straight into Postgres.

use std::net::IpAddr;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use service_kit::{FieldError, MaybeCaller, Problem};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{AnalyticsError, Result};
use crate::store::{EventRow, SOURCE_CLIENT, SOURCE_GTM};
use crate::useragent;

/// Most events one request may carry.
pub const MAX_BATCH: usize = 100;
const MAX_PROPERTIES_BYTES: usize = 8 * 1024;
const MAX_URL: usize = 2048;
const MAX_ID: usize = 128;
/// Client clocks may run ahead this much.
const FUTURE_SKEW_MINUTES: i64 = 5;
/// Events older than this are refused (aggregates of closed days stay stable).
const MAX_AGE_DAYS: i64 = 30;

/// Event names browsers may send (anything else needs the `custom.` prefix).
pub const CLIENT_EVENTS: &[&str] = &[
    "page_viewed",
    "product_viewed",
    "product_list_viewed",
    "search_performed",
    "filter_applied",
    "wishlist_item_added",
    "cart_item_added",
    "cart_item_removed",
    "checkout_started",
    "booking_started",
    "brochure_form_started",
    "blog_viewed",
    "cta_clicked",
    "video_played",
    "signed_in",
    "form_submitted",
];

/// Names only the server writes (from domain events): a browser cannot forge a purchase.
pub const SERVER_EVENTS: &[&str] = &[
    "user_registered",
    "booking_created",
    "booking_confirmed",
    "booking_rescheduled",
    "booking_cancelled",
    "order_created",
    "order_cancelled",
    "purchase",
    "payment_failed",
    "refund_issued",
    "brochure_requested",
    "blog_published",
    "review_created",
    "newsletter_subscribed",
    "contact_received",
    "business_enquiry_received",
];

/// One tracked event as a browser sends it.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackEvent {
    /// A known event name, or `custom.<name>`.
    #[schema(schema_with = event_name_schema)]
    pub event: String,
    /// Free-form properties (an object, at most 8 KiB as JSON).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub properties: Option<Value>,
    /// The browser session (1–128 visible ASCII characters).
    #[schema(pattern = r"^[\x21-\x7E]{1,128}$")]
    pub session_id: String,
    /// The browser's long-lived anonymous id (1–128 visible ASCII characters).
    #[serde(default)]
    #[schema(pattern = r"^[\x21-\x7E]{1,128}$")]
    pub anonymous_id: Option<String>,
    /// The page (absolute http(s) URL, at most 2048 characters).
    #[schema(
        pattern = r"^https?://([A-Za-z0-9]+\.)*[A-Za-z][A-Za-z0-9]*(:[0-9]{1,4})?([/?#][\x21-\x7E]*)?$",
        max_length = 2048
    )]
    pub page_url: String,
    /// The referring page, if any (absolute http(s) URL, at most 2048 characters; empty is none).
    #[serde(default)]
    #[schema(
        pattern = r"^$|^https?://([A-Za-z0-9]+\.)*[A-Za-z][A-Za-z0-9]*(:[0-9]{1,4})?([/?#][\x21-\x7E]*)?$",
        max_length = 2048
    )]
    pub referrer: Option<String>,
    /// When it happened (defaults to now; at most 5 minutes ahead, 30 days back).
    #[serde(default)]
    pub timestamp: Option<DateTime<Utc>>,
    /// Unique id for de-duplication (generated when absent; 1–128 visible ASCII characters).
    #[serde(default)]
    #[schema(pattern = r"^[\x21-\x7E]{1,128}$")]
    pub message_id: Option<String>,
}

/// Several events at once.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TrackBatch {
    /// 1–100 events.
    #[schema(min_items = 1, max_items = 100)]
    pub batch: Vec<TrackEvent>,
}

/// A Google Tag Manager dataLayer forwarded as it is: entries with an `event` key become events
/// (other keys their properties; `gtm.*` keys and events are skipped).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GtmPush {
    /// The browser session (1–128 visible ASCII characters).
    #[schema(pattern = r"^[\x21-\x7E]{1,128}$")]
    pub session_id: String,
    /// The browser's anonymous id (1–128 visible ASCII characters).
    #[serde(default)]
    #[schema(pattern = r"^[\x21-\x7E]{1,128}$")]
    pub anonymous_id: Option<String>,
    /// The page (absolute http(s) URL, at most 2048 characters).
    #[schema(
        pattern = r"^https?://([A-Za-z0-9]+\.)*[A-Za-z][A-Za-z0-9]*(:[0-9]{1,4})?([/?#][\x21-\x7E]*)?$",
        max_length = 2048
    )]
    pub page_url: String,
    /// The referrer (absolute http(s) URL, at most 2048 characters; empty is none).
    #[serde(default)]
    #[schema(
        pattern = r"^$|^https?://([A-Za-z0-9]+\.)*[A-Za-z][A-Za-z0-9]*(:[0-9]{1,4})?([/?#][\x21-\x7E]*)?$",
        max_length = 2048
    )]
    pub referrer: Option<String>,
    /// The dataLayer entries: 1–100 events.
    #[schema(schema_with = data_layer_schema)]
    pub data_layer: Vec<Map<String, Value>>,
}

/// The pattern of a `custom.` event name ([`check_event_name`]: at most 64 characters in all).
const CUSTOM_EVENT_PATTERN: &str = r"^custom\.[a-z0-9_.-]{1,57}$";

/// What [`check_event_name`] accepts: a [`CLIENT_EVENTS`] name or a `custom.` one.
fn event_name_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, Type};
    Schema::AnyOf(
        AnyOfBuilder::new()
            .description(Some(
                "A known event name, or `custom.` followed by 1–57 of a-z 0-9 _ . -",
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(CLIENT_EVENTS.iter().copied())),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(CUSTOM_EVENT_PATTERN)),
            )
            .build(),
    )
}

/// The dataLayer as documented: 1–100 entries, each an event. (The service itself skips entries
/// without an `event` and `gtm.*` events, and answers 422 when none is left: JSON Schema could
/// say "at least one entry is an event" with `contains`, which utoipa's typed document cannot
/// carry, so the document asks the stricter "every entry is an event".)
fn data_layer_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
    let entry = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "One dataLayer entry: its `event`, optionally `messageId` and `timestamp`; its other \
             keys (except `gtm.*` ones) become the event's properties (at most 8 KiB as JSON).",
        ))
        .property("event", event_name_schema())
        .property(
            "messageId",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^[\x21-\x7E]{1,128}$"))
                .description(Some(
                    "Unique id for de-duplication (generated when absent).",
                )),
        )
        .property(
            "timestamp",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                .description(Some(
                    "When it happened (defaults to now; at most 5 minutes ahead, 30 days back).",
                )),
        )
        .required("event");
    ArrayBuilder::new()
        .items(entry)
        .min_items(Some(1))
        .max_items(Some(MAX_BATCH))
        .description(Some(
            "The dataLayer entries: 1–100, each an event (entries without an `event` and \
             `gtm.*` events are skipped, and a push with no event left is refused).",
        ))
        .build()
}

/// The accepted body shapes (documentation only; the handler dispatches on the keys).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum TrackRequest {
    /// One event.
    Single(TrackEvent),
    /// A batch.
    Batch(TrackBatch),
    /// A GTM dataLayer.
    Gtm(GtmPush),
}

/// What was accepted.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = TrackAccepted)]
pub struct Accepted {
    /// How many events.
    pub accepted: usize,
    /// Their message ids, in order.
    pub message_ids: Vec<String>,
}

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(track))
}

/// Accepts tracking events (anonymous; the user is attached when signed in).
#[utoipa::path(
    post,
    path = "/v1/analytics/track",
    tag = "analytics",
    request_body = TrackRequest,
    responses(
        (status = 202, description = "Accepted for storage", body = Accepted),
        (status = 400, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid; nothing was stored", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn track(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<Accepted>)> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/plain"));
    if !is_json {
        return Err(Problem::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE).into());
    }
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| Problem::bad_request(format!("The body is not valid JSON: {e}.")))?;
    let now = Utc::now();
    let (events, source) = parse_body(value)?;
    let context = Context {
        user_id: caller.map(|c| c.user_id),
        ip_hash: client_ip(&headers)
            .map(|ip| hash_ip(state.settings.ip_hash_key.expose(), now, ip)),
        agent: useragent::parse(
            headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default(),
        ),
        source,
        now,
    };
    let rows = to_rows(events, &context)?;
    let message_ids = rows.iter().map(|r| r.message_id.clone()).collect();
    if let Err(error) = state.buffer.push(&rows).await {
        tracing::warn!(
            error = format!("{error:#}"),
            "Redis unavailable; writing events directly"
        );
        let mut conn = state.db.acquire().await?;
        crate::store::insert(&mut conn, &rows).await?;
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Accepted {
            accepted: rows.len(),
            message_ids,
        }),
    ))
}

fn shape<T: serde::de::DeserializeOwned>(value: Value) -> Result<T> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|error| {
        let path = error.path().to_string();
        let message = error.inner().to_string();
        let field = if path == "." {
            message.split('`').nth(1).unwrap_or_default().to_owned()
        } else {
            path
        };
        AnalyticsError::field(&field, message)
    })
}

/// Tells the three shapes apart: `dataLayer` → GTM, `batch` → batch, else one event.
fn parse_body(value: Value) -> Result<(Vec<(String, TrackEvent)>, &'static str)> {
    let Some(object) = value.as_object() else {
        return Err(AnalyticsError::field("", "must be a JSON object"));
    };
    if object.contains_key("dataLayer") {
        let push: GtmPush = shape(value)?;
        if push.data_layer.len() > MAX_BATCH {
            return Err(AnalyticsError::field(
                "dataLayer",
                "holds at most 100 entries",
            ));
        }
        let mut events = Vec::new();
        for (i, mut entry) in push.data_layer.into_iter().enumerate() {
            // An entry without an `event` is no event (GTM pushes plain variables too); the keys
            // an event entry does have must be of their documented type, never quietly dropped.
            let wrong_type = |key: &str, kind: &str| {
                AnalyticsError::field(&format!("dataLayer[{i}].{key}"), format!("must be {kind}"))
            };
            let name = match entry.remove("event") {
                None => continue,
                Some(Value::String(name)) => name,
                Some(_) => return Err(wrong_type("event", "a string")),
            };
            if name.starts_with("gtm.") {
                continue;
            }
            let message_id = match entry.remove("messageId") {
                None => None,
                Some(Value::String(id)) => Some(id),
                Some(_) => return Err(wrong_type("messageId", "a string")),
            };
            let timestamp = match entry.remove("timestamp") {
                None => None,
                Some(Value::String(t)) => Some(t.parse::<DateTime<Utc>>().map_err(|_| {
                    AnalyticsError::field(
                        &format!("dataLayer[{i}].timestamp"),
                        "is not an ISO 8601 time",
                    )
                })?),
                Some(_) => return Err(wrong_type("timestamp", "an ISO 8601 time string")),
            };
            entry.retain(|k, _| !k.starts_with("gtm."));
            events.push((
                format!("dataLayer[{i}]."),
                TrackEvent {
                    event: name,
                    properties: Some(Value::Object(entry)),
                    session_id: push.session_id.clone(),
                    anonymous_id: push.anonymous_id.clone(),
                    page_url: push.page_url.clone(),
                    referrer: push.referrer.clone(),
                    timestamp,
                    message_id,
                },
            ));
        }
        if events.is_empty() {
            return Err(AnalyticsError::field("dataLayer", "contains no events"));
        }
        Ok((events, SOURCE_GTM))
    } else if object.contains_key("batch") {
        let batch: TrackBatch = shape(value)?;
        if batch.batch.is_empty() || batch.batch.len() > MAX_BATCH {
            return Err(AnalyticsError::field("batch", "must hold 1 to 100 events"));
        }
        Ok((
            batch
                .batch
                .into_iter()
                .enumerate()
                .map(|(i, e)| (format!("batch[{i}]."), e))
                .collect(),
            SOURCE_CLIENT,
        ))
    } else {
        Ok((vec![(String::new(), shape(value)?)], SOURCE_CLIENT))
    }
}

struct Context {
    user_id: Option<Uuid>,
    ip_hash: Option<String>,
    agent: useragent::Agent,
    source: &'static str,
    now: DateTime<Utc>,
}

/// Validates every event (collecting all errors) and builds the rows; any error → 422.
fn to_rows(events: Vec<(String, TrackEvent)>, context: &Context) -> Result<Vec<EventRow>> {
    let mut errors = Vec::new();
    let mut rows = Vec::with_capacity(events.len());
    let mut ids = MessageIds::new(context.now);
    for (prefix, event) in events {
        let mut fail = |field: &str, message: &str| {
            errors.push(FieldError::new(format!("{prefix}{field}"), message));
        };
        if let Err(message) = check_event_name(&event.event) {
            fail("event", message);
        }
        let properties = match event.properties {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(Value::Object(map)) => Value::Object(map),
            Some(_) => {
                fail("properties", "must be an object");
                Value::Null
            }
        };
        if properties.is_object() && json_len(&properties) > MAX_PROPERTIES_BYTES {
            fail("properties", "must be at most 8 KiB as JSON");
        }
        if properties.is_object() && has_nul(&properties) {
            fail("properties", "must not contain NUL characters");
        }
        if !is_id(&event.session_id) {
            fail("sessionId", "must be 1-128 visible ASCII characters");
        }
        if event.anonymous_id.as_deref().is_some_and(|id| !is_id(id)) {
            fail("anonymousId", "must be 1-128 visible ASCII characters");
        }
        if event.message_id.as_deref().is_some_and(|id| !is_id(id)) {
            fail("messageId", "must be 1-128 visible ASCII characters");
        }
        let page = match parse_url(&event.page_url) {
            Ok(url) => Some(url),
            Err(message) => {
                fail("pageUrl", message);
                None
            }
        };
        let referrer = match event.referrer.as_deref().filter(|r| !r.is_empty()) {
            None => None,
            Some(r) => match parse_url(r) {
                Ok(url) => Some(url),
                Err(message) => {
                    fail("referrer", message);
                    None
                }
            },
        };
        let occurred_at = event.timestamp.unwrap_or(context.now);
        if occurred_at > context.now + Duration::minutes(FUTURE_SKEW_MINUTES) {
            fail("timestamp", "is in the future");
        } else if occurred_at < context.now - Duration::days(MAX_AGE_DAYS) {
            fail("timestamp", "is more than 30 days old");
        }
        if !errors.is_empty() {
            continue;
        }
        rows.push(EventRow {
            message_id: event.message_id.unwrap_or_else(|| ids.next()),
            event: event.event,
            source: context.source.to_owned(),
            properties,
            user_id: context.user_id,
            anonymous_id: event.anonymous_id,
            session_id: Some(event.session_id),
            page_path: page.as_ref().map(|u| u.path().to_owned()),
            page_url: page.map(String::from),
            referrer_host: referrer
                .as_ref()
                .and_then(|u| u.host_str().map(str::to_owned)),
            referrer: referrer.map(String::from),
            ip_hash: context.ip_hash.clone(),
            device: Some(context.agent.device.to_owned()),
            browser: Some(context.agent.browser.to_owned()),
            os: Some(context.agent.os.to_owned()),
            revenue: None,
            currency: None,
            occurred_at,
        });
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(AnalyticsError::Validation(errors))
    }
}

/// Ids for the events of one request sent without a `messageId`: UUIDv7s of the request's
/// millisecond whose random bits are one random draw per request plus the event's index (the
/// counter method of RFC 9562 §6.2). `Uuid::now_v7` per event asks the kernel for randomness
/// each time, which profiling showed as a `getrandom` syscall per event on the ingest path.
struct MessageIds {
    millis: u64,
    base: u128,
}

impl MessageIds {
    fn new(now: DateTime<Utc>) -> Self {
        let mut random = [0u8; 16];
        random[6..].copy_from_slice(&Uuid::new_v4().as_bytes()[6..]);
        Self {
            millis: u64::try_from(now.timestamp_millis()).unwrap_or_default(),
            base: u128::from_be_bytes(random),
        }
    }

    fn next(&mut self) -> String {
        self.base = self.base.wrapping_add(1);
        let bytes = self.base.to_be_bytes();
        let mut tail = [0u8; 10];
        tail.copy_from_slice(&bytes[6..]);
        uuid::Builder::from_unix_timestamp_millis(self.millis, &tail)
            .into_uuid()
            .to_string()
    }
}

fn check_event_name(name: &str) -> std::result::Result<(), &'static str> {
    if let Some(custom) = name.strip_prefix("custom.") {
        let ok = !custom.is_empty()
            && name.len() <= 64
            && custom
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
        return if ok {
            Ok(())
        } else {
            Err("a custom event is `custom.` followed by 1-57 of a-z 0-9 _ . -")
        };
    }
    if CLIENT_EVENTS.contains(&name) {
        Ok(())
    } else if SERVER_EVENTS.contains(&name) {
        Err("is recorded by the server and cannot be sent by clients")
    } else {
        Err("is not a known event (use the `custom.` prefix for your own)")
    }
}

/// The length of `value` as compact JSON, counted without building it.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

/// Postgres text and jsonb cannot hold U+0000.
fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fn is_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID && id.bytes().all(|b| b.is_ascii_graphic())
}

/// An absolute http(s) URL with a host. The documents' `pageUrl`/`referrer` pattern is a subset
/// of what this accepts: host labels of ASCII letters and digits, the last starting with a
/// letter, so that no IPv4 or IDNA reading of the host can fail.
fn parse_url(raw: &str) -> std::result::Result<url::Url, &'static str> {
    if raw.len() > MAX_URL {
        return Err("must be at most 2048 characters");
    }
    match url::Url::parse(raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Ok(url),
        _ => Err("must be an absolute http(s) URL"),
    }
}

/// The client's address: the gateway's `X-Forwarded-For` (it replaces whatever the client sent).
fn client_ip(headers: &HeaderMap) -> Option<IpAddr> {
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse().ok())
}

/// A keyed hash of the address truncated to its /24 (IPv4) or /48 (IPv6) network, salted with
/// the UTC day: the same visitor hashes alike within a day only, and even the key's holder can
/// recover no more than the network.
pub fn hash_ip(key: &str, now: DateTime<Utc>, ip: IpAddr) -> String {
    let truncated = match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::from([a, b, c, 0])
        }
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[6..].fill(0);
            IpAddr::from(octets)
        }
    };
    let mut hasher = Sha256::new();
    hasher.update(key.as_bytes());
    hasher.update(now.format("%Y-%m-%d").to_string().as_bytes());
    hasher.update(truncated.to_string().as_bytes());
    hex::encode(&hasher.finalize()[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shape the documented URL pattern allows (hosts, ports, paths built from its parts,
    /// edge characters included) is a URL the handler accepts.
    #[test]
    fn urls_of_the_documented_pattern_are_accepted() {
        let hosts = ["a", "0.a", "a0", "x.y.z9", "99.example", "A.B.C.D.e"];
        let ports = ["", ":0", ":1", ":9999"];
        let rests = [
            "",
            "/",
            "?",
            "#",
            "/\\%zz[]|^`{}",
            "?a=%&b=\"x\"#~!",
            "#/../..//",
        ];
        for scheme in ["http", "https"] {
            for host in hosts {
                for port in ports {
                    for rest in rests {
                        let url = format!("{scheme}://{host}{port}{rest}");
                        assert!(parse_url(&url).is_ok(), "{url}");
                    }
                }
            }
        }
        assert!(parse_url(&format!("https://a/{}", "x".repeat(MAX_URL))).is_err());
        assert!(parse_url("").is_err());
        assert!(parse_url("ftp://a").is_err());
    }

    #[test]
    fn ip_hashes_rotate_daily_and_ignore_the_host_part() {
        let day = Utc::now();
        let a = hash_ip(
            "k",
            day,
            "203.0.113.7".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
        );
        let b = hash_ip(
            "k",
            day,
            "203.0.113.99".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
        );
        let tomorrow = hash_ip(
            "k",
            day + Duration::days(1),
            "203.0.113.7".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
        );
        assert_eq!(a, b);
        assert_ne!(a, tomorrow);
        assert!(!a.contains("203"));
    }

    #[test]
    fn generated_message_ids_are_distinct_version_7_uuids_of_the_request_time() {
        let now = Utc::now();
        let millis = u64::try_from(now.timestamp_millis()).unwrap_or_default();
        let mut all = std::collections::HashSet::new();
        for _ in 0..100 {
            let mut ids = MessageIds::new(now);
            for _ in 0..100 {
                all.insert(ids.next());
            }
        }
        assert_eq!(all.len(), 10_000, "no two ids alike");
        for id in all.iter().take(20) {
            let uuid = Uuid::parse_str(id).unwrap_or_default();
            assert_eq!(uuid.get_version_num(), 7, "{id}");
            let (seconds, nanos) = uuid
                .get_timestamp()
                .map(|t| t.to_unix())
                .unwrap_or_default();
            assert_eq!(seconds * 1000 + u64::from(nanos) / 1_000_000, millis);
        }
    }

    /// The document states what `parse_body` refuses: an empty dataLayer (or one without an
    /// event) and a name `check_event_name` refuses.
    #[test]
    fn the_documented_data_layer_holds_one_to_100_events_with_accepted_names() {
        let schema = serde_json::to_value(data_layer_schema()).unwrap_or_default();
        assert_eq!(schema["minItems"], 1, "{schema}");
        assert_eq!(schema["maxItems"], 100, "{schema}");
        assert_eq!(schema["items"]["required"], serde_json::json!(["event"]));
        let names = &schema["items"]["properties"]["event"]["anyOf"];
        let known: Vec<&str> = names[0]["enum"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert_eq!(known, CLIENT_EVENTS);
        assert!(known.iter().all(|name| check_event_name(name).is_ok()));
        assert_eq!(names[1]["pattern"], CUSTOM_EVENT_PATTERN);
        let longest = format!("custom.{}", "a".repeat(57));
        assert!(check_event_name(&longest).is_ok());
        assert!(check_event_name(&format!("{longest}a")).is_err());
    }

    #[test]
    fn event_names_are_known_custom_or_refused() {
        assert!(check_event_name("page_viewed").is_ok());
        assert!(check_event_name("custom.hero_clicked").is_ok());
        assert!(check_event_name("custom.").is_err());
        assert!(check_event_name("custom.Bad Name").is_err());
        assert!(check_event_name("purchase").is_err());
        assert!(check_event_name("whatever").is_err());
    }
}

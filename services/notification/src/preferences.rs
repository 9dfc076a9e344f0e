//! Preferences per user, channel and topic, and one-click unsubscribe links.
//!
//! Transactional messages (codes, receipts, booking changes) always go; `PUT` refuses to turn
//! them off. Marketing goes only to accounts that allowed it for that channel (`user.created`'s
//! `marketingOptIn` sets the email default) and never to an address that unsubscribed.
//!
//! Unsubscribe links are `PUBLIC_API_URL/v1/notifications/unsubscribe/{token}` where the token is
//! `base64url(channel:MARKETING:address).base64url(HMAC-SHA256(UNSUBSCRIBE_SECRET, that))`: no
//! database lookup to issue, unforgeable, valid as long as the secret. `GET` shows a one-button
//! page (link scanners prefetch GETs, so it changes nothing); `POST` unsubscribes (the button,
//! and mail clients honouring RFC 8058's `List-Unsubscribe-Post`).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Html;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use service_kit::Caller;
use service_kit::ValidatedJson;
use sha2::Sha256;
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;
use validator::Validate;

use crate::AppState;
use crate::config::NotificationSettings;
use crate::delivery::{Category, Channel};
use crate::error::{NotificationError, NotificationResult};

const CHANNELS: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Push];

/// Whether a marketing message on `channel` may go to `recipient` (of account `user_id`).
pub async fn marketing_allowed(
    conn: &mut PgConnection,
    user_id: Option<Uuid>,
    channel: Channel,
    recipient: &str,
) -> Result<bool, sqlx::Error> {
    let suppressed = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM suppressions
                          WHERE address = lower($1) AND channel = $2 AND category = 'MARKETING')
           AS "suppressed!""#,
        recipient,
        channel.as_str()
    )
    .fetch_one(&mut *conn)
    .await?;
    if suppressed {
        return Ok(false);
    }
    // Marketing needs consent: no account, or no recorded choice, means no.
    let Some(user_id) = user_id else {
        return Ok(false);
    };
    let enabled = sqlx::query_scalar!(
        "SELECT enabled FROM preferences
         WHERE user_id = $1 AND channel = $2 AND category = 'MARKETING'",
        user_id,
        channel.as_str()
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(enabled.unwrap_or(false))
}

/// Records an account's marketing choice for `channel` (from `user.created` or a `PUT`).
pub async fn set_marketing(
    conn: &mut PgConnection,
    user_id: Uuid,
    channel: Channel,
    enabled: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO preferences (user_id, channel, category, enabled)
         VALUES ($1, $2, 'MARKETING', $3)
         ON CONFLICT (user_id, channel, category) DO UPDATE SET enabled = EXCLUDED.enabled",
        user_id,
        channel.as_str(),
        enabled
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn mac(secret: &str, payload: &str) -> Hmac<Sha256> {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) else {
        // As in auth's crypto: HMAC accepts keys of any length.
        unreachable!("HMAC-SHA256 takes any key length");
    };
    mac.update(payload.as_bytes());
    mac
}

/// The signed unsubscribe token of `recipient` for marketing on `channel`.
pub fn unsubscribe_token(secret: &str, channel: Channel, recipient: &str) -> String {
    let payload = format!(
        "{}:{}:{}",
        channel.as_str(),
        Category::Marketing.as_str(),
        recipient.to_lowercase()
    );
    let tag = mac(secret, &payload).finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload.as_bytes()),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// The one-click unsubscribe URL of `recipient` for marketing on `channel`.
pub fn unsubscribe_url(
    settings: &NotificationSettings,
    channel: Channel,
    recipient: &str,
) -> String {
    format!(
        "{}/v1/notifications/unsubscribe/{}",
        settings.public_api_url,
        unsubscribe_token(settings.unsubscribe_secret.expose(), channel, recipient)
    )
}

/// The (channel, address) a token names, if its signature holds.
pub fn verify_unsubscribe_token(secret: &str, token: &str) -> Option<(Channel, String)> {
    let (payload, tag) = token.split_once('.')?;
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    mac(secret, &payload).verify_slice(&tag).ok()?;
    let mut parts = payload.splitn(3, ':');
    let channel = Channel::parse(parts.next()?)?;
    if parts.next()? != Category::Marketing.as_str() {
        return None;
    }
    Some((channel, parts.next()?.to_owned()))
}

/// One preference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Preference {
    /// EMAIL, SMS or PUSH.
    pub channel: Channel,
    /// TRANSACTIONAL or MARKETING.
    pub topic: Category,
    /// Whether such messages are sent.
    pub enabled: bool,
}

// Documented by hand: a TRANSACTIONAL preference is always enabled (codes, receipts and bookings
// cannot be turned off), which the document says with one shape per topic instead of leaving it
// to the description.
impl utoipa::PartialSchema for Preference {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            AdditionalProperties, AllOfBuilder, ObjectBuilder, OneOfBuilder, Schema, Type,
        };
        use utoipa::openapi::{Ref, RefOr};
        let shape = |topic: Category, enabled: Option<bool>, description: &str| {
            let enabled_schema = ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .enum_values(enabled.map(|e| [e]))
                .description(Some("Whether such messages are sent."));
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some(description))
                .property(
                    "channel",
                    RefOr::Ref(Ref::from_schema_name(<Channel as ToSchema>::name())),
                )
                .property(
                    "topic",
                    AllOfBuilder::new()
                        .item(RefOr::Ref(Ref::from_schema_name(
                            <Category as ToSchema>::name(),
                        )))
                        .item(
                            ObjectBuilder::new()
                                .schema_type(Type::String)
                                .enum_values(Some([topic.as_str()])),
                        ),
                )
                .property("enabled", enabled_schema)
                .required("channel")
                .required("topic")
                .required("enabled")
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        };
        RefOr::T(Schema::OneOf(
            OneOfBuilder::new()
                .description(Some("One preference: a channel and topic, on or off."))
                .item(shape(
                    Category::Transactional,
                    Some(true),
                    "Transactional messages: always on.",
                ))
                .item(shape(Category::Marketing, None, "Marketing messages."))
                .build(),
        ))
    }
}

impl ToSchema for Preference {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((
            <Channel as ToSchema>::name().into_owned(),
            <Channel as utoipa::PartialSchema>::schema(),
        ));
        <Channel as ToSchema>::schemas(schemas);
        schemas.push((
            <Category as ToSchema>::name().into_owned(),
            <Category as utoipa::PartialSchema>::schema(),
        ));
        <Category as ToSchema>::schemas(schemas);
    }
}

/// Every preference of a user.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Preferences {
    /// An answer has one entry per channel and topic. A change applies its entries in order, as
    /// if set one after another: a later entry for the same channel and topic wins over an
    /// earlier one (which then has no effect of its own).
    #[validate(length(min = 1, max = 6, message = "between 1 and 6 entries"))]
    #[schema(min_items = 1, max_items = 6)]
    pub preferences: Vec<Preference>,
}

async fn current(conn: &mut PgConnection, user_id: Uuid) -> Result<Preferences, sqlx::Error> {
    let rows: Vec<(String, bool)> = sqlx::query_as(
        "SELECT channel, enabled FROM preferences
         WHERE user_id = $1 AND category = 'MARKETING'",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut preferences = Vec::with_capacity(6);
    for channel in CHANNELS {
        preferences.push(Preference {
            channel,
            topic: Category::Transactional,
            enabled: true,
        });
        let marketing = rows
            .iter()
            .find(|(c, _)| c == channel.as_str())
            .is_some_and(|(_, enabled)| *enabled);
        preferences.push(Preference {
            channel,
            topic: Category::Marketing,
            enabled: marketing,
        });
    }
    Ok(Preferences { preferences })
}

/// The caller's preferences (transactional are always on).
#[utoipa::path(
    get,
    path = "/v1/notifications/preferences",
    tag = "notifications",
    responses(
        (status = 200, description = "Every channel and topic", body = Preferences),
        (status = 401, description = "Not signed in"),
    )
)]
async fn get_preferences(
    caller: Caller,
    State(state): State<AppState>,
) -> NotificationResult<Json<Preferences>> {
    let mut conn = state.db.acquire().await?;
    Ok(Json(current(&mut conn, caller.user_id).await?))
}

/// Changes the caller's preferences; entries not given stay as they are. Entries apply in order:
/// a later entry for the same channel and topic wins.
#[utoipa::path(
    put,
    path = "/v1/notifications/preferences",
    tag = "notifications",
    request_body = Preferences,
    responses(
        (status = 200, description = "Every channel and topic, after the change", body = Preferences),
        (status = 401, description = "Not signed in"),
        (status = 422, description = "Turning transactional messages off"),
    )
)]
async fn put_preferences(
    caller: Caller,
    State(state): State<AppState>,
    ValidatedJson(body): ValidatedJson<Preferences>,
) -> NotificationResult<Json<Preferences>> {
    let mut errors = Vec::new();
    for (index, preference) in body.preferences.iter().enumerate() {
        if preference.topic == Category::Transactional && !preference.enabled {
            errors.push(service_kit::FieldError::new(
                format!("preferences[{index}].enabled"),
                "transactional messages (codes, receipts, bookings) cannot be turned off",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(NotificationError::Validation(errors));
    }
    let mut tx = state.db.begin().await?;
    // Last wins: only the final entry of each channel and topic is applied (so an entry that a
    // later one overrides does not, say, lift a suppression on its way).
    for (index, preference) in body
        .preferences
        .iter()
        .enumerate()
        .filter(|(_, p)| p.topic == Category::Marketing)
    {
        let overridden = body.preferences[index + 1..]
            .iter()
            .any(|p| p.channel == preference.channel && p.topic == preference.topic);
        if overridden {
            continue;
        }
        set_marketing(
            &mut tx,
            caller.user_id,
            preference.channel,
            preference.enabled,
        )
        .await?;
        if preference.enabled {
            // Opting in again lifts an earlier one-click unsubscribe of the account's address.
            sqlx::query(
                "DELETE FROM suppressions s USING recipients r
                 WHERE r.user_id = $1 AND s.channel = $2
                   AND s.address IN (lower(r.email), lower(coalesce(r.phone, '')))",
            )
            .bind(caller.user_id)
            .bind(preference.channel.as_str())
            .execute(&mut *tx)
            .await?;
        }
    }
    let preferences = current(&mut tx, caller.user_id).await?;
    tx.commit().await?;
    Ok(Json(preferences))
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en-GB\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head>\
         <body style=\"font-family:Georgia,serif;background:#F7F3EC;color:#2B2B2B;padding:32px;\">\
         <h1 style=\"color:#1F3A2E;font-weight:normal;\">{title}</h1>{body}</body></html>"
    ))
}

fn verified(state: &AppState, token: &str) -> NotificationResult<(Channel, String)> {
    verify_unsubscribe_token(state.settings.unsubscribe_secret.expose(), token)
        .ok_or(NotificationError::NotFound("unsubscribe link"))
}

/// The unsubscribe page: one button, nothing changed yet (link scanners fetch GETs).
#[utoipa::path(
    get,
    path = "/v1/notifications/unsubscribe/{token}",
    tag = "notifications",
    params(("token" = String, Path, description = "The signed token from the email")),
    responses(
        (status = 200, description = "A page with the unsubscribe button", content_type = "text/html", body = String),
        (status = 404, description = "Not a valid unsubscribe link"),
    )
)]
async fn unsubscribe_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> NotificationResult<Html<String>> {
    verified(&state, &token)?;
    Ok(page(
        "Unsubscribe from Lomash Wood marketing",
        "<p>You will still receive messages about your orders, bookings and account.</p>\
         <form method=\"post\"><button type=\"submit\" style=\"padding:12px 24px;\
         background:#C8A165;color:#1F3A2E;border:0;font-weight:bold;\">Unsubscribe</button></form>",
    ))
}

/// Unsubscribes the token's address from marketing on its channel (idempotent).
#[utoipa::path(
    post,
    path = "/v1/notifications/unsubscribe/{token}",
    tag = "notifications",
    params(("token" = String, Path, description = "The signed token from the email")),
    responses(
        (status = 200, description = "Unsubscribed", content_type = "text/html", body = String),
        (status = 404, description = "Not a valid unsubscribe link"),
    )
)]
async fn unsubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> NotificationResult<Html<String>> {
    let (channel, address) = verified(&state, &token)?;
    let mut tx = state.db.begin().await?;
    sqlx::query(
        "INSERT INTO suppressions (address, channel, category) VALUES ($1, $2, 'MARKETING')
         ON CONFLICT DO NOTHING",
    )
    .bind(&address)
    .bind(channel.as_str())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE preferences p SET enabled = false FROM recipients r
         WHERE p.user_id = r.user_id AND p.channel = $2 AND p.category = 'MARKETING'
           AND (lower(r.email) = $1 OR lower(coalesce(r.phone, '')) = $1)",
    )
    .bind(&address)
    .bind(channel.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(
        address = %crate::delivery::mask(&address),
        channel = channel.as_str(),
        "unsubscribed from marketing"
    );
    Ok(page(
        "You are unsubscribed",
        "<p>You will receive no more marketing from Lomash Wood at this address. Messages about \
         your orders, bookings and account still reach you.</p>",
    ))
}

/// The preference and unsubscribe routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_preferences, put_preferences))
        .routes(routes!(unsubscribe_page, unsubscribe))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_channel_and_address_and_cannot_be_forged() {
        let token = unsubscribe_token("secret", Channel::Email, "Jane@Example.com");
        assert_eq!(
            verify_unsubscribe_token("secret", &token),
            Some((Channel::Email, "jane@example.com".to_owned()))
        );
        assert_eq!(verify_unsubscribe_token("other", &token), None);
        let (_, tag) = token.split_once('.').unwrap();
        let forged = format!(
            "{}.{tag}",
            URL_SAFE_NO_PAD.encode("EMAIL:MARKETING:someone@example.com")
        );
        assert_eq!(verify_unsubscribe_token("secret", &forged), None);
        assert_eq!(verify_unsubscribe_token("secret", "garbage"), None);
    }
}

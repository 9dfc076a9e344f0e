//! A customer's profile: created from `user.created` or on first read; read and merge-patched
//! by its owner.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use service_kit::event_bus::HandlerError;
use service_kit::shared_types::DomainEvent;
use service_kit::shared_types::auth::UserCreated;
use service_kit::{Caller, Problem};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use crate::AppState;
use crate::error::{CustomerError, CustomerResult};

/// Marketing consent by channel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Channels {
    /// Email.
    #[serde(default)]
    pub email: bool,
    /// Text messages.
    #[serde(default)]
    pub sms: bool,
    /// Post.
    #[serde(default)]
    pub post: bool,
    /// App push notifications.
    #[serde(default)]
    pub push: bool,
}

/// Marketing consent by topic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Topics {
    /// Sales and offers.
    #[serde(default)]
    pub offers: bool,
    /// New ranges and inspiration.
    #[serde(default)]
    pub inspiration: bool,
    /// Showroom events.
    #[serde(default)]
    pub events: bool,
}

/// Marketing preferences by channel and topic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Marketing {
    /// Channels we may use.
    #[serde(default)]
    pub channels: Channels,
    /// Topics the customer wants.
    #[serde(default)]
    pub topics: Topics,
}

/// A profile.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The user's id.
    pub user_id: Uuid,
    /// Email (from auth; changed there).
    pub email: Option<String>,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Phone, E.164.
    pub phone: Option<String>,
    /// Date of birth.
    pub date_of_birth: Option<NaiveDate>,
    /// Marketing preferences.
    pub marketing: Marketing,
    /// Preferred showroom (appointment service id).
    pub preferred_showroom_id: Option<Uuid>,
    /// Avatar (content service media id).
    pub avatar_media_id: Option<Uuid>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ProfileRow {
    user_id: Uuid,
    email: Option<String>,
    first_name: String,
    last_name: String,
    phone: Option<String>,
    date_of_birth: Option<NaiveDate>,
    marketing: serde_json::Value,
    preferred_showroom_id: Option<Uuid>,
    avatar_media_id: Option<Uuid>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<ProfileRow> for Profile {
    fn from(r: ProfileRow) -> Self {
        Self {
            user_id: r.user_id,
            email: r.email,
            first_name: r.first_name,
            last_name: r.last_name,
            phone: r.phone,
            date_of_birth: r.date_of_birth,
            marketing: serde_json::from_value(r.marketing).unwrap_or_default(),
            preferred_showroom_id: r.preferred_showroom_id,
            avatar_media_id: r.avatar_media_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The editable part of a profile: what a merge patch applies to.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileInput {
    /// First name, up to 100 characters.
    #[serde(default)]
    #[validate(length(max = 100, message = "must be at most 100 characters"))]
    #[schema(max_length = 100)]
    pub first_name: String,
    /// Last name, up to 100 characters.
    #[serde(default)]
    #[validate(length(max = 100, message = "must be at most 100 characters"))]
    #[schema(max_length = 100)]
    pub last_name: String,
    /// Phone in E.164 (UK numbers in national form are normalised); spaces, `-` and `.` may
    /// separate the digits. `null` removes it (an empty string is not a phone number).
    #[serde(default)]
    #[schema(
        max_length = 64,
        pattern = r"^[ \t.-]*(?:(?:\+[ \t.-]*|0[ \t.-]*0[ \t.-]*)[1-9](?:[ \t.-]*[0-9]){7,14}|0[ \t.-]*[1-9](?:[ \t.-]*[0-9]){8,9})[ \t.-]*$"
    )]
    pub phone: Option<String>,
    /// Date of birth (in the past).
    #[serde(default)]
    pub date_of_birth: Option<NaiveDate>,
    /// Marketing preferences.
    #[serde(default)]
    pub marketing: Marketing,
    /// Preferred showroom.
    #[serde(default)]
    pub preferred_showroom_id: Option<Uuid>,
    /// Avatar media id.
    #[serde(default)]
    pub avatar_media_id: Option<Uuid>,
}

const PROFILE_COLUMNS: &str = "user_id, email, first_name, last_name, phone, date_of_birth, \
     marketing, preferred_showroom_id, avatar_media_id, created_at, updated_at";

/// Makes sure the caller has a profile row (created empty on first use).
pub(crate) async fn ensure(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO profiles (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING",
        user_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) async fn load(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<Option<Profile>> {
    let row: Option<ProfileRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PROFILE_COLUMNS} FROM profiles WHERE user_id = $1"
    )))
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Profile::from))
}

/// The profiles of `ids`, in that order (one query).
pub(crate) async fn load_many(conn: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<Vec<Profile>> {
    let rows: Vec<ProfileRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PROFILE_COLUMNS} FROM profiles WHERE user_id = ANY($1)"
    )))
    .bind(ids)
    .fetch_all(conn)
    .await?;
    let mut by_id: std::collections::HashMap<Uuid, Profile> = rows
        .into_iter()
        .map(|r| (r.user_id, Profile::from(r)))
        .collect();
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// The caller's profile (created on first read).
#[utoipa::path(
    get,
    path = "/v1/profile",
    tag = "profile",
    responses(
        (status = 200, description = "The profile", body = Profile),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_profile(
    State(state): State<AppState>,
    caller: Caller,
) -> CustomerResult<Json<Profile>> {
    let mut conn = state.db.acquire().await?;
    ensure(&mut conn, caller.user_id).await?;
    load(&mut conn, caller.user_id)
        .await?
        .map(Json)
        .ok_or(CustomerError::NotFound("profile"))
}

/// Changes the caller's profile (JSON Merge Patch: `null` clears a field).
#[utoipa::path(
    patch,
    path = "/v1/profile",
    tag = "profile",
    request_body(content = ProfileInput, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The changed profile", body = Profile),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn patch_profile(
    State(state): State<AppState>,
    caller: Caller,
    service_kit::ValidatedJson(patch): service_kit::ValidatedJson<JsonValue>,
) -> CustomerResult<Json<Profile>> {
    let mut tx = state.db.begin().await?;
    ensure(&mut tx, caller.user_id).await?;
    sqlx::query("SELECT 1 FROM profiles WHERE user_id = $1 FOR UPDATE")
        .bind(caller.user_id)
        .execute(&mut *tx)
        .await?;
    let current = load(&mut tx, caller.user_id)
        .await?
        .ok_or(CustomerError::NotFound("profile"))?;
    let document = serde_json::to_value(ProfileInput {
        first_name: current.first_name,
        last_name: current.last_name,
        phone: current.phone,
        date_of_birth: current.date_of_birth,
        marketing: current.marketing,
        preferred_showroom_id: current.preferred_showroom_id,
        avatar_media_id: current.avatar_media_id,
    })
    .map_err(anyhow::Error::from)?;
    let input: ProfileInput = crate::patched(document, &patch.0)?;
    let phone = input
        .phone
        .as_deref()
        .map(validation::PhoneE164::parse_uk)
        .transpose()
        .map_err(|e| CustomerError::field("phone", e.message()))?;
    if let Some(dob) = input.date_of_birth {
        let today = Utc::now().date_naive();
        if dob >= today || dob < NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(dob) {
            return Err(CustomerError::field(
                "dateOfBirth",
                "must be a date in the past",
            ));
        }
    }
    sqlx::query(
        "UPDATE profiles SET first_name = $2, last_name = $3, phone = $4, date_of_birth = $5, \
         marketing = $6, preferred_showroom_id = $7, avatar_media_id = $8 WHERE user_id = $1",
    )
    .bind(caller.user_id)
    .bind(input.first_name.trim())
    .bind(input.last_name.trim())
    .bind(phone.map(String::from))
    .bind(input.date_of_birth)
    .bind(serde_json::to_value(&input.marketing).map_err(anyhow::Error::from)?)
    .bind(input.preferred_showroom_id)
    .bind(input.avatar_media_id)
    .execute(&mut *tx)
    .await?;
    let profile = load(&mut tx, caller.user_id)
        .await?
        .ok_or(CustomerError::NotFound("profile"))?;
    tx.commit().await?;
    Ok(Json(profile))
}

/// Any JSON value (the merge-patch body; it has no rules of its own).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct JsonValue(pub serde_json::Value);

impl Validate for JsonValue {
    fn validate(&self) -> Result<(), validator::ValidationErrors> {
        Ok(())
    }
}

/// `user.created`: creates the profile, or fills in the blanks of one made on first read.
pub async fn on_user_created(
    event: DomainEvent<UserCreated>,
    conn: &mut PgConnection,
) -> Result<(), HandlerError> {
    let user = event.payload;
    let phone = user
        .phone
        .as_deref()
        .and_then(|p| validation::PhoneE164::parse_uk(p).ok())
        .map(String::from);
    let marketing = Marketing {
        channels: Channels {
            email: user.marketing_opt_in,
            ..Channels::default()
        },
        topics: Topics {
            offers: user.marketing_opt_in,
            inspiration: user.marketing_opt_in,
            events: user.marketing_opt_in,
        },
    };
    let marketing = serde_json::to_value(marketing).map_err(HandlerError::reject)?;
    sqlx::query!(
        "INSERT INTO profiles (user_id, email, first_name, last_name, phone, marketing) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (user_id) DO UPDATE SET \
           email = COALESCE(profiles.email, EXCLUDED.email), \
           first_name = CASE WHEN profiles.first_name = '' THEN EXCLUDED.first_name ELSE profiles.first_name END, \
           last_name = CASE WHEN profiles.last_name = '' THEN EXCLUDED.last_name ELSE profiles.last_name END, \
           phone = COALESCE(profiles.phone, EXCLUDED.phone)",
        user.user_id,
        user.email,
        user.first_name,
        user.last_name,
        phone,
        marketing
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_profile, patch_profile))
}

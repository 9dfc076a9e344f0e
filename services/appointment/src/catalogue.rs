//! Appointment types, showrooms and consultants: public lists and admin management.
//!
//! Showrooms and consultants are short reference lists (a handful of each), served whole rather
//! than paged. Admin `PATCH` is JSON Merge Patch applied to the current representation, which is
//! then validated like a create.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::audit;
use service_kit::merge_patch::patched;
use service_kit::{AdminCaller, OffsetPage, PageParams, ValidatedJson, ValidatedQuery};
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validation::{Email, PhoneE164, UkPostcode};
use validator::Validate;

use crate::AppState;
use crate::error::{AppointmentError, AppointmentResult, collect};

/// The kind of appointment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AppointmentKind {
    /// A consultant visits the customer's home.
    HomeMeasurement,
    /// At a showroom.
    ShowroomVisit,
    /// A video call.
    VirtualConsultation,
}

impl AppointmentKind {
    /// The database code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HomeMeasurement => "HOME_MEASUREMENT",
            Self::ShowroomVisit => "SHOWROOM_VISIT",
            Self::VirtualConsultation => "VIRTUAL_CONSULTATION",
        }
    }

    /// Parses a database code.
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "HOME_MEASUREMENT" => Some(Self::HomeMeasurement),
            "SHOWROOM_VISIT" => Some(Self::ShowroomVisit),
            "VIRTUAL_CONSULTATION" => Some(Self::VirtualConsultation),
            _ => None,
        }
    }

    /// The event payload's type.
    pub fn event_type(self) -> shared_types::appointment::AppointmentType {
        use shared_types::appointment::AppointmentType as T;
        match self {
            Self::HomeMeasurement => T::HomeMeasurement,
            Self::ShowroomVisit => T::ShowroomVisit,
            Self::VirtualConsultation => T::VirtualConsultation,
        }
    }
}

/// Reads a stored kind (the schema's check keeps them valid).
pub fn kind_of(code: &str) -> AppointmentResult<AppointmentKind> {
    AppointmentKind::parse(code)
        .ok_or_else(|| anyhow::anyhow!("unknown appointment type {code} in the database").into())
}

/// An appointment type as offered.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppointmentTypeView {
    /// Its code.
    pub code: AppointmentKind,
    /// Display name.
    pub name: String,
    /// What happens.
    pub description: String,
    /// Length of the appointment.
    pub duration_minutes: i32,
    /// Time kept free after it (travel, tidying up).
    pub buffer_minutes: i32,
}

/// The appointment types on offer.
#[utoipa::path(
    get,
    path = "/v1/appointment-types",
    tag = "catalogue",
    responses((status = 200, description = "Every active type", body = Vec<AppointmentTypeView>))
)]
async fn list_types(
    State(state): State<AppState>,
) -> AppointmentResult<Json<Vec<AppointmentTypeView>>> {
    let rows = sqlx::query!(
        "SELECT code, name, description, duration_minutes, buffer_minutes
         FROM appointment_types WHERE active ORDER BY duration_minutes DESC"
    )
    .fetch_all(&state.db)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(AppointmentTypeView {
                code: kind_of(&r.code)?,
                name: r.name,
                description: r.description,
                duration_minutes: r.duration_minutes,
                buffer_minutes: r.buffer_minutes,
            })
        })
        .collect::<AppointmentResult<Vec<_>>>()
        .map(Json)
}

// ---------------------------------------------------------------------------------------------
// Showrooms

/// Opening hours of one weekday.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpeningHours {
    /// ISO weekday, Monday = 1 … Sunday = 7.
    #[schema(minimum = 1, maximum = 7)]
    pub weekday: u8,
    /// Opening time, London, `HH:MM`.
    #[schema(value_type = String, example = "09:00")]
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,9})?)?$")]
    pub opens: NaiveTime,
    /// Closing time, London, `HH:MM`.
    #[schema(value_type = String, example = "17:30")]
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,9})?)?$")]
    pub closes: NaiveTime,
}

/// A showroom.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShowroomView {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Street address.
    pub address: String,
    /// Postcode.
    pub postcode: String,
    /// Phone (E.164).
    pub phone: String,
    /// Email.
    pub email: String,
    /// Picture.
    pub image_url: Option<String>,
    /// Opening hours per weekday.
    pub opening_hours: Vec<OpeningHours>,
    /// Link to a map.
    pub map_url: Option<String>,
    /// Latitude.
    pub latitude: Option<f64>,
    /// Longitude.
    pub longitude: Option<f64>,
    /// Whether it takes visits.
    pub active: bool,
}

struct ShowroomRow {
    id: Uuid,
    name: String,
    address: String,
    postcode: String,
    phone: String,
    email: String,
    image_url: Option<String>,
    opening_hours: serde_json::Value,
    map_url: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    active: bool,
}

impl From<ShowroomRow> for ShowroomView {
    fn from(r: ShowroomRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            address: r.address,
            postcode: r.postcode,
            phone: r.phone,
            email: r.email,
            image_url: r.image_url,
            opening_hours: serde_json::from_value(r.opening_hours).unwrap_or_default(),
            map_url: r.map_url,
            latitude: r.latitude,
            longitude: r.longitude,
            active: r.active,
        }
    }
}

/// Showroom search.
#[derive(Debug, Default, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ShowroomQuery {
    /// Part of the name, or the start of the postcode.
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    #[param(min_length = 1, max_length = 100)]
    pub search: Option<String>,
    /// A postcode: showrooms in the same district come first, then the same area.
    #[param(
        max_length = 32,
        pattern = r"^ *(?:[Gg] *[Ii] *[Rr] *0 *[Aa] *[Aa]|[Bb] *[Ff] *[Pp] *[Oo] *[1-9](?: *[0-9]){0,3}|[A-PR-UWYZa-pr-uwyz] *(?:[0-9](?: *[0-9])?|[A-HK-Ya-hk-y] *[0-9](?: *(?:[0-9]|[ABEHMNPRV-Yabehmnprv-y]))?|[0-9] *[A-HJKPSTUWa-hjkpstuw]) *[0-9] *[ABD-HJLNP-UW-Zabd-hjlnp-uw-z] *[ABD-HJLNP-UW-Zabd-hjlnp-uw-z]) *$"
    )]
    pub near: Option<String>,
}

/// `%` and `_` are literal in a search term.
pub(crate) fn like_escape(term: &str) -> String {
    let mut escaped = String::with_capacity(term.len());
    for c in term.trim().chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Active showrooms, optionally searched or ordered by nearness to a postcode.
#[utoipa::path(
    get,
    path = "/v1/showrooms",
    tag = "catalogue",
    params(ShowroomQuery),
    responses(
        (status = 200, description = "Matching showrooms", body = Vec<ShowroomView>),
        (status = 422, description = "Bad postcode or search", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_showrooms(
    State(state): State<AppState>,
    ValidatedQuery(query): ValidatedQuery<ShowroomQuery>,
) -> AppointmentResult<Json<Vec<ShowroomView>>> {
    let near = query
        .near
        .as_deref()
        .map(UkPostcode::parse)
        .transpose()
        .map_err(|e| AppointmentError::field("near", e.message()))?;
    let search = query.search.as_deref().map(like_escape);
    let rows = sqlx::query_as!(
        ShowroomRow,
        r#"SELECT id, name, address, postcode, phone, email, image_url, opening_hours, map_url,
                  latitude, longitude, active
           FROM showrooms
           WHERE active
             AND ($1::text IS NULL OR name ILIKE '%' || $1 || '%'
                  OR replace(postcode, ' ', '') ILIKE replace($1, ' ', '') || '%')
           ORDER BY ($2::text IS NOT NULL AND split_part(postcode, ' ', 1) = $2) DESC,
                    ($3::text IS NOT NULL AND substring(postcode FROM '^[A-Z]+') = $3) DESC,
                    name"#,
        search,
        near.as_ref().map(|p| p.outward().to_owned()),
        near.as_ref().map(|p| p.area().to_owned()),
    )
    .fetch_all(&state.db)
    .await?;
    Ok(Json(rows.into_iter().map(ShowroomView::from).collect()))
}

/// One showroom.
#[utoipa::path(
    get,
    path = "/v1/showrooms/{id}",
    tag = "catalogue",
    params(("id" = Uuid, Path, description = "Showroom id")),
    responses(
        (status = 200, description = "The showroom", body = ShowroomView),
        (status = 404, description = "No such showroom", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn get_showroom(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> AppointmentResult<Json<ShowroomView>> {
    find_showroom(&state, id)
        .await?
        .filter(|s| s.active)
        .map(Json)
        .ok_or(AppointmentError::NotFound("showroom"))
}

async fn find_showroom(state: &AppState, id: Uuid) -> AppointmentResult<Option<ShowroomView>> {
    Ok(sqlx::query_as!(
        ShowroomRow,
        r#"SELECT id, name, address, postcode, phone, email, image_url, opening_hours, map_url,
                  latitude, longitude, active
           FROM showrooms WHERE id = $1"#,
        id
    )
    .fetch_optional(&state.db)
    .await?
    .map(ShowroomView::from))
}

/// A showroom as an administrator writes it.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShowroomInput {
    /// Name (unique).
    #[validate(length(min = 1, max = 120, message = "must be 1–120 characters"))]
    #[schema(min_length = 1, max_length = 120)]
    pub name: String,
    /// Street address.
    #[validate(length(min = 1, max = 500, message = "must be 1–500 characters"))]
    #[schema(min_length = 1, max_length = 500)]
    pub address: String,
    /// UK postcode.
    #[schema(
        max_length = 32,
        pattern = r"^ *(?:[Gg] *[Ii] *[Rr] *0 *[Aa] *[Aa]|[Bb] *[Ff] *[Pp] *[Oo] *[1-9](?: *[0-9]){0,3}|[A-PR-UWYZa-pr-uwyz] *(?:[0-9](?: *[0-9])?|[A-HK-Ya-hk-y] *[0-9](?: *(?:[0-9]|[ABEHMNPRV-Yabehmnprv-y]))?|[0-9] *[A-HJKPSTUWa-hjkpstuw]) *[0-9] *[ABD-HJLNP-UW-Zabd-hjlnp-uw-z] *[ABD-HJLNP-UW-Zabd-hjlnp-uw-z]) *$"
    )]
    pub postcode: String,
    /// Phone number (UK or international).
    #[schema(
        max_length = 64,
        pattern = r"^[ \t.-]*(?:(?:\+[ \t.-]*|0[ \t.-]*0[ \t.-]*)[1-9](?:[ \t.-]*[0-9]){7,14}|0[ \t.-]*[1-9](?:[ \t.-]*[0-9]){8,9})[ \t.-]*$"
    )]
    pub phone: String,
    /// Email address.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// Picture URL.
    #[serde(default)]
    #[validate(url(message = "is not a valid URL"))]
    #[schema(format = "uri")]
    pub image_url: Option<String>,
    /// Opening hours per weekday.
    #[serde(default)]
    pub opening_hours: Vec<OpeningHours>,
    /// Map link.
    #[serde(default)]
    #[validate(url(message = "is not a valid URL"))]
    #[schema(format = "uri")]
    pub map_url: Option<String>,
    /// Latitude.
    #[serde(default)]
    #[validate(range(min = -90.0, max = 90.0, message = "must be between -90 and 90"))]
    #[schema(minimum = -90.0, maximum = 90.0)]
    pub latitude: Option<f64>,
    /// Longitude.
    #[serde(default)]
    #[validate(range(min = -180.0, max = 180.0, message = "must be between -180 and 180"))]
    #[schema(minimum = -180.0, maximum = 180.0)]
    pub longitude: Option<f64>,
    /// Whether it takes visits (default true).
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

struct CleanShowroom {
    postcode: UkPostcode,
    phone: PhoneE164,
    email: Email,
}

impl ShowroomInput {
    fn clean(&self) -> AppointmentResult<CleanShowroom> {
        let mut errors = Vec::new();
        let postcode = collect(&mut errors, "postcode", UkPostcode::parse(&self.postcode));
        let phone = collect(&mut errors, "phone", PhoneE164::parse_uk(&self.phone));
        let email = collect(&mut errors, "email", Email::parse(&self.email));
        for (i, hours) in self.opening_hours.iter().enumerate() {
            if !(1..=7).contains(&hours.weekday) {
                errors.push(service_kit::FieldError::new(
                    format!("openingHours[{i}].weekday"),
                    "must be 1 (Monday) to 7 (Sunday)",
                ));
            }
            if hours.closes <= hours.opens {
                errors.push(service_kit::FieldError::new(
                    format!("openingHours[{i}].closes"),
                    "must be after opens",
                ));
            }
        }
        match (postcode, phone, email) {
            (Some(postcode), Some(phone), Some(email)) if errors.is_empty() => Ok(CleanShowroom {
                postcode,
                phone,
                email,
            }),
            _ => Err(AppointmentError::Validation(errors)),
        }
    }
}

async fn write_showroom(
    conn: &mut PgConnection,
    id: Uuid,
    input: &ShowroomInput,
) -> AppointmentResult<()> {
    let clean = input.clean()?;
    sqlx::query!(
        "INSERT INTO showrooms (id, name, address, postcode, phone, email, image_url,
                                opening_hours, map_url, latitude, longitude, active)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (id) DO UPDATE SET
             name = EXCLUDED.name, address = EXCLUDED.address, postcode = EXCLUDED.postcode,
             phone = EXCLUDED.phone, email = EXCLUDED.email, image_url = EXCLUDED.image_url,
             opening_hours = EXCLUDED.opening_hours, map_url = EXCLUDED.map_url,
             latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude,
             active = EXCLUDED.active",
        id,
        input.name.trim(),
        input.address.trim(),
        clean.postcode.as_str(),
        clean.phone.as_str(),
        clean.email.as_str(),
        input.image_url,
        serde_json::to_value(&input.opening_hours).map_err(anyhow::Error::from)?,
        input.map_url,
        input.latitude,
        input.longitude,
        input.active,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Creates a showroom (admin).
#[utoipa::path(
    post,
    path = "/v1/admin/showrooms",
    tag = "admin",
    request_body = ShowroomInput,
    responses(
        (status = 201, description = "Created", body = ShowroomView),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Name taken", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn create_showroom(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ValidatedJson(input): ValidatedJson<ShowroomInput>,
) -> AppointmentResult<(StatusCode, Json<ShowroomView>)> {
    let id = Uuid::now_v7();
    let mut tx = state.db.begin().await?;
    write_showroom(&mut tx, id, &input).await?;
    audit::Entry::new(&admin, "showroom", id, "create")
        .after(&input)
        .reveal(SHOWROOM_PUBLIC)
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    let view = find_showroom(&state, id)
        .await?
        .ok_or(AppointmentError::NotFound("showroom"))?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// A showroom's name is the business's, not a person's: the audit trail shows it in clear.
const SHOWROOM_PUBLIC: &[&str] = &["name"];

/// A consultant's bio and photo are about a person: the audit trail shows only that they changed.
const CONSULTANT_PERSONAL: &[&str] = &["bio", "photoUrl"];

/// Changes a showroom (admin; JSON Merge Patch).
#[utoipa::path(
    patch,
    path = "/v1/admin/showrooms/{id}",
    tag = "admin",
    params(("id" = Uuid, Path, description = "Showroom id")),
    request_body(content = ShowroomInput, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "Updated", body = ShowroomView),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such showroom", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another showroom has this name", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn patch_showroom(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> AppointmentResult<Json<ShowroomView>> {
    let patch: serde_json::Value = service_kit::extract::parse_json(&body)?;
    let current = find_showroom(&state, id)
        .await?
        .ok_or(AppointmentError::NotFound("showroom"))?;
    let before = ShowroomInput::from(current);
    let input: ShowroomInput = patched(
        serde_json::to_value(&before).map_err(anyhow::Error::from)?,
        &patch,
    )?;
    let mut tx = state.db.begin().await?;
    write_showroom(&mut tx, id, &input).await?;
    audit::Entry::new(&admin, "showroom", id, "update")
        .before(&before)
        .after(&input)
        .reveal(SHOWROOM_PUBLIC)
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    let view = find_showroom(&state, id)
        .await?
        .ok_or(AppointmentError::NotFound("showroom"))?;
    Ok(Json(view))
}

impl From<ShowroomView> for ShowroomInput {
    fn from(v: ShowroomView) -> Self {
        Self {
            name: v.name,
            address: v.address,
            postcode: v.postcode,
            phone: v.phone,
            email: v.email,
            image_url: v.image_url,
            opening_hours: v.opening_hours,
            map_url: v.map_url,
            latitude: v.latitude,
            longitude: v.longitude,
            active: v.active,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Consultants

/// What a consultant designs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Specialisation {
    /// Kitchens.
    Kitchen,
    /// Bedrooms.
    Bedroom,
    /// Both.
    Both,
}

impl Specialisation {
    /// The database code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kitchen => "KITCHEN",
            Self::Bedroom => "BEDROOM",
            Self::Both => "BOTH",
        }
    }

    fn parse(code: &str) -> Self {
        match code {
            "KITCHEN" => Self::Kitchen,
            "BEDROOM" => Self::Bedroom,
            _ => Self::Both,
        }
    }
}

/// A consultant as the public sees them.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsultantView {
    /// Id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Photo URL.
    pub photo_url: Option<String>,
    /// Short biography.
    pub bio: Option<String>,
    /// What they design.
    pub specialisation: Specialisation,
    /// Their home showroom.
    pub showroom_id: Option<Uuid>,
}

/// A consultant as administrators see them.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsultantAdminView {
    /// Id.
    pub id: Uuid,
    /// The auth user (role CONSULTANT) who signs in as them.
    pub user_id: Uuid,
    /// Display name.
    pub name: String,
    /// Photo URL.
    pub photo_url: Option<String>,
    /// Short biography.
    pub bio: Option<String>,
    /// What they design.
    pub specialisation: Specialisation,
    /// Their home showroom.
    pub showroom_id: Option<Uuid>,
    /// Postcode districts (`SW4`) or areas (`SW`) covered for home visits.
    pub coverage: Vec<String>,
    /// Whether they take bookings.
    pub active: bool,
    /// When added.
    pub created_at: DateTime<Utc>,
}

struct ConsultantRow {
    id: Uuid,
    user_id: Uuid,
    name: String,
    photo_url: Option<String>,
    bio: Option<String>,
    specialisation: String,
    showroom_id: Option<Uuid>,
    coverage: Vec<String>,
    active: bool,
    created_at: DateTime<Utc>,
}

impl From<ConsultantRow> for ConsultantAdminView {
    fn from(r: ConsultantRow) -> Self {
        Self {
            id: r.id,
            user_id: r.user_id,
            name: r.name,
            photo_url: r.photo_url,
            bio: r.bio,
            specialisation: Specialisation::parse(&r.specialisation),
            showroom_id: r.showroom_id,
            coverage: r.coverage,
            active: r.active,
            created_at: r.created_at,
        }
    }
}

/// Consultant filter.
#[derive(Debug, Default, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsultantQuery {
    /// Only consultants who design this (BOTH matches either).
    pub specialisation: Option<Specialisation>,
}

/// Active consultants.
#[utoipa::path(
    get,
    path = "/v1/consultants",
    tag = "catalogue",
    params(ConsultantQuery),
    responses((status = 200, description = "Active consultants", body = Vec<ConsultantView>))
)]
async fn list_consultants(
    State(state): State<AppState>,
    ValidatedQuery(query): ValidatedQuery<ConsultantQuery>,
) -> AppointmentResult<Json<Vec<ConsultantView>>> {
    let rows = sqlx::query_as!(
        ConsultantRow,
        r#"SELECT id, user_id, name, photo_url, bio, specialisation, showroom_id, coverage,
                  active, created_at
           FROM consultants
           WHERE active AND ($1::text IS NULL OR specialisation IN ($1, 'BOTH'))
           ORDER BY name, id"#,
        query.specialisation.map(Specialisation::as_str),
    )
    .fetch_all(&state.db)
    .await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| {
                let v = ConsultantAdminView::from(r);
                ConsultantView {
                    id: v.id,
                    name: v.name,
                    photo_url: v.photo_url,
                    bio: v.bio,
                    specialisation: v.specialisation,
                    showroom_id: v.showroom_id,
                }
            })
            .collect(),
    ))
}

/// Every consultant, active or not (admin).
#[utoipa::path(
    get,
    path = "/v1/admin/consultants",
    tag = "admin",
    params(PageParams),
    responses(
        (status = 200, description = "One page", body = OffsetPage<ConsultantAdminView>),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn admin_list_consultants(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ValidatedQuery(paging): ValidatedQuery<PageParams>,
) -> AppointmentResult<Json<OffsetPage<ConsultantAdminView>>> {
    let total = sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM consultants"#)
        .fetch_one(&state.db)
        .await?;
    let rows = sqlx::query_as!(
        ConsultantRow,
        r#"SELECT id, user_id, name, photo_url, bio, specialisation, showroom_id, coverage,
                  active, created_at
           FROM consultants ORDER BY name, id LIMIT $1 OFFSET $2"#,
        i64::from(paging.page_size()),
        paging.offset()
    )
    .fetch_all(&state.db)
    .await?;
    Ok(Json(OffsetPage {
        data: rows.into_iter().map(ConsultantAdminView::from).collect(),
        page: paging.page(),
        page_size: paging.page_size(),
        total,
    }))
}

/// A consultant as an administrator writes them.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsultantInput {
    /// The auth user (role CONSULTANT) who signs in as them.
    pub user_id: Uuid,
    /// Display name.
    #[validate(length(min = 1, max = 120, message = "must be 1–120 characters"))]
    #[schema(min_length = 1, max_length = 120)]
    pub name: String,
    /// Photo URL.
    #[serde(default)]
    #[validate(url(message = "is not a valid URL"))]
    #[schema(format = "uri")]
    pub photo_url: Option<String>,
    /// Short biography.
    #[serde(default)]
    #[validate(length(max = 2000, message = "must be at most 2000 characters"))]
    #[schema(max_length = 2000)]
    pub bio: Option<String>,
    /// What they design.
    pub specialisation: Specialisation,
    /// Their home showroom.
    #[serde(default)]
    pub showroom_id: Option<Uuid>,
    /// Postcode districts (`SW4`) or areas (`SW`) covered for home visits.
    #[serde(default)]
    #[validate(length(max = 200, message = "must have at most 200 entries"))]
    #[schema(max_items = 200)]
    pub coverage: Vec<String>,
    /// Whether they take bookings (default true).
    #[serde(default = "yes")]
    pub active: bool,
}

/// `SW`, `SW4`, `EC1A`: an area or an outward code, upper case.
fn coverage_entry(raw: &str) -> Option<String> {
    let code = raw.trim().to_ascii_uppercase();
    let letters = code.chars().take_while(char::is_ascii_alphabetic).count();
    let rest = &code[letters..];
    let rest_ok = rest.is_empty()
        || (rest.len() <= 2
            && rest.starts_with(|c: char| c.is_ascii_digit())
            && rest.chars().all(|c| c.is_ascii_alphanumeric()));
    ((1..=2).contains(&letters) && rest_ok).then_some(code)
}

async fn write_consultant(
    conn: &mut PgConnection,
    id: Uuid,
    input: &ConsultantInput,
    horizon_days: i32,
) -> AppointmentResult<()> {
    let mut coverage = Vec::with_capacity(input.coverage.len());
    let mut errors = Vec::new();
    for (i, raw) in input.coverage.iter().enumerate() {
        match coverage_entry(raw) {
            Some(code) => coverage.push(code),
            None => errors.push(service_kit::FieldError::new(
                format!("coverage[{i}]"),
                "must be a postcode area (SW) or district (SW4)",
            )),
        }
    }
    if !errors.is_empty() {
        return Err(AppointmentError::Validation(errors));
    }
    coverage.sort();
    coverage.dedup();
    sqlx::query!(
        "INSERT INTO consultants (id, user_id, name, photo_url, bio, specialisation, showroom_id,
                                  coverage, active)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (id) DO UPDATE SET
             user_id = EXCLUDED.user_id, name = EXCLUDED.name, photo_url = EXCLUDED.photo_url,
             bio = EXCLUDED.bio, specialisation = EXCLUDED.specialisation,
             showroom_id = EXCLUDED.showroom_id, coverage = EXCLUDED.coverage,
             active = EXCLUDED.active",
        id,
        input.user_id,
        input.name.trim(),
        input.photo_url,
        input.bio,
        input.specialisation.as_str(),
        input.showroom_id,
        &coverage,
        input.active,
    )
    .execute(&mut *conn)
    .await?;
    // Deactivation retires their open slots; reactivation brings them back.
    crate::slots::materialise_in(conn, Some(id), horizon_days).await?;
    Ok(())
}

async fn find_consultant(
    state: &AppState,
    id: Uuid,
) -> AppointmentResult<Option<ConsultantAdminView>> {
    Ok(sqlx::query_as!(
        ConsultantRow,
        r#"SELECT id, user_id, name, photo_url, bio, specialisation, showroom_id, coverage,
                  active, created_at
           FROM consultants WHERE id = $1"#,
        id
    )
    .fetch_optional(&state.db)
    .await?
    .map(ConsultantAdminView::from))
}

/// Adds a consultant (admin).
#[utoipa::path(
    post,
    path = "/v1/admin/consultants",
    tag = "admin",
    request_body = ConsultantInput,
    responses(
        (status = 201, description = "Created", body = ConsultantAdminView),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "That user is a consultant already", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn create_consultant(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ValidatedJson(input): ValidatedJson<ConsultantInput>,
) -> AppointmentResult<(StatusCode, Json<ConsultantAdminView>)> {
    let id = Uuid::now_v7();
    let mut tx = state.db.begin().await?;
    write_consultant(&mut tx, id, &input, state.settings.horizon_days).await?;
    audit::Entry::new(&admin, "consultant", id, "create")
        .after(&input)
        .redact(CONSULTANT_PERSONAL)
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    let view = find_consultant(&state, id)
        .await?
        .ok_or(AppointmentError::NotFound("consultant"))?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Changes a consultant (admin; JSON Merge Patch). Deactivating retires their open slots.
#[utoipa::path(
    patch,
    path = "/v1/admin/consultants/{id}",
    tag = "admin",
    params(("id" = Uuid, Path, description = "Consultant id")),
    request_body(content = ConsultantInput, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "Updated", body = ConsultantAdminView),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such consultant", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn patch_consultant(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> AppointmentResult<Json<ConsultantAdminView>> {
    let patch: serde_json::Value = service_kit::extract::parse_json(&body)?;
    let current = find_consultant(&state, id)
        .await?
        .ok_or(AppointmentError::NotFound("consultant"))?;
    let current = ConsultantInput {
        user_id: current.user_id,
        name: current.name,
        photo_url: current.photo_url,
        bio: current.bio,
        specialisation: current.specialisation,
        showroom_id: current.showroom_id,
        coverage: current.coverage,
        active: current.active,
    };
    let input: ConsultantInput = patched(
        serde_json::to_value(&current).map_err(anyhow::Error::from)?,
        &patch,
    )?;
    let mut tx = state.db.begin().await?;
    write_consultant(&mut tx, id, &input, state.settings.horizon_days).await?;
    audit::Entry::new(&admin, "consultant", id, "update")
        .before(&current)
        .after(&input)
        .redact(CONSULTANT_PERSONAL)
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    state.availability.invalidate().await;
    let view = find_consultant(&state, id)
        .await?
        .ok_or(AppointmentError::NotFound("consultant"))?;
    Ok(Json(view))
}

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_types))
        .routes(routes!(list_showrooms))
        .routes(routes!(get_showroom))
        .routes(routes!(create_showroom))
        .routes(routes!(patch_showroom))
        .routes(routes!(list_consultants))
        .routes(routes!(admin_list_consultants, create_consultant))
        .routes(routes!(patch_consultant))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_accepts_areas_and_districts_only() {
        assert_eq!(coverage_entry(" sw "), Some("SW".into()));
        assert_eq!(coverage_entry("ec1a"), Some("EC1A".into()));
        assert_eq!(coverage_entry("SW11"), Some("SW11".into()));
        assert_eq!(coverage_entry("SW4 0AB"), None);
        assert_eq!(coverage_entry("ABC"), None);
        assert_eq!(coverage_entry(""), None);
    }
}

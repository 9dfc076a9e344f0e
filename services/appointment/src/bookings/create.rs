//! `POST /v1/appointments`: the 4-step form's submission, for guests and signed-in customers.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use service_kit::audit;
use service_kit::{Caller, FieldError, MaybeCaller, Role, ValidatedJson};
use shared_types::appointment::BookingCreated;
use sqlx::postgres::types::PgRange;
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validation::{Email, PhoneE164, UkPostcode};
use validator::Validate;

use super::{Actor, BookingStatus, HistoryEntry, SlotWanted};
use crate::availability::SlotConsultant;
use crate::catalogue::AppointmentKind;
use crate::error::{AppointmentError, AppointmentResult, collect};
use crate::{AppState, event};

/// How often a booking is attempted when it clashes (see [`retryable`]).
const REFERENCE_ATTEMPTS: usize = 5;
/// Reference characters: no 0/O, 1/I look-alikes.
const REFERENCE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A booking request.
#[derive(Debug, Clone, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BookingRequest {
    /// The kind of appointment.
    #[serde(rename = "type")]
    pub kind: AppointmentKind,
    /// About a kitchen (at least one of `forKitchen`, `forBedroom` is `true`; left out, `false`).
    #[serde(default)]
    pub for_kitchen: bool,
    /// About a bedroom.
    #[serde(default)]
    pub for_bedroom: bool,
    /// First name.
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    #[schema(min_length = 1, max_length = 100)]
    #[schema(pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub first_name: String,
    /// Last name.
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    #[schema(min_length = 1, max_length = 100)]
    #[schema(pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub last_name: String,
    /// Email address (confirmations go there).
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// Phone number (UK or international).
    #[schema(
        max_length = 64,
        pattern = r"^[ \t.-]*(?:(?:\+[ \t.-]*|0[ \t.-]*0[ \t.-]*)[1-9](?:[ \t.-]*[0-9]){7,14}|0[ \t.-]*[1-9](?:[ \t.-]*[0-9]){8,9})[ \t.-]*$"
    )]
    pub phone: String,
    /// The property's postcode.
    #[schema(
        max_length = 32,
        pattern = r"^ *(?:[Gg] *[Ii] *[Rr] *0 *[Aa] *[Aa]|[Bb] *[Ff] *[Pp] *[Oo] *[1-9](?: *[0-9]){0,3}|[A-PR-UWYZa-pr-uwyz] *(?:[0-9](?: *[0-9])?|[A-HK-Ya-hk-y] *[0-9](?: *(?:[0-9]|[ABEHMNPRV-Yabehmnprv-y]))?|[0-9] *[A-HJKPSTUWa-hjkpstuw]) *[0-9] *[ABD-HJLNP-UW-Zabd-hjlnp-uw-z] *[ABD-HJLNP-UW-Zabd-hjlnp-uw-z]) *$"
    )]
    pub postcode: String,
    /// The property's address.
    #[validate(length(min = 1, max = 500, message = "must be 1–500 characters"))]
    #[schema(min_length = 1, max_length = 500)]
    #[schema(pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub address: String,
    /// The slot, from `GET /v1/availability`.
    pub slot_id: Uuid,
    /// The showroom (required for SHOWROOM_VISIT).
    #[serde(default)]
    pub showroom_id: Option<Uuid>,
    /// Anything the designer should know.
    #[serde(default)]
    #[validate(length(max = 2000, message = "must be at most 2000 characters"))]
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
}

/// The slot booked.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookedSlot {
    /// Slot id.
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

/// A new booking.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookingCreatedView {
    /// The booking.
    pub booking_id: Uuid,
    /// The reference to quote, `BK-YYYYMMDD-XXXX`.
    pub reference_code: String,
    /// Always PENDING.
    pub status: BookingStatus,
    /// The slot.
    pub slot: BookedSlot,
}

/// A request that passed validation.
struct Clean {
    request: BookingRequest,
    email: Email,
    phone: PhoneE164,
    postcode: UkPostcode,
}

fn clean(request: BookingRequest) -> AppointmentResult<Clean> {
    let mut errors = Vec::new();
    if !request.for_kitchen && !request.for_bedroom {
        errors.push(FieldError::new(
            "forKitchen",
            "choose a kitchen, a bedroom or both (forKitchen or forBedroom)",
        ));
    }
    if request.kind == AppointmentKind::ShowroomVisit && request.showroom_id.is_none() {
        errors.push(FieldError::new(
            "showroomId",
            "is required for SHOWROOM_VISIT",
        ));
    }
    for (field, value) in [
        ("firstName", &request.first_name),
        ("lastName", &request.last_name),
        ("address", &request.address),
    ] {
        if value.trim().is_empty() {
            errors.push(FieldError::new(field, "must not be blank"));
        }
    }
    let email = collect(&mut errors, "email", Email::parse(&request.email));
    let phone = collect(&mut errors, "phone", PhoneE164::parse_uk(&request.phone));
    let postcode = collect(
        &mut errors,
        "postcode",
        UkPostcode::parse(&request.postcode),
    );
    match (email, phone, postcode) {
        (Some(email), Some(phone), Some(postcode)) if errors.is_empty() => Ok(Clean {
            request,
            email,
            phone,
            postcode,
        }),
        _ => {
            errors.sort_by(|a, b| a.field.cmp(&b.field));
            Err(AppointmentError::Validation(errors))
        }
    }
}

/// A clash worth another attempt: the random reference code was taken, or Postgres chose this
/// transaction as the victim of a deadlock between two bookings inserted at the same instant
/// (the retry then normally finds the slot taken: 409).
fn retryable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            db.constraint() == Some("bookings_reference_code_key")
                || matches!(db.code().as_deref(), Some("40P01" | "40001"))
        }
        _ => false,
    }
}

/// A random reference suffix.
fn reference_suffix() -> String {
    let mut rng = rand::rng();
    (0..4)
        .map(|_| char::from(REFERENCE_ALPHABET[rng.random_range(0..REFERENCE_ALPHABET.len())]))
        .collect()
}

/// Books a slot. Works for guests and signed-in customers (then the booking is theirs).
///
/// The slot is taken and the booking written in one transaction; a slot taken by someone else
/// (or overlapping another booking of its consultant) is 409 `SLOT_UNAVAILABLE` and changes
/// nothing. `booking.created` goes out through the outbox.
#[utoipa::path(
    post,
    path = "/v1/appointments",
    tag = "appointments",
    request_body = BookingRequest,
    responses(
        (status = 201, description = "Booked (PENDING)", body = BookingCreatedView),
        (status = 409, description = "SLOT_UNAVAILABLE: the slot is taken", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid: no category, no showroom, bad postcode/phone, slot in the past or not matching", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn create_booking(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    ValidatedJson(request): ValidatedJson<BookingRequest>,
) -> AppointmentResult<(StatusCode, Json<BookingCreatedView>)> {
    let clean = clean(request)?;
    // Only a customer's own booking is linked to their account; staff booking by phone for
    // someone create a guest booking in the customer's name.
    let user_id = caller
        .as_ref()
        .filter(|c| c.role == Role::Customer)
        .map(|c| c.user_id);
    let actor = Actor::of(caller.as_ref());
    let staff = caller.as_ref().filter(|c| c.role.is_staff());
    let mut attempt = 0;
    let created = loop {
        attempt += 1;
        match try_create(&state, &clean, user_id, actor, staff).await {
            Err(AppointmentError::Database(error))
                if attempt < REFERENCE_ATTEMPTS && retryable(&error) =>
            {
                tracing::info!(%error, "booking attempt clashed; retrying");
            }
            other => break other?,
        }
    };
    state.availability.invalidate().await;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn try_create(
    state: &AppState,
    clean: &Clean,
    user_id: Option<Uuid>,
    actor: Actor,
    staff: Option<&Caller>,
) -> AppointmentResult<BookingCreatedView> {
    let request = &clean.request;
    let now = Utc::now();
    let mut tx = state.db.begin().await?;
    let mut errors = Vec::new();
    let slot = super::load_slot(&mut tx, request.slot_id)
        .await?
        .ok_or_else(|| AppointmentError::field("slotId", "is not a bookable slot"))?;
    super::check_slot(
        &slot,
        &SlotWanted {
            kind: request.kind,
            showroom_id: request.showroom_id,
            outward: clean.postcode.outward(),
            area: clean.postcode.area(),
        },
        &state.settings,
        now,
        &mut errors,
    )?;
    super::take_slot(&mut tx, slot.id).await?;

    let booking_id = Uuid::now_v7();
    let notes = request
        .notes
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    let reference_code = sqlx::query_scalar!(
        r#"INSERT INTO bookings
               (id, reference_code, user_id, appointment_type, for_kitchen, for_bedroom,
                first_name, last_name, email, phone, postcode, address, notes, slot_id,
                consultant_id, showroom_id, during, blocks, status, snapshot)
           VALUES ($1, 'BK-' || to_char(now() AT TIME ZONE 'Europe/London', 'YYYYMMDD') || '-' || $2,
                   $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                   'PENDING', $19)
           RETURNING reference_code"#,
        booking_id,
        reference_suffix(),
        user_id,
        request.kind.as_str(),
        request.for_kitchen,
        request.for_bedroom,
        request.first_name.trim(),
        request.last_name.trim(),
        clean.email.as_str(),
        clean.phone.as_str(),
        clean.postcode.as_str(),
        request.address.trim(),
        notes,
        slot.id,
        slot.consultant_id,
        slot.showroom_id,
        PgRange::from(slot.starts_at..slot.ends_at),
        PgRange::from(slot.starts_at..slot.blocks_until()),
        slot.snapshot(),
    )
    .fetch_one(&mut *tx)
    .await?;
    super::record(
        &mut tx,
        booking_id,
        HistoryEntry {
            action: "CREATED",
            from: None,
            to: BookingStatus::Pending,
            actor,
            reason: None,
            details: None,
        },
    )
    .await?;
    let payload = BookingCreated {
        booking_id,
        reference_code: reference_code.clone(),
        appointment_type: request.kind.event_type(),
        for_kitchen: request.for_kitchen,
        for_bedroom: request.for_bedroom,
        slot_id: slot.id,
        slot_starts_at: slot.starts_at,
        slot_ends_at: slot.ends_at,
        showroom_id: slot.showroom_id,
        consultant_id: Some(slot.consultant_id),
        user_id,
        customer_name: format!("{} {}", request.first_name.trim(), request.last_name.trim()),
        customer_email: clean.email.as_str().to_owned(),
        customer_phone: clean.phone.as_str().to_owned(),
        postcode: clean.postcode.as_str().to_owned(),
        created_at: now,
    };
    event_bus::outbox::publish(&mut tx, &event(payload)).await?;
    if let Some(staff) = staff {
        // Staff booking for a customer by phone; the trail keeps the slot, never the customer.
        audit::Entry::new(staff, "appointment", booking_id, "create")
            .after(&serde_json::json!({
                "status": BookingStatus::Pending.as_str(),
                "appointmentType": request.kind.as_str(),
                "slotId": slot.id,
                "consultantId": slot.consultant_id,
                "showroomId": slot.showroom_id,
                "startsAt": slot.starts_at,
                "endsAt": slot.ends_at,
            }))
            .record(&mut tx)
            .await?;
    }
    tx.commit().await?;
    tracing::info!(%booking_id, consultant = %slot.consultant_id, "booking created");
    Ok(BookingCreatedView {
        booking_id,
        reference_code,
        status: BookingStatus::Pending,
        slot: BookedSlot {
            id: slot.id,
            starts_at: slot.starts_at,
            ends_at: slot.ends_at,
            consultant: SlotConsultant {
                id: slot.consultant_id,
                name: slot.consultant_name,
            },
            showroom_id: slot.showroom_id,
        },
    })
}

/// The routes of this module.
///
/// The document states what [`BookingRequest`]'s derived schema cannot: at least one of
/// `forKitchen`, `forBedroom` is `true` (left out, each is `false`), and a SHOWROOM_VISIT names
/// its `showroomId`.
pub fn router() -> OpenApiRouter<AppState> {
    let mut router = OpenApiRouter::new().routes(routes!(create_booking));
    let doc = router.get_openapi_mut();
    service_kit::openapi::require_any_true(doc, "BookingRequest", &["forKitchen", "forBedroom"]);
    // A showroom visit names its showroom.
    let elsewhere = ObjectBuilder::new().schema_type(Type::Object).property(
        "type",
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(
                [
                    AppointmentKind::HomeMeasurement,
                    AppointmentKind::VirtualConsultation,
                ]
                .map(AppointmentKind::as_str),
            )),
    );
    let with_showroom = ObjectBuilder::new()
        .schema_type(Type::Object)
        .required("showroomId")
        .property("showroomId", service_kit::openapi::not_null());
    service_kit::openapi::require_any(
        doc,
        "BookingRequest",
        [elsewhere.build(), with_showroom.build()],
        false,
    );
    router
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_suffixes_avoid_look_alikes() {
        for _ in 0..200 {
            let suffix = reference_suffix();
            assert_eq!(suffix.len(), 4);
            assert!(!suffix.contains(['0', 'O', '1', 'I']), "{suffix}");
        }
    }

    /// `clean` refuses a booking for neither a kitchen nor a bedroom; the document says so, so a
    /// request valid by the schema is never refused for it.
    #[test]
    fn the_openapi_document_states_that_a_booking_is_for_a_kitchen_or_a_bedroom() {
        let doc =
            serde_json::to_value(service_kit::service::openapi::<crate::AppointmentService>())
                .expect("the document serialises");
        let request = &doc["components"]["schemas"]["BookingRequest"];
        assert_eq!(
            request["allOf"][1],
            serde_json::json!({"anyOf": [
                {"type": "object", "required": ["forKitchen"],
                 "properties": {"forKitchen": {"type": "boolean", "enum": [true]}}},
                {"type": "object", "required": ["forBedroom"],
                 "properties": {"forBedroom": {"type": "boolean", "enum": [true]}}},
            ]}),
            "{request}"
        );
        assert_eq!(
            request["allOf"][0]["properties"]["forKitchen"]["type"],
            "boolean"
        );
        assert_eq!(
            request["allOf"][2]["anyOf"][0]["properties"]["type"]["enum"],
            serde_json::json!(["HOME_MEASUREMENT", "VIRTUAL_CONSULTATION"]),
            "{request}"
        );
        assert_eq!(
            request["allOf"][2]["anyOf"][1]["required"],
            serde_json::json!(["showroomId"])
        );
    }
}

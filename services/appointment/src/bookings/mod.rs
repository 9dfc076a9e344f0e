//! Bookings: creation ([`create`]), the lifecycle ([`lifecycle`]) and the views ([`views`]).
//! This module holds what they share: the stored booking, the slot being taken, who may see a
//! booking, and the history writer.

pub mod create;
pub mod lifecycle;
pub mod views;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use service_kit::{Caller, FieldError, Role};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::catalogue::{AppointmentKind, kind_of};
use crate::error::{AppointmentError, AppointmentResult};
use crate::{AppState, Settings};

/// Where a booking is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BookingStatus {
    /// Booked, awaiting confirmation.
    Pending,
    /// Confirmed by staff.
    Confirmed,
    /// Took place.
    Completed,
    /// The customer did not come.
    NoShow,
    /// Cancelled; the slot is free again.
    Cancelled,
}

impl BookingStatus {
    /// The database code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Completed => "COMPLETED",
            Self::NoShow => "NO_SHOW",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// Parses a database code.
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "PENDING" => Some(Self::Pending),
            "CONFIRMED" => Some(Self::Confirmed),
            "COMPLETED" => Some(Self::Completed),
            "NO_SHOW" => Some(Self::NoShow),
            "CANCELLED" => Some(Self::Cancelled),
            _ => None,
        }
    }

    /// Whether the booking still holds its slot.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Pending | Self::Confirmed)
    }
}

/// A booking as stored, with its consultant's user id (for visibility checks).
#[derive(Debug, Clone)]
pub struct BookingRow {
    pub id: Uuid,
    pub reference_code: String,
    pub user_id: Option<Uuid>,
    pub appointment_type: String,
    pub for_kitchen: bool,
    pub for_bedroom: bool,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone: String,
    pub postcode: String,
    pub address: String,
    pub notes: Option<String>,
    pub slot_id: Uuid,
    pub consultant_id: Uuid,
    pub consultant_user_id: Uuid,
    pub showroom_id: Option<Uuid>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub status: String,
    pub snapshot: serde_json::Value,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl BookingRow {
    /// The status (the schema's check keeps it valid).
    pub fn status(&self) -> AppointmentResult<BookingStatus> {
        BookingStatus::parse(&self.status).ok_or_else(|| {
            anyhow::anyhow!("unknown booking status {} in the database", self.status).into()
        })
    }

    /// The customer's full name.
    pub fn customer_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }
}

/// Loads a booking, locking it when `lock` (for a change).
pub async fn load(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> AppointmentResult<Option<BookingRow>> {
    let row = if lock {
        sqlx::query_as!(
            BookingRow,
            r#"SELECT b.id, b.reference_code, b.user_id, b.appointment_type, b.for_kitchen,
                      b.for_bedroom, b.first_name, b.last_name, b.email, b.phone, b.postcode,
                      b.address, b.notes, b.slot_id, b.consultant_id,
                      c.user_id AS consultant_user_id, b.showroom_id,
                      lower(b.during) AS "starts_at!", upper(b.during) AS "ends_at!", b.status,
                      b.snapshot, b.cancelled_at, b.cancel_reason, b.created_at, b.updated_at
               FROM bookings b JOIN consultants c ON c.id = b.consultant_id
               WHERE b.id = $1
               FOR UPDATE OF b"#,
            id
        )
        .fetch_optional(conn)
        .await?
    } else {
        sqlx::query_as!(
            BookingRow,
            r#"SELECT b.id, b.reference_code, b.user_id, b.appointment_type, b.for_kitchen,
                      b.for_bedroom, b.first_name, b.last_name, b.email, b.phone, b.postcode,
                      b.address, b.notes, b.slot_id, b.consultant_id,
                      c.user_id AS consultant_user_id, b.showroom_id,
                      lower(b.during) AS "starts_at!", upper(b.during) AS "ends_at!", b.status,
                      b.snapshot, b.cancelled_at, b.cancel_reason, b.created_at, b.updated_at
               FROM bookings b JOIN consultants c ON c.id = b.consultant_id
               WHERE b.id = $1"#,
            id
        )
        .fetch_optional(conn)
        .await?
    };
    Ok(row)
}

/// How a caller relates to a booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// The customer who booked it.
    Owner,
    /// The consultant it is assigned to.
    Consultant,
    /// An administrator.
    Admin,
}

/// The caller's relation to `booking`; a booking they have none with does not exist for them.
pub fn relation(caller: &Caller, booking: &BookingRow) -> AppointmentResult<Relation> {
    if caller.role.is_admin() {
        Ok(Relation::Admin)
    } else if caller.role == Role::Consultant && booking.consultant_user_id == caller.user_id {
        Ok(Relation::Consultant)
    } else if booking.user_id == Some(caller.user_id) {
        Ok(Relation::Owner)
    } else {
        Err(AppointmentError::NotFound("appointment"))
    }
}

/// Who made a change, for the history.
#[derive(Debug, Clone, Copy)]
pub struct Actor {
    /// The user, unless a guest or the system.
    pub id: Option<Uuid>,
    /// `CUSTOMER`, `CONSULTANT`, `ADMIN`, `SUPER_ADMIN`, `GUEST` or `SYSTEM`.
    pub role: &'static str,
}

impl Actor {
    /// The system itself (jobs, consumers).
    pub const SYSTEM: Actor = Actor {
        id: None,
        role: "SYSTEM",
    };

    /// A signed-in caller, or a guest.
    pub fn of(caller: Option<&Caller>) -> Self {
        match caller {
            Some(caller) => Self {
                id: Some(caller.user_id),
                role: caller.role.as_str(),
            },
            None => Self {
                id: None,
                role: "GUEST",
            },
        }
    }
}

/// One line of a booking's history.
pub struct HistoryEntry<'a> {
    pub action: &'static str,
    pub from: Option<BookingStatus>,
    pub to: BookingStatus,
    pub actor: Actor,
    pub reason: Option<&'a str>,
    pub details: Option<serde_json::Value>,
}

/// Appends to a booking's history.
pub async fn record(
    conn: &mut PgConnection,
    booking_id: Uuid,
    entry: HistoryEntry<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO booking_history
             (id, booking_id, action, from_status, to_status, actor_id, actor_role, reason, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        Uuid::now_v7(),
        booking_id,
        entry.action,
        entry.from.map(BookingStatus::as_str),
        entry.to.as_str(),
        entry.actor.id,
        entry.actor.role,
        entry.reason,
        entry.details,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A slot about to be taken, with what the booking's snapshot keeps of it.
#[derive(Debug, Clone)]
pub struct SlotInfo {
    pub id: Uuid,
    pub appointment_type: String,
    pub type_name: String,
    pub duration_minutes: i32,
    pub buffer_minutes: i32,
    pub status: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub consultant_id: Uuid,
    pub consultant_name: String,
    pub consultant_specialisation: String,
    pub consultant_active: bool,
    pub coverage: Vec<String>,
    pub showroom_id: Option<Uuid>,
    pub showroom_name: Option<String>,
    pub showroom_address: Option<String>,
    pub showroom_postcode: Option<String>,
    pub showroom_phone: Option<String>,
}

impl SlotInfo {
    /// The time it blocks in the consultant's diary: the appointment plus the type's buffer.
    pub fn blocks_until(&self) -> DateTime<Utc> {
        self.ends_at + Duration::minutes(i64::from(self.buffer_minutes))
    }

    /// What a booking keeps of the slot, consultant, showroom and type as they are now.
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({
            "slot": { "id": self.id, "startsAt": self.starts_at, "endsAt": self.ends_at },
            "appointmentType": {
                "code": self.appointment_type,
                "name": self.type_name,
                "durationMinutes": self.duration_minutes,
                "bufferMinutes": self.buffer_minutes,
            },
            "consultant": {
                "id": self.consultant_id,
                "name": self.consultant_name,
                "specialisation": self.consultant_specialisation,
            },
            "showroom": self.showroom_id.map(|id| serde_json::json!({
                "id": id,
                "name": self.showroom_name,
                "address": self.showroom_address,
                "postcode": self.showroom_postcode,
                "phone": self.showroom_phone,
            })),
        })
    }
}

/// Reads a slot (no lock: taking it is a conditional update).
pub async fn load_slot(conn: &mut PgConnection, id: Uuid) -> AppointmentResult<Option<SlotInfo>> {
    Ok(sqlx::query_as!(
        SlotInfo,
        r#"SELECT s.id, s.appointment_type, t.name AS type_name, t.duration_minutes,
                  t.buffer_minutes, s.status,
                  lower(s.during) AS "starts_at!", upper(s.during) AS "ends_at!",
                  s.consultant_id, c.name AS consultant_name,
                  c.specialisation AS consultant_specialisation, c.active AS consultant_active,
                  c.coverage, s.showroom_id,
                  sh.name AS "showroom_name?", sh.address AS "showroom_address?",
                  sh.postcode AS "showroom_postcode?", sh.phone AS "showroom_phone?"
           FROM time_slots s
           JOIN appointment_types t ON t.code = s.appointment_type
           JOIN consultants c ON c.id = s.consultant_id
           LEFT JOIN showrooms sh ON sh.id = s.showroom_id
           WHERE s.id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?)
}

/// What a slot must match to be booked for a booking of `kind` at `postcode`.
pub struct SlotWanted<'a> {
    pub kind: AppointmentKind,
    /// The showroom asked for (showroom visits).
    pub showroom_id: Option<Uuid>,
    /// The outward code and area of the property (home visits).
    pub outward: &'a str,
    pub area: &'a str,
}

/// Checks that `slot` fits the booking (422s) and is free (409); `errors` collects the 422s.
pub fn check_slot(
    slot: &SlotInfo,
    wanted: &SlotWanted<'_>,
    settings: &Settings,
    now: DateTime<Utc>,
    errors: &mut Vec<FieldError>,
) -> AppointmentResult<()> {
    if kind_of(&slot.appointment_type)? != wanted.kind {
        errors.push(FieldError::new(
            "slotId",
            "is not a slot of this appointment type",
        ));
    }
    if wanted.kind == AppointmentKind::ShowroomVisit
        && wanted.showroom_id.is_some()
        && slot.showroom_id != wanted.showroom_id
    {
        errors.push(FieldError::new(
            "showroomId",
            "is not the showroom of this slot",
        ));
    }
    if wanted.kind == AppointmentKind::HomeMeasurement
        && !slot
            .coverage
            .iter()
            .any(|c| c == wanted.outward || c == wanted.area)
    {
        errors.push(FieldError::new(
            "postcode",
            "is outside the area this slot's consultant covers",
        ));
    }
    if slot.starts_at <= now {
        errors.push(FieldError::new("slotId", "is in the past"));
    } else if slot.starts_at < now + settings.min_notice {
        errors.push(FieldError::new(
            "slotId",
            format!(
                "starts too soon: book at least {} hours ahead",
                settings.min_notice.num_hours()
            ),
        ));
    } else if slot.starts_at >= now + Duration::days(i64::from(settings.horizon_days)) {
        errors.push(FieldError::new(
            "slotId",
            format!(
                "is too far ahead: book at most {} days ahead",
                settings.horizon_days
            ),
        ));
    }
    if !errors.is_empty() {
        return Err(AppointmentError::Validation(std::mem::take(errors)));
    }
    if slot.status != "OPEN" || !slot.consultant_active {
        return Err(AppointmentError::SlotUnavailable);
    }
    Ok(())
}

/// Takes an OPEN slot; another transaction holding or having taken it → 409.
pub async fn take_slot(conn: &mut PgConnection, slot_id: Uuid) -> AppointmentResult<()> {
    let taken = sqlx::query!(
        "UPDATE time_slots SET status = 'BOOKED' WHERE id = $1 AND status = 'OPEN'",
        slot_id
    )
    .execute(conn)
    .await?;
    if taken.rows_affected() == 1 {
        Ok(())
    } else {
        Err(AppointmentError::SlotUnavailable)
    }
}

/// Gives a booked slot back (cancellation, reschedule); the next materialisation retires it if
/// its rule has gone.
pub async fn release_slot(conn: &mut PgConnection, slot_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE time_slots SET status = 'OPEN' WHERE id = $1 AND status = 'BOOKED'",
        slot_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The routes of bookings.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(create::router())
        .merge(lifecycle::router())
        .merge(views::router())
}

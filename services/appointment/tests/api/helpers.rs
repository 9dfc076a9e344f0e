//! Drives the appointment service as the gateway would, with fixtures written straight into its
//! database where the admin API is not what is under test.

use appointment_service::AppointmentService;
use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use service_kit::Role;
use sqlx::PgPool;
pub use test_support::problem::{code as problem_code, fields as error_fields};
use test_support::{TestApp, TestUser};
use uuid::Uuid;

/// The service under test and its database.
pub struct Api {
    pub app: TestApp,
    pub pool: PgPool,
}

/// A consultant fixture: their row and the user who signs in as them.
#[derive(Debug, Clone)]
pub struct Consultant {
    pub id: Uuid,
    pub user: TestUser,
}

/// A start time `hours` from now, on a whole minute.
pub fn in_hours(hours: i64) -> DateTime<Utc> {
    let t = Utc::now() + Duration::hours(hours);
    DateTime::from_timestamp(t.timestamp() / 60 * 60, 0).unwrap()
}

impl Api {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_with(overrides: &[(&str, &str)]) -> Self {
        let mut env = vec![
            ("REMINDER_INTERVAL_SECS", "0"),
            ("SLOT_MATERIALISE_INTERVAL_SECS", "0"),
        ];
        env.extend_from_slice(overrides);
        let app = TestApp::spawn_with::<AppointmentService>(&env).await;
        let pool = app.pool().await;
        Self { app, pool }
    }

    pub fn admin() -> TestUser {
        TestUser::new(Role::Admin)
    }

    pub fn customer() -> TestUser {
        TestUser::new(Role::Customer)
    }

    /// A request as `user` (or anonymous).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        user: Option<&TestUser>,
        body: Option<&Value>,
    ) -> Response {
        let request = match user {
            Some(user) => self.app.request_as(method, path, user),
            None => self.app.request(method, path),
        };
        let request = match body {
            Some(body) => request.json(body),
            None => request,
        };
        request.send().await.unwrap()
    }

    pub async fn get_as(&self, path: &str, user: &TestUser) -> Response {
        self.send(Method::GET, path, Some(user), None).await
    }

    pub async fn post_as(&self, path: &str, user: Option<&TestUser>, body: &Value) -> Response {
        self.send(Method::POST, path, user, Some(body)).await
    }

    /// A showroom row.
    pub async fn showroom(&self, name: &str, postcode: &str) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO showrooms (id, name, address, postcode, phone, email)
             VALUES ($1, $2, '1 High Street, London', $3, '+442071234000', 'shop@example.com')",
        )
        .bind(id)
        .bind(name)
        .bind(postcode)
        .execute(&self.pool)
        .await
        .unwrap();
        id
    }

    /// A consultant covering `coverage` for home visits.
    pub async fn consultant(&self, name: &str, coverage: &[&str]) -> Consultant {
        let user = TestUser::new(Role::Consultant);
        let id = Uuid::now_v7();
        let coverage: Vec<String> = coverage.iter().map(|s| (*s).to_owned()).collect();
        sqlx::query(
            "INSERT INTO consultants (id, user_id, name, specialisation, coverage)
             VALUES ($1, $2, $3, 'BOTH', $4)",
        )
        .bind(id)
        .bind(user.id)
        .bind(name)
        .bind(&coverage)
        .execute(&self.pool)
        .await
        .unwrap();
        Consultant { id, user }
    }

    /// An OPEN slot of `kind` from `starts_at` for `minutes`.
    pub async fn slot_of(
        &self,
        consultant: &Consultant,
        kind: &str,
        showroom: Option<Uuid>,
        starts_at: DateTime<Utc>,
        minutes: i64,
    ) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO time_slots (id, consultant_id, appointment_type, showroom_id, during)
             VALUES ($1, $2, $3, $4, tstzrange($5, $6))",
        )
        .bind(id)
        .bind(consultant.id)
        .bind(kind)
        .bind(showroom)
        .bind(starts_at)
        .bind(starts_at + Duration::minutes(minutes))
        .execute(&self.pool)
        .await
        .unwrap();
        id
    }

    /// An OPEN 90-minute home-measurement slot.
    pub async fn home_slot(&self, consultant: &Consultant, starts_at: DateTime<Utc>) -> Uuid {
        self.slot_of(consultant, "HOME_MEASUREMENT", None, starts_at, 90)
            .await
    }

    /// A valid home-measurement booking request for `slot` in SW4.
    pub fn booking_body(slot: Uuid) -> Value {
        json!({
            "type": "HOME_MEASUREMENT",
            "forKitchen": true,
            "forBedroom": false,
            "firstName": "Jane",
            "lastName": "Doe",
            "email": "jane@example.com",
            "phone": "07700 900123",
            "postcode": "sw4 0ab",
            "address": "1 Acre Lane, London",
            "slotId": slot,
        })
    }

    /// Books `slot` (home measurement) as `user` or a guest; returns the response.
    pub async fn book(&self, slot: Uuid, user: Option<&TestUser>) -> Response {
        self.post_as("/v1/appointments", user, &Self::booking_body(slot))
            .await
    }

    /// Books and returns the booking id (asserting 201).
    pub async fn booked(&self, slot: Uuid, user: Option<&TestUser>) -> Uuid {
        let response = self.book(slot, user).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        let body: Value = response.json().await.unwrap();
        body["bookingId"].as_str().unwrap().parse().unwrap()
    }

    /// Sets a booking's status directly (fixtures for transitions).
    pub async fn set_status(&self, booking: Uuid, status: &str) {
        sqlx::query("UPDATE bookings SET status = $2 WHERE id = $1")
            .bind(booking)
            .bind(status)
            .execute(&self.pool)
            .await
            .unwrap();
    }

    /// Moves a booking (and its slot) in time, as if time had passed.
    pub async fn shift_booking(&self, booking: Uuid, starts_at: DateTime<Utc>) {
        sqlx::query(
            "WITH b AS (
                 UPDATE bookings SET during = tstzrange($2, $2 + (upper(during) - lower(during))),
                                     blocks = tstzrange($2, $2 + (upper(blocks) - lower(blocks)))
                 WHERE id = $1 RETURNING slot_id, during)
             UPDATE time_slots s SET during = b.during FROM b WHERE s.id = b.slot_id",
        )
        .bind(booking)
        .bind(starts_at)
        .execute(&self.pool)
        .await
        .unwrap();
    }

    /// Envelopes in the outbox with `topic`, oldest first.
    pub async fn events(&self, topic: &str) -> Vec<Value> {
        sqlx::query_scalar::<_, Value>("SELECT envelope FROM outbox WHERE topic = $1 ORDER BY seq")
            .bind(topic)
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }

    pub async fn slot_status(&self, slot: Uuid) -> String {
        sqlx::query_scalar("SELECT status FROM time_slots WHERE id = $1")
            .bind(slot)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    pub async fn booking_status(&self, booking: Uuid) -> String {
        sqlx::query_scalar("SELECT status FROM bookings WHERE id = $1")
            .bind(booking)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Pairs of active bookings of one consultant whose blocked times overlap (must be 0).
    pub async fn overlapping_active_bookings(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM bookings a JOIN bookings b
               ON a.consultant_id = b.consultant_id AND a.id < b.id AND a.blocks && b.blocks
             WHERE a.status IN ('PENDING', 'CONFIRMED') AND b.status IN ('PENDING', 'CONFIRMED')",
        )
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }
}

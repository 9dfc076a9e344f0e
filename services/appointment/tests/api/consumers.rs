//! Events applied by this service: erasure and linking guest bookings.

use appointment_service::consumers::{erase, link_guest_bookings};
use chrono::Utc;
use serde_json::Value;
use shared_types::DomainEvent;
use shared_types::auth::{UserEmailVerified, UserErasureRequested};

use crate::helpers::{Api, in_hours};

#[tokio::test]
async fn a_guest_booking_becomes_the_user_s_once_they_verify_that_email() {
    let api = Api::spawn().await;
    let consultant = api.consultant("Amelia Hart", &["SW"]).await;
    let guest = api
        .booked(api.home_slot(&consultant, in_hours(48)).await, None)
        .await;
    let other = {
        let mut body = Api::booking_body(api.home_slot(&consultant, in_hours(72)).await);
        body["email"] = "someone.else@example.com".into();
        let r = api.post_as("/v1/appointments", None, &body).await;
        assert_eq!(r.status(), 201);
        r.json::<Value>().await.unwrap()["bookingId"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let jane = Api::customer();

    let mut conn = api.pool.acquire().await.unwrap();
    link_guest_bookings(
        DomainEvent::new(
            "auth",
            UserEmailVerified {
                user_id: jane.id,
                email: "Jane@Example.com".into(),
                verified_at: Utc::now(),
            },
        ),
        &mut conn,
    )
    .await
    .unwrap();
    drop(conn);

    let mine: Value = api
        .get_as("/v1/appointments/mine", &jane)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = mine["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![guest.to_string()]);
    assert_ne!(ids[0], other);
    let own = api
        .get_as(&format!("/v1/appointments/{guest}"), &jane)
        .await;
    assert_eq!(own.status(), 200);
}

#[tokio::test]
async fn erasure_anonymises_bookings_keeps_their_time_blocks_and_frees_future_slots() {
    let api = Api::spawn().await;
    let consultant = api.consultant("Amelia Hart", &["SW"]).await;
    let jane = Api::customer();
    let past_slot = api.home_slot(&consultant, in_hours(48)).await;
    let past = api.booked(past_slot, Some(&jane)).await;
    api.set_status(past, "CONFIRMED").await;
    api.shift_booking(past, in_hours(-48)).await;
    api.set_status(past, "COMPLETED").await;
    let future_slot = api.home_slot(&consultant, in_hours(72)).await;
    let future = api.booked(future_slot, Some(&jane)).await;
    let brochure = serde_json::json!({
        "firstName": "Jane", "lastName": "Doe", "email": "jane@example.com",
        "phone": "07700 900123", "postcode": "SW4 0AB", "address": "1 Acre Lane",
        "interests": "KITCHEN"
    });
    api.post_as("/v1/brochures", Some(&jane), &brochure).await;

    let mut conn = api.pool.acquire().await.unwrap();
    erase(
        DomainEvent::new(
            "auth",
            UserErasureRequested {
                user_id: jane.id,
                requested_by: None,
                requested_at: Utc::now(),
            },
        ),
        &mut conn,
    )
    .await
    .unwrap();
    drop(conn);

    let rows: Vec<(String, String, String, String, String, Option<uuid::Uuid>)> = sqlx::query_as(
        "SELECT status, first_name, email, phone, postcode, user_id FROM bookings ORDER BY lower(during)",
    )
    .fetch_all(&api.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2, "the diary keeps both time blocks");
    assert_eq!(rows[0].0, "COMPLETED");
    assert_eq!(rows[1].0, "CANCELLED");
    for row in &rows {
        assert_eq!(row.1, "Erased");
        assert!(row.2.ends_with("@invalid"));
        assert_eq!(row.3, "");
        assert_eq!(row.4, "SW4");
        assert!(row.5.is_none());
    }
    assert_eq!(api.slot_status(future_slot).await, "OPEN");
    assert_eq!(api.booking_status(future).await, "CANCELLED");
    let brochures: i64 = sqlx::query_scalar("SELECT count(*) FROM brochure_requests")
        .fetch_one(&api.pool)
        .await
        .unwrap();
    assert_eq!(brochures, 0);
    let mine: Value = api
        .get_as("/v1/appointments/mine", &jane)
        .await
        .json()
        .await
        .unwrap();
    assert!(mine["data"].as_array().unwrap().is_empty());
}

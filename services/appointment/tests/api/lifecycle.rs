//! Status transitions, cancellation notice, atomic reschedule, history.

use chrono::Duration;
use serde_json::{Value, json};

use crate::helpers::{Api, in_hours, problem_code};

#[tokio::test]
async fn the_consultant_confirms_and_booking_confirmed_goes_out() {
    let api = Api::spawn().await;
    let consultant = api.consultant("Amelia Hart", &["SW"]).await;
    let jane = Api::customer();
    let id = api
        .booked(api.home_slot(&consultant, in_hours(48)).await, Some(&jane))
        .await;
    let path = format!("/v1/appointments/{id}/confirm");

    let by_customer = api.post_as(&path, Some(&jane), &json!({})).await;
    let by_stranger = api.post_as(&path, Some(&Api::customer()), &json!({})).await;
    let by_consultant = api.post_as(&path, Some(&consultant.user), &json!({})).await;
    let twice = api.post_as(&path, Some(&Api::admin()), &json!({})).await;

    assert_eq!(by_customer.status(), 403);
    assert_eq!(by_stranger.status(), 404);
    assert_eq!(by_consultant.status(), 200);
    let body: Value = by_consultant.json().await.unwrap();
    assert_eq!(body["status"], "CONFIRMED");
    assert_eq!(twice.status(), 409);
    let problem: Value = twice.json().await.unwrap();
    assert_eq!(problem_code(&problem), "illegal-transition");
    let events = api.events("booking.confirmed").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["payload"]["bookingId"], id.to_string());
    let history: Vec<(String, Option<String>, String, String)> = sqlx::query_as(
        "SELECT action, from_status, to_status, actor_role FROM booking_history
         WHERE booking_id = $1 ORDER BY created_at, id",
    )
    .bind(id)
    .fetch_all(&api.pool)
    .await
    .unwrap();
    assert_eq!(
        history,
        vec![
            ("CREATED".into(), None, "PENDING".into(), "CUSTOMER".into()),
            (
                "CONFIRMED".into(),
                Some("PENDING".into()),
                "CONFIRMED".into(),
                "CONSULTANT".into()
            ),
        ]
    );
}

#[tokio::test]
async fn complete_and_no_show_need_a_confirmed_booking_that_has_started() {
    let api = Api::spawn().await;
    let consultant = api.consultant("Amelia Hart", &["SW"]).await;
    let a = api
        .booked(api.home_slot(&consultant, in_hours(48)).await, None)
        .await;
    let b = api
        .booked(api.home_slot(&consultant, in_hours(72)).await, None)
        .await;
    let staff = &consultant.user;

    let pending = api
        .post_as(
            &format!("/v1/appointments/{a}/complete"),
            Some(staff),
            &json!({}),
        )
        .await;
    api.set_status(a, "CONFIRMED").await;
    let not_started = api
        .post_as(
            &format!("/v1/appointments/{a}/complete"),
            Some(staff),
            &json!({}),
        )
        .await;
    api.shift_booking(a, in_hours(-2)).await;
    let completed = api
        .post_as(
            &format!("/v1/appointments/{a}/complete"),
            Some(staff),
            &json!({}),
        )
        .await;
    let after_complete = api
        .post_as(
            &format!("/v1/appointments/{a}/no-show"),
            Some(staff),
            &json!({}),
        )
        .await;
    api.set_status(b, "CONFIRMED").await;
    api.shift_booking(b, in_hours(-5)).await;
    let no_show = api
        .post_as(
            &format!("/v1/appointments/{b}/no-show"),
            Some(staff),
            &json!({}),
        )
        .await;
    let cancel_after = api
        .post_as(
            &format!("/v1/appointments/{b}/cancel"),
            Some(&Api::admin()),
            &json!({"reason": "too late"}),
        )
        .await;

    assert_eq!(pending.status(), 409);
    assert_eq!(not_started.status(), 409);
    let problem: Value = not_started.json().await.unwrap();
    assert_eq!(problem_code(&problem), "appointment-not-started");
    assert_eq!(completed.status(), 200);
    assert_eq!(api.booking_status(a).await, "COMPLETED");
    assert_eq!(after_complete.status(), 409);
    assert_eq!(no_show.status(), 200);
    assert_eq!(api.booking_status(b).await, "NO_SHOW");
    assert_eq!(cancel_after.status(), 409);
}

#[tokio::test]
async fn a_customer_cancels_with_notice_and_the_slot_is_free_again() {
    let api = Api::spawn().await;
    let consultant = api.consultant("Amelia Hart", &["SW"]).await;
    let jane = Api::customer();
    let slot = api.home_slot(&consultant, in_hours(48)).await;
    let id = api.booked(slot, Some(&jane)).await;
    let path = format!("/v1/appointments/{id}/cancel");

    let no_reason = api.post_as(&path, Some(&jane), &json!({})).await;
    let stranger = api
        .post_as(&path, Some(&Api::customer()), &json!({"reason": "x"}))
        .await;
    let cancelled = api
        .post_as(&path, Some(&jane), &json!({"reason": "Changed my mind"}))
        .await;
    let again = api
        .post_as(&path, Some(&jane), &json!({"reason": "Changed my mind"}))
        .await;

    assert_eq!(no_reason.status(), 422);
    assert_eq!(stranger.status(), 404);
    assert_eq!(cancelled.status(), 200);
    let body: Value = cancelled.json().await.unwrap();
    assert_eq!(body["status"], "CANCELLED");
    assert_eq!(body["cancelReason"], "Changed my mind");
    assert_eq!(again.status(), 409);
    assert_eq!(api.slot_status(slot).await, "OPEN");
    let events = api.events("booking.cancelled").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["payload"]["cancelledBy"], "CUSTOMER");
    // The freed slot can be booked again.
    api.booked(slot, None).await;
}

#[tokio::test]
async fn cancelling_inside_the_notice_is_422_for_customers_but_not_for_staff() {
    let api = Api::spawn().await;
    let consultant = api.consultant("Amelia Hart", &["SW"]).await;
    let jane = Api::customer();
    let id = api
        .booked(api.home_slot(&consultant, in_hours(48)).await, Some(&jane))
        .await;
    api.shift_booking(id, in_hours(20)).await;
    let path = format!("/v1/appointments/{id}/cancel");

    let late = api
        .post_as(&path, Some(&jane), &json!({"reason": "Cannot make it"}))
        .await;
    let late_reschedule = api
        .post_as(
            &format!("/v1/appointments/{id}/reschedule"),
            Some(&jane),
            &json!({"slotId": api.home_slot(&consultant, in_hours(100)).await}),
        )
        .await;
    let staff = api
        .post_as(
            &path,
            Some(&consultant.user),
            &json!({"reason": "Consultant ill"}),
        )
        .await;

    assert_eq!(late.status(), 422);
    let problem: Value = late.json().await.unwrap();
    assert_eq!(problem_code(&problem), "notice-passed");
    assert_eq!(late_reschedule.status(), 422);
    assert_eq!(staff.status(), 200);
    let events = api.events("booking.cancelled").await;
    assert_eq!(events[0]["payload"]["cancelledBy"], "STAFF");
}

#[tokio::test]
async fn the_notice_is_configurable() {
    let api = Api::spawn_with(&[("BOOKING_CANCEL_NOTICE_HOURS", "72")]).await;
    let consultant = api.consultant("Amelia Hart", &["SW"]).await;
    let jane = Api::customer();
    let id = api
        .booked(api.home_slot(&consultant, in_hours(48)).await, Some(&jane))
        .await;

    let response = api
        .post_as(
            &format!("/v1/appointments/{id}/cancel"),
            Some(&jane),
            &json!({"reason": "x"}),
        )
        .await;

    assert_eq!(response.status(), 422);
}

#[tokio::test]
async fn rescheduling_moves_the_booking_keeping_its_reference() {
    let api = Api::spawn().await;
    let amelia = api.consultant("Amelia Hart", &["SW"]).await;
    let james = api.consultant("James Okafor", &["SW4"]).await;
    let jane = Api::customer();
    let old = api.home_slot(&amelia, in_hours(48)).await;
    let new = api.home_slot(&james, in_hours(96)).await;
    let id = api.booked(old, Some(&jane)).await;
    api.set_status(id, "CONFIRMED").await;
    let before: Value = api
        .get_as(&format!("/v1/appointments/{id}"), &jane)
        .await
        .json()
        .await
        .unwrap();

    let response = api
        .post_as(
            &format!("/v1/appointments/{id}/reschedule"),
            Some(&jane),
            &json!({"slotId": new, "reason": "Work trip"}),
        )
        .await;

    assert_eq!(response.status(), 200);
    let after: Value = response.json().await.unwrap();
    assert_eq!(after["referenceCode"], before["referenceCode"]);
    assert_eq!(after["status"], "CONFIRMED");
    assert_eq!(after["slotId"], new.to_string());
    assert_eq!(after["consultantId"], james.id.to_string());
    assert_eq!(after["snapshot"]["consultant"]["name"], "James Okafor");
    assert_eq!(api.slot_status(old).await, "OPEN");
    assert_eq!(api.slot_status(new).await, "BOOKED");
    let events = api.events("booking.rescheduled").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["payload"]["slotId"], new.to_string());
    let history: Value = api
        .get_as(&format!("/v1/appointments/{id}"), &Api::admin())
        .await
        .json()
        .await
        .unwrap();
    let last = history["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["action"], "RESCHEDULED");
    assert_eq!(last["reason"], "Work trip");
    assert_eq!(last["details"]["fromSlotId"], old.to_string());
}

#[tokio::test]
async fn rescheduling_onto_a_taken_slot_changes_nothing() {
    let api = Api::spawn().await;
    let consultant = api.consultant("Amelia Hart", &["SW"]).await;
    let jane = Api::customer();
    let old = api.home_slot(&consultant, in_hours(48)).await;
    let taken = api.home_slot(&consultant, in_hours(96)).await;
    let id = api.booked(old, Some(&jane)).await;
    api.booked(taken, None).await;
    let before: Value = api
        .get_as(&format!("/v1/appointments/{id}"), &Api::admin())
        .await
        .json()
        .await
        .unwrap();

    let response = api
        .post_as(
            &format!("/v1/appointments/{id}/reschedule"),
            Some(&jane),
            &json!({"slotId": taken}),
        )
        .await;

    assert_eq!(response.status(), 409);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "SLOT_UNAVAILABLE");
    let after: Value = api
        .get_as(&format!("/v1/appointments/{id}"), &Api::admin())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after, before, "the booking is untouched, history included");
    assert_eq!(api.slot_status(old).await, "BOOKED");
    assert!(api.events("booking.rescheduled").await.is_empty());
}

#[tokio::test]
async fn rescheduling_onto_a_slot_overlapping_another_booking_of_its_consultant_is_409() {
    let api = Api::spawn().await;
    let consultant = api.consultant("Amelia Hart", &["SW"]).await;
    let jane = Api::customer();
    let old = api.home_slot(&consultant, in_hours(48)).await;
    let other = api.home_slot(&consultant, in_hours(96)).await;
    let overlapping = api
        .home_slot(&consultant, in_hours(96) + Duration::minutes(30))
        .await;
    let id = api.booked(old, Some(&jane)).await;
    api.booked(other, None).await;

    let response = api
        .post_as(
            &format!("/v1/appointments/{id}/reschedule"),
            Some(&jane),
            &json!({"slotId": overlapping}),
        )
        .await;

    assert_eq!(response.status(), 409);
    assert_eq!(api.slot_status(old).await, "BOOKED");
    assert_eq!(api.slot_status(overlapping).await, "OPEN");
    assert_eq!(api.overlapping_active_bookings().await, 0);
}

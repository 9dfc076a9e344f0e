//! Creating bookings: guests and customers, validation, the snapshot, the event, the views.

use chrono::Duration;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Api, error_fields, in_hours, problem_code};

#[tokio::test]
async fn a_guest_books_a_free_slot_and_booking_created_is_in_the_outbox() {
    let api = Api::spawn().await;
    let consultant = api.consultant("Amelia Hart", &["SW"]).await;
    let starts = in_hours(48);
    let slot = api.home_slot(&consultant, starts).await;
    let mut body = Api::booking_body(slot);
    body["forBedroom"] = json!(true);

    let response = api.post_as("/v1/appointments", None, &body).await;

    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["status"], "PENDING");
    let reference = created["referenceCode"].as_str().unwrap();
    assert!(
        reference.len() == 16 && reference.starts_with("BK-") && &reference[11..12] == "-",
        "{reference}"
    );
    assert_eq!(created["slot"]["id"], slot.to_string());
    assert_eq!(created["slot"]["consultant"]["name"], "Amelia Hart");
    assert_eq!(api.slot_status(slot).await, "BOOKED");

    let events = api.events("booking.created").await;
    assert_eq!(events.len(), 1);
    let payload = &events[0]["payload"];
    assert_eq!(payload["referenceCode"], reference);
    assert_eq!(payload["forKitchen"], true);
    assert_eq!(payload["forBedroom"], true);
    assert_eq!(payload["appointmentType"], "HOME_MEASUREMENT");
    assert_eq!(payload["customerEmail"], "jane@example.com");
    assert_eq!(payload["customerPhone"], "+447700900123");
    assert_eq!(payload["postcode"], "SW4 0AB");
    assert!(payload["userId"].is_null());
    assert_eq!(
        payload["slotStartsAt"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap(),
        starts
    );

    let row: (Value, Option<uuid::Uuid>) =
        sqlx::query_as("SELECT snapshot, user_id FROM bookings WHERE reference_code = $1")
            .bind(reference)
            .fetch_one(&api.pool)
            .await
            .unwrap();
    assert_eq!(row.0["consultant"]["name"], "Amelia Hart");
    assert_eq!(row.0["appointmentType"]["durationMinutes"], 90);
    assert!(row.1.is_none());
}

#[tokio::test]
async fn a_signed_in_customer_owns_their_booking_and_sees_it_in_mine() {
    let api = Api::spawn().await;
    let consultant = api.consultant("Amelia Hart", &["SW4"]).await;
    let jane = Api::customer();
    let first = api.home_slot(&consultant, in_hours(48)).await;
    let second = api.home_slot(&consultant, in_hours(72)).await;
    let a = api.booked(first, Some(&jane)).await;
    let b = api.booked(second, Some(&jane)).await;
    let _guest = api
        .booked(api.home_slot(&consultant, in_hours(96)).await, None)
        .await;

    let page: Value = api
        .get_as("/v1/appointments/mine?limit=1", &jane)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["data"][0]["id"], b.to_string(), "latest start first");
    assert_eq!(page["hasNextPage"], true);
    let cursor = page["nextCursor"].as_str().unwrap();
    let next: Value = api
        .get_as(
            &format!("/v1/appointments/mine?limit=1&cursor={cursor}"),
            &jane,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(next["data"][0]["id"], a.to_string());
    assert_eq!(next["hasNextPage"], false);

    let events = api.events("booking.created").await;
    assert_eq!(events[0]["payload"]["userId"], jane.id.to_string());
    assert!(events[2]["payload"]["userId"].is_null());
}

#[tokio::test]
async fn invalid_bookings_are_422_naming_the_fields_and_change_nothing() {
    let api = Api::spawn().await;
    let consultant = api.consultant("Amelia Hart", &["SW"]).await;
    let showroom = api.showroom("Clapham", "SW4 7UJ").await;
    let slot = api.home_slot(&consultant, in_hours(48)).await;
    let past = api.home_slot(&consultant, in_hours(-3)).await;
    let soon = api.home_slot(&consultant, in_hours(2)).await;
    let far = api.home_slot(&consultant, in_hours(24 * 95)).await;
    let showroom_slot = api
        .slot_of(
            &consultant,
            "SHOWROOM_VISIT",
            Some(showroom),
            in_hours(50),
            60,
        )
        .await;

    let cases: Vec<(Value, &str)> = vec![
        (
            {
                let mut b = Api::booking_body(slot);
                b["forKitchen"] = json!(false);
                b
            },
            "forKitchen",
        ),
        (
            {
                let mut b = Api::booking_body(showroom_slot);
                b["type"] = json!("SHOWROOM_VISIT");
                b
            },
            "showroomId",
        ),
        (
            {
                let mut b = Api::booking_body(slot);
                b["postcode"] = json!("NOT A POSTCODE");
                b
            },
            "postcode",
        ),
        (
            {
                let mut b = Api::booking_body(slot);
                b["phone"] = json!("12345");
                b
            },
            "phone",
        ),
        (
            {
                let mut b = Api::booking_body(slot);
                b["email"] = json!("jane-at-example");
                b
            },
            "email",
        ),
        (
            {
                let mut b = Api::booking_body(slot);
                b.as_object_mut().unwrap().remove("firstName");
                b
            },
            "firstName",
        ),
        (Api::booking_body(past), "slotId"),
        (Api::booking_body(soon), "slotId"),
        (Api::booking_body(far), "slotId"),
        (Api::booking_body(uuid::Uuid::now_v7()), "slotId"),
        // A home visit outside the consultant's area.
        (
            {
                let mut b = Api::booking_body(slot);
                b["postcode"] = json!("EC1A 1BB");
                b
            },
            "postcode",
        ),
        // The wrong kind of slot.
        (
            {
                let mut b = Api::booking_body(slot);
                b["type"] = json!("VIRTUAL_CONSULTATION");
                b
            },
            "slotId",
        ),
    ];
    for (body, field) in cases {
        let response = api.post_as("/v1/appointments", None, &body).await;
        assert_eq!(response.status(), 422, "{field}: {body}");
        let problem: Value = response.json().await.unwrap();
        assert!(
            error_fields(&problem).iter().any(|f| f == field),
            "{field} not named in {problem}"
        );
    }
    let bookings: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings")
        .fetch_one(&api.pool)
        .await
        .unwrap();
    assert_eq!(bookings, 0);
    assert!(api.events("booking.created").await.is_empty());
    assert_eq!(api.slot_status(slot).await, "OPEN");
}

#[tokio::test]
async fn a_showroom_visit_needs_the_slot_s_showroom() {
    let api = Api::spawn().await;
    let consultant = api.consultant("Priya Shah", &["EC"]).await;
    let clapham = api.showroom("Clapham", "SW4 7UJ").await;
    let city = api.showroom("City", "EC1M 4AY").await;
    let slot = api
        .slot_of(
            &consultant,
            "SHOWROOM_VISIT",
            Some(clapham),
            in_hours(50),
            60,
        )
        .await;
    let mut body = Api::booking_body(slot);
    body["type"] = json!("SHOWROOM_VISIT");

    body["showroomId"] = json!(city);
    let wrong = api.post_as("/v1/appointments", None, &body).await;
    body["showroomId"] = json!(clapham);
    let right = api.post_as("/v1/appointments", None, &body).await;

    assert_eq!(wrong.status(), 422);
    assert_eq!(right.status(), 201);
    let id: Value = right.json().await.unwrap();
    let snapshot: Value = sqlx::query_scalar("SELECT snapshot FROM bookings WHERE id = $1")
        .bind(
            id["bookingId"]
                .as_str()
                .unwrap()
                .parse::<uuid::Uuid>()
                .unwrap(),
        )
        .fetch_one(&api.pool)
        .await
        .unwrap();
    assert_eq!(snapshot["showroom"]["name"], "Clapham");
}

#[tokio::test]
async fn a_taken_slot_is_409_slot_unavailable() {
    let api = Api::spawn().await;
    let consultant = api.consultant("Amelia Hart", &["SW"]).await;
    let slot = api.home_slot(&consultant, in_hours(48)).await;
    // A different slot that overlaps the first one's buffer (90 min + 30 min buffer).
    let overlapping = api
        .home_slot(&consultant, in_hours(48) + Duration::minutes(100))
        .await;
    api.booked(slot, None).await;

    let again = api.book(slot, None).await;
    let overlap = api.book(overlapping, None).await;

    for response in [again, overlap] {
        assert_eq!(response.status(), 409);
        let body: Value = response.json().await.unwrap();
        assert_eq!(problem_code(&body), "slot-unavailable");
        assert_eq!(body["code"], "SLOT_UNAVAILABLE");
    }
    assert_eq!(api.slot_status(overlapping).await, "OPEN");
    assert_eq!(api.events("booking.created").await.len(), 1);
}

#[tokio::test]
async fn only_the_owner_the_consultant_and_admins_see_a_booking() {
    let api = Api::spawn().await;
    let consultant = api.consultant("Amelia Hart", &["SW"]).await;
    let other_consultant = api.consultant("James Okafor", &["SW"]).await;
    let jane = Api::customer();
    let id = api
        .booked(api.home_slot(&consultant, in_hours(48)).await, Some(&jane))
        .await;
    let path = format!("/v1/appointments/{id}");

    let owner = api.get_as(&path, &jane).await;
    let assigned = api.get_as(&path, &consultant.user).await;
    let admin = api.get_as(&path, &Api::admin()).await;
    let stranger = api.get_as(&path, &Api::customer()).await;
    let other = api.get_as(&path, &other_consultant.user).await;
    let anonymous = api.send(Method::GET, &path, None, None).await;

    assert_eq!(owner.status(), 200);
    let body: Value = owner.json().await.unwrap();
    assert!(
        body.get("history").is_none(),
        "customers do not see the audit trail"
    );
    assert_eq!(assigned.status(), 200);
    let body: Value = assigned.json().await.unwrap();
    assert_eq!(body["history"][0]["action"], "CREATED");
    assert_eq!(body["history"][0]["actorRole"], "CUSTOMER");
    assert_eq!(admin.status(), 200);
    assert_eq!(stranger.status(), 404);
    assert_eq!(other.status(), 404);
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn the_consultant_diary_lists_their_bookings_in_the_window() {
    let api = Api::spawn().await;
    let amelia = api.consultant("Amelia Hart", &["SW"]).await;
    let james = api.consultant("James Okafor", &["SW"]).await;
    let mine = api
        .booked(api.home_slot(&amelia, in_hours(48)).await, None)
        .await;
    let _later = api
        .booked(api.home_slot(&amelia, in_hours(24 * 20)).await, None)
        .await;
    let _theirs = api
        .booked(api.home_slot(&james, in_hours(48)).await, None)
        .await;

    let diary = api
        .get_as("/v1/consultants/me/appointments", &amelia.user)
        .await;
    let customer = api
        .get_as("/v1/consultants/me/appointments", &Api::customer())
        .await;
    let bad = api
        .get_as(
            "/v1/consultants/me/appointments?from=2026-12-10&to=2026-12-01",
            &amelia.user,
        )
        .await;

    assert_eq!(diary.status(), 200);
    let body: Value = diary.json().await.unwrap();
    let ids: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![mine.to_string()]);
    assert_eq!(customer.status(), 403);
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn admins_filter_and_page_every_booking() {
    let api = Api::spawn().await;
    let amelia = api.consultant("Amelia Hart", &["SW"]).await;
    let james = api.consultant("James Okafor", &["SW"]).await;
    let a = api
        .booked(api.home_slot(&amelia, in_hours(48)).await, None)
        .await;
    let mut body = Api::booking_body(api.home_slot(&james, in_hours(48)).await);
    body["email"] = json!("zoe@example.com");
    body["forBedroom"] = json!(true);
    body["forKitchen"] = json!(false);
    assert_eq!(
        api.post_as("/v1/appointments", None, &body).await.status(),
        201
    );
    api.set_status(a, "CONFIRMED").await;
    let admin = Api::admin();

    let all: Value = api
        .get_as("/v1/admin/appointments?pageSize=1", &admin)
        .await
        .json()
        .await
        .unwrap();
    let by_consultant: Value = api
        .get_as(
            &format!("/v1/admin/appointments?consultantId={}", amelia.id),
            &admin,
        )
        .await
        .json()
        .await
        .unwrap();
    let confirmed: Value = api
        .get_as("/v1/admin/appointments?status=CONFIRMED,CANCELLED", &admin)
        .await
        .json()
        .await
        .unwrap();
    let bedroom: Value = api
        .get_as("/v1/admin/appointments?forBedroom=true&search=ZOE", &admin)
        .await
        .json()
        .await
        .unwrap();
    let reference = all["data"][0]["referenceCode"].as_str().unwrap().to_owned();
    let by_reference: Value = api
        .get_as(
            &format!("/v1/admin/appointments?search={reference}"),
            &admin,
        )
        .await
        .json()
        .await
        .unwrap();
    let unknown = api
        .get_as("/v1/admin/appointments?status=LOST", &admin)
        .await;
    let unknown_filter = api
        .get_as("/v1/admin/appointments?colour=red", &admin)
        .await;
    let customer = api.get_as("/v1/admin/appointments", &Api::customer()).await;

    assert_eq!(all["total"], 2);
    assert_eq!(all["data"].as_array().unwrap().len(), 1);
    assert_eq!(by_consultant["total"], 1);
    assert_eq!(by_consultant["data"][0]["id"], a.to_string());
    assert_eq!(confirmed["total"], 1);
    assert_eq!(bedroom["total"], 1);
    assert_eq!(bedroom["data"][0]["email"], "zoe@example.com");
    assert_eq!(by_reference["total"], 1);
    assert_eq!(unknown.status(), 422);
    assert_eq!(unknown_filter.status(), 422);
    assert_eq!(customer.status(), 403);
}

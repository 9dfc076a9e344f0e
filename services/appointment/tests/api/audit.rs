//! The audit trail of admin and staff changes (issue 14): one redacted row per change, in the
//! change's transaction; rejected writes and reads leave none; SUPER_ADMIN alone reads it.

use reqwest::{Method, Response};
use serde_json::{Value, json};
use service_kit::Role;
use test_support::TestUser;
use test_support::audit::{self, AuditRow};
use uuid::Uuid;

use crate::helpers::{Api, in_hours};

/// Sends `body` as `user` with a fresh `X-Request-Id`; returns the response and that id.
async fn send(
    api: &Api,
    method: Method,
    path: &str,
    user: &TestUser,
    body: Option<&Value>,
) -> (Response, String) {
    let (request, request_id) = audit::request(&api.app, user, method, path, body);
    (request.send().await.unwrap(), request_id)
}

async fn count(api: &Api) -> i64 {
    audit::count(&api.pool).await
}

/// The single row of `request_id`, checked against the actor and what was changed.
async fn one_row(
    api: &Api,
    request_id: &str,
    actor: &TestUser,
    role: &str,
    entity: &str,
    action: &str,
) -> AuditRow {
    audit::one_row(
        &api.pool,
        request_id,
        audit::expect(actor.id, role, entity, action),
    )
    .await
}

fn showroom_body() -> Value {
    json!({
        "name": "Clapham",
        "address": "112 Clapham High Street, London",
        "postcode": "SW4 7UJ",
        "phone": "020 7123 4001",
        "email": "clapham@lomashwood.co.uk",
        "latitude": 51.46,
        "longitude": -0.13,
    })
}

#[tokio::test]
async fn showroom_and_consultant_changes_are_audited_without_personal_details() {
    let api = Api::spawn().await;
    let admin = Api::admin();

    let (created, request_id) = send(
        &api,
        Method::POST,
        "/v1/admin/showrooms",
        &admin,
        Some(&showroom_body()),
    )
    .await;
    assert_eq!(created.status(), 201);
    let showroom: Value = created.json().await.unwrap();
    let row = one_row(&api, &request_id, &admin, "ADMIN", "showroom", "create").await;
    assert_eq!(row.entity_id, showroom["id"].as_str().unwrap());
    assert_eq!(row.changes["name"], json!({"after": "Clapham"}));
    assert_eq!(row.changes["email"], json!({"after": "[redacted]"}));
    audit::assert_no_leak(
        &row.changes,
        &["lomashwood.co.uk", "Clapham High", "7123", "SW4 7UJ"],
    );

    let path = format!("/v1/admin/showrooms/{}", showroom["id"].as_str().unwrap());
    let (patched, request_id) = send(
        &api,
        Method::PATCH,
        &path,
        &admin,
        Some(&json!({"active": false, "email": "new@lomashwood.co.uk"})),
    )
    .await;
    assert_eq!(patched.status(), 200);
    let row = one_row(&api, &request_id, &admin, "ADMIN", "showroom", "update").await;
    assert_eq!(
        row.changes,
        json!({
            "email": {"before": "[redacted]", "after": "[redacted]"},
            "active": {"before": true, "after": false},
        })
    );

    let consultant = api.consultant("Amelia Hart", &["SW"]).await;
    let (patched, request_id) = send(
        &api,
        Method::PATCH,
        &format!("/v1/admin/consultants/{}", consultant.id),
        &admin,
        Some(&json!({"bio": "Twenty years of oak kitchens", "coverage": ["SW", "SE"]})),
    )
    .await;
    assert_eq!(patched.status(), 200);
    let row = one_row(&api, &request_id, &admin, "ADMIN", "consultant", "update").await;
    assert_eq!(row.entity_id, consultant.id.to_string());
    assert_eq!(
        row.changes,
        json!({
            "bio": {"before": "[redacted]", "after": "[redacted]"},
            "coverage": {"before": ["SW"], "after": ["SW", "SE"]},
        })
    );
}

#[tokio::test]
async fn rejected_writes_and_reads_leave_no_row() {
    let api = Api::spawn().await;
    let admin = Api::admin();

    let mut bad = showroom_body();
    bad["postcode"] = json!("NOT A POSTCODE");
    let (invalid, _) = send(
        &api,
        Method::POST,
        "/v1/admin/showrooms",
        &admin,
        Some(&bad),
    )
    .await;
    assert_eq!(invalid.status(), 422);
    let (forbidden, _) = send(
        &api,
        Method::POST,
        "/v1/admin/showrooms",
        &Api::customer(),
        Some(&showroom_body()),
    )
    .await;
    assert_eq!(forbidden.status(), 403);
    let (missing, _) = send(
        &api,
        Method::DELETE,
        &format!("/v1/admin/availability-rules/{}", Uuid::now_v7()),
        &admin,
        None,
    )
    .await;
    assert_eq!(missing.status(), 404);
    let consultant = api.consultant("Amelia Hart", &["SW"]).await;
    let (backwards, _) = send(
        &api,
        Method::POST,
        &format!("/v1/admin/consultants/{}/exceptions", consultant.id),
        &admin,
        Some(&json!({"startsAt": in_hours(48), "endsAt": in_hours(24)})),
    )
    .await;
    assert_eq!(backwards.status(), 422);

    for path in [
        "/v1/showrooms",
        "/v1/admin/consultants",
        "/v1/admin/appointments",
    ] {
        let (read, _) = send(&api, Method::GET, path, &admin, None).await;
        assert_eq!(read.status(), 200, "{path}");
    }
    assert_eq!(count(&api).await, 0);
}

#[tokio::test]
async fn rules_exceptions_and_materialisation_are_audited() {
    let api = Api::spawn_with(&[("BOOKING_HORIZON_DAYS", "14")]).await;
    let admin = Api::admin();
    let consultant = api.consultant("Amelia Hart", &["SW"]).await;

    let (created, request_id) = send(
        &api,
        Method::POST,
        &format!("/v1/admin/consultants/{}/rules", consultant.id),
        &admin,
        Some(
            &json!({"weekday": 3, "startsAt": "09:00", "endsAt": "13:00",
                     "appointmentType": "HOME_MEASUREMENT"}),
        ),
    )
    .await;
    assert_eq!(created.status(), 201);
    let rule: Value = created.json().await.unwrap();
    let row = one_row(
        &api,
        &request_id,
        &admin,
        "ADMIN",
        "availability_rule",
        "create",
    )
    .await;
    assert_eq!(row.entity_id, rule["id"].as_str().unwrap());
    assert_eq!(row.changes["weekday"], json!({"after": 3}));
    assert_eq!(
        row.changes["consultantId"],
        json!({"after": consultant.id.to_string()})
    );
    assert!(row.changes["slots"]["after"]["created"].as_i64().unwrap() > 0);

    let (exception, request_id) = send(
        &api,
        Method::POST,
        &format!("/v1/admin/consultants/{}/exceptions", consultant.id),
        &admin,
        Some(&json!({"startsAt": in_hours(24), "endsAt": in_hours(72),
                     "reason": "Knee surgery"})),
    )
    .await;
    assert_eq!(exception.status(), 201);
    let exception: Value = exception.json().await.unwrap();
    let row = one_row(
        &api,
        &request_id,
        &admin,
        "ADMIN",
        "availability_exception",
        "create",
    )
    .await;
    assert_eq!(row.changes["reason"], json!({"after": "[redacted]"}));
    audit::assert_no_leak(&row.changes, &["Knee"]);

    let (lifted, request_id) = send(
        &api,
        Method::DELETE,
        &format!(
            "/v1/admin/availability-exceptions/{}",
            exception["id"].as_str().unwrap()
        ),
        &admin,
        None,
    )
    .await;
    assert_eq!(lifted.status(), 204);
    let row = one_row(
        &api,
        &request_id,
        &admin,
        "ADMIN",
        "availability_exception",
        "delete",
    )
    .await;
    assert!(
        row.changes["startsAt"]["before"].is_string(),
        "{}",
        row.changes
    );

    let (removed, request_id) = send(
        &api,
        Method::DELETE,
        &format!(
            "/v1/admin/availability-rules/{}",
            rule["id"].as_str().unwrap()
        ),
        &admin,
        None,
    )
    .await;
    assert_eq!(removed.status(), 204);
    let row = one_row(
        &api,
        &request_id,
        &admin,
        "ADMIN",
        "availability_rule",
        "delete",
    )
    .await;
    assert_eq!(row.changes["weekday"], json!({"before": 3}));

    let (run, request_id) = send(
        &api,
        Method::POST,
        "/v1/admin/slots/materialise",
        &admin,
        Some(&json!({})),
    )
    .await;
    assert_eq!(run.status(), 200);
    one_row(&api, &request_id, &admin, "ADMIN", "slots", "materialise").await;
    assert_eq!(count(&api).await, 5);
}

#[tokio::test]
async fn staff_booking_transitions_are_audited_and_customers_own_changes_are_not() {
    let api = Api::spawn().await;
    let consultant = api.consultant("Amelia Hart", &["SW"]).await;
    let jane = Api::customer();
    let admin = Api::admin();
    let first = api
        .booked(api.home_slot(&consultant, in_hours(48)).await, Some(&jane))
        .await;
    let second = api
        .booked(api.home_slot(&consultant, in_hours(96)).await, Some(&jane))
        .await;
    let third = api
        .booked(api.home_slot(&consultant, in_hours(144)).await, Some(&jane))
        .await;
    assert_eq!(count(&api).await, 0, "a customer's booking is not audited");

    let (confirmed, request_id) = send(
        &api,
        Method::POST,
        &format!("/v1/appointments/{first}/confirm"),
        &consultant.user,
        Some(&json!({})),
    )
    .await;
    assert_eq!(confirmed.status(), 200);
    let row = one_row(
        &api,
        &request_id,
        &consultant.user,
        "CONSULTANT",
        "appointment",
        "status.confirmed",
    )
    .await;
    assert_eq!(row.entity_id, first.to_string());
    assert_eq!(
        row.changes,
        json!({"status": {"before": "PENDING", "after": "CONFIRMED"}})
    );

    let (again, _) = send(
        &api,
        Method::POST,
        &format!("/v1/appointments/{first}/confirm"),
        &admin,
        Some(&json!({})),
    )
    .await;
    assert_eq!(again.status(), 409);

    let (cancelled, request_id) = send(
        &api,
        Method::POST,
        &format!("/v1/appointments/{first}/cancel"),
        &admin,
        Some(&json!({"reason": "Customer phoned: moving house"})),
    )
    .await;
    assert_eq!(cancelled.status(), 200);
    let row = one_row(
        &api,
        &request_id,
        &admin,
        "ADMIN",
        "appointment",
        "status.cancelled",
    )
    .await;
    assert_eq!(
        row.changes,
        json!({"status": {"before": "CONFIRMED", "after": "CANCELLED"}})
    );
    audit::assert_no_leak(
        &row.changes,
        &["moving", "Jane", "jane@example.com", "07700", "Acre"],
    );

    let new_slot = api.home_slot(&consultant, in_hours(200)).await;
    let (moved, request_id) = send(
        &api,
        Method::POST,
        &format!("/v1/appointments/{second}/reschedule"),
        &admin,
        Some(&json!({"slotId": new_slot})),
    )
    .await;
    assert_eq!(moved.status(), 200);
    let row = one_row(
        &api,
        &request_id,
        &admin,
        "ADMIN",
        "appointment",
        "reschedule",
    )
    .await;
    assert_eq!(row.changes["slotId"]["after"], new_slot.to_string());
    assert!(row.changes.get("status").is_none(), "{}", row.changes);

    let before = count(&api).await;
    let (own, _) = send(
        &api,
        Method::POST,
        &format!("/v1/appointments/{third}/cancel"),
        &jane,
        Some(&json!({"reason": "Changed my mind"})),
    )
    .await;
    assert_eq!(own.status(), 200);
    assert_eq!(count(&api).await, before, "the customer's own cancel");
    assert_eq!(before, 3);
}

#[tokio::test]
async fn only_a_super_admin_reads_the_trail_and_it_cannot_be_rewritten() {
    let api = Api::spawn().await;
    let admin = Api::admin();
    let (created, _) = send(
        &api,
        Method::POST,
        "/v1/admin/showrooms",
        &admin,
        Some(&showroom_body()),
    )
    .await;
    assert_eq!(created.status(), 201);
    let consultant = api.consultant("Amelia Hart", &["SW"]).await;
    let (patched, _) = send(
        &api,
        Method::PATCH,
        &format!("/v1/admin/consultants/{}", consultant.id),
        &admin,
        Some(&json!({"active": false})),
    )
    .await;
    assert_eq!(patched.status(), 200);

    let root = TestUser::new(Role::SuperAdmin);
    let (read, _) = send(
        &api,
        Method::GET,
        "/v1/appointments/audit?entity=consultant",
        &root,
        None,
    )
    .await;
    assert_eq!(read.status(), 200);
    let page: Value = read.json().await.unwrap();
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{page}");
    assert_eq!(data[0]["entityId"], consultant.id.to_string());
    assert_eq!(data[0]["service"], "appointment");
    assert_eq!(data[0]["actorId"], admin.id.to_string());
    let (all, _) = send(&api, Method::GET, "/v1/appointments/audit", &root, None).await;
    let all: Value = all.json().await.unwrap();
    assert_eq!(all["data"].as_array().unwrap().len(), 2);

    let (denied, _) = send(&api, Method::GET, "/v1/appointments/audit", &admin, None).await;
    assert_eq!(denied.status(), 403);
    let anonymous = api
        .send(Method::GET, "/v1/appointments/audit", None, None)
        .await;
    assert_eq!(anonymous.status(), 401);

    audit::assert_append_only(&api.pool).await;
    assert_eq!(count(&api).await, 2);
}

#[tokio::test]
async fn a_booking_made_by_staff_is_audited_without_the_customers_details() {
    let api = Api::spawn().await;
    let consultant = api.consultant("Amelia Hart", &["SW"]).await;
    let admin = Api::admin();
    let slot = api.home_slot(&consultant, in_hours(48)).await;
    let (created, request_id) = send(
        &api,
        Method::POST,
        "/v1/appointments",
        &admin,
        Some(&Api::booking_body(slot)),
    )
    .await;
    assert_eq!(created.status(), 201);
    let booking: Value = created.json().await.unwrap();
    let row = one_row(&api, &request_id, &admin, "ADMIN", "appointment", "create").await;
    assert_eq!(row.entity_id, booking["bookingId"].as_str().unwrap());
    assert_eq!(row.changes["slotId"], json!({"after": slot.to_string()}));
    assert_eq!(row.changes["status"], json!({"after": "PENDING"}));
    audit::assert_no_leak(
        &row.changes,
        &["Jane", "Doe", "jane@example.com", "07700", "Acre", "SW4"],
    );

    // A slot that is taken now: refused, nothing recorded; a customer's own booking neither.
    let (taken, _) = send(
        &api,
        Method::POST,
        "/v1/appointments",
        &admin,
        Some(&Api::booking_body(slot)),
    )
    .await;
    assert_eq!(taken.status(), 409);
    api.booked(
        api.home_slot(&consultant, in_hours(96)).await,
        Some(&Api::customer()),
    )
    .await;
    assert_eq!(count(&api).await, 1);
}

//! The audit trail of admin resends (issue 14).

use reqwest::Method;
use serde_json::{Value, json};
use service_kit::Role;
use test_support::TestUser;
use test_support::audit::{self, AuditRow};

use crate::events::booking_created;
use crate::helpers::Api;

async fn rows(api: &Api) -> Vec<AuditRow> {
    audit::rows(&api.pool).await
}

#[tokio::test]
async fn a_resend_is_audited_once_and_refusals_and_reads_are_not() {
    let api = Api::spawn().await;
    let event = booking_created(true, true);
    api.deliver(&event).await;
    api.settled(event.id).await;
    let admin = Api::admin();
    let (_, page) = api
        .send(
            Method::GET,
            "/v1/notifications?recipient=jane@example.com",
            Some(&admin),
            None,
        )
        .await;
    let id = page["data"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = api
        .send(
            Method::POST,
            &format!("/v1/notifications/{}/resend", uuid::Uuid::now_v7()),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = api
        .send(
            Method::POST,
            &format!("/v1/notifications/{id}/resend"),
            Some(&Api::customer()),
            None,
        )
        .await;
    assert_eq!(status, 403);
    assert!(
        rows(&api).await.is_empty(),
        "reads and refusals write nothing"
    );

    let response = api
        .app
        .request_as(
            Method::POST,
            &format!("/v1/notifications/{id}/resend"),
            &admin,
        )
        .header("x-request-id", "audit-resend-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let copy: Value = response.json().await.unwrap();

    let row = audit::expect(admin.id, "ADMIN", "notification", "resend")
        .entity_id(&id)
        .request_id("audit-resend-1")
        .only(&rows(&api).await);
    let changes = &row.changes;
    assert_eq!(*changes, json!({"resentAs": {"after": copy["id"]}}));
    audit::assert_no_leak(changes, &["jane"]);

    // The trail: SUPER_ADMIN only; it cannot be rewritten.
    let (status, _) = api
        .send(Method::GET, "/v1/notifications/audit", Some(&admin), None)
        .await;
    assert_eq!(status, 403);
    let (status, page) = api
        .send(
            Method::GET,
            "/v1/notifications/audit?action=resend",
            Some(&TestUser::new(Role::SuperAdmin)),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"][0]["entityId"], id.as_str());
    assert_eq!(page["data"][0]["service"], "notification");
    audit::assert_append_only(&api.pool).await;
}

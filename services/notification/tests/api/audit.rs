//! The audit trail of admin resends (issue 14).

use reqwest::Method;
use serde_json::{Value, json};
use service_kit::Role;
use test_support::TestUser;

use crate::events::booking_created;
use crate::helpers::Api;

/// `(actor_id, actor_role, entity, entity_id, action, changes, request_id)`, oldest first.
type Row = (
    uuid::Uuid,
    String,
    String,
    String,
    String,
    Value,
    Option<String>,
);

async fn rows(api: &Api) -> Vec<Row> {
    sqlx::query_as(
        "SELECT actor_id, actor_role, entity, entity_id, action, changes, request_id
         FROM audit_log ORDER BY occurred_at, id",
    )
    .fetch_all(&api.pool)
    .await
    .unwrap()
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

    let rows = rows(&api).await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let (actor, role, entity, entity_id, action, changes, request_id) = &rows[0];
    assert_eq!((*actor, role.as_str()), (admin.id, "ADMIN"));
    assert_eq!(
        (entity.as_str(), entity_id.as_str(), action.as_str()),
        ("notification", id.as_str(), "resend")
    );
    assert_eq!(request_id.as_deref(), Some("audit-resend-1"));
    assert_eq!(*changes, json!({"resentAs": {"after": copy["id"]}}));
    assert!(!changes.to_string().contains("jane"));

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
    for statement in ["UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"] {
        let error = sqlx::query(statement)
            .execute(&api.pool)
            .await
            .expect_err(statement);
        assert!(error.to_string().contains("append-only"), "{error}");
    }
}

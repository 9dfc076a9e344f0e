//! The audit trail of user role and status changes (issue 14).

use reqwest::Method;
use serde_json::{Value, json};
use service_kit::Role;

use test_support::audit::{self, AuditRow};

use crate::helpers::{Api, Session};

async fn rows(api: &Api) -> Vec<AuditRow> {
    audit::rows(&api.pool).await
}

async fn patch(api: &Api, as_: &Session, user: uuid::Uuid, body: Value, request_id: &str) -> u16 {
    api.as_user(as_, Method::PATCH, &format!("/v1/auth/users/{user}"))
        .header("content-type", "application/merge-patch+json")
        .header("x-request-id", request_id)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn role_and_status_changes_are_audited_without_personal_data() {
    let api = Api::spawn().await;
    let admin = api.signed_up_as("admin@example.com", Role::Admin).await;
    let boss = api.signed_up_as("boss@example.com", Role::SuperAdmin).await;
    let jane = api.signed_up("jane.doe@example.com").await;
    assert!(rows(&api).await.is_empty(), "sign-ups are not admin writes");

    // Refused: an ADMIN granting ADMIN, changing oneself, a bad value; a no-op changes nothing.
    assert_eq!(
        patch(&api, &admin, jane.user_id, json!({"role": "ADMIN"}), "r0").await,
        403
    );
    assert_eq!(
        patch(
            &api,
            &boss,
            boss.user_id,
            json!({"status": "SUSPENDED"}),
            "r0"
        )
        .await,
        403
    );
    assert_eq!(
        patch(&api, &admin, jane.user_id, json!({"role": "KING"}), "r0").await,
        422
    );
    assert_eq!(
        patch(
            &api,
            &admin,
            jane.user_id,
            json!({"role": "CUSTOMER"}),
            "r0"
        )
        .await,
        200
    );
    // Reads.
    let list = api
        .as_user(&admin, Method::GET, "/v1/auth/users")
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    assert!(rows(&api).await.is_empty());

    assert_eq!(
        patch(
            &api,
            &admin,
            jane.user_id,
            json!({"role": "CONSULTANT"}),
            "audit-u1"
        )
        .await,
        200
    );
    assert_eq!(
        patch(
            &api,
            &boss,
            jane.user_id,
            json!({"status": "SUSPENDED"}),
            "audit-u2"
        )
        .await,
        200
    );

    let rows = rows(&api).await;
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let role = audit::expect(admin.user_id, "ADMIN", "user", "role.change")
        .entity_id(jane.user_id)
        .request_id("audit-u1");
    role.check(&rows[0]);
    assert_eq!(
        rows[0].changes,
        json!({"role": {"before": "CUSTOMER", "after": "CONSULTANT"}})
    );
    let status = audit::expect(boss.user_id, "SUPER_ADMIN", "user", "status.suspended")
        .entity_id(jane.user_id)
        .request_id("audit-u2");
    status.check(&rows[1]);
    assert_eq!(
        rows[1].changes,
        json!({"status": {"before": "ACTIVE", "after": "SUSPENDED"}})
    );
    for row in &rows {
        audit::assert_no_leak(&row.changes, &["jane"]);
    }
}

#[tokio::test]
async fn only_a_super_admin_reads_the_trail_and_it_cannot_be_rewritten() {
    let api = Api::spawn().await;
    let admin = api.signed_up_as("admin@example.com", Role::Admin).await;
    let boss = api.signed_up_as("boss@example.com", Role::SuperAdmin).await;
    let jane = api.signed_up("jane@example.com").await;
    assert_eq!(
        patch(
            &api,
            &admin,
            jane.user_id,
            json!({"role": "CONSULTANT"}),
            "a1"
        )
        .await,
        200
    );

    let denied = api
        .as_user(&admin, Method::GET, "/v1/auth/audit")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    let anonymous = api
        .app
        .request(Method::GET, "/v1/auth/audit")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let page = api
        .as_user(
            &boss,
            Method::GET,
            &format!(
                "/v1/auth/audit?entity=user&entityId={}&action=role.change",
                jane.user_id
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page: Value = page.json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["data"][0]["service"], "auth");
    assert_eq!(page["data"][0]["actorId"], admin.user_id.to_string());
    let bad = api
        .as_user(&boss, Method::GET, "/v1/auth/audit?limit=1000")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);

    audit::assert_append_only(&api.pool).await;
}

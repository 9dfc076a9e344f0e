//! The audit trail of user role and status changes (issue 14).

use reqwest::Method;
use serde_json::{Value, json};
use service_kit::Role;

use crate::helpers::{Api, Session};

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
    let jane_id = jane.user_id.to_string();
    assert_eq!(
        (
            rows[0].0,
            rows[0].1.as_str(),
            rows[0].2.as_str(),
            rows[0].3.as_str()
        ),
        (admin.user_id, "ADMIN", "user", jane_id.as_str())
    );
    assert_eq!(rows[0].4, "role.change");
    assert_eq!(rows[0].6.as_deref(), Some("audit-u1"));
    assert_eq!(
        rows[0].5,
        json!({"role": {"before": "CUSTOMER", "after": "CONSULTANT"}})
    );
    assert_eq!(
        (rows[1].0, rows[1].1.as_str()),
        (boss.user_id, "SUPER_ADMIN")
    );
    assert_eq!(rows[1].4, "status.suspended");
    assert_eq!(rows[1].6.as_deref(), Some("audit-u2"));
    assert_eq!(
        rows[1].5,
        json!({"status": {"before": "ACTIVE", "after": "SUSPENDED"}})
    );
    for row in &rows {
        assert!(!row.5.to_string().contains("jane"), "{}", row.5);
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

    for statement in ["UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"] {
        let error = sqlx::query(statement)
            .execute(&api.pool)
            .await
            .expect_err(statement);
        assert!(error.to_string().contains("append-only"), "{error}");
    }
}

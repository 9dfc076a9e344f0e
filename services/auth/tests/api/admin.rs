use reqwest::Method;
use serde_json::{Value, json};
use service_kit::Role;

use crate::helpers::{Api, PASSWORD, problem_code};

async fn patch(
    api: &Api,
    as_: &crate::helpers::Session,
    user: &str,
    body: Value,
) -> reqwest::Response {
    api.as_user(as_, Method::PATCH, &format!("/v1/auth/users/{user}"))
        .header("content-type", "application/merge-patch+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn customers_get_403_on_admin_routes() {
    let api = Api::spawn().await;
    let customer = api.signed_up("jane@example.com").await;

    let list = api
        .as_user(&customer, Method::GET, "/v1/auth/users")
        .send()
        .await
        .unwrap();
    let patch = patch(
        &api,
        &customer,
        &customer.user_id.to_string(),
        json!({"role": "ADMIN"}),
    )
    .await;
    let rotate = api
        .as_user(&customer, Method::POST, "/v1/auth/keys/rotate")
        .send()
        .await
        .unwrap();

    assert_eq!(list.status(), 403);
    assert_eq!(patch.status(), 403);
    assert_eq!(rotate.status(), 403);
    let user = api.user_row("jane@example.com").await.unwrap();
    assert_eq!(user["role"], "CUSTOMER");
}

#[tokio::test]
async fn an_admin_cannot_grant_admin_but_a_super_admin_can() {
    let api = Api::spawn().await;
    let admin = api.signed_up_as("admin@example.com", Role::Admin).await;
    let boss = api.signed_up_as("boss@example.com", Role::SuperAdmin).await;
    let jane = api.signed_up("jane@example.com").await;
    let jane_id = jane.user_id.to_string();

    let by_admin = patch(&api, &admin, &jane_id, json!({"role": "ADMIN"})).await;
    assert_eq!(by_admin.status(), 403);
    assert_eq!(
        api.user_row("jane@example.com").await.unwrap()["role"],
        "CUSTOMER"
    );

    // An admin may make a customer a consultant (and that ends the customer's sessions).
    let consultant = patch(&api, &admin, &jane_id, json!({"role": "CONSULTANT"})).await;
    assert_eq!(consultant.status(), 200);
    assert!(!api.session_allowed(jane.session_id).await);

    let by_boss = patch(&api, &boss, &jane_id, json!({"role": "ADMIN"})).await;
    assert_eq!(by_boss.status(), 200);
    let body: Value = by_boss.json().await.unwrap();
    assert_eq!(body["role"], "ADMIN");

    // Now an administrator: a plain ADMIN can no longer touch her, nor anyone their own role.
    let demote = patch(&api, &admin, &jane_id, json!({"role": "CUSTOMER"})).await;
    assert_eq!(demote.status(), 403);
    let own = patch(
        &api,
        &boss,
        &boss.user_id.to_string(),
        json!({"role": "CUSTOMER"}),
    )
    .await;
    assert_eq!(own.status(), 403);

    let bad = patch(&api, &boss, &jane_id, json!({"role": "OVERLORD"})).await;
    assert_eq!(bad.status(), 422);
    let null = patch(&api, &boss, &jane_id, json!({"status": null})).await;
    assert_eq!(null.status(), 422);
    let deleted = patch(&api, &boss, &jane_id, json!({"status": "DELETED"})).await;
    assert_eq!(deleted.status(), 422);
    let missing = patch(
        &api,
        &boss,
        &uuid::Uuid::now_v7().to_string(),
        json!({"status": "SUSPENDED"}),
    )
    .await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn suspending_a_user_revokes_their_sessions_and_refuses_login() {
    let api = Api::spawn().await;
    let admin = api.signed_up_as("admin@example.com", Role::Admin).await;
    let jane = api.signed_up("jane@example.com").await;

    let response = patch(
        &api,
        &admin,
        &jane.user_id.to_string(),
        json!({"status": "SUSPENDED"}),
    )
    .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "SUSPENDED");
    assert!(!api.session_allowed(jane.session_id).await);
    assert_eq!(api.refresh(&jane.refresh_token).await.status(), 401);
    let login = api.login("jane@example.com", PASSWORD).await;
    assert_eq!(login.status(), 403);
    let problem: Value = login.json().await.unwrap();
    assert_eq!(problem_code(&problem), "account-suspended");
    // A wrong password still gets the generic answer.
    assert_eq!(
        api.login("jane@example.com", "not-the-right-password")
            .await
            .status(),
        401
    );

    let reactivated = patch(
        &api,
        &admin,
        &jane.user_id.to_string(),
        json!({"status": "ACTIVE"}),
    )
    .await;
    assert_eq!(reactivated.status(), 200);
    assert_eq!(api.login("jane@example.com", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn the_user_table_pages_filters_and_searches() {
    let api = Api::spawn().await;
    let admin = api.signed_up_as("admin@example.com", Role::Admin).await;
    for name in ["anna", "andrew", "bella"] {
        api.register(&format!("{name}@example.com")).await;
    }
    let get = |query: &'static str| {
        api.as_user(&admin, Method::GET, &format!("/v1/auth/users{query}"))
            .send()
    };

    let page: Value = get("?pageSize=2&page=1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 4);
    assert_eq!(page["pageSize"], 2);
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    // Newest first.
    assert_eq!(page["data"][0]["email"], "bella@example.com");

    let search: Value = get("?filter%5Bemail%5D=AN")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let emails: Vec<&str> = search["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["andrew@example.com", "anna@example.com"]);

    let admins: Value = get("?filter%5Brole%5D=ADMIN,SUPER_ADMIN")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(admins["total"], 1);

    assert_eq!(get("?filter%5Brole%5D=KING").await.unwrap().status(), 422);
    assert_eq!(get("?filter%5Bcolour%5D=red").await.unwrap().status(), 422);
    assert_eq!(get("?pageSize=500").await.unwrap().status(), 422);
}

#[tokio::test]
async fn create_admin_creates_a_verified_super_admin_or_promotes() {
    let api = Api::spawn().await;

    let created = auth_service::create_admin(&api.pool, "Boss@Example.com", PASSWORD)
        .await
        .unwrap();
    let auth_service::AdminOutcome::Created(id) = created else {
        panic!("expected a new account, got {created:?}");
    };
    let boss = api.signed_in("boss@example.com", PASSWORD).await;
    assert_eq!(boss.user_id, id);
    assert_eq!(boss.role, Role::SuperAdmin);

    api.register("jane@example.com").await;
    let promoted =
        auth_service::create_admin(&api.pool, "jane@example.com", "ignored-for-existing-users")
            .await
            .unwrap();
    assert!(matches!(promoted, auth_service::AdminOutcome::Promoted(_)));
    let jane = api.user_row("jane@example.com").await.unwrap();
    assert_eq!(jane["role"], "SUPER_ADMIN");
    assert!(!jane["email_verified_at"].is_null());

    let weak = auth_service::create_admin(&api.pool, "weak@example.com", "password").await;
    assert!(weak.is_err());
}

/// A user always has a role and a status: `null` for either is refused, and the document does
/// not offer it (the members are optional, not nullable).
#[tokio::test]
async fn null_role_or_status_is_refused_and_not_documented() {
    let api = Api::spawn().await;
    let admin = api.signed_up_as("admin@example.com", Role::Admin).await;
    let jane = api.signed_up("jane@example.com").await;
    let jane_id = jane.user_id.to_string();
    for body in [json!({"role": null}), json!({"status": null})] {
        let response = patch(&api, &admin, &jane_id, body.clone()).await;
        assert_eq!(response.status(), 422, "{body}");
    }
    let doc = serde_json::to_value(service_kit::service::openapi::<auth_service::AuthService>())
        .unwrap_or_default();
    let patch_schema = &doc["components"]["schemas"]["UserPatch"];
    assert!(patch_schema.get("required").is_none(), "{patch_schema}");
    for member in ["role", "status"] {
        let schema = &patch_schema["properties"][member];
        assert!(schema.get("$ref").is_some(), "{member}: {schema}");
        assert!(!schema.to_string().contains("null\""), "{member}: {schema}");
    }
}

//! The audit trail of staff changes (issue 14): review moderation, ticket handling and loyalty
//! adjustments write one redacted row each in their transaction; rejected writes, customers' own
//! changes and reads write none; SUPER_ADMIN alone reads it; nobody rewrites it.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use service_kit::Role;
use test_support::TestUser;
use test_support::audit;
use uuid::Uuid;

use crate::helpers::{Api, body, customer};

/// Sends `json` as `user` with a fresh `X-Request-Id`; returns status, body and that id.
async fn send(
    api: &Api,
    user: &TestUser,
    method: Method,
    path: &str,
    json: Option<&Value>,
) -> (StatusCode, Value, String) {
    let (request, request_id) = audit::request(&api.app, user, method, path, json);
    let (status, value) = body(request.send().await.unwrap()).await;
    (status, value, request_id)
}

async fn count(api: &Api) -> i64 {
    audit::count(&api.pool).await
}

/// The `changes` of the single row written under `request_id`, checked against who did what to
/// which entity.
async fn one_row(
    api: &Api,
    request_id: &str,
    actor: &TestUser,
    role: &str,
    (entity, id): (&str, &str),
    action: &str,
) -> Value {
    let expected = audit::expect(actor.id, role, entity, action).entity_id(id);
    audit::one_row(&api.pool, request_id, expected)
        .await
        .changes
}

async fn review(api: &Api, author: &TestUser) -> String {
    let (status, review) = api
        .post(
            author,
            &format!("/v1/products/{}/reviews", Uuid::now_v7()),
            &json!({"rating": 2, "title": "Wobbly doors", "body": "Call me on 07700 900123"}),
        )
        .await;
    assert_eq!(status, 201, "{review}");
    review["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn review_moderation_and_takedown_are_audited_without_the_text() {
    let api = Api::spawn().await;
    let (jane, john) = (customer(), customer());
    let first = review(&api, &jane).await;
    let second = review(&api, &john).await;
    assert_eq!(count(&api).await, 0, "a customer's review is not audited");

    let moderate = |id: &str| format!("/v1/admin/reviews/{id}/moderation");
    let (status, _, request_id) = send(
        &api,
        &api.admin,
        Method::POST,
        &moderate(&first),
        Some(&json!({"status": "REJECTED", "reason": "Contains a phone number 07700"})),
    )
    .await;
    assert_eq!(status, 200);
    let changes = one_row(
        &api,
        &request_id,
        &api.admin,
        "ADMIN",
        ("review", &first),
        "moderation.rejected",
    )
    .await;
    assert_eq!(
        changes,
        json!({
            "status": {"before": "PENDING", "after": "REJECTED"},
            "moderationReason": {"before": "[redacted]", "after": "[redacted]"},
        })
    );
    audit::assert_no_leak(&changes, &["07700", "Wobbly", "phone number"]);

    let (status, _, request_id) = send(
        &api,
        &api.admin,
        Method::POST,
        &moderate(&second),
        Some(&json!({"status": "APPROVED"})),
    )
    .await;
    assert_eq!(status, 200);
    let changes = one_row(
        &api,
        &request_id,
        &api.admin,
        "ADMIN",
        ("review", &second),
        "moderation.approved",
    )
    .await;
    assert_eq!(
        changes,
        json!({"status": {"before": "PENDING", "after": "APPROVED"}})
    );

    let (status, _, request_id) = send(
        &api,
        &api.admin,
        Method::DELETE,
        &format!("/v1/reviews/{second}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let changes = one_row(
        &api,
        &request_id,
        &api.admin,
        "ADMIN",
        ("review", &second),
        "delete",
    )
    .await;
    assert_eq!(changes["status"], json!({"before": "APPROVED"}));
    assert_eq!(changes["rating"], json!({"before": 2}));

    // The author deleting their own review is not a staff act.
    assert_eq!(
        api.delete(&jane, &format!("/v1/reviews/{first}")).await,
        204
    );
    assert_eq!(count(&api).await, 3);
}

#[tokio::test]
async fn staff_ticket_handling_is_audited_and_the_customers_side_is_not() {
    let api = Api::spawn().await;
    let jane = customer();
    let agent = TestUser::new(Role::Consultant);
    let (status, ticket) = api
        .post(
            &jane,
            "/v1/tickets",
            &json!({"subject": "Door hinge", "category": "INSTALLATION",
                    "message": "I live at 1 Acre Lane"}),
        )
        .await;
    assert_eq!(status, 201, "{ticket}");
    let id = ticket["id"].as_str().unwrap().to_owned();
    let messages = format!("/v1/tickets/{id}/messages");

    let (status, _, request_id) = send(
        &api,
        &agent,
        Method::POST,
        &messages,
        Some(&json!({"body": "We'll send a fitter to Acre Lane."})),
    )
    .await;
    assert_eq!(status, 201);
    let changes = one_row(
        &api,
        &request_id,
        &agent,
        "CONSULTANT",
        ("ticket", &id),
        "reply",
    )
    .await;
    assert_eq!(changes, json!({"internal": {"after": false}}));

    let (status, _, request_id) = send(
        &api,
        &agent,
        Method::POST,
        &messages,
        Some(&json!({"body": "Customer sounds annoyed", "internal": true})),
    )
    .await;
    assert_eq!(status, 201);
    one_row(
        &api,
        &request_id,
        &agent,
        "CONSULTANT",
        ("ticket", &id),
        "note",
    )
    .await;

    let admin_path = format!("/v1/admin/tickets/{id}");
    let (status, _, request_id) = send(
        &api,
        &agent,
        Method::PATCH,
        &admin_path,
        Some(&json!({"status": "AWAITING_CUSTOMER", "priority": "HIGH", "assignedTo": agent.id})),
    )
    .await;
    assert_eq!(status, 200);
    let changes = one_row(
        &api,
        &request_id,
        &agent,
        "CONSULTANT",
        ("ticket", &id),
        "status.awaiting_customer",
    )
    .await;
    assert_eq!(
        changes,
        json!({
            "status": {"before": "OPEN", "after": "AWAITING_CUSTOMER"},
            "priority": {"before": "NORMAL", "after": "HIGH"},
            "assignedTo": {"before": null, "after": agent.id.to_string()},
        })
    );
    audit::assert_no_leak(&changes, &["Acre", "hinge", "annoyed"]);

    // A customer's reply moves the ticket too, but it is not a staff act.
    let before = count(&api).await;
    let (status, replied) = api.post(&jane, &messages, &json!({"body": "Thanks"})).await;
    assert_eq!(status, 201, "{replied}");
    assert_eq!(count(&api).await, before);

    // Not a permitted change: nothing changes, nothing is recorded.
    let (status, _, _) = send(
        &api,
        &agent,
        Method::PATCH,
        &admin_path,
        Some(&json!({"status": "OPEN"})),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(count(&api).await, before);
    assert_eq!(before, 3);
}

#[tokio::test]
async fn loyalty_adjustments_are_audited_and_refused_ones_are_not() {
    let api = Api::spawn().await;
    let jane = customer();
    let path = format!("/v1/admin/loyalty/{}/adjustments", jane.id);
    let (status, row, request_id) = send(
        &api,
        &api.admin,
        Method::POST,
        &path,
        Some(&json!({"points": 100, "reason": "Goodwill after a late fitter"})),
    )
    .await;
    assert_eq!(status, 201, "{row}");
    let changes = one_row(
        &api,
        &request_id,
        &api.admin,
        "ADMIN",
        ("loyalty_account", &jane.id.to_string()),
        "adjust",
    )
    .await;
    assert_eq!(changes["balance"], json!({"before": 0, "after": 100}));
    assert_eq!(changes["points"], json!({"after": 100}));
    assert_eq!(changes["transactionId"], json!({"after": row["id"]}));
    assert_eq!(changes["reason"], json!({"after": "[redacted]"}));
    audit::assert_no_leak(&changes, &["Goodwill"]);

    for (user, body, expected) in [
        (
            &api.admin,
            json!({"points": -101, "reason": "Too much"}),
            409,
        ),
        (&api.admin, json!({"points": 0, "reason": "Nothing"}), 422),
        (&jane, json!({"points": 5, "reason": "Me"}), 403),
    ] {
        let (status, problem, _) = send(&api, user, Method::POST, &path, Some(&body)).await;
        assert_eq!(status.as_u16(), expected, "{problem}");
    }
    // Reads write nothing either.
    for path in [
        "/v1/customers".to_owned(),
        format!("/v1/customers/{}", jane.id),
        "/v1/admin/reviews".to_owned(),
        "/v1/admin/tickets".to_owned(),
    ] {
        let (status, _, _) = send(&api, &api.admin, Method::GET, &path, None).await;
        assert!(status.is_success() || status == 404, "{path}: {status}");
    }
    assert_eq!(count(&api).await, 1);
}

#[tokio::test]
async fn only_a_super_admin_reads_the_trail_and_it_cannot_be_rewritten() {
    let api = Api::spawn().await;
    let jane = customer();
    let id = review(&api, &jane).await;
    let (status, _) = api
        .post(
            &api.admin,
            &format!("/v1/admin/reviews/{id}/moderation"),
            &json!({"status": "APPROVED"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = api
        .post(
            &api.admin,
            &format!("/v1/admin/loyalty/{}/adjustments", jane.id),
            &json!({"points": 10, "reason": "Sorry"}),
        )
        .await;
    assert_eq!(status, 201);

    let root = TestUser::new(Role::SuperAdmin);
    let (status, page) = api
        .get(
            &root,
            "/v1/customers/audit?entity=review&action=moderation.approved",
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{page}");
    assert_eq!(data[0]["entityId"], id);
    assert_eq!(data[0]["service"], "customer");
    assert_eq!(data[0]["actorRole"], "ADMIN");
    let (_, all) = api.get(&root, "/v1/customers/audit").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 2);
    assert_eq!(api.get(&api.admin, "/v1/customers/audit").await.0, 403);
    assert_eq!(api.public_get("/v1/customers/audit").await.0, 401);

    audit::assert_append_only(&api.pool).await;
    assert_eq!(count(&api).await, 2);
}

//! Profiles: created by `user.created` or on first read; merge-patched by their owner.

use chrono::Utc;
use serde_json::json;
use service_kit::shared_types::DomainEvent;
use service_kit::shared_types::auth::{UserCreated, UserRole};

use crate::helpers::{Api, customer, fields};

#[tokio::test]
async fn profiles_come_from_user_created_once_and_are_merge_patched_by_their_owner() {
    let api = Api::spawn().await;
    let jane = customer();
    let created = DomainEvent::new(
        "auth",
        UserCreated {
            user_id: jane.id,
            email: "jane@example.com".into(),
            first_name: "Jane".into(),
            last_name: "Doe".into(),
            phone: Some("07700 900123".into()),
            role: UserRole::Customer,
            marketing_opt_in: true,
            created_at: Utc::now(),
        },
    );
    api.deliver(&created).await;
    api.deliver(&created).await; // redelivered: no effect
    let (status, profile) = api.get(&jane, "/v1/profile").await;
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["email"], "jane@example.com");
    assert_eq!(profile["firstName"], "Jane");
    assert_eq!(profile["phone"], "+447700900123");
    assert_eq!(profile["marketing"]["channels"]["email"], true);

    let (status, profile) = api
        .patch(
            &jane,
            "/v1/profile",
            &json!({"lastName": "Smith", "phone": null, "dateOfBirth": "1990-04-01",
                    "marketing": {"channels": {"sms": true}}}),
        )
        .await;
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["lastName"], "Smith");
    assert_eq!(profile["firstName"], "Jane", "untouched members stay");
    assert!(profile["phone"].is_null(), "null clears");
    assert_eq!(profile["marketing"]["channels"]["sms"], true);
    assert_eq!(profile["marketing"]["channels"]["email"], true);

    let (status, problem) = api
        .patch(
            &jane,
            "/v1/profile",
            &json!({"phone": "12", "email": "x@y.z"}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(fields(&problem), ["email"], "email belongs to auth");
    let (status, problem) = api
        .patch(&jane, "/v1/profile", &json!({"phone": "12"}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(fields(&problem), ["phone"]);

    // The forms the document's phone pattern allows are all accepted (normalised to E.164);
    // an empty string, which it does not allow, is refused (`null` clears).
    for (phone, stored) in [
        ("+44 7700 900123", "+447700900123"),
        ("07700-900123", "+447700900123"),
        ("0044 20 7946 0958", "+442079460958"),
        (" +1 202.555.0143 ", "+12025550143"),
        ("+12345678", "+12345678"),
        ("+123456789012345", "+123456789012345"),
    ] {
        let (status, profile) = api
            .patch(&jane, "/v1/profile", &json!({ "phone": phone }))
            .await;
        assert_eq!(status, 200, "{phone:?}: {profile}");
        assert_eq!(profile["phone"], stored, "{phone:?}");
    }
    let (status, problem) = api.patch(&jane, "/v1/profile", &json!({"phone": ""})).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(fields(&problem), ["phone"]);

    // A customer with no user.created yet gets an empty profile on first read.
    let (status, fresh) = api.get(&customer(), "/v1/profile").await;
    assert_eq!(status, 200);
    assert!(fresh["email"].is_null());
    let anonymous = api.public_get("/v1/profile").await;
    assert_eq!(anonymous.0, 401);
}

#[tokio::test]
async fn admins_search_customers_and_see_a_360_summary() {
    let api = Api::spawn().await;
    let jane = customer();
    api.patch(
        &jane,
        "/v1/profile",
        &json!({"firstName": "Jane", "lastName": "Austen"}),
    )
    .await;
    api.post(
        &jane,
        "/v1/profile/addresses",
        &json!({"kind": "SHIPPING", "recipientName": "Jane", "line1": "4 Chawton", "city": "Alton",
                "postcode": "gu343sd"}),
    )
    .await;
    api.post(
        &jane,
        "/v1/tickets",
        &json!({"subject": "Hi", "category": "OTHER", "message": "Hello"}),
    )
    .await;
    api.patch(
        &customer(),
        "/v1/profile",
        &json!({"firstName": "Bob", "lastName": "Brown"}),
    )
    .await;

    for query in ["austen", "GU34%203SD", "jane%20aus"] {
        let (status, page) = api
            .get(&api.admin, &format!("/v1/customers?q={query}"))
            .await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["total"], 1, "{query}: {page}");
        assert_eq!(page["data"][0]["userId"], jane.id.to_string());
    }
    let (_, all) = api.get(&api.admin, "/v1/customers?pageSize=1&page=2").await;
    assert_eq!(
        (all["total"].as_i64(), all["data"].as_array().map(Vec::len)),
        (Some(2), Some(1))
    );
    assert_eq!(api.get(&jane, "/v1/customers").await.0, 403);

    let (status, summary) = api
        .get(&api.admin, &format!("/v1/customers/{}", jane.id))
        .await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["addresses"][0]["postcode"], "GU34 3SD");
    assert_eq!(summary["openTickets"], 1);
    assert_eq!(summary["reviewCount"], 0);
    assert_eq!(summary["loyalty"]["balance"], 0);
    assert_eq!(
        api.get(
            &api.admin,
            &format!("/v1/customers/{}", uuid::Uuid::now_v7())
        )
        .await
        .0,
        404
    );
}

//! Brochure requests.

use serde_json::{Value, json};

use crate::helpers::{Api, error_fields};

fn body() -> Value {
    json!({
        "firstName": "Jane",
        "lastName": "Doe",
        "email": "jane@example.com",
        "phone": "07700 900123",
        "postcode": "sw4 0ab",
        "address": "1 Acre Lane, London",
        "interests": "BOTH",
        "marketingConsent": true,
    })
}

#[tokio::test]
async fn a_brochure_request_is_stored_and_announced() {
    let api = Api::spawn().await;

    let response = api.post_as("/v1/brochures", None, &body()).await;

    assert_eq!(response.status(), 201);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["message"], "Brochure on its way");
    let events = api.events("brochure.requested").await;
    assert_eq!(events.len(), 1);
    let payload = &events[0]["payload"];
    assert_eq!(payload["name"], "Jane Doe");
    assert_eq!(payload["email"], "jane@example.com");
    assert_eq!(payload["forKitchen"], true);
    assert_eq!(payload["forBedroom"], true);
    assert_eq!(payload["delivery"], "EMAIL");
    assert_eq!(payload["postcode"], "SW4 0AB");
    assert_eq!(payload["marketingConsent"], true);
}

#[tokio::test]
async fn invalid_brochure_requests_are_422() {
    let api = Api::spawn().await;
    let mut bad = body();
    bad["email"] = json!("nope");
    bad["postcode"] = json!("nope");
    bad["phone"] = json!("1");
    let mut no_interest = body();
    no_interest["interests"] = json!("GARDEN");

    let response = api.post_as("/v1/brochures", None, &bad).await;
    let interest = api.post_as("/v1/brochures", None, &no_interest).await;

    assert_eq!(response.status(), 422);
    assert_eq!(
        error_fields(&response.json().await.unwrap()),
        vec!["email", "phone", "postcode"]
    );
    assert_eq!(interest.status(), 422);
    assert!(api.events("brochure.requested").await.is_empty());
}

#[tokio::test]
async fn admins_list_and_export_brochure_requests() {
    let api = Api::spawn().await;
    api.post_as("/v1/brochures", None, &body()).await;
    let mut tricky = body();
    tricky["firstName"] = json!("=HYPERLINK(\"x\")");
    tricky["address"] = json!("Flat 2, 3 Acre Lane");
    api.post_as("/v1/brochures", None, &tricky).await;
    let admin = Api::admin();

    let page: Value = api
        .get_as("/v1/admin/brochures?pageSize=1", &admin)
        .await
        .json()
        .await
        .unwrap();
    let csv = api.get_as("/v1/admin/brochures/export", &admin).await;
    let customer = api.get_as("/v1/admin/brochures", &Api::customer()).await;

    assert_eq!(page["total"], 2);
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("id,createdAt,firstName"));
    assert!(text.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{text}");
    assert!(text.contains("\"Flat 2, 3 Acre Lane\""));
    assert_eq!(customer.status(), 403);
}

#[tokio::test]
async fn a_fourth_request_for_one_email_within_the_hour_is_429_and_changes_nothing() {
    let api = Api::spawn().await;
    let spelled = |email: &str| {
        let mut request = body();
        request["email"] = json!(email);
        request
    };
    let mut invalid = spelled("jane@example.com");
    invalid["postcode"] = json!("nope");

    // Invalid requests do not use up the quota.
    let refused_input = api.post_as("/v1/brochures", None, &invalid).await;
    let mut accepted = Vec::new();
    for email in ["jane@example.com", "Jane@Example.com", " JANE@EXAMPLE.COM "] {
        accepted.push(
            api.post_as("/v1/brochures", None, &spelled(email))
                .await
                .status(),
        );
    }
    let fourth = api
        .post_as("/v1/brochures", None, &spelled("jAnE@example.com"))
        .await;
    let other = api
        .post_as("/v1/brochures", None, &spelled("john@example.com"))
        .await;

    assert_eq!(refused_input.status(), 422);
    assert_eq!(accepted, vec![201, 201, 201]);
    assert_eq!(fourth.status(), 429);
    let retry_after: u64 = fourth.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3500..=3600).contains(&retry_after), "{retry_after}");
    assert!(
        fourth.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/problem+json")
    );
    let problem: Value = fourth.json().await.unwrap();
    assert_eq!(problem["status"], 429);
    assert_eq!(other.status(), 201);
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT email FROM brochure_requests ORDER BY created_at")
            .fetch_all(&api.pool)
            .await
            .unwrap();
    assert_eq!(
        stored,
        vec![
            "jane@example.com",
            "jane@example.com",
            "jane@example.com",
            "john@example.com"
        ]
    );
    assert_eq!(api.events("brochure.requested").await.len(), 4);
}

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

//! Forms: validation, events, per-email limits, the double opt-in newsletter, admin tables and
//! CSV exports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, customer, fields, problem_code};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn contact(email: &str) -> Value {
    json!({"name": "Jane Doe", "email": email, "phone": "07700 900123", "subject": "New kitchen",
           "message": "Please call me about a shaker kitchen.", "enquiryType": "KITCHEN"})
}

/// The confirmation token the last `newsletter.subscribed` event carried for `email`.
async fn token_for(api: &Api, email: &str) -> String {
    let events = api.events("newsletter.subscribed").await;
    let event = events
        .iter()
        .rev()
        .find(|e| e["payload"]["email"] == email)
        .expect("a newsletter.subscribed event");
    event["payload"]["confirmationToken"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_contact_submission_is_stored_and_announced() {
    let api = Api::spawn().await;
    let (status, receipt) = api.post("/v1/contact", &contact("Jane@Example.com")).await;
    assert_eq!(status, StatusCode::CREATED, "{receipt}");
    assert!(receipt["id"].is_string() && receipt["receivedAt"].is_string());

    let events = api.events("contact.received").await;
    assert_eq!(events.len(), 1);
    let payload = &events[0]["payload"];
    assert_eq!(payload["submissionId"], receipt["id"]);
    assert_eq!(
        payload["email"], "jane@example.com",
        "addresses are lower-cased"
    );
    assert_eq!(
        payload["phone"], "+447700900123",
        "UK numbers are stored as E.164"
    );
    assert_eq!(payload["subject"], "New kitchen");

    let (status, table) = api.admin_get("/v1/admin/contact").await;
    assert_eq!(status, StatusCode::OK, "{table}");
    assert_eq!(table["total"], 1);
    assert_eq!(table["data"][0]["enquiryType"], "KITCHEN");
}

#[tokio::test]
async fn an_invalid_contact_form_names_every_field_and_stores_nothing() {
    let api = Api::spawn().await;
    let (status, problem) = api
        .post(
            "/v1/contact",
            &json!({"name": "", "email": "not-an-email", "phone": "12", "subject": "", "message": "", "enquiryType": "KITCHEN"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        fields(&problem),
        ["email", "message", "name", "phone", "subject"]
    );
    let (status, _) = api
        .post("/v1/contact", &json!({"name": "A", "email": "a@example.com", "subject": "S", "message": "M", "enquiryType": "SPAM"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        api.count("SELECT count(*) FROM contact_submissions").await,
        0
    );
    assert!(api.events("contact.received").await.is_empty());
}

#[tokio::test]
async fn the_contact_form_accepts_five_an_hour_per_address_then_429_with_retry_after() {
    let api = Api::spawn().await;
    for _ in 0..5 {
        assert_eq!(
            api.post("/v1/contact", &contact("busy@example.com"))
                .await
                .0,
            StatusCode::CREATED
        );
    }
    let refused = api
        .app
        .post_json("/v1/contact", &contact("BUSY@example.com"))
        .await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0 && retry_after <= 3600, "{retry_after}");
    let (_, problem) = common::body(refused).await;
    assert_eq!(problem_code(&problem), "rate-limited");
    assert_eq!(
        api.count("SELECT count(*) FROM contact_submissions").await,
        5
    );

    // Another address is not affected.
    assert_eq!(
        api.post("/v1/contact", &contact("calm@example.com"))
            .await
            .0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_business_enquiry_is_stored_and_announced() {
    let api = Api::spawn().await;
    let (status, receipt) = api
        .post(
            "/v1/business-enquiries",
            &json!({"name": "Sam Builder", "companyName": "Builder Ltd", "email": "sam@builder.example",
                    "phone": "+44 20 7946 0958", "businessType": "TRADE", "message": "Trade account please."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{receipt}");
    let events = api.events("business_enquiry.received").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["payload"]["companyName"], "Builder Ltd");
    assert_eq!(events[0]["payload"]["contactName"], "Sam Builder");
    assert_eq!(events[0]["payload"]["enquiryType"], "TRADE");
    assert_eq!(events[0]["payload"]["phone"], "+442079460958");

    let (status, problem) = api
        .post("/v1/business-enquiries", &json!({"name": "X", "email": "x@example.com", "businessType": "TRADE", "message": "m"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(fields(&problem), ["phone"]);
    assert_eq!(
        api.count("SELECT count(*) FROM business_enquiries").await,
        1
    );
}

#[tokio::test]
async fn a_duplicate_newsletter_sign_up_gets_the_same_201_and_no_second_row() {
    let api = Api::spawn().await;
    let body = json!({"email": "fan@example.com", "name": "Fan", "preferences": ["KITCHENS", "OFFERS"], "source": "footer"});
    let (status, first) = api.post("/v1/newsletter", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, second) = api
        .post("/v1/newsletter", &json!({"email": "FAN@example.com"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(first, second);
    assert_eq!(
        api.count("SELECT count(*) FROM newsletter_subscriptions")
            .await,
        1
    );
    let events = api.events("newsletter.subscribed").await;
    assert_eq!(events.len(), 1, "one event for one subscription");
    assert_eq!(events[0]["payload"]["source"], "footer");
    // The token travels in the event only: never in the answer, never stored as is.
    let token = token_for(&api, "fan@example.com").await;
    assert!(!first.to_string().contains(&token));
    let stored: String = sqlx::query_scalar("SELECT token FROM newsletter_subscriptions")
        .fetch_one(&api.pool)
        .await
        .unwrap();
    assert_ne!(stored, token);
}

#[tokio::test]
async fn the_newsletter_is_double_opt_in_and_unsubscribing_uses_the_token() {
    let api = Api::spawn().await;
    api.post("/v1/newsletter", &json!({"email": "reader@example.com"}))
        .await;
    let token = token_for(&api, "reader@example.com").await;
    let (_, table) = api.admin_get("/v1/admin/newsletter?status=PENDING").await;
    assert_eq!(table["total"], 1);

    let (status, confirmed) = api
        .post(&format!("/v1/newsletter/{token}/confirm"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    assert_eq!(confirmed["status"], "CONFIRMED");
    let (_, table) = api.admin_get("/v1/admin/newsletter?status=CONFIRMED").await;
    assert_eq!(table["total"], 1);
    assert_eq!(
        api.post("/v1/newsletter/not-a-token/confirm", &json!({}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    let (status, _) = api
        .send(
            None,
            Method::DELETE,
            &format!("/v1/newsletter/{token}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api
        .send(
            None,
            Method::DELETE,
            &format!("/v1/newsletter/{token}"),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "unsubscribing twice is fine"
    );
    let (status, _) = api
        .send(None, Method::DELETE, "/v1/newsletter/unknown", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        api.post(&format!("/v1/newsletter/{token}/confirm"), &json!({}))
            .await
            .0,
        StatusCode::NOT_FOUND,
        "an unsubscribed token confirms nothing"
    );

    // Subscribing again starts a new pending subscription on the same row, with a new token.
    assert_eq!(
        api.post("/v1/newsletter", &json!({"email": "reader@example.com"}))
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        api.count("SELECT count(*) FROM newsletter_subscriptions")
            .await,
        1
    );
    assert_eq!(api.events("newsletter.subscribed").await.len(), 2);
    assert_ne!(token_for(&api, "reader@example.com").await, token);
}

#[tokio::test]
async fn newsletter_sign_ups_are_limited_to_three_a_day_per_address() {
    let api = Api::spawn().await;
    for _ in 0..3 {
        assert_eq!(
            api.post("/v1/newsletter", &json!({"email": "spam@example.com"}))
                .await
                .0,
            StatusCode::CREATED
        );
    }
    let refused = api
        .app
        .post_json("/v1/newsletter", &json!({"email": "spam@example.com"}))
        .await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 3600 && retry_after <= 86_400, "{retry_after}");
    let (status, problem) = api
        .post(
            "/v1/newsletter",
            &json!({"email": "nope", "preferences": ["GARDENS"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
}

#[tokio::test]
async fn admins_export_submissions_as_csv_with_formulas_defused() {
    let api = Api::spawn().await;
    let mut body = contact("csv@example.com");
    body["message"] = json!("=HYPERLINK(\"http://evil\",\"click\"), and more");
    api.post("/v1/contact", &body).await;

    let response = api
        .app
        .request_as(Method::GET, "/v1/admin/contact/export", &api.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("contact-submissions.csv")
    );
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "id,receivedAt,name,email,phone,enquiryType,subject,message"
    );
    assert_eq!(lines.len(), 2);
    assert!(
        lines[1].contains("\"'=HYPERLINK(\"\"http://evil\"\",\"\"click\"\"), and more\""),
        "{csv}"
    );

    for path in [
        "/v1/admin/business-enquiries/export",
        "/v1/admin/newsletter/export",
    ] {
        let response = api
            .app
            .request_as(Method::GET, path, &api.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let response = api
        .app
        .request_as(Method::GET, "/v1/admin/contact/export", &customer())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (status, _) = api
        .send(Some(&customer()), Method::GET, "/v1/admin/newsletter", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

//! Cross-cutting checks of the whole platform through the gateway: every answer carries an
//! `X-Request-Id`, and a service stopped mid-run is a 503 at the gateway, then serves again once
//! restarted, with nothing it had accepted lost (its events wait on the broker).
#![allow(clippy::unwrap_used)]

use chrono::{Duration, Utc};
use e2e_tests::{Platform, eventually};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Every kind of answer (a gateway 404, a service's 200, 401, 422, a public page) has a request
/// id, and one the client sends is kept when it is well-formed.
#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let platform = Platform::start().await;
    for (path, status) in [
        ("/v1/products", 200),
        ("/v1/appointment-types", 200),
        ("/v1/blog", 200),
        ("/v1/auth/me", 401),
        ("/v1/products?limit=ten", 422),
        ("/v1/no-such-thing", 404),
        ("/health", 200),
    ] {
        let response = platform.get(path, None).await;
        assert_eq!(response.status().as_u16(), status, "{path}");
        let id = response.headers().get("x-request-id");
        assert!(
            id.is_some_and(|v| !v.is_empty()),
            "{path} has no X-Request-Id"
        );
    }
    let mine = platform
        .request(reqwest::Method::GET, "/v1/products", None)
        .header("x-request-id", "e2e-trace-0001")
        .send()
        .await
        .unwrap();
    assert_eq!(mine.headers()["x-request-id"], "e2e-trace-0001");
}

/// A home-measurement slot offered by a consultant an administrator set up.
async fn a_slot(platform: &Platform, admin: &str) -> String {
    let consultant: Value = platform
        .post(
            "/v1/admin/consultants",
            Some(admin),
            &json!({"userId": uuid::Uuid::now_v7(), "name": "Amelia Hart",
                    "specialisation": "BOTH", "coverage": ["SW"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = consultant["id"].as_str().unwrap();
    for weekday in 1..=7 {
        let rule = platform
            .post(
                &format!("/v1/admin/consultants/{id}/rules"),
                Some(admin),
                &json!({"weekday": weekday, "startsAt": "09:00", "endsAt": "13:00",
                        "appointmentType": "HOME_MEASUREMENT"}),
            )
            .await;
        assert_eq!(rule.status(), StatusCode::CREATED);
    }
    let from = Utc::now().date_naive();
    let to = from + Duration::days(14);
    let availability: Value = platform
        .get(
            &format!(
                "/v1/availability?type=HOME_MEASUREMENT&postcode=SW4%200AB&from={from}&to={to}"
            ),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    availability["days"][0]["slots"][0]["id"]
        .as_str()
        .expect("a bookable slot")
        .to_owned()
}

#[tokio::test]
async fn a_stopped_service_is_503_at_the_gateway_and_nothing_accepted_is_lost() {
    let mut platform = Platform::start().await;
    let admin = platform.admin("ops@lomashwood.co.uk").await;
    let slot = a_slot(&platform, &admin).await;
    let email = "patient@example.com";
    let (token, _) = platform.customer(email).await;

    // appointment down: the gateway answers 503 problem+json naming it, for reads and writes.
    platform.stop("appointment").await;
    let down = platform.get("/v1/appointment-types", None).await;
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(down.headers().contains_key("x-request-id"));
    assert_eq!(down.headers()["content-type"], "application/problem+json");
    let brochure = json!({
        "firstName": "Jane", "lastName": "Doe", "email": email, "phone": "07700 900123",
        "postcode": "SW4 0AB", "address": "1 Acre Lane, London", "interests": "BOTH",
    });
    let refused = platform.post("/v1/brochures", None, &brochure).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The rest of the platform keeps serving.
    assert_eq!(
        platform.get("/v1/products", None).await.status(),
        StatusCode::OK
    );

    // notification goes down too; appointment comes back and the gateway lets traffic through
    // again (once its breaker has let a probe succeed).
    platform.stop("notification").await;
    platform.restart("appointment").await;
    eventually("appointment served again", || async {
        (platform.get("/v1/appointment-types", None).await.status() == StatusCode::OK).then_some(())
    })
    .await;

    // Accepted while notification is down: a booking and a brochure request.
    let booked = platform
        .post(
            "/v1/appointments",
            Some(&token),
            &json!({
                "type": "HOME_MEASUREMENT", "forKitchen": true, "forBedroom": false,
                "firstName": "Jane", "lastName": "Doe", "email": email,
                "phone": "07700 900123", "postcode": "SW4 0AB",
                "address": "1 Acre Lane, London", "slotId": slot,
            }),
        )
        .await;
    assert_eq!(booked.status(), StatusCode::CREATED);
    let booked: Value = booked.json().await.unwrap();
    let reference = booked["referenceCode"].as_str().unwrap().to_owned();
    let accepted = platform.post("/v1/brochures", None, &brochure).await;
    assert_eq!(accepted.status(), StatusCode::CREATED);
    // The one refused while appointment was down stored nothing: exactly one request is listed.
    let listed: Value = platform
        .get("/v1/admin/brochures", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1), "{listed}");

    // notification restarts and catches up on what waited for it on the broker.
    platform.restart("notification").await;
    let acknowledgement = platform.email(email, &reference).await;
    assert!(acknowledgement.text.contains(&reference));
    platform.email(email, "brochure").await;
    // Nothing twice.
    let emails = platform.emails(email).await;
    assert_eq!(
        emails
            .iter()
            .filter(|e| e.subject.contains(&reference))
            .count(),
        1
    );
    assert_eq!(
        emails
            .iter()
            .filter(|e| e.subject.contains("brochure"))
            .count(),
        1
    );
}

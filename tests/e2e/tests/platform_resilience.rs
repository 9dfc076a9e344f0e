//! Cross-cutting checks of the whole platform through the gateway: every answer carries an
//! `X-Request-Id`, one booking is one trace through the gateway's, appointment's and
//! notification's logs, and a service stopped mid-run is a 503 at the gateway, then serves again
//! once restarted, with nothing it had accepted lost (its events wait on the broker).
#![allow(clippy::unwrap_used)]

use chrono::{Duration, Utc};
use e2e_tests::{Platform, eventually};
use reqwest::StatusCode;
use serde_json::{Value, json};
use service_kit::shared_types::topics::BOOKING_CREATED;

/// Every kind of answer (a gateway 404 or 413, a service's 200, 400, 401, 405, 422, a public
/// page) has a request id, and one the client sends is kept when it is well-formed.
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
    // Errors the gateway makes itself before any upstream sees the request (a body over the
    // limit), and ones the upstream makes from what the gateway forwarded.
    let oversized = vec![b'x'; 2 * 1024 * 1024];
    for (method, path, body, status) in [
        (reqwest::Method::POST, "/v1/auth/login", oversized, 413),
        (reqwest::Method::POST, "/v1/auth/login", b"{".to_vec(), 400),
        (reqwest::Method::DELETE, "/v1/auth/login", Vec::new(), 405),
        (reqwest::Method::PUT, "/v1/no-such-thing", Vec::new(), 404),
    ] {
        let response = platform
            .request(method.clone(), path, None)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{method} {path}"
        );
        let id = response.headers().get("x-request-id");
        assert!(
            id.is_some_and(|v| !v.is_empty()),
            "{method} {path} has no X-Request-Id"
        );
    }
    let mine = platform
        .request(reqwest::Method::GET, "/v1/products", None)
        .header("x-request-id", "e2e-trace-0001")
        .send()
        .await
        .unwrap();
    assert_eq!(mine.headers()["x-request-id"], "e2e-trace-0001");
    // One that could smuggle text into logs is replaced, not echoed.
    let unsafe_id = platform
        .request(reqwest::Method::GET, "/v1/no-such-thing", None)
        .header("x-request-id", "a b\"<script>")
        .send()
        .await
        .unwrap();
    assert_eq!(unsafe_id.status(), StatusCode::NOT_FOUND);
    let replaced = unsafe_id.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(replaced).is_ok(), "{replaced}");
}

/// The log lines whose span carries `field` = `value` (lines the services wrote inside a request
/// span or an event consumer's span).
fn lines_in_span<'a>(logs: &'a [Value], field: &str, value: &str) -> Vec<&'a Value> {
    logs.iter()
        .filter(|line| line["span"][field].as_str() == Some(value))
        .collect()
}

/// A booking made through the gateway can be followed through the logs by its trace id: the
/// gateway's access line, appointment's "booking created" and notification's handling of the
/// `booking.created` event (which travelled over the broker, the trace context in its
/// envelope) all carry it, next to the request id the client was given.
#[tokio::test]
async fn one_booking_is_one_trace_in_the_gateway_appointment_and_notification_logs() {
    let platform = Platform::start().await;
    let admin = platform.admin("ops@lomashwood.co.uk").await;
    let slot = a_slot(&platform, &admin).await;
    let email = "traced@example.com";
    let (token, _) = platform.customer(email).await;

    let booked = platform
        .post(
            "/v1/appointments",
            Some(&token),
            &json!({
                "type": "HOME_MEASUREMENT", "forKitchen": true, "forBedroom": true,
                "firstName": "Jane", "lastName": "Doe", "email": email,
                "phone": "07700 900123", "postcode": "SW4 0AB",
                "address": "1 Acre Lane, London", "slotId": slot,
            }),
        )
        .await;
    assert_eq!(booked.status(), StatusCode::CREATED);
    let request_id = booked.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let booked: Value = booked.json().await.unwrap();
    let reference = booked["referenceCode"].as_str().unwrap().to_owned();
    // Notification has handled the event once the acknowledgement is sent.
    platform.email(email, &reference).await;

    // The gateway: its access line for this request names the trace.
    let logs = platform.logs();
    let at_gateway: Vec<&Value> = lines_in_span(&logs, "request_id", &request_id)
        .into_iter()
        .filter(|line| line["span"]["service"] == "gateway")
        .collect();
    let access = at_gateway
        .iter()
        .find(|line| line["target"] == "gateway::access")
        .unwrap_or_else(|| panic!("no gateway access line for {request_id}: {at_gateway:?}"));
    assert_eq!(access["status"], 201, "{access}");
    assert_eq!(access["upstream"], "appointment", "{access}");
    let trace_id = access["span"]["trace_id"]
        .as_str()
        .unwrap_or_else(|| panic!("the gateway's request span has no trace id: {access}"))
        .to_owned();
    assert!(
        trace_id.len() == 32
            && trace_id.bytes().all(|b| b.is_ascii_hexdigit())
            && trace_id.bytes().any(|b| b != b'0'),
        "not a W3C trace id: {trace_id}"
    );

    // Every line of the trace, from whichever service wrote it.
    let traced = lines_in_span(&logs, "trace_id", &trace_id);
    let from = |service: &str| -> Vec<&Value> {
        traced
            .iter()
            .copied()
            .filter(|line| line["span"]["service"] == service)
            .collect()
    };

    // appointment: the forwarded request, with the same request id, created the booking.
    let at_appointment = from("appointment");
    let created = at_appointment
        .iter()
        .find(|line| line["message"] == "booking created")
        .unwrap_or_else(|| panic!("appointment logged no booking in trace {trace_id}: {traced:?}"));
    assert_eq!(created["span"]["name"], "request", "{created}");
    assert_eq!(
        created["span"]["request_id"],
        request_id.as_str(),
        "{created}"
    );
    assert_eq!(
        created["booking_id"], booked["bookingId"],
        "{created} vs {booked}"
    );

    // notification: the event's consumer span continued the trace (and names the request in
    // its correlation id); what it queued for this booking is logged inside it.
    let at_notification = from("notification");
    assert!(
        !at_notification.is_empty(),
        "notification logged nothing in trace {trace_id}: {traced:?}"
    );
    for line in &at_notification {
        assert_eq!(line["span"]["name"], "event.consume", "{line}");
        assert_eq!(line["span"]["topic"], BOOKING_CREATED, "{line}");
        assert_eq!(
            line["span"]["correlation_id"],
            request_id.as_str(),
            "{line}"
        );
    }
    let queued = at_notification
        .iter()
        .filter(|line| line["message"] == "notification queued")
        .count();
    // The customer's acknowledgement and the kitchen and bedroom teams' alerts.
    assert!(queued >= 3, "{at_notification:?}");

    // The trace is this booking's alone: the customer's sign-in before it was another.
    let other_traces: Vec<&Value> = logs
        .iter()
        .filter(|line| {
            line["target"] == "gateway::access" && line["span"]["request_id"] != request_id.as_str()
        })
        .collect();
    assert!(!other_traces.is_empty());
    for line in other_traces {
        assert_ne!(line["span"]["trace_id"], trace_id.as_str(), "{line}");
    }
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

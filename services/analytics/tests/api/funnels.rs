use chrono::{Duration, NaiveTime, Utc};
use reqwest::StatusCode;
use serde_json::json;
use service_kit::Role;
use test_support::TestUser;

use crate::helpers::{Api, body_of};

/// Inserts one client event for `actor` (its anonymous id) at `at`.
async fn row(
    api: &Api,
    actor: &str,
    event: &str,
    properties: serde_json::Value,
    at: chrono::DateTime<Utc>,
) {
    sqlx::query(
        "INSERT INTO tracking_events (message_id, event, source, properties, anonymous_id, session_id, occurred_at)
         VALUES (gen_random_uuid()::text, $1, 'CLIENT', $2, $3, $3, $4)",
    )
    .bind(event)
    .bind(properties)
    .bind(actor)
    .bind(at)
    .execute(&api.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn funnel_conversion_matches_a_hand_built_data_set() {
    let api = Api::spawn_with(&[("ANALYTICS_FLUSHER_ENABLED", "false")]).await;
    let admin = TestUser::new(Role::Admin);
    let d1 = Utc::now().date_naive() - Duration::days(3);
    let d2 = d1 + Duration::days(1);
    let at = |day: chrono::NaiveDate, h: u32, m: u32| {
        day.and_time(NaiveTime::from_hms_opt(h, m, 0).unwrap())
            .and_utc()
    };
    let kitchen = json!({"category": "KITCHEN", "productId": "p1"});
    // A: the whole funnel on d1.
    row(&api, "A", "product_viewed", kitchen.clone(), at(d1, 10, 0)).await;
    row(&api, "A", "booking_started", json!({}), at(d1, 10, 5)).await;
    row(&api, "A", "booking_created", json!({}), at(d1, 11, 0)).await;
    // B: starts booking after the 1-hour window.
    row(&api, "B", "product_viewed", kitchen.clone(), at(d1, 9, 0)).await;
    row(&api, "B", "booking_started", json!({}), at(d1, 11, 0)).await;
    row(&api, "B", "booking_created", json!({}), at(d1, 11, 30)).await;
    // C: views and starts on d2, never books; views again later (entry counts once).
    row(&api, "C", "product_viewed", kitchen.clone(), at(d2, 8, 0)).await;
    row(&api, "C", "booking_started", json!({}), at(d2, 8, 30)).await;
    row(&api, "C", "product_viewed", kitchen.clone(), at(d2, 20, 0)).await;
    // D: starts without viewing: never enters.
    row(&api, "D", "booking_started", json!({}), at(d2, 9, 0)).await;
    // E: views a bedroom: the filter keeps it out.
    row(
        &api,
        "E",
        "product_viewed",
        json!({"category": "BEDROOM"}),
        at(d2, 9, 0),
    )
    .await;
    row(&api, "E", "booking_started", json!({}), at(d2, 9, 10)).await;
    // F: skips booking_started: step 1 only.
    row(&api, "F", "product_viewed", kitchen.clone(), at(d2, 12, 0)).await;
    row(&api, "F", "booking_created", json!({}), at(d2, 12, 30)).await;
    // G: booking started before its view: order matters.
    row(&api, "G", "booking_started", json!({}), at(d2, 13, 0)).await;
    row(&api, "G", "product_viewed", kitchen.clone(), at(d2, 14, 0)).await;
    // H: entered before the range.
    row(
        &api,
        "H",
        "product_viewed",
        kitchen.clone(),
        at(d1 - Duration::days(1), 12, 0),
    )
    .await;
    row(
        &api,
        "H",
        "booking_started",
        json!({}),
        at(d1 - Duration::days(1), 12, 5),
    )
    .await;

    let create = api
        .app
        .request_as(reqwest::Method::POST, "/v1/analytics/funnels", &admin)
        .json(&json!({
            "name": "View to booking",
            "steps": [
                {"event": "product_viewed", "filters": {"category": "KITCHEN"}},
                {"event": "booking_started", "withinSecs": 3600},
                {"event": "booking_created", "withinSecs": 604800},
            ],
        }))
        .send()
        .await
        .unwrap();
    let (status, funnel) = body_of(create).await;
    assert_eq!(status, StatusCode::CREATED, "{funnel}");
    let id = funnel["id"].as_str().unwrap();

    let response = api
        .app
        .request_as(
            reqwest::Method::GET,
            &format!("/v1/analytics/funnels/{id}/report?from={d1}&to={d2}"),
            &admin,
        )
        .send()
        .await
        .unwrap();
    let (status, report) = body_of(response).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let counts: Vec<i64> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["count"].as_i64().unwrap())
        .collect();
    assert_eq!(
        counts,
        vec![5, 2, 1],
        "entered A B C F G; started A C; booked A"
    );
    assert_eq!(report["steps"][1]["conversionFromPrevious"], 0.4);
    assert_eq!(report["steps"][2]["conversionFromStart"], 0.2);
    assert_eq!(
        report["days"],
        json!([
            {"date": d1.to_string(), "counts": [2, 1, 1]},
            {"date": d2.to_string(), "counts": [3, 1, 0]},
        ])
    );

    let bad = api
        .app
        .request_as(reqwest::Method::POST, "/v1/analytics/funnels", &admin)
        .json(&json!({"name": "x", "steps": [{"event": "page_viewed"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let missing = api
        .app
        .request_as(
            reqwest::Method::GET,
            &format!(
                "/v1/analytics/funnels/{}/report?from={d1}&to={d2}",
                uuid::Uuid::now_v7()
            ),
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

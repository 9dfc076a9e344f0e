use reqwest::StatusCode;
use serde_json::json;
use service_kit::Role;
use test_support::TestUser;

use crate::helpers::{Api, body_of, event, fields};

#[tokio::test]
async fn single_batch_and_gtm_events_are_accepted_and_all_reach_postgres() {
    let api = Api::spawn_with(&[]).await;

    let (status, one) = api.track(&event("page_viewed")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{one}");
    assert_eq!(one["accepted"], 1);
    let batch: Vec<_> = (0..50).map(|_| event("product_viewed")).collect();
    let (status, many) = api.track(&json!({ "batch": batch })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{many}");
    assert_eq!(many["accepted"], 50);
    let (status, gtm) = api
        .track(&json!({
            "sessionId": "s-2",
            "pageUrl": "https://www.lomashwood.co.uk/",
            "dataLayer": [
                {"event": "gtm.js", "gtm.start": 1},
                {"pageType": "home"},
                {"event": "cta_clicked", "cta": "book", "gtm.uniqueEventId": 4},
                {"event": "custom.hero_video", "seconds": 12},
            ],
        }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{gtm}");
    assert_eq!(gtm["accepted"], 2);

    api.wait_for("SELECT count(*) FROM tracking_events", 53)
        .await;
    let (device, browser, os, ip_hash, host, path): (
        String,
        String,
        String,
        String,
        String,
        String,
    ) = sqlx::query_as(
        "SELECT device, browser, os, ip_hash, referrer_host, page_path FROM tracking_events
             WHERE event = 'page_viewed'",
    )
    .fetch_one(&api.pool)
    .await
    .unwrap();
    assert_eq!(
        (device.as_str(), browser.as_str(), os.as_str()),
        ("MOBILE", "Safari", "iOS")
    );
    assert!(
        !ip_hash.contains("203.0.113"),
        "the address is never stored raw"
    );
    assert_eq!(
        (host.as_str(), path.as_str()),
        ("www.google.com", "/kitchens/oak")
    );
    let gtm_props: serde_json::Value = sqlx::query_scalar(
        "SELECT properties FROM tracking_events WHERE event = 'cta_clicked' AND source = 'GTM'",
    )
    .fetch_one(&api.pool)
    .await
    .unwrap();
    assert_eq!(gtm_props, json!({"cta": "book"}));
}

#[tokio::test]
async fn the_signed_in_user_is_attached_from_the_gateway_identity() {
    let api = Api::spawn_with(&[]).await;
    let user = TestUser::new(Role::Customer);
    let response = api
        .app
        .request_as(reqwest::Method::POST, "/v1/analytics/track", &user)
        .json(&event("checkout_started"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    api.wait_for("SELECT count(*) FROM tracking_events", 1)
        .await;
    let stored: Option<uuid::Uuid> = sqlx::query_scalar("SELECT user_id FROM tracking_events")
        .fetch_one(&api.pool)
        .await
        .unwrap();
    assert_eq!(stored, Some(user.id));
}

#[tokio::test]
async fn invalid_payloads_are_422_and_store_nothing() {
    let api = Api::spawn_with(&[]).await;
    let mut future = event("page_viewed");
    future["timestamp"] = json!("2999-01-01T00:00:00Z");
    let mut bad_url = event("page_viewed");
    bad_url["pageUrl"] = json!("javascript:alert(1)");
    let mut forged = event("purchase");
    forged["properties"] = json!({"revenue": 100000});
    let mut huge = event("page_viewed");
    huge["properties"] = json!({"blob": "x".repeat(9000)});
    let mut nul = event("page_viewed");
    nul["properties"] = json!({"note": "a\u{0}b"});
    let cases = [
        (nul, "properties"),
        (
            json!({"batch": [event("page_viewed"), event("nonsense")]}),
            "batch[1].event",
        ),
        (future, "timestamp"),
        (bad_url, "pageUrl"),
        (forged, "event"),
        (huge, "properties"),
        (json!({"batch": []}), "batch"),
        (json!({"batch": vec![event("page_viewed"); 101]}), "batch"),
        (
            json!({"event": "page_viewed", "pageUrl": "https://x.example/"}),
            "sessionId",
        ),
        (
            json!({"sessionId": "s", "pageUrl": "https://x.example/", "dataLayer": [{"event": "gtm.js"}]}),
            "dataLayer",
        ),
        // A key of an event entry of the wrong type is refused, never dropped.
        (
            json!({"sessionId": "s", "pageUrl": "https://x.example/", "dataLayer": [{"event": "page_viewed", "timestamp": {}}]}),
            "dataLayer[0].timestamp",
        ),
        (
            json!({"sessionId": "s", "pageUrl": "https://x.example/", "dataLayer": [{"event": "page_viewed", "messageId": 7}]}),
            "dataLayer[0].messageId",
        ),
        (
            json!({"sessionId": "s", "pageUrl": "https://x.example/", "dataLayer": [{"event": 5}]}),
            "dataLayer[0].event",
        ),
    ];
    for (body, field) in cases {
        let (status, problem) = api.track(&body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert!(
            fields(&problem).contains(&field.to_owned()),
            "{field}: {problem}"
        );
    }
    let response = api
        .app
        .request(reqwest::Method::POST, "/v1/analytics/track")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(body_of(response).await.0, StatusCode::BAD_REQUEST);

    // A valid event afterwards is the only thing ever stored.
    let (status, _) = api.track(&event("page_viewed")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    api.wait_for("SELECT count(*) FROM tracking_events", 1)
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    assert_eq!(api.count("SELECT count(*) FROM tracking_events").await, 1);
}

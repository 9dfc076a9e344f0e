//! The availability search.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{Api, error_fields, in_hours};

fn slot_ids(body: &Value) -> Vec<String> {
    body["days"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["slots"].as_array().unwrap().iter())
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

fn window() -> String {
    let from = (chrono::Utc::now() - Duration::days(1)).date_naive();
    let to = from + Duration::days(30);
    format!("from={from}&to={to}")
}

async fn search(api: &Api, query: &str) -> reqwest::Response {
    api.send(
        reqwest::Method::GET,
        &format!("/v1/availability?{query}"),
        None,
        None,
    )
    .await
}

#[tokio::test]
async fn only_bookable_slots_of_covering_consultants_are_offered() {
    let api = Api::spawn().await;
    let sw = api.consultant("Amelia Hart", &["SW"]).await;
    let ec = api.consultant("Priya Shah", &["EC1A"]).await;
    let good = api.home_slot(&sw, in_hours(48)).await;
    let _past = api.home_slot(&sw, in_hours(-4)).await;
    let _too_soon = api.home_slot(&sw, in_hours(6)).await;
    let _virtual = api
        .slot_of(&sw, "VIRTUAL_CONSULTATION", None, in_hours(50), 45)
        .await;
    let elsewhere = api.home_slot(&ec, in_hours(48)).await;
    let booked = api.home_slot(&sw, in_hours(72)).await;
    api.booked(booked, None).await;
    // Open, but overlapping the booking above (different slot, same consultant).
    let _shadowed = api
        .home_slot(&sw, in_hours(72) + Duration::minutes(45))
        .await;

    let response = search(
        &api,
        &format!("type=HOME_MEASUREMENT&postcode=SW4%200AB&{}", window()),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(slot_ids(&body), vec![good.to_string()]);
    let day = &body["days"][0];
    assert_eq!(day["slots"][0]["consultant"]["name"], "Amelia Hart");
    assert!(day["date"].as_str().unwrap().len() == 10);

    let city: Value = search(
        &api,
        &format!("type=HOME_MEASUREMENT&postcode=EC1A%201BB&{}", window()),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(slot_ids(&city), vec![elsewhere.to_string()]);
}

#[tokio::test]
async fn slots_beyond_the_horizon_are_never_offered() {
    let api = Api::spawn_with(&[("BOOKING_HORIZON_DAYS", "10")]).await;
    let sw = api.consultant("Amelia Hart", &["SW"]).await;
    let near = api.home_slot(&sw, in_hours(24 * 9)).await;
    let _far = api.home_slot(&sw, in_hours(24 * 11)).await;

    let body: Value = search(
        &api,
        &format!("type=HOME_MEASUREMENT&postcode=SW4%200AB&{}", window()),
    )
    .await
    .json()
    .await
    .unwrap();

    assert_eq!(slot_ids(&body), vec![near.to_string()]);
}

#[tokio::test]
async fn showroom_visits_are_searched_by_showroom() {
    let api = Api::spawn().await;
    let c = api.consultant("Priya Shah", &["EC"]).await;
    let clapham = api.showroom("Clapham", "SW4 7UJ").await;
    let city = api.showroom("City", "EC1M 4AY").await;
    let here = api
        .slot_of(&c, "SHOWROOM_VISIT", Some(clapham), in_hours(48), 60)
        .await;
    let _there = api
        .slot_of(&c, "SHOWROOM_VISIT", Some(city), in_hours(52), 60)
        .await;

    let body: Value = search(
        &api,
        &format!("type=SHOWROOM_VISIT&showroomId={clapham}&{}", window()),
    )
    .await
    .json()
    .await
    .unwrap();
    let missing = search(&api, "type=SHOWROOM_VISIT").await;

    assert_eq!(slot_ids(&body), vec![here.to_string()]);
    assert_eq!(
        body["days"][0]["slots"][0]["showroomId"],
        clapham.to_string()
    );
    assert_eq!(missing.status(), 422);
    let problem: Value = missing.json().await.unwrap();
    assert_eq!(error_fields(&problem), vec!["showroomId"]);
}

#[tokio::test]
async fn bad_searches_are_422() {
    let api = Api::spawn().await;
    for (query, field) in [
        ("type=HOME_MEASUREMENT", "postcode"),
        ("type=HOME_MEASUREMENT&postcode=nope", "postcode"),
        (
            "type=HOME_MEASUREMENT&postcode=SW40AB&from=2026-12-10&to=2026-12-01",
            "to",
        ),
        (
            "type=HOME_MEASUREMENT&postcode=SW40AB&from=2026-12-01&to=2027-03-01",
            "to",
        ),
        ("type=BOAT_TRIP", "type"),
        ("postcode=SW40AB", "type"),
    ] {
        let response = search(&api, query).await;
        assert_eq!(response.status(), 422, "{query}");
        let problem: Value = response.json().await.unwrap();
        assert!(
            error_fields(&problem).iter().any(|f| f == field),
            "{query}: {problem}"
        );
    }
}

#[tokio::test]
async fn a_booking_or_cancellation_shows_at_once_despite_the_cache() {
    let api = Api::spawn_with(&[("AVAILABILITY_CACHE_TTL_SECS", "600")]).await;
    let sw = api.consultant("Amelia Hart", &["SW"]).await;
    let slot = api.home_slot(&sw, in_hours(48)).await;
    let query = format!("type=HOME_MEASUREMENT&postcode=SW4%200AB&{}", window());
    let first: Value = search(&api, &query).await.json().await.unwrap();
    assert_eq!(slot_ids(&first), vec![slot.to_string()]);

    let jane = Api::customer();
    let id: Uuid = api.booked(slot, Some(&jane)).await;
    let after_booking: Value = search(&api, &query).await.json().await.unwrap();
    api.post_as(
        &format!("/v1/appointments/{id}/cancel"),
        Some(&jane),
        &serde_json::json!({"reason": "x"}),
    )
    .await;
    let after_cancel: Value = search(&api, &query).await.json().await.unwrap();

    assert!(slot_ids(&after_booking).is_empty());
    assert_eq!(slot_ids(&after_cancel), vec![slot.to_string()]);
}

#[tokio::test]
async fn answers_are_cached_until_something_changes() {
    let api = Api::spawn_with(&[("AVAILABILITY_CACHE_TTL_SECS", "600")]).await;
    let sw = api.consultant("Amelia Hart", &["SW"]).await;
    let slot = api.home_slot(&sw, in_hours(48)).await;
    let query = format!("type=HOME_MEASUREMENT&postcode=SW4%200AB&{}", window());
    let first: Value = search(&api, &query).await.json().await.unwrap();

    // A change behind the service's back is not seen while the entry lives.
    sqlx::query("UPDATE time_slots SET status = 'BLOCKED' WHERE id = $1")
        .bind(slot)
        .execute(&api.pool)
        .await
        .unwrap();
    let cached: Value = search(&api, &query).await.json().await.unwrap();

    assert_eq!(slot_ids(&first), vec![slot.to_string()]);
    assert_eq!(cached, first);
}

#[tokio::test]
async fn a_client_holding_the_current_answer_gets_a_304_until_a_booking_changes_it() {
    let api = Api::spawn_with(&[("AVAILABILITY_CACHE_TTL_SECS", "600")]).await;
    let sw = api.consultant("Amelia Hart", &["SW"]).await;
    let slot = api.home_slot(&sw, in_hours(48)).await;
    let path = format!(
        "/v1/availability?type=HOME_MEASUREMENT&postcode=SW4%200AB&{}",
        window()
    );
    let first = search(&api, path.trim_start_matches("/v1/availability?")).await;
    assert_eq!(first.status(), StatusCode::OK);
    let etag = first.headers()["etag"].clone();
    let revalidate = || {
        api.app
            .request(reqwest::Method::GET, &path)
            .header("if-none-match", etag.clone())
            .send()
    };
    assert_eq!(
        revalidate().await.unwrap().status(),
        StatusCode::NOT_MODIFIED
    );

    api.booked(slot, Some(&Api::customer())).await;
    let changed = revalidate().await.unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    assert_ne!(changed.headers()["etag"], etag);
    let body: Value = changed.json().await.unwrap();
    assert!(slot_ids(&body).is_empty());
}

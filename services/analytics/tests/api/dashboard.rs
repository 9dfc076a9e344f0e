use analytics_service::aggregates::recompute_dirty_days;
use analytics_service::store::{self, EventRow};
use chrono::Utc;
use reqwest::StatusCode;
use serde_json::json;
use service_kit::Role;
use test_support::TestUser;

use crate::helpers::{Api, body_of, event};

#[tokio::test]
async fn dashboard_aggregates_equal_a_direct_count_of_the_events() {
    let api = Api::spawn_with(&[]).await;
    let batch: Vec<_> = (0..6)
        .map(|i| {
            let mut e = event(if i % 2 == 0 {
                "page_viewed"
            } else {
                "product_viewed"
            });
            e["sessionId"] = json!(format!("s-{}", i % 3));
            e["anonymousId"] = json!(format!("a-{}", i % 3));
            e
        })
        .collect();
    assert_eq!(
        api.track(&json!({ "batch": batch })).await.0,
        StatusCode::ACCEPTED
    );
    let now = Utc::now();
    let mut server = vec![
        EventRow::server(
            "b1".into(),
            "booking_created",
            None,
            json!({"appointmentType": "HOME_MEASUREMENT"}),
            now,
        ),
        EventRow::server(
            "b2".into(),
            "booking_created",
            None,
            json!({"appointmentType": "SHOWROOM_VISIT"}),
            now,
        ),
        EventRow::server(
            "b3".into(),
            "booking_created",
            None,
            json!({"appointmentType": "HOME_MEASUREMENT"}),
            now,
        ),
        EventRow::server("r1".into(), "brochure_requested", None, json!({}), now),
    ];
    for (id, amount) in [("p1", 129_900), ("p2", 50_000)] {
        let mut row = EventRow::server(id.into(), "purchase", None, json!({}), now);
        row.revenue = Some(amount);
        row.currency = Some("GBP".into());
        server.push(row);
    }
    let mut conn = api.pool.acquire().await.unwrap();
    store::insert(&mut conn, &server).await.unwrap();
    drop(conn);
    api.wait_for("SELECT count(*) FROM tracking_events", 12)
        .await;
    assert!(recompute_dirty_days(&api.pool).await.unwrap() >= 1);

    let today = now.date_naive();
    let admin = TestUser::new(Role::Admin);
    let response = api
        .app
        .request_as(
            reqwest::Method::GET,
            &format!("/v1/analytics/dashboard?from={today}&to={today}"),
            &admin,
        )
        .send()
        .await
        .unwrap();
    let (status, board) = body_of(response).await;
    assert_eq!(status, StatusCode::OK, "{board}");
    let direct = |sql| api.count(sql);
    assert_eq!(
        board["totals"]["visitors"],
        direct("SELECT count(DISTINCT actor) FROM tracking_events WHERE source <> 'SERVER'").await
    );
    assert_eq!(
        board["totals"]["sessions"],
        direct("SELECT count(DISTINCT session_id) FROM tracking_events").await
    );
    assert_eq!(
        board["totals"]["pageViews"],
        direct("SELECT count(*) FROM tracking_events WHERE event = 'page_viewed'").await
    );
    assert_eq!(board["totals"]["bookings"], 3);
    assert_eq!(
        board["bookingsByType"],
        json!({"HOME_MEASUREMENT": 2, "SHOWROOM_VISIT": 1})
    );
    assert_eq!(board["totals"]["brochureRequests"], 1);
    assert_eq!(board["totals"]["orders"], 2);
    assert_eq!(
        board["revenue"],
        json!([{"amount": 179_900, "currency": "GBP"}])
    );
    assert_eq!(board["topProducts"], json!([{"key": "p-1", "count": 3}]));
    assert_eq!(board["topReferrers"][0]["key"], "www.google.com");
    assert_eq!(board["series"].as_array().unwrap().len(), 1);

    // Customers may not see it.
    let customer = TestUser::new(Role::Customer);
    let response = api
        .app
        .request_as(
            reqwest::Method::GET,
            &format!("/v1/analytics/dashboard?from={today}&to={today}"),
            &customer,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

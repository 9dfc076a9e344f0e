use analytics_service::aggregates::recompute_dirty_days;
use analytics_service::store::{self, EventRow};
use chrono::Utc;
use reqwest::StatusCode;
use serde_json::json;
use service_kit::Role;
use test_support::TestUser;

use crate::helpers::Api;

#[tokio::test]
async fn a_large_csv_export_streams_in_chunks_with_every_row() {
    let api = Api::spawn_with(&[("ANALYTICS_FLUSHER_ENABLED", "false")]).await;
    sqlx::query(
        "INSERT INTO tracking_events (message_id, event, source, properties, session_id, page_url, occurred_at)
         SELECT 'm' || g, CASE WHEN g % 2 = 0 THEN 'page_viewed' ELSE 'cta_clicked' END, 'CLIENT',
                jsonb_build_object('n', g, 'note', 'a,\"b\"'), 's' || (g % 100),
                'https://www.lomashwood.co.uk/p/' || g, now() - make_interval(secs => g % 3600)
         FROM generate_series(1, 30000) g",
    )
    .execute(&api.pool)
    .await
    .unwrap();
    // The rows span the last hour, which crosses midnight when the test runs just after it.
    let today = Utc::now().date_naive();
    let yesterday = today.pred_opt().unwrap();
    let admin = TestUser::new(Role::Admin);
    let response = api
        .app
        .request_as(
            reqwest::Method::GET,
            &format!(
                "/v1/analytics/exports/events.csv?from={yesterday}&to={today}&event=page_viewed"
            ),
            &admin,
        )
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
        response.content_length().is_none(),
        "streamed, not buffered"
    );
    let mut chunks = 0;
    let mut body = Vec::new();
    let mut response = response;
    while let Some(chunk) = response.chunk().await.unwrap() {
        chunks += 1;
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(body).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("occurredAt,event,messageId"));
    assert_eq!(lines.len(), 1 + 15_000);
    assert!(lines[1..].iter().all(|l| l.contains(",page_viewed,")));
    assert!(
        lines[1].contains("\"{\"\"n\"\""),
        "properties are quoted: {}",
        lines[1]
    );
    assert!(chunks > 1, "the body arrived in {chunks} chunk(s)");
}

/// Server-side rows on fixed days around a range, aggregated by the job, exported as summaries.
#[tokio::test]
async fn bookings_and_revenue_summaries_come_from_the_daily_aggregates() {
    let api = Api::spawn_with(&[("ANALYTICS_FLUSHER_ENABLED", "false")]).await;
    let today = Utc::now().date_naive();
    let day = |back: u64| today.checked_sub_days(chrono::Days::new(back)).unwrap();
    let (before, d1, d2) = (day(11), day(10), day(9));
    let at = |d: chrono::NaiveDate, hour: u32| d.and_hms_opt(hour, 30, 0).unwrap().and_utc();
    let mut rows = Vec::new();
    for (i, (d, kind)) in [
        (before, "HOME_MEASUREMENT"),
        (d1, "HOME_MEASUREMENT"),
        (d1, "SHOWROOM_VISIT"),
        (d1, "HOME_MEASUREMENT"),
        (d2, "SHOWROOM_VISIT"),
    ]
    .into_iter()
    .enumerate()
    {
        rows.push(EventRow::server(
            format!("b{i}"),
            "booking_created",
            None,
            json!({ "appointmentType": kind }),
            at(d, 9 + i as u32),
        ));
    }
    for (i, (d, amount, currency)) in [
        (before, 1, "GBP"),
        (d1, 12_000, "GBP"),
        (d1, 5_000, "EUR"),
        (d1, 3_000, "GBP"),
        (d2, 999, "GBP"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut row = EventRow::server(format!("p{i}"), "purchase", None, json!({}), at(d, 23));
        row.revenue = Some(amount);
        row.currency = Some(currency.to_owned());
        rows.push(row);
    }
    let mut conn = api.pool.acquire().await.unwrap();
    store::insert(&mut conn, &rows).await.unwrap();
    drop(conn);
    while recompute_dirty_days(&api.pool).await.unwrap() > 0 {}

    let admin = TestUser::new(Role::Admin);
    let csv = |path: String| {
        let request = api.app.request_as(reqwest::Method::GET, &path, &admin);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert!(
                response.headers()["content-disposition"]
                    .to_str()
                    .unwrap()
                    .contains(".csv")
            );
            response.text().await.unwrap()
        }
    };
    let bookings = csv(format!(
        "/v1/analytics/exports/bookings.csv?from={d1}&to={d2}"
    ))
    .await;
    assert_eq!(
        bookings,
        format!(
            "date,appointmentType,bookings\r\n{d1},HOME_MEASUREMENT,2\r\n\
             {d1},SHOWROOM_VISIT,1\r\n{d2},SHOWROOM_VISIT,1\r\n"
        )
    );
    let revenue = csv(format!(
        "/v1/analytics/exports/revenue.csv?from={d1}&to={d2}"
    ))
    .await;
    assert_eq!(
        revenue,
        format!(
            "date,currency,orders,revenueMinorUnits\r\n{d1},EUR,1,5000\r\n\
             {d1},GBP,2,15000\r\n{d2},GBP,1,999\r\n"
        )
    );
    // A range with nothing in it is just the header.
    let empty = csv(format!(
        "/v1/analytics/exports/revenue.csv?from={today}&to={today}"
    ))
    .await;
    assert_eq!(empty, "date,currency,orders,revenueMinorUnits\r\n");

    // Customers may not export; a reversed range is a 422.
    let customer = TestUser::new(Role::Customer);
    let response = api
        .app
        .request_as(
            reqwest::Method::GET,
            &format!("/v1/analytics/exports/bookings.csv?from={d1}&to={d2}"),
            &customer,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = api
        .app
        .request_as(
            reqwest::Method::GET,
            &format!("/v1/analytics/exports/revenue.csv?from={d2}&to={d1}"),
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

/// A client that accepts gzip gets the whole export compressed: the body ends cleanly (it used
/// to be cut off, because the compression layer polls a finished body once more).
#[tokio::test]
async fn a_gzip_export_ends_cleanly_and_decompresses_to_the_csv() {
    use std::io::Read;

    let api = Api::spawn_with(&[("ANALYTICS_FLUSHER_ENABLED", "false")]).await;
    let admin = TestUser::new(Role::Admin);
    let response = api
        .app
        .request_as(
            reqwest::Method::GET,
            "/v1/analytics/exports/bookings.csv?from=2000-01-01&to=2000-01-01",
            &admin,
        )
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let compressed = response.bytes().await.expect("the whole body arrives");
    let mut text = String::new();
    flate2::read::GzDecoder::new(compressed.as_ref())
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "date,appointmentType,bookings\r\n");
}

use chrono::Utc;
use reqwest::StatusCode;
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
            &format!("/v1/analytics/exports/events.csv?from={yesterday}&to={today}&event=page_viewed"),
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

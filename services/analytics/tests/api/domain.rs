use std::time::{Duration, Instant};

use chrono::Utc;
use service_kit::shared_types::appointment::{AppointmentType, BookingCreated};
use service_kit::shared_types::auth::{UserCreated, UserErasureRequested, UserRole};
use service_kit::shared_types::content::BlogPublished;
use service_kit::shared_types::order_payment::PaymentSucceeded;
use service_kit::shared_types::{DomainEvent, EventPayload};
use uuid::Uuid;

use crate::helpers::Api;

/// Publishes `event` to the test's exchange until the consumer has recorded it.
async fn deliver<P: EventPayload>(api: &Api, event: &DomainEvent<P>) {
    api.app.deliver(event).await;
}

#[tokio::test]
async fn domain_events_are_recorded_once_however_often_delivered() {
    let api = Api::spawn_with(&[]).await;
    let user = Uuid::now_v7();
    let registered = DomainEvent::new(
        "auth",
        UserCreated {
            user_id: user,
            email: "a@example.com".into(),
            first_name: "A".into(),
            last_name: "B".into(),
            phone: None,
            role: UserRole::Customer,
            marketing_opt_in: false,
            created_at: Utc::now(),
        },
    );
    let paid = DomainEvent::new(
        "order-payment",
        PaymentSucceeded {
            order_id: Uuid::now_v7(),
            payment_id: Uuid::now_v7(),
            user_id: Some(user),
            amount: 129_900,
            currency: "GBP".into(),
            invoice_number: None,
            provider_payment_id: "pi_1".into(),
            customer_email: None,
            paid_at: Utc::now(),
        },
    );
    let booked = DomainEvent::new(
        "appointment",
        BookingCreated {
            booking_id: Uuid::now_v7(),
            reference_code: "LW-1".into(),
            appointment_type: AppointmentType::HomeMeasurement,
            for_kitchen: true,
            for_bedroom: false,
            slot_id: Uuid::now_v7(),
            slot_starts_at: Utc::now(),
            slot_ends_at: Utc::now(),
            showroom_id: None,
            consultant_id: None,
            user_id: Some(user),
            customer_name: "A B".into(),
            customer_email: "a@example.com".into(),
            customer_phone: "+447700900000".into(),
            postcode: "SW1A 1AA".into(),
            created_at: Utc::now(),
        },
    );
    let post = Uuid::now_v7();
    let published = DomainEvent::new(
        "content",
        BlogPublished {
            post_id: post,
            slug: "oak-kitchens".into(),
            title: "Oak kitchens".into(),
            author_id: None,
            tags: vec![],
            published_at: Utc::now(),
        },
    );
    deliver(&api, &booked).await;
    deliver(&api, &published).await;
    deliver(&api, &registered).await;
    deliver(&api, &paid).await;
    deliver(&api, &paid).await;

    assert_eq!(
        api.count("SELECT count(*) FROM tracking_events WHERE event = 'user_registered' AND source = 'SERVER'").await,
        1
    );
    let (n, revenue): (i64, Option<i64>) = sqlx::query_as(
        "SELECT count(*), sum(revenue)::bigint FROM tracking_events WHERE event = 'purchase'",
    )
    .fetch_one(&api.pool)
    .await
    .unwrap();
    assert_eq!((n, revenue), (1, Some(129_900)));
    let booking_type: String = sqlx::query_scalar(
        "SELECT properties->>'appointmentType' FROM tracking_events WHERE event = 'booking_created' AND user_id = $1",
    )
    .bind(user)
    .fetch_one(&api.pool)
    .await
    .unwrap();
    assert_eq!(booking_type, "HOME_MEASUREMENT");
    let stale: Option<Uuid> =
        sqlx::query_scalar("SELECT last_post FROM sitemap_state WHERE stale_since IS NOT NULL")
            .fetch_one(&api.pool)
            .await
            .unwrap();
    assert_eq!(
        stale,
        Some(post),
        "a published post makes the sitemap stale"
    );

    let erased = DomainEvent::new(
        "auth",
        UserErasureRequested {
            user_id: user,
            requested_by: None,
            requested_at: Utc::now(),
        },
    );
    deliver(&api, &erased).await;
    let linked: i64 = sqlx::query_scalar("SELECT count(*) FROM tracking_events WHERE user_id = $1")
        .bind(user)
        .fetch_one(&api.pool)
        .await
        .unwrap();
    assert_eq!(linked, 0, "erasure unlinks every event from the user");
    assert_eq!(api.count("SELECT count(*) FROM tracking_events").await, 4);
}

/// What the stand-in for content's `/internal/sitemap/refresh` saw.
#[derive(Default)]
struct FakeContent {
    calls: std::sync::atomic::AtomicUsize,
    /// Calls answered 503 before the first 200.
    failures: usize,
    /// Calls that carried no internal token.
    anonymous: std::sync::atomic::AtomicUsize,
}

/// Serves `POST /internal/sitemap/refresh` on 127.0.0.1:0 as content would (503 for the first
/// `failures` calls); returns its base URL.
async fn fake_content(fake: std::sync::Arc<FakeContent>) -> String {
    use std::sync::atomic::Ordering;

    use axum::http::{HeaderMap, StatusCode};
    let app = axum::Router::new().route(
        "/internal/sitemap/refresh",
        axum::routing::post(move |headers: HeaderMap| {
            let fake = fake.clone();
            async move {
                if !headers.contains_key("x-internal-token") {
                    fake.anonymous.fetch_add(1, Ordering::SeqCst);
                }
                let n = fake.calls.fetch_add(1, Ordering::SeqCst);
                if n < fake.failures {
                    (StatusCode::SERVICE_UNAVAILABLE, "{}".to_owned())
                } else {
                    (
                        StatusCode::OK,
                        r#"{"cacheEntryDropped":true,"cdn":"LOGGED"}"#.to_owned(),
                    )
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_published_post_asks_content_to_refresh_the_sitemap_retrying_after_a_failure() {
    use std::sync::atomic::Ordering;

    let fake = std::sync::Arc::new(FakeContent {
        failures: 1,
        ..FakeContent::default()
    });
    let url = fake_content(fake.clone()).await;
    let api = Api::spawn_with(&[
        ("CONTENT_SERVICE_URL", url.as_str()),
        ("ANALYTICS_SITEMAP_INTERVAL_MS", "100"),
    ])
    .await;
    // Nothing published yet: content is not called.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.calls.load(Ordering::SeqCst), 0);

    let post = Uuid::now_v7();
    let published = DomainEvent::new(
        "content",
        BlogPublished {
            post_id: post,
            slug: "walnut-kitchens".into(),
            title: "Walnut kitchens".into(),
            author_id: None,
            tags: vec![],
            published_at: Utc::now(),
        },
    );
    deliver(&api, &published).await;

    // The first call fails (503): the failure is recorded and the sitemap stays stale; the retry
    // after the backoff succeeds and clears it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (stale, refreshed, attempts): (bool, bool, i32) = sqlx::query_as(
            "SELECT stale_since IS NOT NULL, refreshed_at IS NOT NULL, attempts FROM sitemap_state",
        )
        .fetch_one(&api.pool)
        .await
        .unwrap();
        if !stale {
            assert!(refreshed);
            assert_eq!(attempts, 0, "a success resets the attempts");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sitemap stayed stale after {} call(s)",
            fake.calls.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        2,
        "one failure, one success"
    );
    assert_eq!(
        fake.anonymous.load(Ordering::SeqCst),
        0,
        "calls carry an internal token"
    );
    let last_post: Option<Uuid> = sqlx::query_scalar("SELECT last_post FROM sitemap_state")
        .fetch_one(&api.pool)
        .await
        .unwrap();
    assert_eq!(last_post, Some(post));

    // Fresh: no further calls.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
}

use std::time::{Duration, Instant};

use chrono::Utc;
use service_kit::event_bus::{self, OutgoingMessage};
use service_kit::shared_types::appointment::{AppointmentType, BookingCreated};
use service_kit::shared_types::auth::{UserCreated, UserErasureRequested, UserRole};
use service_kit::shared_types::content::BlogPublished;
use service_kit::shared_types::order_payment::PaymentSucceeded;
use service_kit::shared_types::{DomainEvent, EventPayload};
use uuid::Uuid;

use crate::helpers::Api;

/// Publishes `event` to the test's exchange until the consumer has recorded it.
async fn deliver<P: EventPayload>(api: &Api, event: &DomainEvent<P>) {
    let bus = event_bus::connect(api.app.bus_config.clone())
        .await
        .unwrap();
    let message = OutgoingMessage {
        event_id: event.id,
        topic: event.topic.clone(),
        body: serde_json::to_vec(event).unwrap(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let outcome = bus.publish_batch(std::slice::from_ref(&message)).await;
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        for _ in 0..20 {
            let done: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM processed_events WHERE event_id = $1")
                    .bind(event.id)
                    .fetch_optional(&api.pool)
                    .await
                    .unwrap();
            if done.is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(Instant::now() < deadline, "never processed {}", event.topic);
    }
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

//! Stock levels, adjustments, reservations (the race for the last unit), commit/release by HTTP
//! and by events, and the expiry sweep.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use service_kit::shared_types::DomainEvent;
use service_kit::shared_types::order_payment::{CancelledBy, OrderCancelled, PaymentSucceeded};
use uuid::Uuid;

use crate::helpers::{Api, body, fields, problem_code};

async fn stocked(api: &Api, title: &str, units: i32) -> String {
    let product = api.product(json!({"title": title})).await;
    let id = product["id"].as_str().unwrap().to_owned();
    adjust(api, &id, units).await;
    id
}

async fn adjust(api: &Api, product: &str, delta: i32) -> Value {
    let (status, item) = api
        .admin_post(
            &format!("/v1/products/{product}/inventory/adjustments"),
            &json!({"delta": delta, "reason": "RESTOCK", "lowStockThreshold": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{item}");
    item
}

async fn level(api: &Api, product: &str) -> (i64, i64) {
    let (_, items) = body(
        api.as_admin(Method::GET, &format!("/v1/products/{product}/inventory"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    (
        items[0]["onHand"].as_i64().unwrap(),
        items[0]["reserved"].as_i64().unwrap(),
    )
}

fn reservation(order: Uuid, lines: &[(&str, i32)]) -> Value {
    json!({
        "orderId": order,
        "items": lines.iter().map(|(p, q)| json!({"productId": p, "quantity": q})).collect::<Vec<_>>(),
    })
}

#[tokio::test]
async fn many_buyers_racing_for_the_last_unit_leave_exactly_one_winner() {
    let api = Api::spawn().await;
    let product = stocked(&api, "Last Worktop", 0).await;
    let contenders = 8;
    for round in 0..25 {
        adjust(&api, &product, 1).await;
        let attempts = (0..contenders).map(|_| {
            let request = api
                .as_service(Method::POST, "/internal/inventory/reservations")
                .json(&reservation(Uuid::now_v7(), &[(&product, 1)]));
            async move { request.send().await.unwrap().status() }
        });
        let statuses = futures::future::join_all(attempts).await;
        let won = statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count();
        let lost = statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count();
        assert_eq!(
            (won, lost),
            (1, contenders - 1),
            "round {round}: {statuses:?}"
        );
        assert_eq!(level(&api, &product).await, (round + 1, round + 1));
    }
}

#[tokio::test]
async fn reservations_are_all_or_nothing_and_commit_and_release_are_idempotent() {
    let api = Api::spawn().await;
    let plenty = stocked(&api, "Plenty", 5).await;
    let scarce = stocked(&api, "Scarce", 1).await;
    let made_to_order = api.product(json!({"title": "Bespoke"})).await;
    let bespoke = made_to_order["id"].as_str().unwrap();

    let order = Uuid::now_v7();
    let (status, problem) = api
        .service_post(
            "/internal/inventory/reservations",
            &reservation(order, &[(&plenty, 2), (&scarce, 2)]),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem_code(&problem), "insufficient-stock");
    assert_eq!(problem["items"][0]["productId"], scarce.as_str());
    assert_eq!(problem["items"][0]["available"], 1);
    assert_eq!(level(&api, &plenty).await, (5, 0), "nothing was reserved");

    let request = reservation(order, &[(&plenty, 2), (&scarce, 1), (bespoke, 1)]);
    let (status, held) = api
        .service_post("/internal/inventory/reservations", &request)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    assert_eq!(held["status"], "ACTIVE");
    assert_eq!(
        held["items"].as_array().unwrap().len(),
        2,
        "made to order is not held"
    );
    let (status, again) = api
        .service_post("/internal/inventory/reservations", &request)
        .await;
    assert_eq!(status, StatusCode::OK, "a retry gets the same reservation");
    assert_eq!(again["id"], held["id"]);
    assert_eq!(level(&api, &plenty).await, (5, 2));

    let commit = format!("/internal/inventory/reservations/{order}/commit");
    for _ in 0..2 {
        let (status, committed) = api.service_post(&commit, &json!({})).await;
        assert_eq!(status, StatusCode::OK, "{committed}");
        assert_eq!(committed["status"], "COMMITTED");
    }
    assert_eq!(level(&api, &plenty).await, (3, 0));
    assert_eq!(level(&api, &scarce).await, (0, 0));
    let (status, _) = api
        .service_post(
            &format!("/internal/inventory/reservations/{order}/release"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "a sale is not released");

    let other = Uuid::now_v7();
    api.service_post(
        "/internal/inventory/reservations",
        &reservation(other, &[(&plenty, 3)]),
    )
    .await;
    for _ in 0..2 {
        let (status, released) = api
            .service_post(
                &format!("/internal/inventory/reservations/{other}/release"),
                &json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(released["status"], "RELEASED");
    }
    assert_eq!(level(&api, &plenty).await, (3, 0));

    // Every change is in the ledger and the outbox; the last unit sold is a low-stock signal.
    let updates = api.events("inventory.updated").await;
    let reasons: Vec<&str> = updates
        .iter()
        .map(|e| e["payload"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "RESTOCK",
            "RESTOCK",
            "RESERVATION",
            "RESERVATION",
            "SALE",
            "SALE",
            "RESERVATION",
            "RESERVATION_RELEASED"
        ]
    );
    assert!(
        updates
            .iter()
            .any(|e| e["payload"]["lowStock"] == true && e["payload"]["reason"] == "SALE")
    );
    assert_eq!(api.scalar("SELECT count(*) FROM stock_movements").await, 8);

    let (status, problem) = api
        .service_post(
            "/internal/inventory/reservations",
            &json!({"orderId": Uuid::now_v7(), "items": []}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&problem), ["items"]);
    let as_admin = api
        .as_admin(Method::POST, "/internal/inventory/reservations")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(as_admin.status(), StatusCode::FORBIDDEN);
    let (status, problem) = api
        .admin_post(
            &format!("/v1/products/{plenty}/inventory/adjustments"),
            &json!({"delta": -10, "reason": "ADJUSTMENT"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
}

#[tokio::test]
async fn expired_reservations_are_released_by_the_sweep() {
    let api = Api::spawn().await;
    let product = stocked(&api, "Sweepable", 2).await;
    let order = Uuid::now_v7();
    api.service_post(
        "/internal/inventory/reservations",
        &reservation(order, &[(&product, 2)]),
    )
    .await;
    sqlx::query("UPDATE reservations SET expires_at = now() - interval '1 second'")
        .execute(&api.pool)
        .await
        .unwrap();

    assert_eq!(
        product_service::inventory::release_expired(&api.pool)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        product_service::inventory::release_expired(&api.pool)
            .await
            .unwrap(),
        0
    );
    assert_eq!(level(&api, &product).await, (2, 0));
    let (status, _) = api
        .service_post(
            &format!("/internal/inventory/reservations/{order}/commit"),
            &json!({}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "an expired hold cannot be sold"
    );
}

/// Publishes `event` to the test's exchange until the consumer has recorded it (the consumer
/// declares its queue when it starts, so the first publish may find no queue yet).
async fn deliver<P: service_kit::shared_types::EventPayload>(api: &Api, event: &DomainEvent<P>) {
    api.app.deliver(event).await;
}

#[tokio::test]
async fn payment_and_cancellation_events_commit_and_release_once_however_often_delivered() {
    let api = Api::spawn().await;
    let product = stocked(&api, "Evented", 5).await;
    let (paid, cancelled) = (Uuid::now_v7(), Uuid::now_v7());
    for order in [paid, cancelled] {
        let (status, _) = api
            .service_post(
                "/internal/inventory/reservations",
                &reservation(order, &[(&product, 2)]),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }

    let payment = |order: Uuid| {
        DomainEvent::new(
            "order-payment",
            PaymentSucceeded {
                order_id: order,
                payment_id: Uuid::now_v7(),
                user_id: None,
                amount: 1000,
                currency: "GBP".into(),
                invoice_number: None,
                provider_payment_id: "pi_test".into(),
                customer_email: None,
                paid_at: chrono::Utc::now(),
            },
        )
    };
    let first = payment(paid);
    deliver(&api, &first).await;
    deliver(&api, &first).await; // a redelivery: deduplicated by event id
    deliver(&api, &payment(paid)).await; // a second event for the same order: no-op by state
    assert_eq!(level(&api, &product).await, (3, 2));

    let cancellation = DomainEvent::new(
        "order-payment",
        OrderCancelled {
            order_id: cancelled,
            order_number: "LW-2026-000001".into(),
            user_id: None,
            cancelled_by: CancelledBy::Customer,
            reason: None,
            items: vec![],
            cancelled_at: chrono::Utc::now(),
        },
    );
    deliver(&api, &cancellation).await;
    let mut again = cancellation.clone();
    again.id = Uuid::now_v7();
    deliver(&api, &again).await;
    assert_eq!(level(&api, &product).await, (3, 0));
    assert_eq!(
        api.scalar(
            "SELECT count(*) FROM stock_movements WHERE reason IN ('SALE', 'RESERVATION_RELEASED')"
        )
        .await,
        2
    );
    assert_eq!(api.scalar("SELECT count(*) FROM processed_events").await, 4);
}

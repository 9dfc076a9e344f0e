//! Placing orders: re-pricing, reservations, snapshots, idempotency, ownership, the lifecycle,
//! expiry and erasure.

use std::time::Duration;

use chrono::Utc;
use order_payment_service::orders::{erasure, expiry};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Shop, address, admin, answer, code, customer, fields, order_body};

#[tokio::test]
async fn placing_an_order_reprices_reserves_snapshots_and_announces_it() {
    let shop = Shop::spawn().await;
    let user = customer();
    let unit = shop.product(30_000, Some(5)).await;
    let made_to_order = shop.product(5_000, None).await;
    let mut body = order_body(json!([
        {"productId": unit, "quantity": 2},
        {"productId": made_to_order, "quantity": 1}
    ]));
    // A client-sent price is not part of the API: unknown fields are refused.
    body["items"][0]["unitPrice"] = json!(1);
    let refused = shop.place(&user, "k-price", &body).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    body["items"][0]
        .as_object_mut()
        .unwrap()
        .remove("unitPrice");

    let placed = shop.place(&user, "k-1", &body).await;

    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    let order = &placed.body;
    let number = order["orderNumber"].as_str().unwrap();
    let (prefix, rest) = number.split_at(4);
    assert_eq!(prefix, "ORD-");
    assert_eq!(&rest[..8], Utc::now().format("%Y%m%d").to_string());
    assert_eq!(rest.len(), 15, "{number}");
    assert_eq!(order["status"], "PENDING");
    assert_eq!(order["paymentStatus"], "UNPAID");
    assert_eq!(order["subtotal"], 65_000);
    assert_eq!(order["shipping"], 0, "over £500 ships free");
    assert_eq!(order["total"], 65_000);
    assert_eq!(order["tax"], 10_833);
    assert_eq!(
        order["shippingAddress"]["postcode"], "SW1A 1AA",
        "postcodes are normalised"
    );
    assert_eq!(order["billingAddress"], order["shippingAddress"]);
    assert_eq!(order["items"][0]["unitPrice"], 30_000);
    assert!(
        order["items"][0]["sku"]
            .as_str()
            .unwrap()
            .starts_with("SKU-")
    );
    assert!(
        order["items"][0]["imageUrl"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    assert_eq!(order["history"][0]["toStatus"], "PENDING");
    assert!(order["reservationExpiresAt"].is_string());
    let id: Uuid = order["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(shop.reserved(unit).await, 2);
    assert_eq!(shop.reservation_status(id).await.as_deref(), Some("ACTIVE"));
    let created = shop.events("order.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["payload"]["orderNumber"], number);
    assert_eq!(created[0]["payload"]["customerEmail"], "ada@example.com");
    assert_eq!(
        created[0]["payload"]["lines"].as_array().map(Vec::len),
        Some(2)
    );

    // The snapshot does not follow later catalogue changes.
    shop.reprice(unit, 99_900).await;
    let later = shop.get(Some(&user), &format!("/v1/orders/{id}")).await;
    assert_eq!(later.body["items"][0]["unitPrice"], 30_000);
    assert_eq!(later.body["total"], 65_000);
}

#[tokio::test]
async fn an_order_from_the_cart_empties_it_and_uses_its_coupon_once() {
    let shop = Shop::spawn().await;
    let user = customer();
    let product = shop.product(20_000, Some(10)).await;
    let created = shop
        .post(
            Some(&admin()),
            "/v1/coupons",
            &json!({"code": "ONCE", "kind": "FIXED", "value": 1000, "perCustomerLimit": 1}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    shop.post(
        Some(&user),
        "/v1/cart/items",
        &json!({"productId": product, "quantity": 1}),
    )
    .await;
    let mut body = order_body(Value::Null);
    body.as_object_mut().unwrap().remove("items");
    body["couponCode"] = json!("once");

    let placed = shop.place(&user, "cart-1", &body).await;

    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    assert_eq!(placed.body["discount"], 1_000);
    assert_eq!(placed.body["couponCode"], "ONCE");
    assert_eq!(
        shop.get(Some(&user), "/v1/cart").await.body["items"],
        json!([])
    );
    shop.post(
        Some(&user),
        "/v1/cart/items",
        &json!({"productId": product, "quantity": 1}),
    )
    .await;
    let again = shop.place(&user, "cart-2", &body).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&again.body), ["couponCode"]);

    // Cancelling gives the use back.
    let id = placed.body["id"].as_str().unwrap();
    let cancelled = shop
        .post(
            Some(&user),
            &format!("/v1/orders/{id}/cancel"),
            &json!({"reason": "changed my mind"}),
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    let third = shop.place(&user, "cart-3", &body).await;
    assert_eq!(third.status, StatusCode::CREATED, "{}", third.text);
}

#[tokio::test]
async fn a_stock_shortage_is_a_409_listing_it_and_leaves_no_order_and_no_reservation() {
    let shop = Shop::spawn().await;
    let user = customer();
    let plenty = shop.product(1_000, Some(10)).await;
    let scarce = shop.product(1_000, Some(1)).await;

    let short = shop
        .place(
            &user,
            "short",
            &order_body(json!([
                {"productId": plenty, "quantity": 3},
                {"productId": scarce, "quantity": 2}
            ])),
        )
        .await;

    assert_eq!(short.status, StatusCode::CONFLICT, "{}", short.text);
    assert_eq!(code(&short.body), "insufficient-stock");
    let items = short.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["productId"], scarce.to_string());
    assert_eq!(items[0]["requested"], 2);
    assert_eq!(items[0]["available"], 1);
    assert_eq!(shop.count("orders").await, 0);
    assert_eq!(shop.count("outbox").await, 0);
    assert_eq!(shop.reserved(plenty).await, 0);
    assert_eq!(shop.reserved(scarce).await, 0);
}

#[tokio::test]
async fn a_product_not_for_sale_is_a_409_before_any_stock_is_held() {
    let shop = Shop::spawn().await;
    let user = customer();
    let fine = shop.product(1_000, Some(10)).await;
    let draft = shop.product(1_000, Some(10)).await;
    sqlx::query("UPDATE products SET status = 'DRAFT' WHERE id = $1")
        .bind(draft)
        .execute(&shop.catalogue)
        .await
        .unwrap();

    let refused = shop
        .place(
            &user,
            "draft",
            &order_body(
                json!([{"productId": fine, "quantity": 1}, {"productId": draft, "quantity": 1}]),
            ),
        )
        .await;

    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.body["items"][0]["reason"], "NOT_FOR_SALE");
    assert_eq!(shop.reserved(fine).await, 0);
    assert_eq!(shop.count("orders").await, 0);
}

#[tokio::test]
async fn bad_input_is_a_422_naming_the_field_and_changes_nothing() {
    let shop = Shop::spawn().await;
    let user = customer();
    let product = shop.product(1_000, Some(10)).await;
    let items = json!([{"productId": product, "quantity": 1}]);
    let with = |field: &str, value: Value| {
        let mut body = order_body(items.clone());
        body[field] = value;
        body
    };
    let mut bad_postcode = address();
    bad_postcode["postcode"] = json!("NOT A CODE");
    let mut blank_name = address();
    blank_name["fullName"] = json!("   ");

    for (i, (body, field)) in [
        (with("email", json!("not-an-email")), "email"),
        (
            with("shippingAddress", bad_postcode.clone()),
            "shippingAddress.postcode",
        ),
        (
            with("billingAddress", bad_postcode),
            "billingAddress.postcode",
        ),
        (
            with("shippingAddress", blank_name),
            "shippingAddress.fullName",
        ),
        (with("shippingMethod", json!("PIGEON")), "shippingMethod"),
        (with("couponCode", json!("NOSUCH")), "couponCode"),
        (
            with("items", json!([{"productId": product, "quantity": 0}])),
            "items[0].quantity",
        ),
        (with("items", json!([])), "items"),
    ]
    .into_iter()
    .enumerate()
    {
        let answer = shop.place(&user, &format!("bad-{i}"), &body).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {}",
            answer.text
        );
        assert_eq!(fields(&answer.body), [field]);
    }
    let empty_cart = {
        let mut body = order_body(Value::Null);
        body.as_object_mut().unwrap().remove("items");
        shop.place(&user, "empty-cart", &body).await
    };
    assert_eq!(fields(&empty_cart.body), ["items"]);
    let no_key = answer(
        shop.request(Some(&user), Method::POST, "/v1/orders")
            .json(&order_body(items.clone())),
    )
    .await;
    assert_eq!(no_key.status, StatusCode::BAD_REQUEST);
    let anonymous = answer(
        shop.request(None, Method::POST, "/v1/orders")
            .header("idempotency-key", "anon")
            .json(&order_body(items)),
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(shop.count("orders").await, 0);
    assert_eq!(shop.reserved(product).await, 0);
}

#[tokio::test]
async fn the_same_key_replays_the_same_answer_and_another_body_is_a_422() {
    let shop = Shop::spawn().await;
    let user = customer();
    let product = shop.product(1_000, Some(10)).await;
    let body = order_body(json!([{"productId": product, "quantity": 1}]));

    let first = shop.place(&user, "same-key", &body).await;
    // Same JSON with its keys in another order is the same request.
    let reordered: Value = serde_json::from_str(&serde_json::to_string(&body).unwrap()).unwrap();
    let replay = shop.place(&user, "same-key", &reordered).await;
    let other = shop
        .place(
            &user,
            "same-key",
            &order_body(json!([{"productId": product, "quantity": 2}])),
        )
        .await;
    let someone_else = shop.place(&customer(), "same-key", &body).await;

    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.text, first.text, "a replay is byte-identical");
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&other.body), "idempotency-key-reused");
    assert_eq!(
        someone_else.status,
        StatusCode::CREATED,
        "keys are per caller"
    );
    assert_eq!(shop.count("orders").await, 2);
    assert_eq!(shop.reserved(product).await, 2);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_place_one_order() {
    let shop = Shop::spawn().await;
    let user = customer();
    let product = shop.product(1_000, Some(100)).await;
    let body = order_body(json!([{"productId": product, "quantity": 1}]));

    let answers =
        futures::future::join_all((0..10).map(|_| shop.place(&user, "race", &body))).await;

    let created: Vec<_> = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .collect();
    assert!(!created.is_empty());
    for answer in &answers {
        assert!(
            answer.status == StatusCode::CREATED
                || (answer.status == StatusCode::CONFLICT
                    && code(&answer.body) == "idempotency-key-in-flight"),
            "{}: {}",
            answer.status,
            answer.text
        );
    }
    assert!(created.iter().all(|a| a.text == created[0].text));
    assert_eq!(shop.count("orders").await, 1);
    assert_eq!(shop.reserved(product).await, 1);
}

#[tokio::test]
async fn customers_see_only_their_own_orders() {
    let shop = Shop::spawn().await;
    let (owner, stranger) = (customer(), customer());
    let product = shop.product(1_000, Some(10)).await;
    let mine = shop
        .placed(&owner, json!([{"productId": product, "quantity": 1}]))
        .await;
    shop.placed(&owner, json!([{"productId": product, "quantity": 1}]))
        .await;
    shop.placed(&stranger, json!([{"productId": product, "quantity": 1}]))
        .await;
    let id = mine["id"].as_str().unwrap();

    let theirs = shop.get(Some(&stranger), &format!("/v1/orders/{id}")).await;
    let cancel = shop
        .post(
            Some(&stranger),
            &format!("/v1/orders/{id}/cancel"),
            &json!({}),
        )
        .await;
    let by_admin = shop.get(Some(&admin()), &format!("/v1/orders/{id}")).await;
    let first_page = shop.get(Some(&owner), "/v1/orders?limit=1").await;
    let cursor = first_page.body["nextCursor"].as_str().unwrap().to_owned();
    let second_page = shop
        .get(Some(&owner), &format!("/v1/orders?limit=1&cursor={cursor}"))
        .await;

    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(cancel.status, StatusCode::NOT_FOUND);
    assert_eq!(by_admin.status, StatusCode::OK);
    assert_eq!(first_page.body["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(second_page.body["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(second_page.body["hasNextPage"], false);
    assert_ne!(
        first_page.body["data"][0]["id"],
        second_page.body["data"][0]["id"]
    );
    assert_eq!(
        shop.get(Some(&owner), "/v1/orders").await.body["data"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let bad_cursor = shop.get(Some(&owner), "/v1/orders?cursor=nonsense!").await;
    assert_eq!(bad_cursor.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn cancelling_releases_the_stock_through_order_cancelled() {
    let shop = Shop::spawn().await;
    let user = customer();
    let product = shop.product(1_000, Some(10)).await;
    let order = shop
        .placed(&user, json!([{"productId": product, "quantity": 3}]))
        .await;
    let id: Uuid = order["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(shop.reserved(product).await, 3);

    let cancelled = answer(shop.request(
        Some(&user),
        Method::POST,
        &format!("/v1/orders/{id}/cancel"),
    ))
    .await;

    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(cancelled.body["status"], "CANCELLED");
    let last = cancelled.body["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["fromStatus"].clone(), last["actorRole"].clone()),
        (json!("PENDING"), json!("CUSTOMER"))
    );
    let events = shop.events("order.cancelled").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["payload"]["cancelledBy"], "CUSTOMER");
    assert_eq!(
        events[0]["payload"]["items"],
        json!([{"productId": product, "quantity": 3}])
    );
    // Product consumes the event and gives the units back.
    wait_for(|| async { shop.reservation_status(id).await.as_deref() == Some("RELEASED") }).await;
    assert_eq!(shop.reserved(product).await, 0);
    let again = answer(shop.request(
        Some(&user),
        Method::POST,
        &format!("/v1/orders/{id}/cancel"),
    ))
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(code(&again.body), "illegal-transition");
}

/// Polls `check` until it holds (the broker delivers asynchronously); fails after 20 s.
async fn wait_for<F, Fut>(check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the condition never held");
}

#[tokio::test]
async fn an_unpaid_order_whose_reservation_expired_is_cancelled_and_announced() {
    let shop = Shop::spawn().await;
    let user = customer();
    let product = shop.product(1_000, Some(10)).await;
    let expiring = shop
        .placed(&user, json!([{"productId": product, "quantity": 2}]))
        .await;
    let fresh = shop
        .placed(&user, json!([{"productId": product, "quantity": 1}]))
        .await;
    let id: Uuid = expiring["id"].as_str().unwrap().parse().unwrap();
    sqlx::query(
        "UPDATE orders SET reservation_expires_at = now() - interval '1 minute' WHERE id = $1",
    )
    .bind(id)
    .execute(&shop.db)
    .await
    .unwrap();

    let cancelled = expiry::cancel_expired(&shop.db, Utc::now()).await.unwrap();

    assert_eq!(cancelled, 1);
    let order = shop.get(Some(&user), &format!("/v1/orders/{id}")).await;
    assert_eq!(order.body["status"], "CANCELLED");
    assert_eq!(order.body["cancelReason"], expiry::EXPIRY_REASON);
    let last = order.body["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["actorRole"], "SYSTEM");
    assert!(last["actorId"].is_null());
    let events = shop.events("order.cancelled").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["payload"]["orderId"], id.to_string());
    assert_eq!(events[0]["payload"]["cancelledBy"], "SYSTEM");
    let untouched = shop
        .get(
            Some(&user),
            &format!("/v1/orders/{}", fresh["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(untouched.body["status"], "PENDING");
    wait_for(|| async { shop.reserved(product).await == 1 }).await;
    // A second run finds nothing more to do.
    assert_eq!(
        expiry::cancel_expired(&shop.db, Utc::now()).await.unwrap(),
        0
    );
}

#[tokio::test]
async fn erasure_removes_personal_data_and_keeps_the_financial_record() {
    let shop = Shop::spawn().await;
    let user = customer();
    let product = shop.product(1_000, Some(10)).await;
    let order = shop
        .placed(&user, json!([{"productId": product, "quantity": 1}]))
        .await;
    shop.post(
        Some(&user),
        "/v1/cart/items",
        &json!({"productId": product, "quantity": 1}),
    )
    .await;
    let id = order["id"].as_str().unwrap();

    let mut conn = shop.db.acquire().await.unwrap();
    erasure::erase(&mut conn, user.id).await.unwrap();
    erasure::erase(&mut conn, user.id).await.unwrap();

    let after = shop.get(Some(&admin()), &format!("/v1/orders/{id}")).await;
    assert!(after.body["email"].is_null());
    assert_eq!(after.body["shippingAddress"]["fullName"], erasure::ERASED);
    assert_eq!(after.body["shippingAddress"]["postcode"], erasure::ERASED);
    assert_eq!(after.body["shippingAddress"]["country"], "GB");
    assert_eq!(after.body["total"], order["total"]);
    assert_eq!(after.body["orderNumber"], order["orderNumber"]);
    assert_eq!(after.body["items"], order["items"]);
    assert_eq!(shop.count("carts").await, 0);
    assert_eq!(shop.count("idempotency_records").await, 0);
}

#[tokio::test]
async fn customers_racing_for_the_last_units_get_exactly_what_is_there() {
    let shop = Shop::spawn().await;
    let product = shop.product(1_000, Some(3)).await;
    let customers: Vec<_> = (0..8).map(|_| customer()).collect();
    let body = order_body(json!([{"productId": product, "quantity": 1}]));

    let answers = futures::future::join_all(
        customers
            .iter()
            .map(|user| shop.place(user, "last-units", &body)),
    )
    .await;

    let placed = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    let short = answers
        .iter()
        .filter(|a| a.status == StatusCode::CONFLICT && code(&a.body) == "insufficient-stock")
        .count();
    assert_eq!((placed, short), (3, 5));
    assert_eq!(shop.count("orders").await, 3);
    assert_eq!(shop.reserved(product).await, 3);
}

#[test]
fn the_openapi_document_lists_every_cart_checkout_and_order_route() {
    let routes = service_kit::service::route_list::<order_payment_service::OrderPaymentService>();
    for route in [
        "GET /v1/cart",
        "DELETE /v1/cart",
        "POST /v1/cart/items",
        "PATCH /v1/cart/items/{id}",
        "DELETE /v1/cart/items/{id}",
        "POST /v1/cart/merge",
        "POST /v1/checkout/summary",
        "POST /v1/coupons/validate",
        "GET /v1/coupons",
        "POST /v1/coupons",
        "GET /v1/coupons/{id}",
        "PATCH /v1/coupons/{id}",
        "DELETE /v1/coupons/{id}",
        "GET /v1/tax-rules",
        "POST /v1/tax-rules",
        "PATCH /v1/tax-rules/{id}",
        "DELETE /v1/tax-rules/{id}",
        "GET /v1/shipping/methods",
        "GET /v1/shipping/rates",
        "POST /v1/shipping/rates",
        "PATCH /v1/shipping/rates/{id}",
        "DELETE /v1/shipping/rates/{id}",
        "GET /v1/orders",
        "POST /v1/orders",
        "GET /v1/orders/{id}",
        "POST /v1/orders/{id}/cancel",
        "GET /v1/admin/orders",
        "GET /v1/admin/orders/export",
        "GET /v1/admin/orders/revenue",
        "GET /v1/admin/orders/{id}",
        "POST /v1/admin/orders/{id}/transitions",
        "PUT /v1/admin/orders/{id}/tracking",
        "POST /v1/admin/orders/{id}/notes",
    ] {
        assert!(
            routes.iter().any(|r| r == route),
            "{route} is not in the OpenAPI document"
        );
    }
}

#[tokio::test]
async fn cancelling_a_paid_order_refunds_it_in_full() {
    let stripe = stripe_fake::FakeStripe::start().await.unwrap();
    let base = stripe.base_url();
    let shop = Shop::spawn_with(&[
        ("STRIPE_API_BASE", base.as_str()),
        ("STRIPE_SECRET_KEY", "sk_test_part_a"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_test_part_a"),
    ])
    .await;
    let user = customer();
    let product = shop.product(25_000, Some(5)).await;
    let order = shop
        .placed(&user, json!([{"productId": product, "quantity": 1}]))
        .await;
    let id: Uuid = order["id"].as_str().unwrap().parse().unwrap();
    let intent = answer(
        shop.request(Some(&user), Method::POST, "/v1/payments/create-intent")
            .header("idempotency-key", "pay-1")
            .json(&json!({"orderId": id})),
    )
    .await;
    assert_eq!(intent.status, StatusCode::CREATED, "{}", intent.text);
    let intent_id = intent.body["paymentIntentId"].as_str().unwrap().to_owned();
    stripe.succeed_intent(&intent_id).unwrap();
    let charge = stripe.charge_of(&intent_id).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // What part B's `payment_intent.succeeded` handling records (tested there end to end).
    sqlx::query(
        "UPDATE payments SET status = 'SUCCEEDED', charge_id = $2, succeeded_at = now()
         WHERE payment_intent_id = $1",
    )
    .bind(&intent_id)
    .bind(&charge)
    .execute(&shop.db)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE orders SET status = 'CONFIRMED', payment_status = 'PAID', paid_at = now(),
             reservation_expires_at = NULL WHERE id = $1",
    )
    .bind(id)
    .execute(&shop.db)
    .await
    .unwrap();

    let cancelled = shop
        .post(
            Some(&user),
            &format!("/v1/orders/{id}/cancel"),
            &json!({"reason": "found a cheaper one"}),
        )
        .await;

    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(cancelled.body["status"], "CANCELLED");
    assert_eq!(stripe.count("POST", "/v1/refunds"), 1);
    let refunded: (i64, String) =
        sqlx::query_as("SELECT amount_pence, reason FROM refunds WHERE order_id = $1")
            .bind(id)
            .fetch_one(&shop.db)
            .await
            .unwrap();
    assert_eq!(
        refunded,
        (
            order["total"].as_i64().unwrap(),
            "found a cheaper one".to_owned()
        )
    );
    assert_eq!(shop.events("order.cancelled").await.len(), 1);
}

#[tokio::test]
async fn user_erasure_requested_is_applied_once_from_the_broker() {
    let shop = Shop::spawn().await;
    let (user, other) = (customer(), customer());
    let product = shop.product(1_000, Some(10)).await;
    let erased = shop
        .placed(&user, json!([{"productId": product, "quantity": 1}]))
        .await;
    let kept = shop
        .placed(&other, json!([{"productId": product, "quantity": 1}]))
        .await;
    let event = service_kit::shared_types::DomainEvent::new(
        "auth",
        service_kit::shared_types::auth::UserErasureRequested {
            user_id: user.id,
            requested_by: None,
            requested_at: Utc::now(),
        },
    );

    shop.deliver(&event).await;
    shop.deliver(&event).await;

    let processed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM processed_events WHERE event_id = $1")
            .bind(event.id)
            .fetch_one(&shop.db)
            .await
            .unwrap();
    assert_eq!(processed, 1);
    let boss = admin();
    let after = shop
        .get(
            Some(&boss),
            &format!("/v1/orders/{}", erased["id"].as_str().unwrap()),
        )
        .await;
    assert!(after.body["email"].is_null());
    assert_eq!(after.body["billingAddress"]["line1"], erasure::ERASED);
    assert_eq!(after.body["total"], erased["total"]);
    let untouched = shop
        .get(
            Some(&boss),
            &format!("/v1/orders/{}", kept["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(untouched.body["email"], "ada@example.com");
}

#[tokio::test]
async fn when_product_is_down_the_order_is_a_503_and_the_key_stays_free_for_a_retry() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let shop = Shop::spawn_with(&[("PRODUCT_SERVICE_URL", nobody.as_str())]).await;
    let user = customer();
    let body = order_body(json!([{"productId": Uuid::now_v7(), "quantity": 1}]));

    let first = shop.place(&user, "retry-me", &body).await;
    let retry = shop.place(&user, "retry-me", &body).await;

    assert_eq!(
        first.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        first.text
    );
    assert_eq!(
        retry.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "not a replay, not in flight"
    );
    assert!(retry.headers.get("idempotent-replayed").is_none());
    assert_eq!(shop.count("orders").await, 0);
    assert_eq!(shop.count("idempotency_records").await, 0);
}

//! The orders back office: transitions, tracking, notes, filters, CSV and revenue.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Shop, admin, answer, code, customer};

/// Marks `order` paid as part B's webhook does (the only way an order is confirmed).
async fn mark_paid(shop: &Shop, order: &str) {
    let id: uuid::Uuid = order.parse().unwrap();
    sqlx::query(
        "UPDATE orders SET status = 'CONFIRMED', payment_status = 'PAID', paid_at = now(),
             reservation_expires_at = NULL WHERE id = $1",
    )
    .bind(id)
    .execute(&shop.db)
    .await
    .unwrap();
}

#[tokio::test]
async fn an_admin_moves_a_paid_order_through_fulfilment_and_illegal_steps_are_409() {
    let shop = Shop::spawn().await;
    let (user, boss) = (customer(), admin());
    let product = shop.product(1_000, Some(10)).await;
    let order = shop
        .placed(&user, json!([{"productId": product, "quantity": 1}]))
        .await;
    let id = order["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/admin/orders/{id}/transitions");

    let unpaid = shop
        .post(Some(&boss), &path, &json!({"to": "PROCESSING"}))
        .await;
    assert_eq!(unpaid.status, StatusCode::CONFLICT);
    assert_eq!(code(&unpaid.body), "illegal-transition");
    let confirm = shop
        .post(Some(&boss), &path, &json!({"to": "CONFIRMED"}))
        .await;
    assert_eq!(code(&confirm.body), "payment-required");
    let early_tracking = answer(
        shop.request(
            Some(&boss),
            Method::PUT,
            &format!("/v1/admin/orders/{id}/tracking"),
        )
        .json(&json!({"trackingNumber": "TRK1", "carrier": "DPD"})),
    )
    .await;
    assert_eq!(early_tracking.status, StatusCode::CONFLICT);

    mark_paid(&shop, &id).await;
    let skip = shop
        .post(Some(&boss), &path, &json!({"to": "SHIPPED"}))
        .await;
    assert_eq!(
        skip.status,
        StatusCode::CONFLICT,
        "CONFIRMED cannot jump to SHIPPED"
    );
    for step in ["PROCESSING", "SHIPPED", "DELIVERED"] {
        let moved = shop
            .post(
                Some(&boss),
                &path,
                &json!({"to": step, "reason": format!("now {step}")}),
            )
            .await;
        assert_eq!(moved.status, StatusCode::OK, "{step}: {}", moved.text);
        assert_eq!(moved.body["status"], step);
    }
    let tracking = answer(
        shop.request(
            Some(&boss),
            Method::PUT,
            &format!("/v1/admin/orders/{id}/tracking"),
        )
        .json(&json!({"trackingNumber": "TRK1", "carrier": "DPD"})),
    )
    .await;
    assert_eq!(tracking.status, StatusCode::OK, "{}", tracking.text);
    assert_eq!(tracking.body["trackingNumber"], "TRK1");
    let too_late = shop
        .post(Some(&boss), &path, &json!({"to": "CANCELLED"}))
        .await;
    assert_eq!(too_late.status, StatusCode::CONFLICT);
    let customer_cancel = shop
        .post(Some(&user), &format!("/v1/orders/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(customer_cancel.status, StatusCode::CONFLICT);

    let view = shop
        .get(Some(&boss), &format!("/v1/admin/orders/{id}"))
        .await;
    let history = view.body["history"].as_array().unwrap();
    let steps: Vec<_> = history
        .iter()
        .map(|h| h["toStatus"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["PENDING", "PROCESSING", "SHIPPED", "DELIVERED"]);
    assert_eq!(history[3]["actorId"], boss.id.to_string());
    assert_eq!(history[3]["actorRole"], "ADMIN");
    assert_eq!(history[3]["reason"], "now DELIVERED");
    assert!(view.body["shippedAt"].is_string() && view.body["deliveredAt"].is_string());

    let by_customer = shop
        .post(Some(&user), &path, &json!({"to": "PROCESSING"}))
        .await;
    assert_eq!(by_customer.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn notes_are_kept_with_their_author() {
    let shop = Shop::spawn().await;
    let boss = admin();
    let product = shop.product(1_000, Some(10)).await;
    let order = shop
        .placed(&customer(), json!([{"productId": product, "quantity": 1}]))
        .await;
    let id = order["id"].as_str().unwrap();

    let added = shop
        .post(
            Some(&boss),
            &format!("/v1/admin/orders/{id}/notes"),
            &json!({"body": "Customer called about delivery."}),
        )
        .await;
    let blank = shop
        .post(
            Some(&boss),
            &format!("/v1/admin/orders/{id}/notes"),
            &json!({"body": "  "}),
        )
        .await;
    let missing = shop
        .post(
            Some(&boss),
            &format!("/v1/admin/orders/{}/notes", uuid::Uuid::now_v7()),
            &json!({"body": "x"}),
        )
        .await;

    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    assert_eq!(blank.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let view = shop
        .get(Some(&boss), &format!("/v1/admin/orders/{id}"))
        .await;
    assert_eq!(view.body["notes"].as_array().map(Vec::len), Some(1));
    assert_eq!(view.body["notes"][0]["authorId"], boss.id.to_string());
}

#[tokio::test]
async fn the_admin_list_filters_pages_exports_and_sums_revenue() {
    let shop = Shop::spawn().await;
    let boss = admin();
    let (ada, bob) = (customer(), customer());
    let product = shop.product(10_000, Some(50)).await;
    let first = shop
        .placed(&ada, json!([{"productId": product, "quantity": 1}]))
        .await;
    shop.placed(&ada, json!([{"productId": product, "quantity": 2}]))
        .await;
    shop.placed(&bob, json!([{"productId": product, "quantity": 3}]))
        .await;
    mark_paid(&shop, first["id"].as_str().unwrap()).await;

    let page = shop
        .get(Some(&boss), "/v1/admin/orders?pageSize=2&page=2")
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(page.body["total"], 3);
    assert_eq!(page.body["data"].as_array().map(Vec::len), Some(1));
    let paid = shop
        .get(Some(&boss), "/v1/admin/orders?paymentStatus=PAID")
        .await;
    assert_eq!(paid.body["total"], 1);
    let bobs = shop
        .get(Some(&boss), &format!("/v1/admin/orders?userId={}", bob.id))
        .await;
    assert_eq!(bobs.body["total"], 1);
    let number = first["orderNumber"].as_str().unwrap();
    let by_number = shop
        .get(Some(&boss), &format!("/v1/admin/orders?q={number}"))
        .await;
    assert_eq!(by_number.body["total"], 1);
    let bad_status = shop.get(Some(&boss), "/v1/admin/orders?status=LOST").await;
    assert_eq!(bad_status.status, StatusCode::UNPROCESSABLE_ENTITY);
    let not_admin = shop.get(Some(&ada), "/v1/admin/orders").await;
    assert_eq!(not_admin.status, StatusCode::FORBIDDEN);

    let csv = shop
        .get(Some(&boss), "/v1/admin/orders/export?status=PENDING")
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines.len(), 3, "a header and the two pending orders");
    assert!(lines[0].starts_with("order_number,created_at,status"));
    assert!(lines[1].contains(",PENDING,UNPAID,ada@example.com,"));

    for period in ["DAY", "WEEK", "MONTH"] {
        let revenue = shop
            .get(
                Some(&boss),
                &format!("/v1/admin/orders/revenue?period={period}"),
            )
            .await;
        assert_eq!(revenue.status, StatusCode::OK, "{period}: {}", revenue.text);
        assert_eq!(
            revenue.body["buckets"].as_array().map(Vec::len),
            Some(1),
            "{period}"
        );
        assert_eq!(revenue.body["totals"]["orders"], 1);
        assert_eq!(revenue.body["totals"]["gross"], first["total"]);
        assert_eq!(
            revenue.body["totals"]["net"],
            first["total"].as_i64().unwrap() - first["tax"].as_i64().unwrap()
        );
    }
}

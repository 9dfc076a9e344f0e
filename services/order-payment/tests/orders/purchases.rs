//! `GET /internal/purchases`: whether a customer bought a product, asked by other services.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use test_support::{TestUser, service_token};
use uuid::Uuid;

use crate::helpers::{Answer, Shop, admin, answer, code, customer, fields};

/// The header carrying the internal token (the gateway's, or a peer service's).
const TOKEN_HEADER: &str = "x-internal-token";

fn path(user: Uuid, product: Uuid) -> String {
    format!("/internal/purchases?userId={user}&productId={product}")
}

/// Asks as customer-service would.
async fn ask(shop: &Shop, user: &TestUser, product: Uuid) -> Value {
    let answer = answer(
        shop.app
            .client
            .get(shop.app.url(&path(user.id, product)))
            .header(TOKEN_HEADER, service_token("customer")),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.body
}

async fn set_state(shop: &Shop, order: &str, status: &str, payment: &str) {
    sqlx::query(
        "UPDATE orders SET status = $2, payment_status = $3,
                paid_at = CASE WHEN $3 = 'UNPAID' THEN NULL ELSE coalesce(paid_at, now()) END,
                delivered_at = CASE WHEN $2 = 'DELIVERED' THEN now() END
         WHERE id = $1",
    )
    .bind(Uuid::parse_str(order).unwrap())
    .bind(status)
    .bind(payment)
    .execute(&shop.db)
    .await
    .expect("set the order's state");
}

#[tokio::test]
async fn only_a_paid_order_not_cancelled_nor_fully_refunded_is_a_purchase() {
    let shop = Shop::spawn().await;
    let (oak, walnut) = (
        shop.product(30_000, None).await,
        shop.product(45_000, None).await,
    );
    let jane = customer();
    let order = shop
        .placed(&jane, json!([{"productId": oak, "quantity": 1}]))
        .await;
    let id = order["id"].as_str().unwrap();

    // Placed but unpaid: not a purchase.
    let unpaid = ask(&shop, &jane, oak).await;
    assert_eq!(unpaid["purchased"], false, "{unpaid}");
    assert_eq!(unpaid["orders"], 0);
    assert_eq!(unpaid["firstPaidAt"], Value::Null);
    assert_eq!(unpaid["userId"], jane.id.to_string());
    assert_eq!(unpaid["productId"], oak.to_string());

    // Every paid step of the lifecycle counts; delivery is reported.
    for status in ["CONFIRMED", "PROCESSING", "SHIPPED"] {
        set_state(&shop, id, status, "PAID").await;
        let paid = ask(&shop, &jane, oak).await;
        assert_eq!(paid["purchased"], true, "{status}: {paid}");
        assert_eq!(paid["orders"], 1);
        assert_eq!(paid["delivered"], false);
        assert!(paid["firstPaidAt"].is_string(), "{paid}");
    }
    set_state(&shop, id, "DELIVERED", "PAID").await;
    let delivered = ask(&shop, &jane, oak).await;
    assert_eq!(delivered["purchased"], true);
    assert_eq!(delivered["delivered"], true);

    // A partial refund keeps the purchase, a full one takes it away.
    set_state(&shop, id, "DELIVERED", "PARTIALLY_REFUNDED").await;
    assert_eq!(ask(&shop, &jane, oak).await["purchased"], true);
    set_state(&shop, id, "DELIVERED", "REFUNDED").await;
    let refunded = ask(&shop, &jane, oak).await;
    assert_eq!(refunded["purchased"], false, "{refunded}");
    assert_eq!(refunded["delivered"], false);

    // Cancelled while paid (its refund not settled yet) does not count either.
    set_state(&shop, id, "CANCELLED", "PAID").await;
    assert_eq!(ask(&shop, &jane, oak).await["purchased"], false);

    // A product the order does not contain, one nobody sells, another customer's order.
    set_state(&shop, id, "CONFIRMED", "PAID").await;
    assert_eq!(ask(&shop, &jane, walnut).await["purchased"], false);
    assert_eq!(ask(&shop, &jane, Uuid::now_v7()).await["purchased"], false);
    let tom = customer();
    let toms = shop
        .placed(&tom, json!([{"productId": walnut, "quantity": 2}]))
        .await;
    set_state(&shop, toms["id"].as_str().unwrap(), "DELIVERED", "PAID").await;
    assert_eq!(ask(&shop, &jane, walnut).await["purchased"], false);
    assert_eq!(ask(&shop, &tom, walnut).await["purchased"], true);
    assert_eq!(ask(&shop, &tom, oak).await["purchased"], false);

    // Two paid orders of the same product: both counted, the earliest payment reported.
    let again = shop
        .placed(
            &jane,
            json!([{"productId": walnut, "quantity": 1}, {"productId": oak, "quantity": 1}]),
        )
        .await;
    set_state(&shop, again["id"].as_str().unwrap(), "PROCESSING", "PAID").await;
    let twice = ask(&shop, &jane, oak).await;
    assert_eq!(twice["orders"], 2, "{twice}");
    let first: Option<String> = sqlx::query_scalar(
        "SELECT to_char(paid_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') FROM orders
         WHERE id = $1",
    )
    .bind(Uuid::parse_str(id).unwrap())
    .fetch_one(&shop.db)
    .await
    .unwrap();
    assert!(
        twice["firstPaidAt"]
            .as_str()
            .unwrap()
            .starts_with(&first.unwrap()),
        "{twice}"
    );
    assert_eq!(ask(&shop, &jane, walnut).await["purchased"], true);
}

#[tokio::test]
async fn purchases_are_for_services_only_and_need_both_ids() {
    let shop = Shop::spawn().await;
    let jane = customer();
    let target = path(jane.id, Uuid::now_v7());
    let refused = |answer: &Answer, status: StatusCode| {
        assert_eq!(answer.status, status, "{}", answer.text);
        assert_eq!(
            answer.headers["content-type"], "application/problem+json",
            "{}",
            answer.text
        );
        assert_eq!(answer.body["status"], status.as_u16());
    };

    // Straight to the service, no internal token: 401.
    let anonymous = answer(shop.app.client.get(shop.app.url(&target))).await;
    refused(&anonymous, StatusCode::UNAUTHORIZED);
    // A forged token: 401.
    let forged = answer(
        shop.app
            .client
            .get(shop.app.url(&target))
            .header(TOKEN_HEADER, "not-a-token"),
    )
    .await;
    refused(&forged, StatusCode::UNAUTHORIZED);
    // Users, even the customer asked about or an administrator, are not services: 403.
    for user in [&jane, &admin()] {
        let as_user = shop.get(Some(user), &target).await;
        refused(&as_user, StatusCode::FORBIDDEN);
    }
    // An anonymous shopper forwarded by the gateway: 403.
    refused(
        &answer(shop.app.request(Method::GET, &target)).await,
        StatusCode::FORBIDDEN,
    );

    // A service with a malformed or missing id: 422 naming it.
    let as_service = |query: &str| {
        shop.app
            .client
            .get(shop.app.url(&format!("/internal/purchases?{query}")))
            .header(TOKEN_HEADER, service_token("customer"))
    };
    let bad = answer(as_service(&format!(
        "userId=nope&productId={}",
        Uuid::now_v7()
    )))
    .await;
    refused(&bad, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&bad.body), ["userId"]);
    let missing = answer(as_service(&format!("userId={}", jane.id))).await;
    refused(&missing, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&missing.body), ["productId"], "{}", missing.text);
    let unknown = answer(as_service(&format!(
        "userId={}&productId={}&extra=1",
        jane.id,
        Uuid::now_v7()
    )))
    .await;
    refused(&unknown, StatusCode::UNPROCESSABLE_ENTITY);
    assert_ne!(code(&unknown.body), "");
}

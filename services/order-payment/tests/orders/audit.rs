//! The audit trail of the back office (issue 14): order transitions, tracking and notes, coupon,
//! tax and shipping CRUD each write one row in their transaction; refused writes and reads none.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use service_kit::Role;
use test_support::TestUser;
use test_support::audit::{self, AuditRow};

use crate::helpers::{Shop, admin, answer, customer};

async fn rows(shop: &Shop) -> Vec<AuditRow> {
    audit::rows(&shop.db).await
}

async fn send(
    shop: &Shop,
    user: &TestUser,
    method: Method,
    path: &str,
    body: &Value,
    request_id: &str,
) -> StatusCode {
    let mut request = shop
        .request(Some(user), method.clone(), path)
        .header("x-request-id", request_id);
    request = if method == Method::PATCH {
        request
            .header("content-type", "application/merge-patch+json")
            .body(body.to_string())
    } else {
        request.json(body)
    };
    let answer = answer(request).await;
    assert!(answer.status.as_u16() < 500, "{}", answer.text);
    answer.status
}

#[tokio::test]
async fn order_transitions_tracking_and_notes_are_audited_once_each() {
    let shop = Shop::spawn().await;
    let boss = admin();
    let product = shop.product(1_000, Some(5)).await;
    let order = shop
        .placed(&customer(), json!([{"productId": product, "quantity": 1}]))
        .await;
    let id = order["id"].as_str().unwrap().to_owned();
    assert!(
        rows(&shop).await.is_empty(),
        "a customer's order is not audited"
    );

    // Refused: an unpaid order cannot be processed, a note needs an order.
    let transitions = format!("/v1/admin/orders/{id}/transitions");
    let status = send(
        &shop,
        &boss,
        Method::POST,
        &transitions,
        &json!({"to": "PROCESSING"}),
        "r0",
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let nowhere = format!("/v1/admin/orders/{}/notes", uuid::Uuid::now_v7());
    let status = send(
        &shop,
        &boss,
        Method::POST,
        &nowhere,
        &json!({"body": "x"}),
        "r0",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(rows(&shop).await.is_empty());

    sqlx::query(
        "UPDATE orders SET status = 'CONFIRMED', payment_status = 'PAID', paid_at = now(),
             reservation_expires_at = NULL WHERE id = $1",
    )
    .bind(id.parse::<uuid::Uuid>().unwrap())
    .execute(&shop.db)
    .await
    .unwrap();
    let status = send(
        &shop,
        &boss,
        Method::POST,
        &transitions,
        &json!({"to": "PROCESSING", "reason": "packed by Ada"}),
        "audit-t1",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let status = send(
        &shop,
        &boss,
        Method::PUT,
        &format!("/v1/admin/orders/{id}/tracking"),
        &json!({"trackingNumber": "TRK1", "carrier": "DPD"}),
        "audit-t2",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let status = send(
        &shop,
        &boss,
        Method::POST,
        &format!("/v1/admin/orders/{id}/notes"),
        &json!({"body": "Customer Ada Lovelace asked for a morning slot"}),
        "audit-t3",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    // Reads.
    assert_eq!(
        shop.get(Some(&boss), &format!("/v1/admin/orders/{id}"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        shop.get(Some(&boss), "/v1/admin/orders").await.status,
        StatusCode::OK
    );

    let rows = rows(&shop).await;
    let summary: Vec<(&str, &str, &str, Option<&str>)> = rows
        .iter()
        .map(|r| {
            (
                r.entity.as_str(),
                r.entity_id.as_str(),
                r.action.as_str(),
                r.request_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("order", id.as_str(), "status.processing", Some("audit-t1")),
            ("order", id.as_str(), "tracking.set", Some("audit-t2")),
            ("order", id.as_str(), "note.add", Some("audit-t3")),
        ]
    );
    for row in &rows {
        assert_eq!((row.actor_id, row.actor_role.as_str()), (boss.id, "ADMIN"));
        let text = row.changes.to_string();
        assert!(!text.contains("Ada") && !text.contains("ada@"), "{text}");
    }
    assert_eq!(
        rows[0].changes["status"],
        json!({"before": "CONFIRMED", "after": "PROCESSING"})
    );
    assert_eq!(
        rows[1].changes["carrier"],
        json!({"before": null, "after": "DPD"})
    );
    assert_eq!(rows[2].changes["body"], json!({"after": "[redacted]"}));
}

#[tokio::test]
async fn coupon_tax_and_shipping_changes_are_audited_and_only_a_super_admin_reads_them() {
    let shop = Shop::spawn().await;
    let boss = admin();
    let body = json!({"code": "SPRING", "kind": "PERCENTAGE", "value": 2500});
    assert_eq!(
        send(&shop, &boss, Method::POST, "/v1/coupons", &body, "c1").await,
        StatusCode::CREATED
    );
    assert_eq!(
        send(&shop, &boss, Method::POST, "/v1/coupons", &body, "c2").await,
        StatusCode::CONFLICT
    );
    let coupon: uuid::Uuid = sqlx::query_scalar("SELECT id FROM coupons WHERE code = 'SPRING'")
        .fetch_one(&shop.db)
        .await
        .unwrap();
    let path = format!("/v1/coupons/{coupon}");
    assert_eq!(
        send(
            &shop,
            &boss,
            Method::PATCH,
            &path,
            &json!({"value": 3000}),
            "c3"
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        send(
            &shop,
            &boss,
            Method::PATCH,
            &path,
            &json!({"value": -1}),
            "c4"
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        send(&shop, &boss, Method::DELETE, &path, &Value::Null, "c5").await,
        StatusCode::NO_CONTENT
    );
    let rate = json!({"code": "WHITE_GLOVE", "name": "Two-person delivery", "price": 4900});
    assert_eq!(
        send(
            &shop,
            &boss,
            Method::POST,
            "/v1/shipping/rates",
            &rate,
            "s1"
        )
        .await,
        StatusCode::CREATED
    );
    let gb: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tax_rules WHERE country = 'GB'")
        .fetch_one(&shop.db)
        .await
        .unwrap();
    assert_eq!(
        send(
            &shop,
            &boss,
            Method::PATCH,
            &format!("/v1/tax-rules/{gb}"),
            &json!({"rateBp": 500}),
            "t1"
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        shop.get(Some(&boss), "/v1/coupons").await.status,
        StatusCode::OK
    );

    let rows = rows(&shop).await;
    let summary: Vec<(&str, &str, Option<&str>)> = rows
        .iter()
        .map(|r| {
            (
                r.entity.as_str(),
                r.action.as_str(),
                r.request_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("coupon", "create", Some("c1")),
            ("coupon", "update", Some("c3")),
            ("coupon", "delete", Some("c5")),
            ("shipping_rate", "create", Some("s1")),
            ("tax_rule", "update", Some("t1")),
        ]
    );
    assert_eq!(
        rows[1].changes["value"],
        json!({"before": 2500, "after": 3000})
    );
    assert_eq!(
        rows[4].changes["rateBp"],
        json!({"before": 2000, "after": 500})
    );
    assert!(
        rows[4].changes.get("country").is_none(),
        "unchanged fields are left out"
    );
    assert_eq!(
        rows[3].changes["name"],
        json!({"after": "Two-person delivery"})
    );

    // The trail: SUPER_ADMIN only, filtered.
    let denied = shop.get(Some(&boss), "/v1/orders/audit").await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let owner = TestUser::new(Role::SuperAdmin);
    let page = shop
        .get(
            Some(&owner),
            &format!(
                "/v1/orders/audit?entity=coupon&entityId={coupon}&actor={}",
                boss.id
            ),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let actions: Vec<&str> = page.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["delete", "update", "create"]);
    assert_eq!(page.body["data"][0]["service"], "order-payment");
    let bad = shop.get(Some(&owner), "/v1/orders/audit?from=soon").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    audit::assert_append_only(&shop.db).await;
}

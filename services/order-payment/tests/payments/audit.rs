//! The audit trail of refunds and invoice voids (issue 14).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{PayApp, admin, customer};

/// `(actor_id, actor_role, entity, entity_id, action, changes, request_id)`, oldest first.
type Row = (
    uuid::Uuid,
    String,
    String,
    String,
    String,
    Value,
    Option<String>,
);

async fn rows(pay: &PayApp) -> Vec<Row> {
    sqlx::query_as(
        "SELECT actor_id, actor_role, entity, entity_id, action, changes, request_id
         FROM audit_log ORDER BY occurred_at, id",
    )
    .fetch_all(&pay.db)
    .await
    .expect("audit rows")
}

#[tokio::test]
async fn an_admin_refund_and_an_invoice_void_are_audited_and_refusals_are_not() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let boss = admin();
    let (order, payment, _) = pay.paid_order(&shopper, 10_000).await;
    assert!(rows(&pay).await.is_empty(), "payments are not admin writes");

    let refund = |key: &'static str, body: Value, request_id: &'static str| {
        pay.app
            .request_as(Method::POST, "/v1/refunds", &boss)
            .header("Idempotency-Key", key)
            .header("x-request-id", request_id)
            .json(&body)
            .send()
    };
    let too_much = refund(
        "k0",
        json!({"paymentId": payment, "amount": 20_000, "reason": "x"}),
        "r0",
    )
    .await
    .expect("reaches");
    assert_eq!(too_much.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(rows(&pay).await.is_empty());

    let made = refund(
        "k1",
        json!({"paymentId": payment, "amount": 2_500, "reason": "door damaged at Ada's house"}),
        "audit-refund-1",
    )
    .await
    .expect("reaches");
    assert_eq!(made.status(), StatusCode::CREATED);
    let made: Value = made.json().await.expect("json");

    let (_, invoice) = pay
        .get_as(&shopper, &format!("/v1/orders/{order}/invoice"))
        .await;
    let invoice_id = invoice["id"].as_str().expect("id").to_owned();
    let void = pay
        .app
        .request_as(
            Method::POST,
            &format!("/v1/admin/invoices/{invoice_id}/void"),
            &boss,
        )
        .header("x-request-id", "audit-void-1")
        .json(&json!({"reason": "issued to Ada by mistake"}))
        .send()
        .await
        .expect("reaches");
    assert_eq!(void.status(), StatusCode::OK);
    let again = pay
        .app
        .request_as(
            Method::POST,
            &format!("/v1/admin/invoices/{invoice_id}/void"),
            &boss,
        )
        .json(&json!({"reason": "twice"}))
        .send()
        .await
        .expect("reaches");
    assert_eq!(again.status(), StatusCode::CONFLICT);

    let rows = rows(&pay).await;
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let refund_id = made["id"].as_str().expect("id");
    assert_eq!(
        (
            rows[0].0,
            rows[0].1.as_str(),
            rows[0].2.as_str(),
            rows[0].3.as_str(),
            rows[0].4.as_str(),
            rows[0].6.as_deref()
        ),
        (
            boss.id,
            "ADMIN",
            "refund",
            refund_id,
            "create",
            Some("audit-refund-1")
        )
    );
    assert_eq!(rows[0].5["amount"], json!({"after": 2_500}));
    assert_eq!(
        (
            rows[1].2.as_str(),
            rows[1].3.as_str(),
            rows[1].4.as_str(),
            rows[1].6.as_deref()
        ),
        ("invoice", invoice_id.as_str(), "void", Some("audit-void-1"))
    );
    assert_eq!(
        rows[1].5["status"],
        json!({"before": "ISSUED", "after": "VOID"})
    );
    for row in &rows {
        assert!(!row.5.to_string().contains("Ada"), "{}", row.5);
    }
}

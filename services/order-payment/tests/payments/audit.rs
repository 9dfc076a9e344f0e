//! The audit trail of refunds and invoice voids (issue 14).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use test_support::audit::{self, AuditRow};

use crate::support::{PayApp, admin, customer};

async fn rows(pay: &PayApp) -> Vec<AuditRow> {
    audit::rows(&pay.db).await
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
    audit::expect(boss.id, "ADMIN", "refund", "create")
        .entity_id(refund_id)
        .request_id("audit-refund-1")
        .check(&rows[0]);
    assert_eq!(rows[0].changes["amount"], json!({"after": 2_500}));
    audit::expect(boss.id, "ADMIN", "invoice", "void")
        .entity_id(&invoice_id)
        .request_id("audit-void-1")
        .check(&rows[1]);
    assert_eq!(
        rows[1].changes["status"],
        json!({"before": "ISSUED", "after": "VOID"})
    );
    for row in &rows {
        audit::assert_no_leak(&row.changes, &["Ada"]);
    }
}

//! Invoices: issued with the payment, gap-free numbers, JSON and PDF, voiding.

use chrono::Datelike;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{PayApp, admin, customer};

#[tokio::test]
async fn the_invoice_snapshots_lines_vat_and_addresses_and_is_the_owners_only() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let (order, payment, _) = pay.paid_order(&shopper, 12_000).await;

    let (status, invoice) = pay
        .get_as(&shopper, &format!("/v1/orders/{order}/invoice"))
        .await;

    assert_eq!(status, StatusCode::OK);
    let year = chrono::Utc::now().year();
    assert_eq!(invoice["invoiceNumber"], format!("INV-{year}-000001"));
    assert_eq!(invoice["status"], "ISSUED");
    assert_eq!(invoice["paymentId"], payment.to_string());
    assert_eq!(invoice["lines"].as_array().map(Vec::len), Some(2));
    assert_eq!(invoice["lines"][0]["description"], "Shaker wall unit");
    assert_eq!(invoice["lines"][0]["total"], 6_000);
    assert_eq!(
        invoice["vatBreakdown"][0],
        json!({"rateBp": 2000, "net": 10_000, "vat": 2_000, "gross": 12_000})
    );
    assert_eq!(invoice["billingAddress"]["postcode"], "LS1 4AP");
    assert_eq!(invoice["pricesIncludeVat"], true);

    let id = invoice["id"].as_str().expect("id");
    let (by_id, same) = pay.get_as(&shopper, &format!("/v1/invoices/{id}")).await;
    let (theirs, _) = pay.get_as(&customer(), &format!("/v1/invoices/{id}")).await;
    let (their_order, _) = pay
        .get_as(&customer(), &format!("/v1/orders/{order}/invoice"))
        .await;
    let (as_admin, _) = pay.get_as(&admin(), &format!("/v1/invoices/{id}")).await;
    assert_eq!(by_id, StatusCode::OK);
    assert_eq!(same, invoice);
    assert_eq!(theirs, StatusCode::NOT_FOUND);
    assert_eq!(their_order, StatusCode::NOT_FOUND);
    assert_eq!(as_admin, StatusCode::OK);
    let number = invoice["invoiceNumber"].as_str().expect("number");
    let (by_number, same_again) = pay
        .get_as(&shopper, &format!("/v1/invoices/{number}"))
        .await;
    let (their_number, _) = pay
        .get_as(&customer(), &format!("/v1/invoices/{number}"))
        .await;
    let (garbage, _) = pay.get_as(&shopper, "/v1/invoices/INV-20-1").await;
    assert_eq!(by_number, StatusCode::OK);
    assert_eq!(same_again, invoice);
    assert_eq!(their_number, StatusCode::NOT_FOUND);
    assert_eq!(garbage, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_unpaid_order_has_no_invoice_yet() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let order = pay.order(&shopper, 5_000).await;

    let (status, _) = pay
        .get_as(&shopper, &format!("/v1/orders/{order}/invoice"))
        .await;

    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_pdf_is_a_real_pdf_naming_the_invoice() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let (order, _, _) = pay.paid_order(&shopper, 12_000).await;
    let (_, invoice) = pay
        .get_as(&shopper, &format!("/v1/orders/{order}/invoice"))
        .await;
    let id = invoice["id"].as_str().expect("id");
    let number = invoice["invoiceNumber"].as_str().expect("number");

    let response = pay
        .app
        .request_as(Method::GET, &format!("/v1/invoices/{id}.pdf"), &shopper)
        .send()
        .await
        .expect("reaches");

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    let bytes = response.bytes().await.expect("body");
    assert!(bytes.starts_with(b"%PDF-"));
    assert!(bytes.windows(number.len()).any(|w| w == number.as_bytes()));
    let (theirs, _) = pay
        .get_as(&customer(), &format!("/v1/invoices/{id}.pdf"))
        .await;
    assert_eq!(theirs, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_admin_voids_an_invoice_once_and_customers_cannot() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let boss = admin();
    let (order, _, _) = pay.paid_order(&shopper, 12_000).await;
    let (_, invoice) = pay
        .get_as(&shopper, &format!("/v1/orders/{order}/invoice"))
        .await;
    let path = format!(
        "/v1/admin/invoices/{}/void",
        invoice["id"].as_str().expect("id")
    );
    let void = |user| {
        pay.app
            .request_as(Method::POST, &path, user)
            .json(&json!({"reason": "issued to the wrong company"}))
            .send()
    };

    let by_customer = void(&shopper).await.expect("reaches");
    let empty_reason = pay
        .app
        .request_as(Method::POST, &path, &boss)
        .json(&json!({"reason": ""}))
        .send()
        .await
        .expect("reaches");
    let first = void(&boss).await.expect("reaches");
    let first_status = first.status();
    let voided: serde_json::Value = first.json().await.expect("json");
    let second = void(&boss).await.expect("reaches");

    assert_eq!(by_customer.status(), StatusCode::FORBIDDEN);
    assert_eq!(empty_reason.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(first_status, StatusCode::OK);
    assert_eq!(voided["status"], "VOID");
    assert_eq!(voided["voidReason"], "issued to the wrong company");
    assert_eq!(
        voided["invoiceNumber"], invoice["invoiceNumber"],
        "the number stays used"
    );
    assert_eq!(second.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn invoice_numbers_have_no_gaps_under_concurrent_payments() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let mut intents = Vec::new();
    for i in 0..12 {
        let order = pay.order(&shopper, 1_000 + i).await;
        let (_, intent) = pay.intent(&shopper, order).await;
        intents.push(intent);
    }
    // One payment fails in the middle: it must not consume a number.
    let declined = intents.remove(5);

    let (mut outcomes, declined_outcome) = tokio::join!(
        futures::future::join_all(intents.iter().map(|intent| pay.succeed(intent))),
        pay.decline(&declined),
    );
    outcomes.push(declined_outcome);

    assert!(outcomes.iter().all(|o| o == "APPLIED"), "{outcomes:?}");
    let mut numbers: Vec<String> =
        sqlx::query_scalar("SELECT invoice_number FROM invoices ORDER BY invoice_number")
            .fetch_all(&pay.db)
            .await
            .expect("numbers");
    numbers.dedup();
    let year = chrono::Utc::now().year();
    let expected: Vec<String> = (1..=11).map(|n| format!("INV-{year}-{n:06}")).collect();
    assert_eq!(numbers, expected);
}

//! GDPR: the export, and an erasure that leaves no personal data in any text column.

use chrono::Utc;
use serde_json::json;
use service_kit::shared_types::DomainEvent;
use service_kit::shared_types::auth::{UserCreated, UserErasureRequested, UserRole};
use service_kit::shared_types::order_payment::PaymentSucceeded;
use uuid::Uuid;

use crate::helpers::{Api, customer};

#[tokio::test]
async fn the_export_holds_everything_and_erasure_leaves_no_personal_data() {
    let api = Api::spawn().await;
    let jane = customer();
    api.deliver(&DomainEvent::new(
        "auth",
        UserCreated {
            user_id: jane.id,
            email: "jane.erasable@example.com".into(),
            first_name: "Janette".into(),
            last_name: "Quixotic".into(),
            phone: Some("+447700900456".into()),
            role: UserRole::Customer,
            marketing_opt_in: false,
            created_at: Utc::now(),
        },
    ))
    .await;
    api.post(
        &jane,
        "/v1/profile/addresses",
        &json!({"kind": "SHIPPING", "recipientName": "Janette Quixotic", "line1": "7 Quixotic Lane",
                "city": "Bath", "postcode": "BA1 1AA", "phone": "+447700900456"}),
    )
    .await;
    sqlx::query("INSERT INTO wishlist_items (user_id, product_id) VALUES ($1, $2)")
        .bind(jane.id)
        .bind(Uuid::now_v7())
        .execute(&api.pool)
        .await
        .unwrap();
    let product = Uuid::now_v7();
    api.post(
        &jane,
        &format!("/v1/products/{product}/reviews"),
        &json!({"rating": 5, "title": "Great", "body": "Great doors"}),
    )
    .await;
    api.post(
        &jane,
        "/v1/tickets",
        &json!({"subject": "Call Janette Quixotic", "category": "OTHER", "message": "Ring me on 07700 900456"}),
    )
    .await;
    api.deliver(&DomainEvent::new(
        "order-payment",
        PaymentSucceeded {
            order_id: Uuid::now_v7(),
            payment_id: Uuid::now_v7(),
            user_id: Some(jane.id),
            amount: 10_000,
            currency: "GBP".into(),
            invoice_number: None,
            provider_payment_id: "pi_2".into(),
            customer_email: None,
            paid_at: Utc::now(),
        },
    ))
    .await;

    let (status, export) = api.get(&jane, "/v1/profile/export").await;
    assert_eq!(status, 200, "{export}");
    assert_eq!(export["profile"]["email"], "jane.erasable@example.com");
    assert_eq!(export["addresses"][0]["postcode"], "BA1 1AA");
    assert_eq!(export["wishlist"].as_array().unwrap().len(), 1);
    assert_eq!(export["reviews"][0]["title"], "Great");
    assert_eq!(
        export["tickets"][0]["messages"][0]["body"],
        "Ring me on 07700 900456"
    );
    assert_eq!(export["loyalty"]["balance"], 100);
    assert_eq!(export["loyalty"]["transactions"][0]["kind"], "EARN");

    let erasure = DomainEvent::new(
        "auth",
        UserErasureRequested {
            user_id: jane.id,
            requested_by: None,
            requested_at: Utc::now(),
        },
    );
    api.deliver(&erasure).await;
    api.deliver(&erasure).await;

    // Every text-like column of every domain table (the outbox and inbox are the event plumbing,
    // documented in docs/gdpr.md) is searched for anything that identifies Jane.
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'jsonb', 'uuid', 'ARRAY') \
           AND table_name NOT IN ('outbox', 'processed_events', '_sqlx_migrations')",
    )
    .fetch_all(&api.pool)
    .await
    .unwrap();
    assert!(columns.len() > 20, "{columns:?}");
    let needles = [
        jane.id.to_string(),
        "erasable".into(),
        "Janette".into(),
        "Quixotic".into(),
        "900456".into(),
        "BA1 1AA".into(),
    ];
    for (table, column) in &columns {
        for needle in &needles {
            let sql = format!(
                "SELECT count(*) FROM \"{table}\" WHERE \"{column}\"::text ILIKE '%' || $1 || '%'"
            );
            let hits: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(needle)
                .fetch_one(&api.pool)
                .await
                .unwrap();
            assert_eq!(hits, 0, "{table}.{column} still holds {needle}");
        }
    }
    // What is kept: the review (anonymised), the ticket (redacted), the ledger (pseudonymised).
    let (_, reviews) = api
        .public_get(&format!("/v1/products/{product}/reviews"))
        .await;
    assert!(
        reviews["data"].as_array().unwrap().is_empty(),
        "still pending moderation"
    );
    let kept: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM reviews), (SELECT count(*) FROM tickets), \
                (SELECT count(*) FROM loyalty_transactions)",
    )
    .fetch_one(&api.pool)
    .await
    .unwrap();
    assert_eq!(kept, (1, 1, 1));
    let (_, export) = api.get(&jane, "/v1/profile/export").await;
    assert!(export["profile"].is_null());
    assert_eq!(export["loyalty"]["balance"], 0);
}

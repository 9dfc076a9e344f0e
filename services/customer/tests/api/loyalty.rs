//! Loyalty: earned once per payment however often the event comes, reversed in proportion on
//! refund, redemptions that never overdraw, the ledger's pages, and admin adjustments.

use chrono::Utc;
use serde_json::json;
use service_kit::shared_types::DomainEvent;
use service_kit::shared_types::order_payment::{PaymentSucceeded, RefundIssued};
use uuid::Uuid;

use crate::helpers::{Api, customer, problem_code};

fn payment(user: Uuid, payment_id: Uuid, amount: i64) -> DomainEvent<PaymentSucceeded> {
    DomainEvent::new(
        "order-payment",
        PaymentSucceeded {
            order_id: Uuid::now_v7(),
            payment_id,
            user_id: Some(user),
            amount,
            currency: "GBP".into(),
            invoice_number: None,
            provider_payment_id: "pi_1".into(),
            customer_email: None,
            paid_at: Utc::now(),
        },
    )
}

fn refund(user: Uuid, payment_id: Uuid, amount: i64) -> DomainEvent<RefundIssued> {
    DomainEvent::new(
        "order-payment",
        RefundIssued {
            refund_id: Uuid::now_v7(),
            order_id: Uuid::now_v7(),
            payment_id,
            user_id: Some(user),
            amount,
            currency: "GBP".into(),
            reason: None,
            customer_email: None,
            issued_at: Utc::now(),
        },
    )
}

#[tokio::test]
async fn a_payment_earns_once_however_often_delivered_and_a_refund_reverses_its_share() {
    let api = Api::spawn_with(&[("LOYALTY_POINTS_PER_POUND", "2")]).await;
    let jane = customer();
    let paid = Uuid::now_v7();
    let event = payment(jane.id, paid, 129_999); // £1,299.99 → 1,299 whole pounds → 2,598 points
    for _ in 0..3 {
        api.deliver(&event).await;
    }
    // The same payment in a different event (a replay by the producer) earns nothing either.
    api.deliver(&payment(jane.id, paid, 129_999)).await;
    let (status, account) = api.get(&jane, "/v1/loyalty").await;
    assert_eq!(status, 200, "{account}");
    assert_eq!(account["balance"], 2_598);
    assert_eq!(account["tier"], "SILVER");
    assert_eq!(account["pointsPerPound"], 2);

    // A quarter refunded → a quarter of the points back; the same refund again changes nothing.
    let quarter = refund(jane.id, paid, 32_500);
    api.deliver(&quarter).await;
    api.deliver(&quarter).await;
    let (_, account) = api.get(&jane, "/v1/loyalty").await;
    assert_eq!(account["balance"], 2_598 - 649);

    let (_, page) = api.get(&jane, "/v1/loyalty/transactions?limit=1").await;
    assert_eq!(page["data"][0]["kind"], "REVERSE");
    assert_eq!(page["data"][0]["points"], -649);
    assert_eq!(page["hasNextPage"], true);
    let cursor = page["nextCursor"].as_str().unwrap();
    let (_, next) = api
        .get(
            &jane,
            &format!("/v1/loyalty/transactions?limit=1&cursor={cursor}"),
        )
        .await;
    assert_eq!(next["data"][0]["kind"], "EARN");
    assert_eq!(next["hasNextPage"], false);

    // The ledger is append-only.
    let tampered = sqlx::query("UPDATE loyalty_transactions SET points = 1")
        .execute(&api.pool)
        .await;
    assert!(tampered.is_err());
    assert!(
        sqlx::query("DELETE FROM loyalty_transactions")
            .execute(&api.pool)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn racing_redemptions_never_overdraw_and_admins_adjust_with_a_reason() {
    let api = Api::spawn().await;
    let jane = customer();
    let path = format!("/v1/admin/loyalty/{}/adjustments", jane.id);
    let (status, row) = api
        .post(
            &api.admin,
            &path,
            &json!({"points": 100, "reason": "Goodwill"}),
        )
        .await;
    assert_eq!(status, 201, "{row}");
    assert_eq!(row["balanceAfter"], 100);
    assert_eq!(
        api.post(&jane, &path, &json!({"points": 5, "reason": "me"}))
            .await
            .0,
        403
    );
    let (status, problem) = api
        .post(
            &api.admin,
            &path,
            &json!({"points": -101, "reason": "Too much"}),
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem_code(&problem), "insufficient-points");
    // Zero adjusts nothing: refused, as the document says (points is one of two ranges).
    let (status, problem) = api
        .post(
            &api.admin,
            &path,
            &json!({"points": 0, "reason": "Nothing"}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    let doc = serde_json::to_value(service_kit::service::openapi::<
        customer_service::CustomerService,
    >())
    .unwrap_or_default();
    let points = &doc["components"]["schemas"]["LoyaltyAdjustment"]["properties"]["points"];
    assert_eq!(points["oneOf"][0]["minimum"], 1, "{points}");
    assert_eq!(points["oneOf"][1]["maximum"], -1, "{points}");

    let attempts = (0..10).map(|_| {
        let request = api
            .app
            .request_as(reqwest::Method::POST, "/v1/loyalty/redemptions", &jane)
            .json(&json!({"points": 30}))
            .send();
        async move { request.await.unwrap().status() }
    });
    let statuses = futures::future::join_all(attempts).await;
    let won = statuses.iter().filter(|s| **s == 201).count();
    let lost = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!((won, lost), (3, 7), "{statuses:?}");
    let (_, account) = api.get(&jane, "/v1/loyalty").await;
    assert_eq!(account["balance"], 10);
    let (sum, min): (i64, i64) = sqlx::query_as(
        "SELECT sum(points)::bigint, min(balance_after) FROM loyalty_transactions WHERE user_id = $1",
    )
    .bind(jane.id)
    .fetch_one(&api.pool)
    .await
    .unwrap();
    assert_eq!((sum, min), (10, 10));
}

#[tokio::test]
async fn points_expire_oldest_first_once_unspent() {
    let api = Api::spawn().await;
    let jane = customer();
    // 100 points credited 400 days ago, then 50 today; 30 spent since.
    sqlx::query("INSERT INTO loyalty_accounts (user_id, balance) VALUES ($1, 150)")
        .bind(jane.id)
        .execute(&api.pool)
        .await
        .unwrap();
    for (points, balance, days) in [(100i64, 100i64, 400i32), (50, 150, 0)] {
        sqlx::query(
            "INSERT INTO loyalty_transactions (id, user_id, kind, points, balance_after, payment_id, \
             amount_pence, created_at) VALUES ($1, $2, 'EARN', $3, $4, $5, $6, \
             now() - make_interval(days => $7))",
        )
        .bind(Uuid::now_v7())
        .bind(jane.id)
        .bind(points)
        .bind(balance)
        .bind(Uuid::now_v7())
        .bind(points * 100)
        .bind(days)
        .execute(&api.pool)
        .await
        .unwrap();
    }
    let (status, _) = api
        .post(&jane, "/v1/loyalty/redemptions", &json!({"points": 30}))
        .await;
    assert_eq!(status, 201);
    let cutoff = Utc::now() - chrono::Duration::days(365);
    assert_eq!(
        customer_service::loyalty::expire_points(&api.pool, cutoff)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        customer_service::loyalty::expire_points(&api.pool, cutoff)
            .await
            .unwrap(),
        0
    );
    let (_, account) = api.get(&jane, "/v1/loyalty").await;
    assert_eq!(account["balance"], 50, "the 70 old unspent points expired");
    let (_, page) = api.get(&jane, "/v1/loyalty/transactions").await;
    assert_eq!(page["data"][0]["kind"], "EXPIRE");
    assert_eq!(page["data"][0]["points"], -70);
}

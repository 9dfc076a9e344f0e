use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Api, PASSWORD};

#[tokio::test]
async fn deleting_the_account_erases_personal_data_and_emits_erasure_requested() {
    let api = Api::spawn().await;
    let session = api.signed_up("jane@example.com").await;
    let other = api.signed_in("jane@example.com", PASSWORD).await;

    let wrong = api
        .as_user(&session, Method::DELETE, "/v1/auth/account")
        .json(&json!({"password": "not-my-password-at-all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 422);

    let deleted = api
        .as_user(&session, Method::DELETE, "/v1/auth/account")
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();

    assert_eq!(deleted.status(), 204);
    let row: Value = sqlx::query_scalar("SELECT to_jsonb(users) FROM users WHERE id = $1")
        .bind(session.user_id)
        .fetch_one(&api.pool)
        .await
        .unwrap();
    assert_eq!(row["status"], "DELETED");
    assert_eq!(row["email"], format!("deleted+{}@invalid", session.user_id));
    for field in [
        "password_hash",
        "first_name",
        "last_name",
        "phone",
        "email_verified_at",
    ] {
        assert!(row[field].is_null(), "{field} kept: {row}");
    }
    let text = row.to_string();
    assert!(
        !text.contains("jane") && !text.contains("7700"),
        "personal data left: {text}"
    );
    let personal_in_sessions = api
        .count(&format!(
            "SELECT count(*) FROM sessions WHERE user_id = '{}' AND (user_agent IS NOT NULL OR ip_network IS NOT NULL)",
            session.user_id
        ))
        .await;
    assert_eq!(personal_in_sessions, 0);
    assert!(!api.session_allowed(session.session_id).await);
    assert!(!api.session_allowed(other.session_id).await);

    let events = api.events("user.erasure_requested").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["payload"]["userId"], session.user_id.to_string());

    assert_eq!(api.login("jane@example.com", PASSWORD).await.status(), 401);
    // The address is free again.
    assert_eq!(api.register("jane@example.com").await.status(), 201);
    assert_eq!(
        api.count("SELECT count(*) FROM users WHERE email = 'jane@example.com'")
            .await,
        1
    );
}

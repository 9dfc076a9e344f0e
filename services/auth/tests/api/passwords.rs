use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Api, PASSWORD};

const NEW_PASSWORD: &str = "walnut-island-and-pantry-7";

#[tokio::test]
async fn a_password_reset_ends_every_session() {
    let api = Api::spawn().await;
    let one = api.signed_up("jane@example.com").await;
    let two = api.signed_in("jane@example.com", PASSWORD).await;

    let forgot = api
        .post(
            "/v1/auth/forgot-password",
            &json!({"email": "jane@example.com"}),
        )
        .await;
    assert_eq!(forgot.status(), 202);
    let code = api.latest_otp("jane@example.com", "PASSWORD_RESET").await;
    let reset = api
        .post(
            "/v1/auth/reset-password",
            &json!({"email": "jane@example.com", "code": code, "newPassword": NEW_PASSWORD}),
        )
        .await;

    assert_eq!(reset.status(), 204);
    assert!(!api.session_allowed(one.session_id).await);
    assert!(!api.session_allowed(two.session_id).await);
    assert_eq!(api.refresh(&one.refresh_token).await.status(), 401);
    assert_eq!(api.login("jane@example.com", PASSWORD).await.status(), 401);
    assert_eq!(
        api.login("jane@example.com", NEW_PASSWORD).await.status(),
        200
    );
}

#[tokio::test]
async fn forgot_password_answers_the_same_whether_or_not_the_account_exists() {
    let api = Api::spawn().await;
    api.register("jane@example.com").await;

    let known = api
        .post(
            "/v1/auth/forgot-password",
            &json!({"email": "jane@example.com"}),
        )
        .await;
    let unknown = api
        .post(
            "/v1/auth/forgot-password",
            &json!({"email": "nobody@example.com"}),
        )
        .await;

    assert_eq!(known.status(), 202);
    assert_eq!(unknown.status(), 202);
    assert_eq!(
        known.json::<Value>().await.unwrap(),
        unknown.json::<Value>().await.unwrap()
    );
    assert_eq!(
        api.otps("jane@example.com", "PASSWORD_RESET").await.len(),
        1
    );
    assert_eq!(
        api.otps("nobody@example.com", "PASSWORD_RESET").await.len(),
        0
    );
}

#[tokio::test]
async fn a_weak_new_password_is_refused_without_spending_the_code() {
    let api = Api::spawn().await;
    api.signed_up("jane@example.com").await;
    api.post(
        "/v1/auth/forgot-password",
        &json!({"email": "jane@example.com"}),
    )
    .await;
    let code = api.latest_otp("jane@example.com", "PASSWORD_RESET").await;

    let weak = api
        .post(
            "/v1/auth/reset-password",
            &json!({"email": "jane@example.com", "code": code, "newPassword": "1qaz2wsx3edc"}),
        )
        .await;
    assert_eq!(weak.status(), 422);
    let problem: Value = weak.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "newPassword");

    let good = api
        .post(
            "/v1/auth/reset-password",
            &json!({"email": "jane@example.com", "code": code, "newPassword": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(good.status(), 204);
}

#[tokio::test]
async fn changing_the_password_keeps_this_session_and_ends_the_others() {
    let api = Api::spawn().await;
    let here = api.signed_up("jane@example.com").await;
    let elsewhere = api.signed_in("jane@example.com", PASSWORD).await;

    let wrong = api
        .as_user(&here, Method::POST, "/v1/auth/change-password")
        .json(&json!({"currentPassword": "not-my-password-at-all", "newPassword": NEW_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 422);
    let problem: Value = wrong.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "currentPassword");

    let changed = api
        .as_user(&here, Method::POST, "/v1/auth/change-password")
        .json(&json!({"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}))
        .send()
        .await
        .unwrap();

    assert_eq!(changed.status(), 204);
    assert!(api.session_allowed(here.session_id).await);
    assert!(!api.session_allowed(elsewhere.session_id).await);
    assert_eq!(
        api.login("jane@example.com", NEW_PASSWORD).await.status(),
        200
    );
}

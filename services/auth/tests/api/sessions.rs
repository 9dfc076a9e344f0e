use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Api, PASSWORD, problem_code, refresh_cookie};

#[tokio::test]
async fn register_verify_login_me_refresh_reuse_and_logout() {
    let api = Api::spawn().await;

    // Register → read the code from the outbox → verify.
    assert_eq!(api.register("jane@example.com").await.status(), 201);
    let code = api
        .latest_otp("jane@example.com", "EMAIL_VERIFICATION")
        .await;
    let verified = api
        .post(
            "/v1/auth/verify-email",
            &json!({"email": "jane@example.com", "code": code}),
        )
        .await;
    assert_eq!(verified.status(), 200);

    // Login: access token in the body, refresh token in a locked-down cookie.
    let login = api.login("jane@example.com", PASSWORD).await;
    assert_eq!(login.status(), 200);
    assert_eq!(login.headers()["cache-control"], "no-store");
    let (_, cookie) = refresh_cookie(&login).expect("refresh cookie");
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/v1/auth",
        "Max-Age=604800",
    ] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    let session = api.session_from(login).await;
    assert!(api.session_allowed(session.session_id).await);

    // Me.
    let me = api
        .as_user(&session, Method::GET, "/v1/auth/me")
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["email"], "jane@example.com");
    assert_eq!(me["emailVerified"], true);
    assert_eq!(me["role"], "CUSTOMER");
    assert_eq!(me["id"], session.user_id.to_string());

    // Refresh rotates the refresh token and keeps the session.
    let refreshed = api.refresh(&session.refresh_token).await;
    let rotated = api.session_from(refreshed).await;
    assert_ne!(rotated.refresh_token, session.refresh_token);
    assert_eq!(rotated.session_id, session.session_id);
    assert!(api.session_allowed(session.session_id).await);

    // Reusing the spent token revokes the whole family: the session leaves the allow-list and
    // the newest token dies with it.
    let reused = api.refresh(&session.refresh_token).await;
    assert_eq!(reused.status(), 401);
    let problem: Value = reused.json().await.unwrap();
    assert_eq!(problem_code(&problem), "refresh-token-reused");
    assert!(!api.session_allowed(session.session_id).await);
    assert_eq!(api.refresh(&rotated.refresh_token).await.status(), 401);

    // A new login, then logout: that session leaves the allow-list and its cookie is cleared.
    let second = api.signed_in("jane@example.com", PASSWORD).await;
    assert!(api.session_allowed(second.session_id).await);
    let logout = api
        .as_user(&second, Method::POST, "/v1/auth/logout")
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    let (cleared, header) = refresh_cookie(&logout).expect("cookie cleared");
    assert!(
        cleared.is_empty() && header.contains("Max-Age=0"),
        "{header}"
    );
    assert!(!api.session_allowed(second.session_id).await);
    assert_eq!(api.refresh(&second.refresh_token).await.status(), 401);
}

#[tokio::test]
async fn an_unverified_user_may_sign_in_and_is_told_so() {
    let api = Api::spawn().await;
    api.register("jane@example.com").await;

    let login = api.login("jane@example.com", PASSWORD).await;

    assert_eq!(login.status(), 200);
    let body: Value = login.json().await.unwrap();
    assert_eq!(body["user"]["emailVerified"], false);
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["expiresIn"], 900);
}

#[tokio::test]
async fn refresh_accepts_the_token_in_the_body_for_non_browser_clients() {
    let api = Api::spawn().await;
    let session = api.signed_up("jane@example.com").await;

    let response = api
        .post(
            "/v1/auth/refresh",
            &json!({"refreshToken": session.refresh_token}),
        )
        .await;

    let rotated = api.session_from(response).await;
    assert_eq!(rotated.session_id, session.session_id);
    let missing = api.post("/v1/auth/refresh", &json!({})).await;
    assert_eq!(missing.status(), 401);
    let garbage = api.refresh("not-a-token").await;
    assert_eq!(garbage.status(), 401);
}

#[tokio::test]
async fn sessions_are_listed_with_the_current_one_marked_and_only_own_ones_deleted() {
    let api = Api::spawn().await;
    let laptop = api.signed_up("jane@example.com").await;
    let phone = api.signed_in("jane@example.com", PASSWORD).await;
    let other = api.signed_up("john@example.com").await;

    let list = api
        .as_user(&phone, Method::GET, "/v1/auth/sessions")
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    let list: Value = list.json().await.unwrap();
    let sessions = list["data"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], phone.session_id.to_string());
    assert_eq!(current[0]["ipNetwork"], "127.0.0.0/24");

    // Someone else's session is not found.
    let foreign = api
        .as_user(
            &phone,
            Method::DELETE,
            &format!("/v1/auth/sessions/{}", other.session_id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 404);
    assert!(api.session_allowed(other.session_id).await);

    // One's own other device is signed out.
    let revoke = api
        .as_user(
            &phone,
            Method::DELETE,
            &format!("/v1/auth/sessions/{}", laptop.session_id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 204);
    assert!(!api.session_allowed(laptop.session_id).await);
    assert!(api.session_allowed(phone.session_id).await);
    assert_eq!(api.refresh(&laptop.refresh_token).await.status(), 401);
}

#[tokio::test]
async fn logout_all_ends_every_session() {
    let api = Api::spawn().await;
    let one = api.signed_up("jane@example.com").await;
    let two = api.signed_in("jane@example.com", PASSWORD).await;

    let response = api
        .as_user(&one, Method::POST, "/v1/auth/logout-all")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 204);
    assert!(!api.session_allowed(one.session_id).await);
    assert!(!api.session_allowed(two.session_id).await);
    assert_eq!(api.refresh(&two.refresh_token).await.status(), 401);
}

#[tokio::test]
async fn signed_in_routes_refuse_anonymous_callers() {
    let api = Api::spawn().await;
    for (method, path) in [
        (Method::GET, "/v1/auth/me"),
        (Method::POST, "/v1/auth/logout"),
        (Method::POST, "/v1/auth/logout-all"),
        (Method::GET, "/v1/auth/sessions"),
    ] {
        let response = api.app.request(method, path).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
    }
    // And without the gateway's token at all.
    let direct = api
        .app
        .client
        .post(api.app.url("/v1/auth/login"))
        .json(&json!({"email": "jane@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 401);
}

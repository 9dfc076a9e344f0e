use serde_json::Value;

use crate::helpers::{Api, PASSWORD, problem_code};

/// The problem without the per-request `instance`.
async fn problem_without_instance(response: reqwest::Response) -> Value {
    let mut body: Value = response.json().await.unwrap();
    body.as_object_mut().unwrap().remove("instance");
    body
}

#[tokio::test]
async fn an_unknown_email_and_a_wrong_password_get_the_same_401() {
    let api = Api::spawn().await;
    api.signed_up("jane@example.com").await;

    let wrong_password = api
        .login("jane@example.com", "not-the-right-password")
        .await;
    let unknown_email = api.login("nobody@example.com", PASSWORD).await;
    let malformed_email = api.login("nobody", PASSWORD).await;

    for response in [&wrong_password, &unknown_email, &malformed_email] {
        assert_eq!(response.status(), 401);
    }
    let a = problem_without_instance(wrong_password).await;
    let b = problem_without_instance(unknown_email).await;
    let c = problem_without_instance(malformed_email).await;
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_eq!(problem_code(&a), "invalid-credentials");
}

#[tokio::test]
async fn login_is_locked_after_the_limit_with_retry_after_even_for_the_right_password() {
    let api = Api::spawn().await;
    api.signed_up("jane@example.com").await;

    for attempt in 1..=5 {
        let response = api
            .login("jane@example.com", "not-the-right-password")
            .await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
    let locked = api.login("jane@example.com", PASSWORD).await;

    assert_eq!(locked.status(), 429);
    let retry_after: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    let problem: Value = locked.json().await.unwrap();
    assert_eq!(problem_code(&problem), "too-many-attempts");

    // Unknown emails lock alike, so the lock reveals nothing either.
    for _ in 1..=5 {
        assert_eq!(
            api.login("nobody@example.com", PASSWORD).await.status(),
            401
        );
    }
    assert_eq!(
        api.login("nobody@example.com", PASSWORD).await.status(),
        429
    );
}

#[tokio::test]
async fn a_successful_login_clears_the_failure_count() {
    let api = Api::spawn().await;
    api.signed_up("jane@example.com").await;
    for _ in 1..=4 {
        api.login("jane@example.com", "not-the-right-password")
            .await;
    }
    assert_eq!(api.login("jane@example.com", PASSWORD).await.status(), 200);

    for attempt in 1..=4 {
        let response = api
            .login("jane@example.com", "not-the-right-password")
            .await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
}

#[tokio::test]
async fn one_address_failing_across_many_accounts_is_refused() {
    let api = Api::spawn_with(&[("LOGIN_IP_MAX_FAILURES", "3")]).await;
    let from = |api: &Api, email: &str, ip: &str| {
        api.app
            .request(reqwest::Method::POST, "/v1/auth/login")
            // A client-supplied hop first: only the gateway's last hop counts.
            .header("x-forwarded-for", format!("198.51.100.1, {ip}"))
            .json(&serde_json::json!({"email": email, "password": "not-the-right-password"}))
            .send()
    };

    for n in 1..=3 {
        let response = from(&api, &format!("user{n}@example.com"), "203.0.113.9")
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    let refused = from(&api, "user4@example.com", "203.0.113.9")
        .await
        .unwrap();
    let other_address = from(&api, "user4@example.com", "203.0.113.10")
        .await
        .unwrap();

    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(other_address.status(), 401);
}

//! Administrators without the second factor: refused by the gateway on routes that require
//! `amr: otp` (before the service is asked), while enrolment stays reachable with a password-only
//! token and other roles pass.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;

use auth_client::Role;
use common::{KEY, claims, problem, setup, sign};

/// A live session for `role` signed in with `amr`; its access token.
async fn token(s: &common::Setup, role: Role, amr: &[&str]) -> String {
    let mut claims = claims(role);
    claims.amr = amr.iter().map(|m| (*m).to_owned()).collect();
    s.open_session(&claims).await;
    sign(&KEY, &claims)
}

#[tokio::test]
async fn a_password_only_administrator_cannot_reach_admin_routes_but_can_enrol() {
    let s = setup(&[]).await;
    for role in [Role::Admin, Role::SuperAdmin] {
        let password_only = token(&s, role, &["pwd"]).await;
        for (path, service) in [
            ("/v1/admin/orders/123", "order-payment"),
            ("/v1/admin/blog/posts", "content"),
            ("/v1/auth/users", "auth"),
            ("/v1/auth/keys/rotate", "auth"),
        ] {
            let hits = s.fake(service).hits.load(Ordering::SeqCst);
            let response = s.get(path, Some(&password_only)).await;
            assert_eq!(response.status(), 403, "{role} {path}");
            let body = problem(response).await;
            assert!(
                body["type"]
                    .as_str()
                    .unwrap()
                    .ends_with("/second-factor-required"),
                "{body}"
            );
            assert_eq!(
                s.fake(service).hits.load(Ordering::SeqCst),
                hits,
                "{path} must not reach {service}"
            );
        }
        // Enrolment and the caller's own account go through, identity and amr forwarded.
        for path in ["/v1/auth/2fa/setup", "/v1/auth/me", "/v1/auth/logout"] {
            let response = s.get(path, Some(&password_only)).await;
            assert_eq!(response.status(), 200, "{role} {path}");
            let echoed: serde_json::Value = response.json().await.unwrap();
            assert_eq!(echoed["claims"]["amr"], serde_json::json!(["pwd"]));
        }

        let full = token(&s, role, &["pwd", "otp"]).await;
        for path in ["/v1/admin/orders/123", "/v1/auth/users"] {
            let response = s.get(path, Some(&full)).await;
            assert_eq!(response.status(), 200, "{role} {path}");
            let echoed: serde_json::Value = response.json().await.unwrap();
            assert_eq!(echoed["claims"]["amr"], serde_json::json!(["pwd", "otp"]));
        }
    }
    // Consultants work the back office without a second factor (optional for them).
    let consultant = token(&s, Role::Consultant, &["pwd"]).await;
    assert_eq!(
        s.get("/v1/admin/appointments", Some(&consultant))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn the_second_step_of_sign_in_is_public() {
    let s = setup(&[]).await;
    let response = s.get("/v1/auth/2fa/verify", None).await;
    assert_eq!(response.status(), 200);
    let enrol = s.get("/v1/auth/2fa/setup", None).await;
    assert_eq!(enrol.status(), 401);
}

#[tokio::test]
async fn a_route_file_can_require_a_second_factor() {
    let dir = std::env::temp_dir().join(format!("routes-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("routes.json");
    std::fs::write(
        &file,
        r#"[{"pattern": "/v1/products/**", "service": "product", "requireAmr": "otp"}]"#,
    )
    .unwrap();
    let s = setup(&[("ROUTES_FILE", file.to_str().unwrap())]).await;
    let password_only = token(&s, Role::Admin, &["pwd"]).await;
    assert_eq!(
        s.get("/v1/products", Some(&password_only)).await.status(),
        403
    );
    // Anonymous and customers still browse.
    assert_eq!(s.get("/v1/products", None).await.status(), 200);
    let customer = token(&s, Role::Customer, &["pwd"]).await;
    assert_eq!(s.get("/v1/products", Some(&customer)).await.status(), 200);
}

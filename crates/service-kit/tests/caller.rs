//! The internal-token guard and the identity extractors.
#![allow(clippy::unwrap_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use service_kit::caller::FirstFactorCaller;
use service_kit::http::{Shell, wrap};
use service_kit::{
    AdminCaller, Caller, InternalClaims, InternalKeys, MaybeCaller, Role, ServiceCaller,
    StaffCaller,
};
use tower::ServiceExt;
use uuid::Uuid;

fn app() -> Router {
    let routes = Router::new()
        .route(
            "/public",
            get(|MaybeCaller(caller): MaybeCaller| async move {
                caller
                    .map(|c| c.user_id.to_string())
                    .unwrap_or_else(|| "anonymous".into())
            }),
        )
        .route(
            "/me",
            get(|caller: Caller| async move { caller.role.to_string() }),
        )
        .route(
            "/admin",
            get(|AdminCaller(c): AdminCaller| async move { c.role.to_string() }),
        )
        .route(
            "/staff",
            get(|StaffCaller(c): StaffCaller| async move { c.role.to_string() }),
        )
        .route(
            "/enrol",
            get(|FirstFactorCaller(c): FirstFactorCaller| async move { c.role.to_string() }),
        )
        .route(
            "/internal/thing",
            get(|caller: ServiceCaller| async move { caller.service }),
        );
    wrap(
        routes,
        Shell {
            internal_keys: Some(InternalKeys::development()),
            ..Shell::bare("test")
        },
    )
}

async fn call(path: &str, token: Option<String>, extra: &[(&str, &str)]) -> (StatusCode, String) {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header("x-internal-token", token);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response = app()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// A user token; administrators signed in with the second factor, as they must be.
fn user_token(role: Role) -> (Uuid, String) {
    let amr: &[&str] = if role.is_admin() {
        &["pwd", "otp"]
    } else {
        &["pwd"]
    };
    token_with_amr(role, amr)
}

fn token_with_amr(role: Role, amr: &[&str]) -> (Uuid, String) {
    let user = Uuid::now_v7();
    let token = InternalKeys::development()
        .mint(
            InternalClaims::user("gateway", user, role, Uuid::now_v7())
                .with_amr(amr.iter().map(|m| (*m).to_owned()).collect()),
        )
        .unwrap();
    (user, token)
}

#[tokio::test]
async fn a_request_without_an_internal_token_is_refused() {
    let (status, body) = call("/public", None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("gateway"), "{body}");
}

#[tokio::test]
async fn spoofed_identity_headers_do_not_pass_the_guard() {
    let user = Uuid::now_v7().to_string();
    let (status, _) = call(
        "/me",
        None,
        &[("x-user-id", user.as_str()), ("x-user-role", "SUPER_ADMIN")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_forged_internal_token_is_refused() {
    let (_, token) = user_token(Role::Customer);
    let tampered = format!("{}x", token);
    let (status, _) = call("/public", Some(tampered), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_common_endpoints_need_no_token() {
    let (status, _) = call("/health", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn anonymous_callers_reach_public_routes_but_not_personal_ones() {
    let token = InternalKeys::development()
        .mint(InternalClaims::anonymous("gateway"))
        .unwrap();
    let (status, body) = call("/public", Some(token.clone()), &[]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "anonymous"));
    let (status, _) = call("/me", Some(token), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_signed_in_user_is_named_to_the_handler() {
    let (user, token) = user_token(Role::Customer);
    let (status, body) = call("/public", Some(token.clone()), &[]).await;
    assert_eq!((status, body), (StatusCode::OK, user.to_string()));
    let (status, body) = call("/me", Some(token), &[]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "CUSTOMER"));
}

#[tokio::test]
async fn admin_routes_refuse_customers_and_admit_admins() {
    let (_, customer) = user_token(Role::Customer);
    assert_eq!(
        call("/admin", Some(customer), &[]).await.0,
        StatusCode::FORBIDDEN
    );
    let (_, consultant) = user_token(Role::Consultant);
    assert_eq!(
        call("/admin", Some(consultant), &[]).await.0,
        StatusCode::FORBIDDEN
    );
    let (_, admin) = user_token(Role::Admin);
    assert_eq!(call("/admin", Some(admin), &[]).await.0, StatusCode::OK);
    let (_, root) = user_token(Role::SuperAdmin);
    assert_eq!(call("/admin", Some(root), &[]).await.0, StatusCode::OK);
}

#[tokio::test]
async fn internal_routes_are_for_services_only() {
    let (_, admin) = user_token(Role::SuperAdmin);
    assert_eq!(
        call("/internal/thing", Some(admin), &[]).await.0,
        StatusCode::FORBIDDEN
    );
    let service = InternalKeys::development()
        .mint(InternalClaims::service("customer"))
        .unwrap();
    let (status, body) = call("/internal/thing", Some(service), &[]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "customer"));
}

#[tokio::test]
async fn administrators_without_the_second_factor_are_refused_everywhere_but_enrolment() {
    for role in [Role::Admin, Role::SuperAdmin] {
        let (_, password_only) = token_with_amr(role, &["pwd"]);
        for path in ["/admin", "/staff", "/me", "/public"] {
            let (status, body) = call(path, Some(password_only.clone()), &[]).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{role} {path}");
            assert!(body.contains("second-factor-required"), "{body}");
        }
        let (status, body) = call("/enrol", Some(password_only), &[]).await;
        assert_eq!((status, body), (StatusCode::OK, role.to_string()));
        let (_, none) = token_with_amr(role, &[]);
        assert_eq!(call("/me", Some(none), &[]).await.0, StatusCode::FORBIDDEN);
        let (_, full) = token_with_amr(role, &["pwd", "otp"]);
        assert_eq!(call("/staff", Some(full), &[]).await.0, StatusCode::OK);
    }
    // Optional for everyone else.
    let (_, consultant) = token_with_amr(Role::Consultant, &["pwd"]);
    assert_eq!(
        call("/staff", Some(consultant), &[]).await.0,
        StatusCode::OK
    );
    let (_, customer) = token_with_amr(Role::Customer, &[]);
    assert_eq!(call("/me", Some(customer), &[]).await.0, StatusCode::OK);
}

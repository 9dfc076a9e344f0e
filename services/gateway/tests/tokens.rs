//! Access tokens at the gateway: verified locally against auth's JWKS, the session checked in
//! Redis, and every forgery refused with 401.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use auth_client::Role;
use common::{KEY, OTHER_KEY, b64, claims, problem, setup, sign};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

async fn assert_refused(s: &common::Setup, path: &str, token: &str, what: &str) {
    let response = s.get(path, Some(token)).await;
    assert_eq!(response.status(), 401, "{what} on {path}");
    assert!(
        response.headers().contains_key("www-authenticate"),
        "{what}"
    );
    let body = problem(response).await;
    assert_eq!(body["status"], 401, "{what}");
}

#[tokio::test]
async fn token_routes_need_a_token_and_public_ones_do_not() {
    let s = setup(&[]).await;
    for path in [
        "/v1/profile",
        "/v1/orders",
        "/v1/auth/me",
        "/v1/notifications",
        "/v1/wishlist",
    ] {
        let response = s.get(path, None).await;
        assert_eq!(response.status(), 401, "{path}");
        problem(response).await;
    }
    for path in ["/v1/products", "/v1/auth/login", "/v1/blog", "/v1/cart"] {
        assert_eq!(s.get(path, None).await.status(), 200, "{path}");
    }
    let (_, token) = s.user(Role::Customer).await;
    assert_eq!(s.get("/v1/profile", Some(&token)).await.status(), 200);
}

#[tokio::test]
async fn forged_and_broken_tokens_are_refused_even_on_public_routes() {
    let s = setup(&[]).await;
    let good = claims(Role::Customer);
    s.open_session(&good).await;
    let now = chrono::Utc::now().timestamp();

    // alg: none, with the real kid.
    let none = format!(
        "{}.{}.",
        b64(format!(r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#, KEY.kid).as_bytes()),
        b64(&serde_json::to_vec(&good).unwrap())
    );
    // HS256 keyed with the RSA public key (algorithm confusion).
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some(KEY.kid.clone());
    let confused = jsonwebtoken::encode(
        &hs_header,
        &good,
        &EncodingKey::from_secret(KEY.public_pem.as_bytes()),
    )
    .unwrap();
    // Expired a minute ago (beyond the leeway).
    let mut old = good.clone();
    old.iat = now - 1000;
    old.exp = now - 60;
    let expired = sign(&KEY, &old);
    // Signed by a key auth never published.
    let unknown_kid = sign(&OTHER_KEY, &good);
    // The published kid, but signed with another key.
    let mut wrong_key_header = Header::new(Algorithm::RS256);
    wrong_key_header.kid = Some(KEY.kid.clone());
    let wrong_key = jsonwebtoken::encode(&wrong_key_header, &good, &OTHER_KEY.encoding).unwrap();
    // No kid at all.
    let no_kid =
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &good, &KEY.encoding).unwrap();
    // A real token whose payload was edited to claim SUPER_ADMIN.
    let real = sign(&KEY, &good);
    let parts: Vec<&str> = real.split('.').collect();
    let mut promoted = good.clone();
    promoted.role = Role::SuperAdmin;
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(&serde_json::to_vec(&promoted).unwrap()),
        parts[2]
    );
    // Wrong issuer and audience.
    let mut foreign = good.clone();
    foreign.iss = "someone-else".to_owned();
    let wrong_issuer = sign(&KEY, &foreign);
    let mut other_aud = good.clone();
    other_aud.aud = "another-api".to_owned();
    let wrong_audience = sign(&KEY, &other_aud);

    for (what, token) in [
        ("alg none", none.as_str()),
        ("HS256 keyed with the public key", &confused),
        ("expired", &expired),
        ("unknown kid", &unknown_kid),
        ("wrong key for the kid", &wrong_key),
        ("no kid", &no_kid),
        ("tampered payload", &tampered),
        ("wrong issuer", &wrong_issuer),
        ("wrong audience", &wrong_audience),
        ("garbage", "not-a-jwt"),
    ] {
        assert_refused(&s, "/v1/profile", token, what).await;
        assert_refused(&s, "/v1/products", token, what).await;
    }
    let malformed = s
        .gateway
        .client
        .get(s.gateway.url("/v1/products"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 401);

    // The genuine token still works, and nothing forged reached a service.
    assert_eq!(s.get("/v1/profile", Some(&real)).await.status(), 200);
    assert_eq!(s.fake("customer").hits.load(Ordering::SeqCst), 1);
    assert_eq!(s.fake("product").hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_revoked_session_is_refused_within_a_second() {
    let s = setup(&[]).await;
    let (user, token) = s.user(Role::Customer).await;
    assert_eq!(s.get("/v1/profile", Some(&token)).await.status(), 200);

    s.end_session(&user).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = s.get("/v1/profile", Some(&token)).await;
    assert_eq!(response.status(), 401);
    let body = problem(response).await;
    assert!(
        body["detail"].as_str().unwrap().contains("session"),
        "{body}"
    );
    // Public routes too: a token that is sent is always checked.
    assert_eq!(s.get("/v1/products", Some(&token)).await.status(), 401);
}

#[tokio::test]
async fn a_token_for_a_session_that_never_existed_is_refused() {
    let s = setup(&[("SESSION_CACHE_MS", "0")]).await;
    let never = claims(Role::Admin);
    assert_eq!(
        s.get("/v1/profile", Some(&sign(&KEY, &never)))
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn the_jwks_is_fetched_with_a_service_token_and_refetched_for_a_new_kid() {
    let s = setup(&[]).await;
    let auth = s.fake("auth");
    let (_, token) = s.user(Role::Customer).await;
    assert_eq!(s.get("/v1/profile", Some(&token)).await.status(), 200);
    assert!(auth.jwks_fetches.load(Ordering::SeqCst) >= 1);

    // Auth rotates: it publishes a second key and signs new tokens with it.
    auth.jwks.write().unwrap()["keys"]
        .as_array_mut()
        .unwrap()
        .push(OTHER_KEY.jwk.clone());
    let rotated = claims(Role::Customer);
    s.open_session(&rotated).await;
    let new_token = sign(&OTHER_KEY, &rotated);
    assert_eq!(s.get("/v1/profile", Some(&new_token)).await.status(), 200);
    // Tokens signed with the old key stay valid while it is published.
    assert_eq!(s.get("/v1/profile", Some(&token)).await.status(), 200);
}

#[tokio::test]
async fn refetches_for_unknown_kids_are_rate_limited() {
    let s = setup(&[("JWKS_MIN_REFETCH_MS", "60000")]).await;
    let auth = s.fake("auth");
    let (_, token) = s.user(Role::Customer).await;
    assert_eq!(s.get("/v1/profile", Some(&token)).await.status(), 200);
    let before = auth.jwks_fetches.load(Ordering::SeqCst);
    for i in 0..20 {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(format!("sprayed-{i}"));
        let sprayed =
            jsonwebtoken::encode(&header, &claims(Role::Customer), &KEY.encoding).unwrap();
        assert_eq!(s.get("/v1/products", Some(&sprayed)).await.status(), 401);
    }
    let after = auth.jwks_fetches.load(Ordering::SeqCst);
    assert!(
        after - before <= 1,
        "{} fetches for 20 sprayed kids",
        after - before
    );
}

#[tokio::test]
async fn tokens_cannot_be_verified_while_auth_has_never_answered() {
    let s = setup(&[("JWKS_URL", "http://127.0.0.1:1/.well-known/jwks.json")]).await;
    let (_, token) = s.user(Role::Customer).await;
    let response = s.get("/v1/profile", Some(&token)).await;
    assert_eq!(response.status(), 503);
    problem(response).await;
    // Anonymous public traffic is unaffected.
    assert_eq!(s.get("/v1/products", None).await.status(), 200);
}

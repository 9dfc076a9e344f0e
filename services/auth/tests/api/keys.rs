use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::Method;
use serde_json::{Value, json};
use service_kit::Role;

use crate::helpers::{Api, jwt_header};

async fn jwks(api: &Api) -> JwkSet {
    let response = api.app.get("/.well-known/jwks.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    response.json().await.unwrap()
}

/// Verifies like the gateway: RS256 only, the key named by `kid`, issuer and audience.
fn verify(token: &str, set: &JwkSet) -> Result<auth_client::AccessClaims, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = set.find(&kid).ok_or("unknown kid")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[auth_client::access::ACCESS_ISSUER]);
    validation.set_audience(&[auth_client::access::ACCESS_AUDIENCE]);
    jsonwebtoken::decode::<auth_client::AccessClaims>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn the_jwks_lists_the_active_key() {
    let api = Api::spawn().await;

    let set = jwks(&api).await;

    assert_eq!(set.keys.len(), 1);
    let raw: Value = api
        .app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let key = &raw["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["e"], "AQAB");
    assert!(key["kid"].as_str().is_some_and(|kid| !kid.is_empty()));
    assert!(key.get("d").is_none(), "private material published");
}

#[tokio::test]
async fn access_tokens_verify_against_the_jwks_with_rs256_pinned() {
    let api = Api::spawn().await;
    let session = api.signed_up("jane@example.com").await;
    let set = jwks(&api).await;

    let claims = verify(&session.access_token, &set).unwrap();

    assert_eq!(claims.sub, session.user_id);
    assert_eq!(claims.sid, session.session_id);
    assert_eq!(claims.role, Role::Customer);
    assert_eq!(claims.exp - claims.iat, 900);
    assert_eq!(jwt_header(&session.access_token)["alg"], "RS256");

    // An HS256 token "signed" with the public key is refused by a pinned verifier.
    let jwk_json = serde_json::to_vec(&set.keys[0]).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = set.keys[0].common.key_id.clone();
    let forged =
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&jwk_json)).unwrap();
    assert!(verify(&forged, &set).is_err());
}

#[tokio::test]
async fn rotation_keeps_old_tokens_verifying_and_new_tokens_carry_the_new_kid() {
    let api = Api::spawn().await;
    let boss = api.signed_up_as("boss@example.com", Role::SuperAdmin).await;
    let old_kid = jwt_header(&boss.access_token)["kid"]
        .as_str()
        .unwrap()
        .to_owned();

    let rotated = api
        .as_user(&boss, Method::POST, "/v1/auth/keys/rotate")
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.unwrap();
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);

    let set = jwks(&api).await;
    assert_eq!(set.keys.len(), 2);
    assert_eq!(set.keys[0].common.key_id.as_deref(), Some(new_kid.as_str()));
    verify(&boss.access_token, &set).expect("a token signed before rotation still verifies");

    let fresh = api
        .signed_in("boss@example.com", crate::helpers::PASSWORD)
        .await;
    assert_eq!(jwt_header(&fresh.access_token)["kid"], new_kid.as_str());
    verify(&fresh.access_token, &set).unwrap();

    // The library entry point (`cargo xtask rotate-keys`) rotates again.
    let third = auth_service::rotate_signing_key(&api.pool).await.unwrap();
    assert_ne!(third, new_kid);
    let set = jwks(&api).await;
    assert_eq!(set.keys.len(), 3);
    assert_eq!(set.keys[0].common.key_id.as_deref(), Some(third.as_str()));
}

#[tokio::test]
async fn internal_verify_is_for_services_and_reports_whether_the_session_is_live() {
    let api = Api::spawn().await;
    let session = api.signed_up("jane@example.com").await;
    let body = json!({"accessToken": session.access_token});

    let as_user = api
        .as_user(&session, Method::POST, "/internal/verify")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(as_user.status(), 403);

    let ask = |body: Value| {
        api.app
            .client
            .post(api.app.url("/internal/verify"))
            .header(
                test_support::INTERNAL_TOKEN_HEADER,
                test_support::service_token("gateway"),
            )
            .json(&body)
            .send()
    };
    let live: Value = ask(body.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(live["valid"], true);
    assert_eq!(live["sessionLive"], true);
    assert_eq!(live["claims"]["sub"], session.user_id.to_string());

    api.as_user(&session, Method::POST, "/v1/auth/logout")
        .send()
        .await
        .unwrap();
    let after_logout: Value = ask(body).await.unwrap().json().await.unwrap();
    assert_eq!(after_logout["valid"], true);
    assert_eq!(after_logout["sessionLive"], false);

    let mut parts: Vec<String> = session.access_token.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].chars().rev().collect();
    let tampered: Value = ask(json!({"accessToken": parts.join(".")}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tampered["valid"], false);
    let none_alg = format!(
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
        session.access_token.split('.').nth(1).unwrap()
    );
    let unsigned: Value = ask(json!({"accessToken": none_alg}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(unsigned["valid"], false);
}
